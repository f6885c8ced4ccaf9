"""SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966), and any other absolute URI.

Components are stored unescaped (``%41`` becomes ``A`` once, never recursively) and escaped
again on output, so two spellings of the same URI compare equal, as RFC 3261 19.1.4 wants.
The grammar pieces below are the RFC 3261 section 25 ABNF, written as regex character sets.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

from softphone.sip.errors import ParseError

# --- RFC 3261 section 25.1 character classes -------------------------------------------------
_ALPHANUM = "A-Za-z0-9"
_MARK = r"\-_.!~*'()"
_UNRESERVED = _ALPHANUM + _MARK
_ESCAPED = r"%[0-9A-Fa-f]{2}"
_USER_UNRESERVED = r"&=+$,;?/"
_PASSWORD_EXTRA = r"&=+$,"
_PARAM_UNRESERVED = r"\[\]/:&+$"
_HNV_UNRESERVED = r"\[\]/?:+$"

_USER_RE = re.compile(rf"(?:[{_UNRESERVED}{_USER_UNRESERVED}]|{_ESCAPED})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}{_PASSWORD_EXTRA}]|{_ESCAPED})*")
_PARAMCHARS_RE = re.compile(rf"(?:[{_UNRESERVED}{_PARAM_UNRESERVED}]|{_ESCAPED})+")
_HNAME_RE = re.compile(rf"(?:[{_UNRESERVED}{_HNV_UNRESERVED}]|{_ESCAPED})+")
_HVALUE_RE = re.compile(rf"(?:[{_UNRESERVED}{_HNV_UNRESERVED}]|{_ESCAPED})*")
# hostname = *( domainlabel "." ) toplabel [ "." ]; labels of alphanum and inner hyphens.
_HOSTNAME_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*"
                          r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?")
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_ABSOLUTE_REST_RE = re.compile(r"[^\s<>\"]+")
_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+")

# Characters each component may carry unescaped on output.
_USER_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                       "-_.!~*'()&=+$,;?/")
_PASSWORD_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                           "-_.!~*'()&=+$,")
_PARAM_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                        "-_.!~*'()[]/:&+$")
_HEADER_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                         "-_.!~*'()[]/?:+$")

# Parameters that make two URIs differ when only one of them has it (RFC 3261 19.1.4).
_PARAMS_THAT_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")

Params = tuple[tuple[str, str | None], ...]


def unescape(text: str) -> str:
    """Decode %HH escapes once; the octets are UTF-8 (undecodable ones survive as surrogates)."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i] == 0x25 and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


def escape(text: str, safe: frozenset[str]) -> str:
    """Escape every character outside ``safe`` as %HH of its UTF-8 octets."""
    if all(c in safe for c in text):
        return text
    parts = []
    for char in text:
        if char in safe:
            parts.append(char)
        else:
            parts.extend(f"%{b:02X}" for b in char.encode("utf-8", "surrogateescape"))
    return "".join(parts)


def _check(regex: re.Pattern[str], text: str, what: str, uri: str) -> None:
    if not regex.fullmatch(text):
        raise ParseError(f"Bad {what} in URI {uri[:60]!r}")


def is_valid_ipv6(text: str) -> bool:
    """IPv6 as RFC 3261 writes it; also the three-colon form its ABNF allows (RFC 5118 4.10)."""
    for candidate in (text, text.replace(":::", "::", 1)):
        try:
            ipaddress.IPv6Address(candidate)
            return True
        except ValueError:
            continue
    return False


def parse_host_port(text: str, context: str) -> tuple[str, int | None]:
    """Split ``host[:port]``; IPv6 references lose their brackets. Raises ParseError."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not is_valid_ipv6(text[1:end]):
            raise ParseError(f"Bad IPv6 reference in {context[:60]!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ParseError(f"Bad host in {context[:60]!r}")
        port_text = rest[1:] if rest else None
    else:
        host, _, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if ":" in text else None
        if _IPV4_RE.fullmatch(host):
            if any(int(octet) > 255 for octet in host.split(".")):
                raise ParseError(f"Bad IPv4 address in {context[:60]!r}")
        elif not _HOSTNAME_RE.fullmatch(host):
            raise ParseError(f"Bad host in {context[:60]!r}")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not port_text.isascii() or int(port_text) > 65535:
        raise ParseError(f"Bad port in {context[:60]!r}")
    return host, int(port_text)


def format_host(host: str) -> str:
    """The host as it appears in a URI or Via: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def _find_param(params: Params, name: str) -> tuple[bool, str | None]:
    lowered = name.lower()
    for key, value in params:
        if key.lower() == lowered:
            return True, value
    return False, None


@dataclass(frozen=True, eq=False)
class SipUri:
    """A sip: or sips: URI, unescaped. Equality and hashing follow RFC 3261 19.1.4."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    @property
    def host_port(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None

    def param(self, name: str) -> str | None:
        return _find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        return _find_param(self.params, name)[0]

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        kept = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=kept + ((name, value),))

    def without_param(self, name: str) -> SipUri:
        return replace(self, params=tuple(p for p in self.params if p[0].lower() != name.lower()))

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def address_of_record(self) -> SipUri:
        """The URI without port, parameters and headers: what a registrar stores bindings of."""
        return SipUri(host=self.host, user=self.user, scheme=self.scheme)

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                parts.append(":" + escape(self.password, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(self.host_port)
        for name, value in self.params:
            parts.append(";" + escape(name, _PARAM_SAFE))
            if value is not None:
                parts.append("=" + escape(value, _PARAM_SAFE))
        if self.headers:
            parts.append("?")
            parts.append("&".join(
                f"{escape(k, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for k, v in self.headers))
        return "".join(parts)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        if (self.scheme, self.user, self.password, self.port) != (
                other.scheme, other.user, other.password, other.port):
            return False
        if _host_key(self.host) != _host_key(other.host):
            return False
        return _params_equal(self.params, other.params) and _headers_equal(
            self.headers, other.headers)

    def __hash__(self) -> int:
        return hash((self.scheme, self.user, self.password, _host_key(self.host), self.port))


def _host_key(host: str) -> str:
    """Hosts compare case-insensitively; IPv6 addresses by value, not by spelling."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            pass
    return host.lower()


def _params_equal(a: Params, b: Params) -> bool:
    mine = {k.lower(): (v.lower() if v is not None else None) for k, v in a}
    theirs = {k.lower(): (v.lower() if v is not None else None) for k, v in b}
    for name in _PARAMS_THAT_MUST_MATCH:
        if mine.get(name, "\0absent") != theirs.get(name, "\0absent"):
            return False
    return all(theirs[name] == value for name, value in mine.items() if name in theirs)


def _headers_equal(a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]) -> bool:
    return sorted((k.lower(), v) for k, v in a) == sorted((k.lower(), v) for k, v in b)


@dataclass(frozen=True)
class TelUri:
    """A tel: URI (RFC 3966). ``number`` keeps its visual separators; equality ignores them."""

    number: str
    params: Params = ()
    scheme: str = field(default="tel", init=False)

    @property
    def digits(self) -> str:
        return re.sub(r"[\-.()]", "", self.number)

    def param(self, name: str) -> str | None:
        return _find_param(self.params, name)[1]

    def __str__(self) -> str:
        tail = "".join(f";{k}" + (f"={v}" if v is not None else "") for k, v in self.params)
        return f"tel:{self.number}{tail}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelUri):
            return NotImplemented
        return self.digits.lower() == other.digits.lower() and _params_equal(
            self.params, other.params)

    def __hash__(self) -> int:
        return hash(self.digits.lower())


@dataclass(frozen=True)
class AbsoluteUri:
    """A URI of a scheme SIP does not route (http:, isbn:, ...), kept opaque."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.rest == other.rest

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.rest))


URI = SipUri | TelUri | AbsoluteUri


@lru_cache(maxsize=4096)
def parse_uri(text: str) -> URI:
    """Parse any URI a SIP message can carry. Raises ParseError on a malformed one."""
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise ParseError(f"Bad URI {text[:60]!r}")
    lowered = scheme.lower()
    if lowered in ("sip", "sips"):
        return _parse_sip_uri(lowered, rest, text)
    if lowered == "tel":
        return _parse_tel_uri(rest, text)
    if not _ABSOLUTE_REST_RE.fullmatch(rest):
        raise ParseError(f"Bad URI {text[:60]!r}")
    return AbsoluteUri(scheme=scheme, rest=rest)


def parse_sip_uri(text: str) -> SipUri:
    """Parse a URI that must be sip: or sips:."""
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise ParseError(f"Not a SIP URI: {text[:60]!r}", status=416)
    return uri


def _parse_sip_uri(scheme: str, rest: str, text: str) -> SipUri:
    # userinfo may hold ';' and '?' but never an unescaped '@', which nothing after it may hold.
    user = password = None
    userinfo, at, hostpart = rest.partition("@")
    if not at:
        userinfo, hostpart = "", rest
    else:
        user_text, _, password_text = userinfo.partition(":")
        _check(_USER_RE, user_text, "user", text)
        user = unescape(user_text)
        if ":" in userinfo:
            _check(_PASSWORD_RE, password_text, "password", text)
            password = unescape(password_text)
    hostpart, question, header_text = hostpart.partition("?")
    hostport, *param_texts = hostpart.split(";")
    host, port = parse_host_port(hostport, text)
    return SipUri(
        scheme=scheme, user=user, password=password, host=host, port=port,
        params=tuple(_parse_uri_param(p, text) for p in param_texts),
        headers=_parse_uri_headers(header_text, text) if question else (),
    )


def _parse_uri_param(param: str, text: str) -> tuple[str, str | None]:
    name, equals, value = param.partition("=")
    _check(_PARAMCHARS_RE, name, "parameter", text)
    if not equals:
        return unescape(name), None
    _check(_PARAMCHARS_RE, value, "parameter value", text)
    return unescape(name), unescape(value)


def _parse_uri_headers(header_text: str, text: str) -> tuple[tuple[str, str], ...]:
    headers = []
    for item in header_text.split("&"):
        name, equals, value = item.partition("=")
        if not equals:
            raise ParseError(f"Bad URI header in {text[:60]!r}")
        _check(_HNAME_RE, name, "header name", text)
        _check(_HVALUE_RE, value, "header value", text)
        headers.append((unescape(name), unescape(value)))
    return tuple(headers)


def _parse_tel_uri(rest: str, text: str) -> TelUri:
    number, *param_texts = rest.split(";")
    if not _TEL_NUMBER_RE.fullmatch(number):
        raise ParseError(f"Bad telephone number in {text[:60]!r}")
    return TelUri(number=number, params=tuple(_parse_uri_param(p, text) for p in param_texts))
