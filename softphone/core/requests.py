"""A request the core sees through to its final response: an exchange.

One exchange may take several client transactions: a digest challenge is answered with the
request again (CSeq one up), and a target that does not answer (timeout, transport failure)
or answers 503 gives way to the next target RFC 3263 found, the request again with a new
branch (RFC 3263 4.3). A 503's Retry-After keeps that server out of later choices for as
long as it asks. Only the final outcome reaches the exchange's owner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from softphone.sip import ParseError, Request, Response, SipUri
from softphone.sip.headers import Address
from softphone.sip.transaction import LocalResponse, Peer, TransactionKey

ResponseHandler = Callable[[Response], None]


class RequestRefused(Exception):
    """Raised by an exchange's ``prepare_body`` when the request must not go to this target
    (SRTP keys over plain signalling, say); the exchange ends with a local ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(eq=False)
class Exchange:
    """One logical request and where it stands."""

    request: Request              # as it will be sent next, without Via
    destination: SipUri           # where RFC 3263 looks for targets (the next hop)
    on_final: ResponseHandler
    on_provisional: ResponseHandler | None = None
    targets: list[Peer] = field(default_factory=list)
    index: int = 0                # the target in use
    tried_realms: set[str] = field(default_factory=set)
    key: TransactionKey | None = None
    sent: Request | None = None   # the request as last sent, Via included
    peer: Peer | None = None      # where it was last sent
    provisional: bool = False     # a 1xx came: the server has it, no failover any more
    done: bool = False
    # fills the body in once the target is known (an INVITE's offer names our address
    # toward it)
    prepare_body: Callable[[Exchange, Peer], None] | None = None

    @property
    def method(self) -> str:
        return self.request.method

    def next_target(self, now: float, avoid: dict[Peer, float]) -> Peer | None:
        """The next target to try after the current one failed, skipping servers still in
        their Retry-After; None when every target has been tried."""
        while self.index + 1 < len(self.targets):
            self.index += 1
            candidate = self.targets[self.index]
            if avoid.get(candidate, 0.0) <= now:
                return candidate
        return None

    def first_target(self, now: float, avoid: dict[Peer, float]) -> Peer:
        """The best target not in its Retry-After (the best of all when every one is)."""
        for index, candidate in enumerate(self.targets):
            if avoid.get(candidate, 0.0) <= now:
                self.index = index
                return candidate
        self.index = 0
        return self.targets[0]


def fails_over(exchange: Exchange, response: Response) -> bool:
    """Whether this final response sends the request on to the next target: no answer at
    all (timeout, transport error) or 503, before any provisional response."""
    if exchange.provisional:
        return False
    return isinstance(response, LocalResponse) or response.status == 503


def retry_after(response: Response) -> float:
    """Seconds a 503's Retry-After asks us to leave the server alone (0: not given)."""
    value = (response.headers.get("Retry-After") or "").split(";")[0].split("(")[0].strip()
    return float(value) if value.isascii() and value.isdigit() else 0.0


def redirect_target(response: Response, visited: set[SipUri]) -> SipUri | None:
    """The best Contact of a 3xx not tried yet: q-values high to low, then their order
    (RFC 3261 8.1.3.4); ``visited`` is what protects against redirect loops."""
    if not 300 <= response.status < 400:
        return None
    try:
        contacts = response.contacts
    except ParseError:
        return None
    ranked = sorted(enumerate(contacts), key=lambda item: (-_q(item[1]), item[0]))
    for _, contact in ranked:
        if isinstance(contact.uri, SipUri) and contact.uri not in visited:
            return contact.uri
    return None


def _q(contact: Address) -> float:
    try:
        return float(contact.param("q") or 1.0)
    except ValueError:
        return 0.0
