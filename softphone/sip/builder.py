"""Building requests and responses the way RFC 3261 sections 8.1.1, 8.2.6, 9.1 and 17.1.1.3
say they are built from the messages they answer or follow."""

from __future__ import annotations

import secrets

from softphone.sip.headers import BRANCH_MAGIC_COOKIE
from softphone.sip.message import KEYS, Headers, Request, Response

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


DIALOG_CREATING_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER"})


def reason_phrase(status: int) -> str:
    return REASON_PHRASES.get(status, {1: "Progress", 2: "OK", 3: "Redirect", 4: "Client Error",
                                       5: "Server Error", 6: "Global Failure"}[status // 100])


def new_branch() -> str:
    return BRANCH_MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def make_response(request: Request, status: int, reason: str | None = None,
                  to_tag: str | None = None, extra: Headers | None = None,
                  body: bytes = b"") -> Response:
    """A response to ``request`` (RFC 3261 8.2.6): Via, From, Call-ID, CSeq copied, To copied
    with ``to_tag`` added when it has none. 100 Trying never gets a tag (it creates no dialog);
    a response that can create a dialog carries the request's Record-Route (12.1.1). The
    fields are copied as they came, the tag appended to the To as text: an agent answering
    hundreds of calls a second builds four of these per call."""
    fields = request.headers
    to = fields.get("To") or ""  # copied as it came: a 400 for an unreadable To still goes out
    if to_tag is not None and status > 100 and request.to_address.tag is None:
        to = f"{to};tag={to_tag}"
    items = [("Via", via) for via in fields.get_all("Via")]
    items += [("From", fields.get("From") or ""), ("To", to),
              ("Call-ID", fields.get("Call-ID") or ""), ("CSeq", fields.get("CSeq") or "")]
    if 100 < status < 300 and request.method in DIALOG_CREATING_METHODS:
        items += [("Record-Route", route) for route in fields.get_all("Record-Route")]
    if status == 100 and "Timestamp" in fields:
        items.append(("Timestamp", fields.get("Timestamp") or ""))
    headers = Headers.of_canonical(items, [KEYS[name] for name, _ in items])
    if extra is not None:
        headers.extend(extra)
    return Response(status, reason or reason_phrase(status), headers, body)


def make_ack_for_failure(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300-699 (RFC 3261 17.1.1.3): same
    Request-URI, top Via, From, Call-ID, CSeq number and Route; To from the response."""
    return _hop_by_hop_request(invite, "ACK", response.headers.get("To") or "")


def make_cancel(invite: Request) -> Request:
    """A CANCEL for ``invite`` (RFC 3261 9.1): it shares the INVITE's top Via (so the same
    branch), Request-URI, From, To, Call-ID, CSeq number and Route set."""
    return _hop_by_hop_request(invite, "CANCEL", invite.headers.get("To") or "")


def _hop_by_hop_request(invite: Request, method: str, to: str) -> Request:
    """A request that must reach exactly where ``invite`` went, in its transaction."""
    headers = Headers()
    headers.add("Via", invite.headers.get("Via") or "")
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", to)
    headers.add("Call-ID", invite.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} {method}")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    return Request(method, invite.uri, headers)
