"""Answering a request that did not parse: RFC 3261 wants a 400, but a response needs the
request's Via, From, To, Call-ID and CSeq. This reads them leniently from the raw bytes, so a
malformed request still gets "400 <what was wrong>" when it can be routed, and is dropped
otherwise (as a malformed response always is)."""

from __future__ import annotations

import re

from softphone.sip.errors import ParseError
from softphone.sip.message import canonical_name

_NEEDED = ("Via", "From", "To", "Call-ID", "CSeq")
_LINE_RE = re.compile(r"\r?\n")


def bad_request_response(data: bytes, error: ParseError) -> bytes | None:
    text = data[:8192].decode("utf-8", "replace")
    lines = _LINE_RE.split(text)
    if not lines or lines[0].upper().startswith("SIP/") or " " not in lines[0]:
        return None
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        if not line:
            break
        name, colon, value = line.partition(":")
        canonical = canonical_name(name.strip())
        if colon and canonical in _NEEDED:
            found.setdefault(canonical, []).append(value.strip())
    if any(name not in found for name in _NEEDED):
        return None
    status = error.status if 400 <= error.status <= 699 else 400
    reason = "".join(c for c in error.reason if c.isprintable())[:100] or "Bad Request"
    head = [f"SIP/2.0 {status} {reason}"]
    for name in _NEEDED:
        values = found[name] if name == "Via" else found[name][:1]
        head += [f"{name}: {value}" for value in values]
    head.append("Content-Length: 0")
    return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8")
