"""Reliable provisional responses (RFC 3262: 100rel, RSeq, RAck, PRACK), sans-IO.

A 1xx is reliable when it carries ``Require: 100rel`` and an ``RSeq``; the UAC answers each
with a PRACK naming it in ``RAck`` (RSeq, the INVITE's CSeq number and method). The UAS
resends it, T1 and doubling, until the PRACK comes, and fails the INVITE with 504 after
64*T1 without one. Reliability is what lets an offer or an answer ride in a 1xx: the SDP of
a 183 that starts early media (RFC 3960) is then as binding as a 2xx's.

Our mode (``--100rel``): ``off`` (neither offered nor used), ``supported`` (the default:
offered in every INVITE; as UAS, reliable 1xx whenever the caller supports or requires it)
or ``required`` (our INVITEs require it; callers that do not support it get 421).
CoreCall keeps one ``ReliableSender`` as UAS and one ``PrackTracker`` as UAC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from softphone.core.session_timer import header_tokens
from softphone.sip import ParseError, Request, Response
from softphone.sip.grammar import decimal

REL100 = "100rel"
MODES = ("off", "supported", "required")
MAX_RSEQ_START = 2**31 - 1  # RFC 3262 3: the first RSeq between 1 and 2**31 - 1


def supports_100rel(message: Request | Response) -> bool:
    return REL100 in header_tokens(message, "Supported") or requires_100rel(message)


def requires_100rel(message: Request | Response) -> bool:
    return REL100 in header_tokens(message, "Require")


def reliable_for(invite: Request, mode: str) -> bool:
    """Whether our 1xx to ``invite`` are to be reliable: the caller asks or allows it,
    and we have not turned the extension off."""
    return mode != "off" and supports_100rel(invite)


def rseq_of(response: Response) -> int | None:
    """The RSeq of a reliable 1xx; None when the response is not one (no Require: 100rel,
    or no usable RSeq: then it is treated as an ordinary provisional, RFC 3262 4)."""
    if not 100 < response.status < 200 or not requires_100rel(response):
        return None
    value = response.headers.get("RSeq")
    number = decimal(value.strip()) if value else None
    return number if number is not None and 0 < number < 2**32 else None


@dataclass(frozen=True)
class RAck:
    """What a PRACK acknowledges: the 1xx's RSeq and its INVITE's CSeq."""

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, request: Request) -> RAck:
        value = request.headers.get("RAck")
        parts = value.split() if value else []
        numbers = [decimal(part) for part in parts[:2]]
        if len(parts) != 3 or numbers[0] is None or numbers[1] is None:
            raise ParseError(f"RAck must be 'RSeq CSeq-number method': {value!r}")
        return cls(numbers[0], numbers[1], parts[2].upper())

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


@dataclass
class Unacknowledged:
    """A reliable 1xx of ours awaiting its PRACK."""

    response: Response
    rseq: int
    first_sent: float
    interval: float
    carries_sdp: bool


@dataclass
class ReliableSender:
    """The UAS side: numbers our reliable 1xx, holds the one awaiting its PRACK (RFC 3262
    3: no second until the first is acknowledged, so later ones wait in ``queued``)."""

    next_rseq: int
    t1: float
    pending: Unacknowledged | None = None
    queued: list[tuple[int, bytes]] = field(default_factory=list)  # (status, SDP)
    acknowledged_sdp: bool = False  # a reliable 1xx with SDP was PRACKed

    def send(self, response: Response, now: float) -> None:
        """Stamp ``response`` reliable and make it the one awaiting PRACK."""
        response.headers.add("Require", REL100)
        response.headers.add("RSeq", str(self.next_rseq))
        self.pending = Unacknowledged(response, self.next_rseq, now, self.t1,
                                      bool(response.body))
        self.next_rseq += 1

    def next_due(self, now: float) -> float:
        """When to look at the pending 1xx again: its next resend (T1, doubling), or the
        moment 64*T1 runs out, whichever comes first."""
        assert self.pending is not None
        return min(now + self.pending.interval, self.pending.first_sent + 64 * self.t1)

    def given_up(self, now: float) -> bool:
        """64*T1 without a PRACK (RFC 3262 3: the INVITE is then failed with a 5xx)."""
        return self.pending is not None and now - self.pending.first_sent >= 64 * self.t1

    def acknowledge(self, rack: RAck, invite_cseq: int) -> Unacknowledged | None:
        """The pending 1xx this PRACK names, now acknowledged; None when it names none
        (481 then: RFC 3262 3)."""
        pending = self.pending
        if pending is None or (rack.rseq, rack.cseq, rack.method) != (
                pending.rseq, invite_cseq, "INVITE"):
            return None
        self.pending = None
        self.acknowledged_sdp = self.acknowledged_sdp or pending.carries_sdp
        return pending


@dataclass
class PrackTracker:
    """The UAC side: the last RSeq seen per early dialog (To tag). A 1xx whose RSeq is not
    the next one is a retransmission or out of order, and is discarded (RFC 3262 4)."""

    last: dict[str, int] = field(default_factory=dict)

    def accept(self, tag: str, rseq: int) -> bool:
        previous = self.last.get(tag)
        if previous is not None and rseq != previous + 1:
            return False
        self.last[tag] = rseq
        return True
