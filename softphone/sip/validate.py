"""What a user agent checks in a request that parsed, before any transaction logic runs.

``parse`` only answers "is this SIP?". A well-formed request can still be one a UA must refuse:
no Call-ID, a method it does not implement, a scheme it cannot serve, an extension it does not
know. The checks run in RFC 3261 section 8.2 order (method, then headers, then content), so
the status matches what other UAs answer for the same message (RFC 4475 section 3.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from softphone.sip.errors import ParseError
from softphone.sip.headers import BRANCH_MAGIC_COOKIE, parse_media_type
from softphone.sip.message import Request, Response

KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE",
    "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH",
})
MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
SINGLE_VALUE_HEADERS = ("From", "To", "Call-ID", "CSeq", "Max-Forwards")
SDP = "application/sdp"
TEXT_PLAIN = "text/plain"  # MESSAGE bodies (RFC 3428 requires it understood)
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})


@dataclass(frozen=True)
class EndpointPolicy:
    """What this UA implements; the checks answer everything else."""

    methods: frozenset[str] = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO",
                                         "MESSAGE", "UPDATE", "PRACK", "REFER", "NOTIFY"})
    schemes: frozenset[str] = frozenset({"sip", "sips"})
    # RFC 4028 session timers, RFC 3262 reliable provisional responses, RFC 3891 Replaces,
    # RFC 4488 REFER without its subscription
    extensions: frozenset[str] = frozenset({"timer", "100rel", "replaces", "norefersub"})
    content_types: frozenset[str] = frozenset({SDP, "application/dtmf-relay", TEXT_PLAIN,
                                               "message/sipfrag",  # REFER progress
                                               "application/simple-message-summary"})

    @property
    def allow(self) -> str:
        return ", ".join(sorted(self.methods))


@dataclass(frozen=True)
class Rejection:
    """The response a UA sends instead of processing the request."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = field(default=())


def check_request(request: Request, policy: EndpointPolicy) -> Rejection | None:
    """None when the request may go on to the transaction and dialog layers."""
    for check in (_check_structure, _check_method, _check_cseq_method, _check_branch,
                  _check_scheme, _check_contact, _check_require, _check_accept,
                  _check_content_type):
        rejection = check(request, policy)
        if rejection is not None:
            return rejection
    return None


def check_response(response: Response) -> str | None:
    """Why a UAC must discard this response, or None when it may be processed."""
    for name in MANDATORY_HEADERS:
        if name not in response.headers:
            return f"missing {name}"
    if response.headers.count("Via") != 1:
        # RFC 3261 8.1.3.3: a response with several Vias was misrouted to us.
        return "more than one Via"
    return None


def _check_structure(request: Request, policy: EndpointPolicy) -> Rejection | None:
    for name in MANDATORY_HEADERS:
        if name not in request.headers:
            return Rejection(400, f"Missing {name}")
    for name in SINGLE_VALUE_HEADERS:
        if request.headers.count(name) > 1:
            return Rejection(400, f"Multiple {name} values")
    return None


def _check_method(request: Request, policy: EndpointPolicy) -> Rejection | None:
    if request.method in policy.methods:
        return None
    allow = (("Allow", policy.allow),)
    if request.method in KNOWN_METHODS:
        return Rejection(405, "Method Not Allowed", allow)
    return Rejection(501, "Not Implemented", allow)


def _check_cseq_method(request: Request, policy: EndpointPolicy) -> Rejection | None:
    if request.cseq.method != request.method:
        return Rejection(400, "CSeq method does not match the request method")
    return None


def _check_branch(request: Request, policy: EndpointPolicy) -> Rejection | None:
    if request.top_via.branch == BRANCH_MAGIC_COOKIE:
        return Rejection(400, "Via branch is only the magic cookie")
    return None


def _check_contact(request: Request, policy: EndpointPolicy) -> Rejection | None:
    """A dialog-creating request carries exactly one Contact, a SIP or SIPS URI (RFC 3261
    8.1.1.8): the dialog's remote target, where every later request of the call goes. An
    RFC 2543 client (no magic cookie in its branch) may leave it out: its From is the
    target then, as RFC 4475 3.4.1 expects of a backward-compatible UA."""
    if request.method not in DIALOG_CREATING or request.to_address.tag is not None:
        return None
    if not (request.top_via.branch or "").startswith(BRANCH_MAGIC_COOKIE) \
            and "Contact" not in request.headers:
        return None
    if "Contact" not in request.headers:
        return Rejection(400, "Missing Contact")
    try:
        contacts = request.contacts
    except ParseError as exc:
        return Rejection(400, f"Bad Contact: {exc.reason}"[:100])
    if len(contacts) != 1 or contacts[0].uri.scheme.lower() not in ("sip", "sips"):
        return Rejection(400, "Contact must be one SIP URI")
    return None


def _check_scheme(request: Request, policy: EndpointPolicy) -> Rejection | None:
    if request.uri.scheme.lower() not in policy.schemes:
        return Rejection(416, "Unsupported URI Scheme")
    return None


def _check_require(request: Request, policy: EndpointPolicy) -> Rejection | None:
    if request.method in ("ACK", "CANCEL"):
        return None  # RFC 3261 8.2.2.3: never rejected for Require
    try:
        required = request.tokens("Require")
    except ParseError as exc:
        return Rejection(400, exc.reason)
    unknown = [tag for tag in required if tag.lower() not in policy.extensions]
    if unknown:
        return Rejection(420, "Bad Extension", (("Unsupported", ", ".join(unknown)),))
    return None


def _check_accept(request: Request, policy: EndpointPolicy) -> Rejection | None:
    if request.method != "INVITE" or "Accept" not in request.headers:
        return None
    try:
        ranges = [parse_media_type(v) for v in request.headers.get_all("Accept") if v.strip()]
    except ParseError as exc:
        return Rejection(400, exc.reason)
    if ranges and not any(r.matches(SDP) for r in ranges):
        return Rejection(406, "Not Acceptable", (("Accept", SDP),))
    return None


def _check_content_type(request: Request, policy: EndpointPolicy) -> Rejection | None:
    if not request.body:
        return None
    content_type = request.content_type
    if content_type is None or content_type.mime not in policy.content_types:
        accept = ", ".join(sorted(policy.content_types))
        return Rejection(415, "Unsupported Media Type", (("Accept", accept),))
    return None
