"""HTTP Digest authentication as SIP uses it (RFC 2617, RFC 7616, RFC 8760).

Both sides: a UAC answers a 401/407 challenge (``authorize``), and a UAS or test registrar can
issue challenges and check answers (``verify``). Algorithms MD5, SHA-256 and SHA-512-256, each
also in its ``-sess`` form; qop ``auth`` and ``auth-int``; nonce counts and client nonces.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from softphone.sip.errors import AuthError, ParseError
from softphone.sip.grammar import QUOTED_STRING, TOKEN, quote, unquote

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
    "SHA-512-256": lambda data: hashlib.new("sha512_256", data).hexdigest(),
}
# Strongest first: when a server offers several challenges (RFC 8760 3), take the first we know.
ALGORITHM_PREFERENCE = ("SHA-512-256", "SHA-256", "MD5")

_AUTH_PARAM_RE = re.compile(rf"[ \t]*({TOKEN})[ \t]*=[ \t]*({QUOTED_STRING}|{TOKEN})[ \t]*(,|$)")
_SCHEME_RE = re.compile(rf"[ \t]*({TOKEN})[ \t]+")


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """``Digest realm="x", nonce="y"`` -> ("Digest", {"realm": "x", "nonce": "y"}).

    Parameter names are lower-cased; quoted values are unquoted.
    """
    scheme_match = _SCHEME_RE.match(value)
    if scheme_match is None:
        raise ParseError(f"Bad authentication header {value[:60]!r}")
    params: dict[str, str] = {}
    pos = scheme_match.end()
    while pos < len(value):
        match = _AUTH_PARAM_RE.match(value, pos)
        if match is None:
            raise ParseError(f"Bad authentication parameter in {value[:60]!r}")
        raw = match.group(2)
        params[match.group(1).lower()] = unquote(raw) if raw.startswith('"') else raw
        pos = match.end()
    return scheme_match.group(1), params


def _algorithm_parts(algorithm: str) -> tuple[str, bool]:
    upper = algorithm.upper()
    session = upper.endswith("-SESS")
    base = upper[: -len("-SESS")] if session else upper
    if base not in _HASHES:
        raise AuthError(f"Unsupported digest algorithm {algorithm}")
    return base, session


@dataclass(frozen=True)
class Challenge:
    """A WWW-Authenticate or Proxy-Authenticate Digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @property
    def supported(self) -> bool:
        try:
            _algorithm_parts(self.algorithm)
        except AuthError:
            return False
        return not self.qop or bool({"auth", "auth-int"} & set(self.qop))

    def __str__(self) -> str:
        parts = [f"realm={quote(self.realm)}", f"nonce={quote(self.nonce)}",
                 f"algorithm={self.algorithm}"]
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


def parse_challenge(value: str) -> Challenge:
    scheme, params = parse_auth_params(value)
    if scheme.lower() != "digest":
        raise AuthError(f"Unsupported authentication scheme {scheme}")
    if "realm" not in params or "nonce" not in params:
        raise ParseError("Digest challenge without realm or nonce")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=params["realm"], nonce=params["nonce"], algorithm=params.get("algorithm", "MD5"),
        qop=qop, opaque=params.get("opaque"), stale=params.get("stale", "").lower() == "true")


def choose_challenge(values: Sequence[str]) -> Challenge:
    """The strongest challenge we can answer among several header values."""
    usable = []
    for value in values:
        try:
            challenge = parse_challenge(value)
        except (AuthError, ParseError):
            continue
        if challenge.supported:
            usable.append(challenge)
    if not usable:
        raise AuthError("No supported Digest challenge offered")
    return min(usable, key=lambda c: ALGORITHM_PREFERENCE.index(_algorithm_parts(c.algorithm)[0]))


@dataclass(frozen=True)
class DigestCredentials:
    """An Authorization or Proxy-Authorization Digest answer."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    def __str__(self) -> str:
        parts = [f"username={quote(self.username)}", f"realm={quote(self.realm)}",
                 f"nonce={quote(self.nonce)}", f"uri={quote(self.uri)}",
                 f"response={quote(self.response)}", f"algorithm={self.algorithm}"]
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}"]
        if self.cnonce is not None:
            parts.append(f"cnonce={quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        return "Digest " + ", ".join(parts)


def parse_credentials(value: str) -> DigestCredentials:
    scheme, params = parse_auth_params(value)
    if scheme.lower() != "digest":
        raise AuthError(f"Unsupported authentication scheme {scheme}")
    try:
        return DigestCredentials(
            username=params["username"], realm=params["realm"], nonce=params["nonce"],
            uri=params["uri"], response=params["response"],
            algorithm=params.get("algorithm", "MD5"), qop=params.get("qop"),
            nc=params.get("nc"), cnonce=params.get("cnonce"), opaque=params.get("opaque"))
    except KeyError as missing:
        raise ParseError(f"Digest credentials without {missing.args[0]}") from None


@dataclass(frozen=True)
class DigestInput:
    """Everything the response hash depends on, named as RFC 7616 3.4.1 names it."""

    username: str
    password: str
    realm: str
    nonce: str
    method: str
    uri: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    body: bytes = field(default=b"", repr=False)


def compute_response(data: DigestInput) -> str:
    base, session = _algorithm_parts(data.algorithm)
    digest = _HASHES[base]

    def h(text: str) -> str:
        return digest(text.encode("utf-8"))

    ha1 = h(f"{data.username}:{data.realm}:{data.password}")
    if session:
        ha1 = h(f"{ha1}:{data.nonce}:{data.cnonce}")
    a2 = f"{data.method}:{data.uri}"
    if data.qop == "auth-int":
        a2 += ":" + digest(data.body)
    ha2 = h(a2)
    if data.qop is None:
        return h(f"{ha1}:{data.nonce}:{ha2}")
    return h(f"{ha1}:{data.nonce}:{data.nc}:{data.cnonce}:{data.qop}:{ha2}")


def authorize(challenge: Challenge, username: str, password: str, method: str, uri: str,
              body: bytes = b"", nonce_count: int = 1,
              cnonce: str | None = None) -> DigestCredentials:
    """Answer ``challenge`` for one request. Prefers qop=auth, then auth-int, then none."""
    if not challenge.supported:
        raise AuthError(f"Cannot answer a challenge with algorithm {challenge.algorithm} "
                        f"and qop {','.join(challenge.qop)}")
    qop = None
    if challenge.qop:
        qop = "auth" if "auth" in challenge.qop else "auth-int"
    _, session = _algorithm_parts(challenge.algorithm)
    if qop is not None or session:
        cnonce = cnonce or secrets.token_hex(8)
    nc = f"{nonce_count:08x}" if qop is not None else None
    response = compute_response(DigestInput(
        username=username, password=password, realm=challenge.realm, nonce=challenge.nonce,
        method=method, uri=uri, algorithm=challenge.algorithm, qop=qop, nc=nc, cnonce=cnonce,
        body=body))
    return DigestCredentials(
        username=username, realm=challenge.realm, nonce=challenge.nonce, uri=uri,
        response=response, algorithm=challenge.algorithm, qop=qop, nc=nc,
        cnonce=cnonce, opaque=challenge.opaque)


def verify(credentials: DigestCredentials, password: str, method: str,
           body: bytes = b"") -> bool:
    """Whether ``credentials`` prove knowledge of ``password`` (a server's check)."""
    try:
        expected = compute_response(DigestInput(
            username=credentials.username, password=password, realm=credentials.realm,
            nonce=credentials.nonce, method=method, uri=credentials.uri,
            algorithm=credentials.algorithm, qop=credentials.qop, nc=credentials.nc,
            cnonce=credentials.cnonce, body=body))
    except AuthError:
        return False
    return secrets.compare_digest(expected, credentials.response)
