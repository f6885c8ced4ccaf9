"""Digest credentials that outlive one request (RFC 7616 3.4, RFC 3261 22.3).

Without a cache every INVITE and every registration refresh costs a 401/407 round trip.
Once a server (a proxy, a registrar) has challenged us, the challenge is kept per next hop
and realm, and later requests to that hop carry an answer to it up front, the nonce count
going up by one each time (``nc``). A server that no longer likes the nonce challenges
again (``stale=true`` or not); that answer is then given once more with its fresh nonce,
so a cached nonce never costs more than the round trip it tried to save.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from softphone.sip import Headers, ParseError, Request, Response
from softphone.sip.auth import Challenge, authorize, choose_challenge
from softphone.sip.errors import AuthError

HEADERS = {401: ("WWW-Authenticate", "Authorization"),
           407: ("Proxy-Authenticate", "Proxy-Authorization")}


@dataclass
class _Cached:
    challenge: Challenge
    status: int  # 401 or 407: which header pair it belongs to
    count: int = 0  # nonce count used so far with this nonce


@dataclass
class AuthCache:
    """The credentials of one account and the challenges met with them."""

    username: str
    password: str
    _by_hop: dict[str, dict[tuple[int, str], _Cached]] = field(default_factory=dict)

    def preauthorize(self, request: Request, hop: str) -> Request:
        """``request`` with answers to every challenge ``hop`` gave before (none: as is)."""
        cached = self._by_hop.get(hop)
        if not cached or request.method in ("ACK", "CANCEL"):
            return request
        headers = request.headers.copy()
        for entry in cached.values():
            entry.count += 1
            _, answer_header = HEADERS[entry.status]
            answer = authorize(entry.challenge, self.username, self.password, request.method,
                               str(request.uri), request.body, nonce_count=entry.count)
            _replace_for_realm(headers, answer_header, entry.challenge.realm, str(answer))
        return Request(request.method, request.uri, headers, request.body)

    def answer(self, request: Request, response: Response, hop: str,
               tried: set[str]) -> Request | None:
        """The request again for the 401/407 ``response``, CSeq one up, its challenge kept
        for ``hop`` (``preauthorize`` then answers it as the request goes out); None when it
        cannot or should not be answered (no usable challenge, or one for a realm ``tried``
        already answered with a fresh nonce: the password is wrong)."""
        if response.status not in HEADERS:
            return None
        challenge_header, _ = HEADERS[response.status]
        try:
            challenge = choose_challenge(response.headers.get_all(challenge_header))
        except (AuthError, ParseError):
            return None
        if challenge.realm in tried and not challenge.stale:
            return None
        if not challenge.supported:
            return None
        tried.add(challenge.realm)
        self._by_hop.setdefault(hop, {})[(response.status, challenge.realm)] = \
            _Cached(challenge, response.status)
        headers = request.headers.copy()
        cseq = request.cseq
        headers.set("CSeq", f"{cseq.number + 1} {cseq.method}")
        return Request(request.method, request.uri, headers, request.body)


def _replace_for_realm(headers: Headers, name: str, realm: str, value: str) -> None:
    """Put ``value`` in place of an answer ``headers`` already has for ``realm``."""
    kept = [v for v in headers.get_all(name) if f'realm="{realm}"' not in v]
    headers.remove(name)
    for old in kept:
        headers.add(name, old)
    headers.add(name, value)
