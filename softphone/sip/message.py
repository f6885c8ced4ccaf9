"""SIP requests and responses: ordered headers, a body, canonical bytes.

Headers keep their order and repeat freely. Names compare case-insensitively and are stored in
their long canonical form (``v`` and ``VIA`` both become ``Via``). List headers arrive split at
top-level commas, one value per entry, so ``Via: a, b`` and two ``Via`` lines are the same
message. Content-Length is not a stored header: it is derived from the body when serialising,
which makes a wrong length impossible to send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from softphone.sip.errors import ParseError
from softphone.sip.headers import (
    Address,
    CSeq,
    MediaType,
    Via,
    parse_address,
    parse_call_id,
    parse_cseq,
    parse_expires,
    parse_max_forwards,
    parse_media_type,
    parse_token,
    parse_via,
)
from softphone.sip.uri import URI

T = TypeVar("T")

# Compact forms (RFC 3261 7.3.3 and the extensions that define one).
COMPACT_FORMS = {
    "i": "Call-ID", "m": "Contact", "f": "From", "t": "To", "v": "Via", "l": "Content-Length",
    "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding",
    "o": "Event", "r": "Refer-To", "u": "Allow-Events", "x": "Session-Expires", "y": "Identity",
    "a": "Accept-Contact", "b": "Referred-By", "j": "Reject-Contact", "d": "Request-Disposition",
}

_CANONICAL_NAMES = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
    "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization",
    "P-Asserted-Identity", "Path", "Priority", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To", "Referred-By",
    "Reject-Contact", "Reply-To", "Request-Disposition", "Require", "Retry-After", "Route",
    "RSeq", "Server", "Service-Route", "Session-Expires", "Subject", "Subscription-State",
    "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning",
    "WWW-Authenticate",
]
_CANONICAL = {name.lower(): name for name in _CANONICAL_NAMES}

# Headers whose grammar is a comma-separated list of values (RFC 3261 7.3.1). Others, such as
# WWW-Authenticate or Date, contain commas that do not separate values and are never split.
LIST_HEADERS = frozenset(name.lower() for name in [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info", "In-Reply-To",
    "Path", "Proxy-Require", "Record-Route", "Require", "Route", "Service-Route", "Supported",
    "Unsupported", "Via", "Warning",
])


class _Memo(dict[str, str]):
    """A name -> spelling memo filled on first use: a hit is one dict lookup in C, with no
    Python call, since every header access asks it. Bounded: hostile traffic with random
    names cannot grow it past ``_MEMO_LIMIT``."""

    def __init__(self, compute: Callable[[str], str]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, name: str) -> str:
        value = self._compute(name)
        if len(self) < _MEMO_LIMIT:
            self[name] = value
        return value


_MEMO_LIMIT = 4096


def _canonical(name: str) -> str:
    lowered = name.lower()
    canonical = COMPACT_FORMS.get(lowered) if len(name) == 1 else None
    return canonical or _CANONICAL.get(lowered, name)


SPELLINGS = _Memo(_canonical)  # any spelling -> its canonical name (canonical_name)


def canonical_name(name: str) -> str:
    """``v`` -> ``Via``, ``cseq`` -> ``CSeq``; unknown names keep their spelling."""
    return SPELLINGS[name]


def split_list_value(value: str) -> list[str]:
    """Split at commas outside quoted strings and <...>; elements are stripped."""
    if "," not in value:
        return [value]
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",")]
    parts: list[str] = []
    start = 0
    in_quotes = in_angle = escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif in_quotes:
            if char == "\\":
                escaped = True
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_angle = True
        elif char == ">":
            in_angle = False
        elif char == "," and not in_angle:
            parts.append(value[start:index].strip())
            start = index + 1
    parts.append(value[start:].strip())
    return parts


KEYS = _Memo(lambda name: SPELLINGS[name].lower())  # any spelling -> its identity


def header_key(name: str) -> str:
    """The case-insensitive identity of a header name (compact forms resolved)."""
    return KEYS[name]


class Headers:
    """Ordered, repeatable header fields with case-insensitive names.

    ``_keys`` runs parallel to ``_items`` with each name's lower-cased canonical form, so a
    lookup compares strings instead of lower-casing every stored name each time. ``_views``
    keeps the typed views ``view`` made (the stack reads a message's From, To, top Via,
    Call-ID and CSeq dozens of times); every change to the fields forgets them."""

    __slots__ = ("_items", "_keys", "_views")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(SPELLINGS[n], v) for n, v in items] \
            if items else []  # (an empty one, the usual start, needs no comprehensions)
        self._keys: list[str] = [KEYS[n] for n, _ in self._items] if self._items else []
        self._views: dict[str, object] = {}

    def get(self, name: str) -> str | None:
        try:
            return self._items[self._keys.index(KEYS[name])][1]
        except ValueError:
            return None

    def view(self, name: str, parse: Callable[[str], T]) -> T:
        """The first value of ``name`` (a canonical name) as ``parse`` reads it, read once
        until the fields change. ParseError when it is missing or does not parse."""
        try:
            return self._views[name]  # type: ignore[return-value]
        except KeyError:
            value = self.get(name)
            if value is None:
                raise ParseError(f"Missing {name} header") from None
            self._views[name] = parsed = parse(value)
            return parsed

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order. Most headers asked for are there once or not at
        all: the list's own (C) scans answer those without a Python loop over every header."""
        key = KEYS[name]
        keys = self._keys
        count = keys.count(key)
        if not count:
            return []
        first = keys.index(key)
        if count == 1:
            return [self._items[first][1]]
        return [item[1] for item, item_key in zip(self._items[first:], keys[first:], strict=True)
                if item_key == key]

    def count(self, name: str) -> int:
        return self._keys.count(KEYS[name])

    def add(self, name: str, value: str) -> None:
        """Append a value (which never changes a first one: the views stand)."""
        self._items.append((SPELLINGS[name], value))
        self._keys.append(KEYS[name])

    @classmethod
    def of_canonical(cls, items: list[tuple[str, str]], keys: list[str]) -> Headers:
        """Fields whose names are canonical already, with their keys: the parser and the
        response builder have both at hand, and taking them saves a pass over every field."""
        headers = cls()
        headers._items = items
        headers._keys = keys
        return headers

    def extend(self, other: Headers) -> None:
        """Append every field of ``other``, in its order (the views stand, as with add)."""
        self._items.extend(other._items)
        self._keys.extend(other._keys)

    def prepend(self, name: str, value: str) -> None:
        """Put a value first: Via and Route order is meaningful."""
        self._views.clear()
        self._items.insert(0, (SPELLINGS[name], value))
        self._keys.insert(0, KEYS[name])

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with one, where the first one stood."""
        key = KEYS[name]
        if key not in self._keys:
            self.add(name, value)
            return
        index = self._keys.index(key)
        spelling = self._items[index][0]
        self.remove(name)
        self._items.insert(index, (spelling, value))
        self._keys.insert(index, key)

    def replace_first(self, name: str, value: str) -> None:
        """Change the first value of ``name`` in place (the top Via, say), keeping the rest."""
        self._views.clear()
        index = self._keys.index(KEYS[name])  # ValueError when absent
        self._items[index] = (self._items[index][0], value)

    def remove(self, name: str) -> None:
        self._views.clear()
        key = KEYS[name]
        kept = [(item, k) for item, k in zip(self._items, self._keys, strict=True) if k != key]
        self._items = [item for item, _ in kept]
        self._keys = [k for _, k in kept]

    def copy(self) -> Headers:
        clone = Headers()
        clone._items = list(self._items)
        clone._keys = list(self._keys)
        return clone

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and KEYS[name] in self._keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._keys == other._keys and [v for _, v in self._items] == [
            v for _, v in other._items]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Message:
    """What requests and responses share: headers, body, and typed header views."""

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return self.headers.view("Via", parse_via)

    @property
    def from_address(self) -> Address:
        return self.headers.view("From", parse_address)

    @property
    def to_address(self) -> Address:
        return self.headers.view("To", parse_address)

    @property
    def call_id(self) -> str:
        return self.headers.view("Call-ID", parse_call_id)

    @property
    def cseq(self) -> CSeq:
        return self.headers.view("CSeq", parse_cseq)

    @property
    def contacts(self) -> list[Address]:
        """Contact addresses; empty for none and for the REGISTER wildcard ``*``."""
        return [parse_address(v) for v in self.headers.get_all("Contact") if v.strip() != "*"]

    @property
    def contact_is_wildcard(self) -> bool:
        return any(v.strip() == "*" for v in self.headers.get_all("Contact"))

    @property
    def routes(self) -> list[Address]:
        return [parse_address(v) for v in self.headers.get_all("Route")]

    @property
    def record_routes(self) -> list[Address]:
        return [parse_address(v) for v in self.headers.get_all("Record-Route")]

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        return parse_max_forwards(value) if value is not None else None

    @property
    def expires(self) -> int | None:
        value = self.headers.get("Expires")
        return parse_expires(value) if value is not None else None

    @property
    def content_type(self) -> MediaType | None:
        value = self.headers.get("Content-Type")
        return parse_media_type(value) if value is not None else None

    def tokens(self, name: str) -> list[str]:
        """The values of a token-list header (Allow, Supported, Require ...)."""
        return [parse_token(v) for v in self.headers.get_all(name)]

    def _header_lines(self) -> list[str]:
        lines = [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return lines

    def _serialise(self, start_line: str) -> bytes:
        head = "\r\n".join([start_line, *self._header_lines()]) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body


class Request(Message):
    def __init__(self, method: str, uri: URI, headers: Headers | None = None,
                 body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def __bytes__(self) -> bytes:
        return self._serialise(f"{self.method} {self.uri} SIP/2.0")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (self.method, self.uri, self.headers, self.body) == (
            other.method, other.uri, other.headers, other.body)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} body={len(self.body)}B>"


class Response(Message):
    def __init__(self, status: int, reason: str, headers: Headers | None = None,
                 body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason

    def __bytes__(self) -> bytes:
        return self._serialise(f"SIP/2.0 {self.status} {self.reason}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (self.status, self.reason, self.headers, self.body) == (
            other.status, other.reason, other.headers, other.body)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} headers={len(self.headers)}>"
