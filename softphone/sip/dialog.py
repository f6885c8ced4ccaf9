"""SIP dialogs (RFC 3261 section 12), sans-IO: the state two user agents share during a call.

A dialog is created from the request and response that establish it, on either side, and
builds every later request of the call: Request-URI and Route from the route set (loose and
strict routing, 12.2.1.1), CSeq numbering, and target refresh from Contact.
"""

from __future__ import annotations

from dataclasses import dataclass

from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.headers import Address
from softphone.sip.message import Headers, Request, Response
from softphone.sip.uri import SipUri

DialogKey = tuple[str, str, str]


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_address: Address   # From of our requests, without its tag
    remote_address: Address  # To of our requests, without its tag
    remote_target: SipUri
    route_set: list[Address]
    local_contact: Address
    local_seq: int
    remote_seq: int | None = None
    state: str = "confirmed"  # or "early", "terminated"

    @property
    def key(self) -> DialogKey:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_uac(cls, invite: Request, response: Response) -> Dialog:
        """Our INVITE and the 1xx/2xx with a To tag that made a dialog (12.1.2)."""
        to = response.to_address
        if to.tag is None:
            raise ParseError("Dialog-creating response without a To tag")
        local = invite.from_address
        return cls(
            call_id=invite.call_id, local_tag=local.tag or "", remote_tag=to.tag,
            local_address=_untagged(local), remote_address=_untagged(to),
            remote_target=_contact_uri(response, fallback=invite.uri),
            route_set=list(reversed(response.record_routes)),
            local_contact=invite.contacts[0], local_seq=invite.cseq.number,
            state="confirmed" if 200 <= response.status < 300 else "early")

    @classmethod
    def from_uas(cls, request: Request, local_tag: str, local_contact: Address) -> Dialog:
        """An INVITE we answer with a To tag (12.1.1)."""
        remote = request.from_address
        return cls(
            call_id=request.call_id, local_tag=local_tag, remote_tag=remote.tag or "",
            local_address=_untagged(request.to_address), remote_address=_untagged(remote),
            remote_target=_contact_uri(request, fallback=remote.uri),  # RFC 2543: From
            route_set=list(request.record_routes), local_contact=local_contact,
            local_seq=0, remote_seq=request.cseq.number, state="early")

    @property
    def next_hop(self) -> SipUri:
        """Where requests of this dialog are sent: the first route, or the remote target."""
        return self.route_set[0].sip_uri if self.route_set else self.remote_target

    def create_request(self, method: str, body: bytes = b"", content_type: str | None = None,
                       cseq: int | None = None) -> Request:
        """A request inside the dialog, without Via (the transport adds it)."""
        if self.state == "terminated":
            raise LocalProtocolError("The dialog has ended")
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        uri, routes = self._request_uri_and_routes()
        headers = Headers([
            ("Max-Forwards", "70"),
            ("From", str(self.local_address.with_param("tag", self.local_tag))),
            ("To", str(self.remote_address.with_param("tag", self.remote_tag))),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ])
        for route in routes:
            headers.add("Route", route)
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER", "NOTIFY"):
            headers.add("Contact", str(self.local_contact))
        if content_type is not None:
            headers.add("Content-Type", content_type)
        return Request(method, uri, headers, body)

    def create_ack(self, invite_cseq: int, body: bytes = b"",
                   content_type: str | None = None) -> Request:
        """The ACK for a 2xx: same CSeq number as the INVITE (13.2.2.4)."""
        return self.create_request("ACK", body, content_type, cseq=invite_cseq)

    def _request_uri_and_routes(self) -> tuple[SipUri, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].sip_uri
        if first.has_param("lr"):
            return self.remote_target, [str(r) for r in self.route_set]
        # Strict routing (12.2.1.1): the first route becomes the Request-URI.
        routes = [str(r) for r in self.route_set[1:]] + [f"<{self.remote_target}>"]
        return first.without_param("lr"), routes

    def accept_remote_request(self, request: Request) -> int | None:
        """Check and note a request of the peer's; a status to reject it with, or None."""
        number = request.cseq.number
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and number < self.remote_seq:
                return 500  # out of order (12.2.2)
            self.remote_seq = number
        if request.method == "INVITE" and request.contacts:
            self.remote_target = request.contacts[0].sip_uri  # target refresh
        return None

    def refresh_from_response(self, response: Response) -> None:
        """A 2xx to our re-INVITE may move the remote target."""
        if response.contacts:
            self.remote_target = response.contacts[0].sip_uri


def _untagged(address: Address) -> Address:
    return Address(uri=address.uri, display_name=address.display_name,
                   params=tuple(p for p in address.params if p[0].lower() != "tag"))


def _contact_uri(message: Request | Response, fallback: object) -> SipUri:
    contacts = message.contacts
    if contacts:
        return contacts[0].sip_uri
    if isinstance(fallback, SipUri):
        return fallback
    raise ParseError("Dialog-creating message without Contact")
