"""A UAS that defends itself: digest challenges for callers (RFC 7616 as RFC 3261 22 uses it)
and a limit on what one source may ask of us. Sans-IO: every check takes ``now``.

Challenges offer SHA-256 and MD5 (RFC 8760), qop=auth. A nonce is bound to the time it
was made and to the caller's address (an HMAC of both under a secret of this process), so
it cannot be forged, moved to another source, or used after ``nonce_lifetime`` (then the
challenge says stale=true and a client answers it without asking its user again). Each
nonce's count (nc) must go up: a replayed answer is refused.

The limiter is a token bucket per source address, in a bounded table: a flood from one
address gets 503 with Retry-After while other callers are served as usual.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from softphone.sip import Headers, ParseError, Request, Response
from softphone.sip.auth import Challenge, parse_credentials, verify
from softphone.sip.builder import make_response, new_tag
from softphone.sip.errors import AuthError

CHALLENGED = frozenset({"INVITE", "OPTIONS", "MESSAGE", "SUBSCRIBE", "REFER"})
NONCE_COUNTS_KEPT = 4096


class DigestGuard:
    """Who may call us: ``users`` maps user names to passwords."""

    def __init__(self, users: dict[str, str], realm: str, nonce_lifetime: float = 300.0,
                 secret: bytes | None = None,
                 algorithms: tuple[str, ...] = ("SHA-256", "MD5")) -> None:
        self.users = users
        self.algorithms = algorithms  # one challenge each, in this order of preference
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        self._secret = secret or secrets.token_bytes(32)
        self._counts: OrderedDict[str, int] = OrderedDict()  # nonce -> last nc, bounded

    def check(self, request: Request, source: str, now: float) -> Response | None:
        """None when the request may go on; else the 401 (or 400) to send instead."""
        if request.method not in CHALLENGED:
            return None
        stale = False
        for value in request.headers.get_all("Authorization"):
            verdict = self._verdict(request, value, source, now)
            if verdict == "ok":
                return None
            stale = stale or verdict == "stale"
        return self._challenge(request, source, now, stale)

    def _verdict(self, request: Request, value: str, source: str, now: float) -> str:
        try:
            credentials = parse_credentials(value)
        except (AuthError, ParseError):
            return "bad"
        password = self.users.get(credentials.username)
        if password is None or credentials.realm != self.realm or credentials.qop != "auth" \
                or (credentials.algorithm or "MD5").upper() not in self.algorithms:
            return "bad"
        made = self._nonce_time(credentials.nonce, source)
        if made is None:
            return "bad"
        if not verify(credentials, password, request.method, request.body):
            return "bad"
        if now - made > self.nonce_lifetime:
            return "stale"  # right password, old nonce: a fresh challenge, stale=true
        count = int(credentials.nc or "0", 16)
        if count <= self._counts.get(credentials.nonce, 0):
            return "bad"  # a replay: this count was used already
        self._counts[credentials.nonce] = count
        self._counts.move_to_end(credentials.nonce)
        while len(self._counts) > NONCE_COUNTS_KEPT:
            self._counts.popitem(last=False)
        return "ok"

    def _nonce(self, source: str, now: float) -> str:
        stamp = f"{now:.3f}"
        mac = hmac.new(self._secret, f"{stamp} {source}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(stamp.encode() + b" " + mac[:16]).decode().rstrip("=")

    def _nonce_time(self, nonce: str, source: str) -> float | None:
        """When ``nonce`` was made for ``source``, or None when we did not make it so."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
            stamp, _, mac = raw.partition(b" ")
            expected = hmac.new(self._secret, stamp + b" " + source.encode(),
                                hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(mac, expected):
                return None
            return float(stamp)
        except (ValueError, UnicodeDecodeError):
            return None

    def _challenge(self, request: Request, source: str, now: float, stale: bool) -> Response:
        nonce = self._nonce(source, now)
        extra = Headers([("WWW-Authenticate", str(Challenge(self.realm, nonce, algorithm,
                                                             ("auth",), stale=stale)))
                         for algorithm in self.algorithms])
        return make_response(request, 401, to_tag=new_tag(), extra=extra)


@dataclass(frozen=True)
class GuardSettings:
    """How an agent defends itself as a UAS (its defaults hold for a softphone on the
    internet; a PBX that carries every call from one address belongs in ``trusted``)."""

    callers: dict[str, str] | None = None  # who may call us, user -> password; None: anyone
    realm: str | None = None               # the realm of our challenges; None: our domain
    nonce_lifetime: float = 300.0          # seconds a nonce of ours is good for
    # one challenge per algorithm, preferred first (RFC 8760). Some clients give up on a
    # challenge list holding one they do not know (baresip 1.0's libre): MD5 alone for them
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    source_rate: float = 50.0              # new requests a second from one address; 0: any
    source_burst: float = 100.0            # ... in bursts of up to this many
    max_calls_per_source: int = 20         # calls in progress from one address; 0: any
    # networks the per-source limits spare: this machine, and whatever the user trusts;
    # registrars we registered with are spared as well
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    follow_maddr: bool = False             # send responses to a Via's maddr (reflection risk)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class SourceLimiter:
    """At most ``rate`` requests a second from one address (bursts of ``burst``); the table
    holds the ``sources`` addresses seen last, so memory stays bounded whatever the flood."""

    def __init__(self, rate: float = 50.0, burst: float = 100.0, sources: int = 4096) -> None:
        self.rate, self.burst, self.sources = rate, burst, sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0

    def allow(self, source: str, now: float) -> bool:
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = _Bucket(self.burst, now)
            while len(self._buckets) > self.sources:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(source)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            self.refused += 1
            return False
        bucket.tokens -= 1.0
        return True

    def __len__(self) -> int:
        return len(self._buckets)


def busy(request: Request, retry_after: int = 5,
         reason: str = "Too many requests from your address") -> Response:
    """503 Service Unavailable with Retry-After (RFC 3261 21.5.4): come back later."""
    return make_response(request, 503, reason,
                         to_tag=new_tag(), extra=Headers([("Retry-After", str(retry_after))]))

