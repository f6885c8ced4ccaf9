"""Typed views of the header values the stack works with.

Every parser here takes one header value (already unfolded and, for list headers, already split
at top-level commas) and returns a frozen object, or raises ParseError. They are cached: the
message parser calls them once to validate, and the views the stack reads later are free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from softphone.sip.errors import ParseError
from softphone.sip.grammar import (
    LWS,
    PARAM_RE,
    QUOTED_STRING,
    TOKEN,
    TOKEN_RE,
    WORD_RE,
    decimal,
    quote,
    unquote,
)
from softphone.sip.uri import (
    URI,
    Params,
    SipUri,
    format_host,
    is_valid_ipv6,
    parse_host_port,
    parse_uri,
)

MAX_CSEQ = 2**32 - 1
MAX_DELTA_SECONDS = 2**32 - 1
BRANCH_MAGIC_COOKIE = "z9hG4bK"


def parse_params(text: str, context: str) -> Params:
    """``*( SEMI generic-param )`` with its LWS; an empty parameter (``;;``) is an error."""
    params = []
    pos = 0
    while pos < len(text):
        match = PARAM_RE.match(text, pos)
        if match is None:
            raise ParseError(f"Bad parameters in {context}")
        params.append((match.group(1), match.group(2)))
        pos = match.end()
    return tuple(params)


def format_params(params: Params) -> str:
    return "".join(f";{name}" + (f"={value}" if value is not None else "")
                   for name, value in params)


def find_param(params: Params, name: str) -> str | None:
    lowered = name.lower()
    for key, value in params:
        if key.lower() == lowered:
            return value
    return None


def has_param(params: Params, name: str) -> bool:
    lowered = name.lower()
    return any(key.lower() == lowered for key, _ in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    kept = tuple(p for p in params if p[0].lower() != name.lower())
    return kept + ((name, value),)


# --- name-addr / addr-spec: From, To, Contact, Route, Record-Route, Refer-To ------------------

# Tokens with whitespace required between them: one way to cut a run, so a display name whose
# '<' never comes fails in linear time (an optional space there let the regex try 2^n cuts).
_DISPLAY_TOKENS_RE = re.compile(rf"{LWS}((?:{TOKEN}(?:[ \t]+{TOKEN})*)?){LWS}<")
_QUOTED_DISPLAY_RE = re.compile(rf"{LWS}({QUOTED_STRING}){LWS}<")


@dataclass(frozen=True)
class Address:
    """A name-addr or addr-spec with its header parameters (tag, expires, q, lr ...)."""

    uri: URI
    display_name: str | None = None
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return find_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> Address:
        return replace(self, params=set_param(self.params, name, value))

    @property
    def sip_uri(self) -> SipUri:
        """The URI, when the stack needs it to be SIP (routing, contacts)."""
        if not isinstance(self.uri, SipUri):
            raise ParseError(f"Not a SIP URI: {self.uri}", status=416)
        return self.uri

    def __str__(self) -> str:
        name = quote(self.display_name) + " " if self.display_name is not None else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"


@lru_cache(maxsize=4096)
def parse_address(text: str) -> Address:
    """Parse name-addr / addr-spec followed by header parameters. A name-addr's part up to
    its ``>`` is read once for all the values that share it (a peer's From in every call,
    with a new tag each time); only the parameters after it are read anew."""
    end = text.rfind(">") + 1
    if end and end < len(text) and '"' not in text[end:]:  # (a quoted value could hide a '>')
        head = _whole_address(text[:end])
        tail = parse_params(text[end:].rstrip(), repr(text[:60]))
        return Address(uri=head.uri, display_name=head.display_name, params=head.params + tail)
    return _whole_address(text)


@lru_cache(maxsize=4096)
def _whole_address(text: str) -> Address:
    quoted = _QUOTED_DISPLAY_RE.match(text)
    if quoted is not None:
        return _parse_name_addr(text, unquote(quoted.group(1)), quoted.end())
    tokens = _DISPLAY_TOKENS_RE.match(text)
    if tokens is not None:
        display = tokens.group(1).strip() or None
        return _parse_name_addr(text, display, tokens.end())
    return _parse_addr_spec(text)


def _parse_name_addr(text: str, display: str | None, uri_start: int) -> Address:
    uri_end = text.find(">", uri_start)
    if uri_end < 0:
        raise ParseError(f"Unterminated <URI> in {text[:60]!r}")
    uri = parse_uri(text[uri_start:uri_end])
    return Address(uri=uri, display_name=display,
                   params=parse_params(text[uri_end + 1 :].rstrip(), repr(text[:60])))


def _parse_addr_spec(text: str) -> Address:
    uri_text, semicolon, rest = text.strip().partition(";")
    uri_text = uri_text.rstrip()
    if '"' in uri_text or "<" in uri_text:
        raise ParseError(f"Bad address {text[:60]!r}")
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and ("?" in uri_text or "," in uri_text):
        raise ParseError(f"A URI with '?' or ',' must be enclosed in <>: {text[:60]!r}")
    params = parse_params(semicolon + rest, repr(text[:60])) if semicolon else ()
    return Address(uri=uri, params=params)


# --- Via ------------------------------------------------------------------------------------

_VIA_RE = re.compile(
    rf"{LWS}({TOKEN}){LWS}/{LWS}({TOKEN}){LWS}/{LWS}({TOKEN})[ \t]+"
    rf"(\[[^\]]*\]|[^ \t;:\[]+)(?:{LWS}:{LWS}([0-9]+))?{LWS}")


@dataclass(frozen=True)
class Via:
    """One Via value: who sent the request, over what, and how to route the response back."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return find_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        value = find_param(self.params, "received")
        return value.strip("[]") if value else value

    @property
    def rport(self) -> int | None:
        value = find_param(self.params, "rport")
        return decimal(value)

    @property
    def wants_rport(self) -> bool:
        return has_param(self.params, "rport")

    @property
    def maddr(self) -> str | None:
        return find_param(self.params, "maddr")

    @property
    def sent_by(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> Via:
        return replace(self, params=set_param(self.params, name, value))

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"


@lru_cache(maxsize=4096)
def parse_via(text: str) -> Via:
    """One Via value. Its sent-protocol and sent-by (everything before the first ``;``) are
    read once for all the values that share them (every request from one peer, each with
    a new branch); only the parameters are read anew."""
    sent, semicolon, rest = text.partition(";")
    via = _sent_by(sent)
    if not semicolon:
        return via
    params = parse_params((semicolon + rest).rstrip(), "Via")
    received = find_param(params, "received")
    if received is not None and ":" in received and not is_valid_ipv6(received.strip("[]")):
        raise ParseError(f"Bad received address in Via {text[:60]!r}")
    return Via(transport=via.transport, host=via.host, port=via.port, params=params)


@lru_cache(maxsize=1024)
def _sent_by(text: str) -> Via:
    """A Via's sent-protocol and sent-by, without parameters."""
    match = _VIA_RE.fullmatch(text)
    if match is None:
        raise ParseError(f"Bad Via {text[:60]!r}")
    name, version, transport, host_text, port_text = match.groups()
    if name.upper() != "SIP" or version != "2.0":
        raise ParseError(f"Unsupported Via protocol {name}/{version}", status=505)
    host, _ = parse_host_port(host_text, text)
    port = int(port_text) if port_text is not None else None
    if port is not None and port > 65535:
        raise ParseError(f"Bad port in Via {text[:60]!r}")
    return Via(transport=transport.upper(), host=host, port=port)


# --- CSeq, Call-ID, numbers, tokens, media types, dates --------------------------------------

_CSEQ_RE = re.compile(rf"{LWS}([0-9]+)[ \t]+({TOKEN}){LWS}")


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


@lru_cache(maxsize=4096)
def parse_cseq(text: str) -> CSeq:
    match = _CSEQ_RE.fullmatch(text)
    if match is None:
        raise ParseError(f"Bad CSeq {text[:60]!r}")
    number = int(match.group(1))
    if number > MAX_CSEQ:
        raise ParseError("CSeq number too large")
    return CSeq(number=number, method=match.group(2))


@lru_cache(maxsize=4096)  # read many times per message (transaction and dialog keys)
def parse_call_id(text: str) -> str:
    value = text.strip()
    if WORD_RE.fullmatch(value) is None:
        raise ParseError(f"Bad Call-ID {text[:60]!r}")
    return value


def parse_bounded_int(text: str, limit: int, name: str) -> int:
    value = text.strip()
    if not value.isascii() or not value.isdigit():
        raise ParseError(f"Bad {name} {text[:30]!r}")
    number = int(value)
    if number > limit:
        raise ParseError(f"{name} too large")
    return number


def parse_max_forwards(text: str) -> int:
    return parse_bounded_int(text, 255, "Max-Forwards")


def parse_expires(text: str) -> int:
    return parse_bounded_int(text, MAX_DELTA_SECONDS, "Expires")


def parse_token(text: str) -> str:
    """One element of Allow, Supported, Require, Unsupported, Proxy-Require."""
    value = text.strip()
    if TOKEN_RE.fullmatch(value) is None:
        raise ParseError(f"Bad token {text[:60]!r}")
    return value


_MEDIA_TYPE_RE = re.compile(rf"{LWS}({TOKEN}){LWS}/{LWS}({TOKEN})")


@dataclass(frozen=True)
class MediaType:
    """A Content-Type or Accept value: ``type/subtype;params``."""

    type: str
    subtype: str
    params: Params = ()

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}".lower()

    def matches(self, mime: str) -> bool:
        """Whether this (possibly wildcard) range accepts ``mime``."""
        wanted_type, _, wanted_subtype = mime.lower().partition("/")
        return self.type in ("*", wanted_type) and self.subtype in ("*", wanted_subtype)

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{format_params(self.params)}"


@lru_cache(maxsize=1024)
def parse_media_type(text: str) -> MediaType:
    match = _MEDIA_TYPE_RE.match(text)
    if match is None:
        raise ParseError(f"Bad media type {text[:60]!r}")
    params = parse_params(text[match.end() :].rstrip(), "media type")
    return MediaType(type=match.group(1).lower(), subtype=match.group(2).lower(), params=params)


# rfc1123-date = wkday "," SP date1 SP time SP "GMT" (RFC 3261 20.17: only GMT).
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT")


def parse_date(text: str) -> str:
    value = text.strip()
    if _DATE_RE.fullmatch(value) is None:
        raise ParseError(f"Bad Date {text[:60]!r} (RFC 1123 form in GMT expected)")
    return value

