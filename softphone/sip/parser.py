"""Bytes to SIP messages: one datagram at a time (``parse``) or a byte stream (``StreamFramer``).

The only exception that leaves this module is ParseError, whatever the input. Beyond framing
and the start line, the headers every transaction depends on (Via, From, To, Call-ID, CSeq,
Max-Forwards, Contact, Route, Record-Route, Content-Type, Expires, Date) are validated here,
so a message that parses can be answered: the stack never meets a bad Via halfway through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from softphone.sip.errors import ParseError
from softphone.sip.grammar import TOKEN_RE
from softphone.sip.headers import (
    parse_address,
    parse_call_id,
    parse_cseq,
    parse_date,
    parse_expires,
    parse_max_forwards,
    parse_media_type,
    parse_via,
)
from softphone.sip.message import (
    KEYS,
    LIST_HEADERS,
    SPELLINGS,
    Headers,
    Request,
    Response,
    canonical_name,
    split_list_value,
)
from softphone.sip.uri import SipUri, parse_uri

# Limits that bound what hostile input can make us hold.
MAX_MESSAGE_SIZE = 65535
MAX_HEADER_FIELDS = 256

_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_LINE_SPLIT_RE = re.compile(r"\r?\n")
_VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)
_STATUS_RE = re.compile(r"[1-6][0-9][0-9]")
_WSP = " \t"


def _contact_value(value: str) -> object:
    return None if value.strip() == "*" else parse_address(value)


# Canonical header name -> validator run on each of its values at parse time.
_VALIDATORS: dict[str, Callable[[str], object]] = {
    "Via": parse_via, "From": parse_address, "To": parse_address, "Call-ID": parse_call_id,
    "CSeq": parse_cseq, "Max-Forwards": parse_max_forwards, "Contact": _contact_value,
    "Route": parse_address, "Record-Route": parse_address, "Content-Type": parse_media_type,
    "Expires": parse_expires, "Date": parse_date,
}
_LIST_HEADER_NAMES = frozenset(canonical_name(name) for name in LIST_HEADERS)


@dataclass
class _Head:
    """A parsed start line and header section, waiting for its body."""

    start_line: str
    headers: Headers
    content_length: int | None


def parse(data: bytes) -> Request | Response:
    """Parse one datagram. Octets after the Content-Length body are ignored (RFC 3261 18.3);
    without Content-Length the body is the rest of the datagram."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise ParseError("Message Too Large", status=513)
    data = data.lstrip(b"\r\n")
    bounds = _find_header_end(data)
    if bounds is None:
        raise ParseError("Header section not terminated")
    head_end, body_start = bounds
    head = _parse_head(data[:head_end])
    rest = data[body_start:]
    if head.content_length is None:
        body = rest
    elif head.content_length > len(rest):
        raise ParseError("Content-Length larger than the body")
    else:
        body = rest[: head.content_length]
    return _build(head, body)


def _find_header_end(data: bytes | bytearray) -> tuple[int, int] | None:
    """Where the header section ends and the body starts (CRLF, tolerating bare LF), or None
    when the empty line that ends it has not arrived."""
    index = data.find(b"\r\n\r\n")
    if index >= 0 and data.find(b"\n\n", 0, index) < 0 and data.find(b"\n\r\n", 0, index) < 0:
        return index, index + 4
    match = _HEADER_END_RE.search(data)
    return (match.start(), match.end()) if match is not None else None


def _parse_head(raw: bytes) -> _Head:
    """The start line and the header fields, in one pass over the lines: this runs for every
    message an agent receives, hundreds a second under load."""
    # Non-UTF-8 octets survive as surrogates, so a latin-1 display name is not a 400.
    text = raw.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n") if text.count("\n") == text.count("\r\n") else \
        _LINE_SPLIT_RE.split(text)
    if len(lines) > MAX_HEADER_FIELDS * 4:
        raise ParseError("Too many header lines")
    if "\n " in text or "\n\t" in text:
        lines = _unfold(lines)
    items: list[tuple[str, str]] = []
    keys: list[str] = []
    lengths: list[str] = []
    for line in islice(lines, 1, None):
        name, colon, value = line.partition(":")
        name = name.rstrip(_WSP)
        if not colon or (name not in _GOOD_NAMES and not _learn_header_name(name)):
            raise ParseError(f"Bad header line {line[:40]!r}")
        canonical = SPELLINGS[name]
        value = value.strip(_WSP)
        if canonical == "Content-Length":
            lengths.append(value)
        elif "," in value and canonical in _LIST_HEADER_NAMES:  # a list: one field a value
            for item in split_list_value(value):
                items.append((canonical, item))
                keys.append(KEYS[canonical])
        else:
            items.append((canonical, value))
            keys.append(KEYS[canonical])
    if len(items) > MAX_HEADER_FIELDS:
        raise ParseError("Too many header fields")
    return _Head(start_line=lines[0], headers=Headers.of_canonical(items, keys),
                 content_length=_content_length(lengths))


def _unfold(lines: list[str]) -> list[str]:
    """Lines with each continuation line joined to the header line before it (a fold
    counts as one space)."""
    joined = lines[:1]
    for line in islice(lines, 1, None):
        if line[:1] not in (" ", "\t"):
            joined.append(line)
        elif len(joined) < 2:
            raise ParseError("Continuation line before the first header")
        else:
            joined[-1] = f"{joined[-1].rstrip(_WSP)} {line.strip(_WSP)}"
    return joined


_GOOD_NAMES: set[str] = set()  # header names seen to be tokens; bounded below


def _learn_header_name(name: str) -> bool:
    """Whether a name not in ``_GOOD_NAMES`` is a token (remembered when it is)."""
    if TOKEN_RE.fullmatch(name) is None:
        return False
    if len(_GOOD_NAMES) < 4096:
        _GOOD_NAMES.add(name)
    return True


def _content_length(values: list[str]) -> int | None:
    if not values:
        return None
    if len(set(values)) > 1:
        raise ParseError("Conflicting Content-Length values")
    value = values[0]
    if not value.isascii() or not value.isdigit():
        raise ParseError(f"Bad Content-Length {value[:20]!r}")
    length = int(value)
    if length > MAX_MESSAGE_SIZE:
        raise ParseError("Content-Length too large", status=513)
    return length


def _build(head: _Head, body: bytes) -> Request | Response:
    message = _parse_start_line(head.start_line, head.headers, body)
    for name, value in head.headers:
        validator = _VALIDATORS.get(name)
        if validator is not None:
            validator(value)
    return message


def _parse_start_line(line: str, headers: Headers, body: bytes) -> Request | Response:
    if line.startswith("SIP/") or line[:4].upper() == "SIP/":
        return _parse_status_line(line, headers, body)
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise ParseError("Bad Request-Line")
    method, uri_text, version = parts
    _check_version(version)
    if not TOKEN_RE.fullmatch(method):
        raise ParseError("Bad method")
    if uri_text.startswith("<"):
        raise ParseError("Request-URI must not be enclosed in <>")
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and uri.headers:
        raise ParseError("Request-URI must not contain headers")
    return Request(method, uri, headers, body)


def _parse_status_line(line: str, headers: Headers, body: bytes) -> Response:
    version, _, rest = line.partition(" ")
    _check_version(version)
    code, _, reason = rest.partition(" ")
    if not _STATUS_RE.fullmatch(code):
        raise ParseError("Bad status code")
    return Response(int(code), reason, headers, body)


def _check_version(version: str) -> None:
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        raise ParseError("Bad SIP version")
    if (match.group(1), match.group(2)) != ("2", "0"):
        raise ParseError("Version Not Supported", status=505)


class StreamFramer:
    """Frames SIP messages out of a TCP byte stream by Content-Length.

    Feed bytes as they arrive; complete messages come out in order. CRLF keep-alives between
    messages are skipped; a partial message waits for more bytes. After a ParseError the
    stream cannot be re-synchronised, so every later call raises too: close the connection.
    A message without Content-Length is taken to have no body.
    """

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._broken: ParseError | None = None
        self._max = max_message_size
        self.keepalives: list[int] = []  # lengths of the CRLF runs skipped (RFC 5626 3.5.1)

    def feed(self, data: bytes) -> list[Request | Response]:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        try:
            return self._drain()
        except ParseError as exc:
            self._broken = exc
            raise

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a message."""
        return len(self._buffer)

    def _drain(self) -> list[Request | Response]:
        messages: list[Request | Response] = []
        while True:
            message = self._next_message()
            if message is None:
                return messages
            messages.append(message)

    def _next_message(self) -> Request | Response | None:
        if self._head is None:
            stripped = self._buffer.lstrip(b"\r\n")
            skipped = len(self._buffer) - len(stripped)
            if skipped:
                self.keepalives.append(skipped)
            del self._buffer[:skipped]
            bounds = _find_header_end(self._buffer)
            if bounds is None:
                if len(self._buffer) > self._max:
                    raise ParseError("Header section too large", status=513)
                return None
            head_end, body_start = bounds
            self._head = _parse_head(bytes(self._buffer[:head_end]))
            del self._buffer[:body_start]
        length = self._head.content_length or 0
        if len(self._buffer) < length:
            return None
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        head, self._head = self._head, None
        return _build(head, body)
