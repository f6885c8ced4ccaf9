"""One call inside the core: its INVITE, its dialog (and the early ones of a forking proxy),
its offer/answer session, its timers. Sans-IO: every method takes ``now`` and acts through
the core (messages to send, events to emit, timers to arm), never through a socket.

The sections follow the verbs, as baresip/re's sipsess does file by file: placing a call
(connect), answering one (accept), the ACK, changing the session (modify: re-INVITE and
glare), ending it (close), and what arrives inside the dialog.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from softphone.core.events import CallGone, Completed, MediaCheck, MediaReady, TransferNeeded
from softphone.core.reliable import (
    MAX_RSEQ_START,
    REL100,
    PrackTracker,
    RAck,
    ReliableSender,
    reliable_for,
    rseq_of,
)
from softphone.core.requests import Exchange, RequestRefused, redirect_target
from softphone.core.session import MediaSession
from softphone.core.session_timer import (
    SessionTimer,
    allows_update,
    as_uac,
    as_uas,
    min_se,
    offer_headers,
    supports_timer,
)
from softphone.core.state import CallInput, CallState, OfferState, next_call_state
from softphone.core.transfer import (
    REFER_EVENT,
    SIPFRAG,
    SUBSCRIPTION_SECONDS,
    ReferRequest,
    Replaces,
    is_terminated,
    read_sipfrag,
    refer_to,
    referred_by,
    sipfrag,
)
from softphone.events import (
    Answered,
    Calling,
    Dtmf,
    EarlyMedia,
    Ended,
    Hold,
    Incoming,
    MediaTimeout,
    Progress,
    Redirected,
    Ringing,
    TransferProgress,
    TransferRequested,
)
from softphone.rtp.dtmf import DIGITS
from softphone.sdp.model import SdpError
from softphone.sip import Headers, ParseError, Request, Response, SipUri
from softphone.sip.builder import make_cancel, make_response, reason_phrase
from softphone.sip.dialog import Dialog
from softphone.sip.errors import LocalProtocolError
from softphone.sip.headers import Address
from softphone.sip.transaction import LocalResponse, Peer, TransactionKey
from softphone.sip.uri import URI

if TYPE_CHECKING:
    from softphone.core.agent import UserAgentCore

log = logging.getLogger("softphone.call")
MAX_REDIRECTS = 5
SDP = "application/sdp"
DTMF_RELAY = "application/dtmf-relay"
# RFC 3261 14.1: after a 491, the owner of the Call-ID waits 2.1-4 s, the other side 0-2 s.
GLARE_OWNER, GLARE_OTHER = (2.1, 4.0), (0.0, 2.0)
CALL_TIMERS = ("ring_timeout", "answer_after", "duration", "unanswered", "glare", "media",
               "session_refresh", "session_expired", "reliable_1xx", "transfer_bye",
               "transfer_wait")
TRANSFER_BYE_AFTER = 2.0  # a transferee that does not end our call after success: we do
TRANSFER_WAIT = 64.0      # the transfer's last NOTIFY not come by then: given up (408)
MAX_422_RETRIES = 2  # a peer that keeps raising its Min-SE is not followed for ever


class CoreCall:
    def __init__(self, core: UserAgentCore, handle: str, direction: str, call_id: str,
                 local_tag: str, remote_uri: URI) -> None:
        self.core = core
        self.handle = handle
        self.direction = direction
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_uri = remote_uri  # who the call is with: any URI a caller's From has
        self.state = CallState.CALLING if direction == "outgoing" else CallState.INCOMING
        self.session: MediaSession | None = None
        self.dialog: Dialog | None = None
        self.early: dict[str, Dialog] = {}      # early dialogs of our INVITE, by To tag
        self.peer_host: str | None = None       # where our requests go, for SDP and Contact
        self.media_address: tuple[str, int] | None = None  # our RTP as seen from outside
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.owns_call_id = direction == "outgoing"
        # outgoing
        self.invite: Exchange | None = None
        self._visited: set[SipUri] = {remote_uri} if isinstance(remote_uri, SipUri) else set()
        self._redirects = 0
        self._cancel_requested = False
        self._cancel_sent = False
        self._forks_done: set[str] = set()
        self._ack: tuple[Request, Peer] | None = None
        self._duration: float | None = None
        self._with_offer = True
        self.keep_forks = False
        # incoming
        self.request: Request | None = None     # the INVITE that created the call
        self.server_key: TransactionKey | None = None
        self.source: Peer | None = None
        self._answer_port: int | None = None
        self._awaiting_ack_answer = False       # our 2xx offered: their ACK must answer
        # inside the dialog
        self._modify: _Modify | None = None     # our re-INVITE, or one waiting out glare
        # session timer (RFC 4028): the interval asked of us (a 422's Min-SE), what the
        # answer set, and whether the peer takes UPDATE for refreshes
        self._interval: int | None = None
        self._retries_422 = 0
        self.session_timer: SessionTimer | None = None
        self._peer_updates = False
        # reliable provisionals (RFC 3262) and early media (RFC 3960): the RSeqs we PRACKed
        # (UAC), our reliable 1xx awaiting PRACK (UAS), and the 1xx SDP that started media
        # before the answer (its early dialog's To tag when outgoing)
        self._pracked = PrackTracker()
        self._reliable: ReliableSender | None = None
        self._early_sdp: bytes | None = None
        self._early_tag: str | None = None
        self._early_reliable = False
        self._early_delivered = False  # (incoming) our 1xx with SDP has gone out
        self._accept_after_prack = False
        # transfer (RFC 3515/3891): our REFER's API request (transferor); the call placed
        # for a REFER we took and whether its NOTIFYs are wanted (transferee, on the old
        # call); the call whose REFER we are (transferee, on the new call); the headers
        # our INVITE adds (Referred-By, Replaces); the call an INVITE with Replaces takes over
        self._refer_request: int | None = None
        self.transfer_call: CoreCall | None = None
        self._notify_transfer = True
        self.transfer_for: CoreCall | None = None
        self.invite_headers: list[tuple[str, str]] = []
        self.replacing: CoreCall | None = None

    # --- shared ------------------------------------------------------------------------------

    @property
    def is_over(self) -> bool:
        return self.state is CallState.ENDED

    def _move(self, event: CallInput) -> None:
        self.state = next_call_state(self.state, event)

    def _emit_media(self) -> None:
        if self.session is not None and self.session.media is not None:
            self.core.emit(MediaReady(self.handle, self.session.media,
                                      self.session.peer_codecs))

    def _session(self, port: int, transport: str = "udp") -> MediaSession:
        """The call's offer/answer session; its SRTP mode follows the signalling's
        transport (keys only over TLS, unless allowed)."""
        if self.session is None:
            address, port = self.media_address or (self.core.advertised_host(self.peer_host),
                                                   port)
            self.session = MediaSession(self.core.codecs, address, port,
                                        secrets.randbelow(2**31),
                                        srtp=self.core.srtp_mode(transport) or "off")
        return self.session

    def _arm(self, name: str, when: float) -> None:
        self.core.timers.arm(self, name, when)

    def _disarm(self, *names: str) -> None:
        self.core.timers.cancel_all(self, names)

    def end(self, status: int, reason: str, by: str, now: float) -> None:
        """The call is over: one Ended event, timers gone, the media released."""
        if self.is_over:
            return
        self._move(CallInput.FAIL if self.state not in (CallState.ANSWERED, CallState.ENDING)
                   else CallInput.BYE)
        self.ended_at = now
        self._disarm(*CALL_TIMERS)
        if self.dialog is not None:
            self.dialog.state = "terminated"
        if self.server_key is not None:
            self.core.layer.stop_retransmitting(self.server_key)
        talked = now - self.answered_at if self.answered_at is not None else 0.0
        log.info("call %s ended: %d %s (by %s, %.1f s)", self.call_id, status, reason, by,
                 talked)
        if self._modify is not None:
            self.core.emit(Completed(self._modify.request, 481, "The call ended"))
        self._modify = None
        if self._refer_request is not None:  # the transferee hung up before its last word
            reason = "The call ended before the transfer's last NOTIFY"
            self.core.emit(TransferProgress(self.call_id, 481, reason, True))
            self.core.emit(Completed(self._refer_request, 481, reason))
            self._refer_request = None
        if self.answered_at is None:
            self._report_transfer(status, reason, True, now)
        self.core.emit(CallGone(self.handle, Ended(self.call_id, status, reason, by,
                                                   round(talked, 3))))
        self.core.forget(self)

    # --- placing a call (connect) --------------------------------------------------------------

    def start(self, now: float, rtp_port: int, ring_timeout: float | None,
              duration: float | None, with_offer: bool = True) -> None:
        """Send the INVITE (its offer is made once the target, and so the transport, is
        known: SRTP keys go only over TLS, unless the user allowed otherwise)."""
        self._duration = duration
        self._with_offer = with_offer
        self._answer_port = rtp_port
        log.info("calling %s (call %s)", self.remote_uri, self.call_id)
        self.core.emit(Calling(self.call_id, str(self.remote_uri)))
        if ring_timeout is not None:
            self._arm("ring_timeout", now + ring_timeout)
        assert isinstance(self.remote_uri, SipUri)  # connect() was given a SIP URI
        self._send_invite(self.remote_uri, now, cseq=1)

    def _send_invite(self, target: SipUri, now: float, cseq: int) -> None:
        core = self.core
        request = core.new_request("INVITE", target, to=Address(uri=self.remote_uri),
                                   call_id=self.call_id, from_tag=self.local_tag, cseq=cseq)
        request.headers.add("Contact", core.contact_text())
        request.headers.add("Allow", core.policy.allow)
        for name, value in self.invite_headers:
            request.headers.add(name, value)
        mode = core.config.rel100
        request.headers.add("Supported", "timer" if mode == "off" else f"{REL100}, timer")
        if mode == "required":
            request.headers.add("Require", REL100)
        settings = core.config.session_timer
        if settings.interval or self._interval:
            for name, value in offer_headers(settings, self._interval):
                request.headers.add(name, value)
        self._cancel_sent = False
        self.invite = core.exchange(request, core.route_for(target), self._on_invite_final,
                                    self._on_provisional, now, prepare_body=self._invite_body)

    def _invite_body(self, exchange: Exchange, peer: Peer) -> None:
        """The offer, built once the target is known (its address decides our c= line)."""
        self.peer_host = peer.host
        if not self._with_offer or exchange.request.body:
            return
        assert self._answer_port is not None
        if self.core.srtp_mode(peer.transport) is None:
            raise RequestRefused(488, f"SRTP is mandatory, and its keys would travel in clear "
                                      f"over {peer.transport.upper()}: call over TLS (sips:)")
        session = self._session(self._answer_port, peer.transport)
        if self.media_address is None:
            session.address = self.core.advertised_host(peer.host)
        if session.state is not OfferState.NONE:
            session.rejected()  # a redirect or failover: the offer goes out afresh
            session.state = OfferState.NONE
        exchange.request.headers.set("Content-Type", SDP)
        exchange.request.body = session.offer()

    def _on_provisional(self, response: Response) -> None:
        now = self.core.now
        if response.status == 100:
            return
        if self.is_over:
            self._send_cancel(now)
            return
        tag = response.to_address.tag or ""
        if tag and tag not in self.early and self.invite is not None and self.invite.sent:
            try:
                self.early[tag] = Dialog.from_uac(self.invite.sent, response)
                self.core.bind_dialog(self, self.early[tag].key)  # its UPDATEs reach us
            except ParseError:
                pass  # a 1xx without Contact: no early dialog, the call goes on
        rseq = rseq_of(response) if self.core.config.rel100 != "off" else None
        if rseq is not None and tag in self.early and not self._pracked.accept(tag, rseq):
            return  # a retransmission of a reliable 1xx (PRACKed already), or out of order
        if response.status in (180, 183):
            if self.state is CallState.CALLING:
                self._move(CallInput.PROVISIONAL)
            self.core.emit(Ringing(self.call_id, response.status))
        else:
            self.core.emit(Progress(self.call_id, response.status, response.reason))
        self._report_transfer(response.status, response.reason, False, now)
        reliable = rseq is not None and tag in self.early
        prack_body = self._early_session(response, tag, reliable) \
            if response.body and 180 <= response.status < 190 else b""
        if reliable and rseq is not None:
            self._send_prack(tag, rseq, prack_body, now)
        if self._cancel_requested:
            self._send_cancel(now)

    def _early_session(self, response: Response, tag: str, reliable: bool) -> bytes:
        """The SDP of a 18x: the answer to our INVITE's offer (early media: the network's
        ringback or an announcement), or, in a reliable 1xx to an INVITE without SDP, an
        offer our PRACK answers (returned). The first fork's early media plays; a later
        different answer of that fork replaces it."""
        session = self.session
        if self._early_tag not in (None, tag):
            return b""
        answer = b""
        try:
            if session is not None and session.state is OfferState.LOCAL_OFFER:
                session.take_answer(response.body)
            elif session is not None and session.state is OfferState.DONE:
                if not self._with_offer or response.body == self._early_sdp:
                    return b""
                session.replace_answer(response.body)
            elif reliable and not self._with_offer:
                session = self._session(self._answer_port or 9)
                session.take_offer(response.body)
                answer = session.answer()
            else:
                return b""  # an offer in an unreliable 1xx is no offer (RFC 3261 13.2.1)
        except SdpError as error:
            log.info("call %s: unusable SDP in %d: %s", self.call_id, response.status,
                     error.reason)
            return b""
        self._early_tag, self._early_sdp = tag, response.body
        self._early_reliable = reliable
        self._announce_early_media(response.status)
        return answer

    def _announce_early_media(self, status: int) -> None:
        media = self.session.media if self.session is not None else None
        self.core.emit(EarlyMedia(self.call_id, status,
                                  media.description if media is not None else None))
        self._emit_media()

    def _send_prack(self, tag: str, rseq: int, body: bytes, now: float) -> None:
        """PRACK a reliable 1xx in its early dialog, with our answer when it offered."""
        assert self.invite is not None
        dialog = self.early[tag]
        prack = dialog.create_request("PRACK", body, SDP if body else None)
        prack.headers.add("RAck", str(RAck(rseq, self.invite.request.cseq.number, "INVITE")))

        def done(response: Response) -> None:
            if not 200 <= response.status < 300:
                log.info("call %s: PRACK got %d %s", self.call_id, response.status,
                         response.reason)

        self.core.exchange(prack, dialog.next_hop, done, None, now)

    def _on_invite_final(self, response: Response) -> None:
        now = self.core.now
        status = response.status
        if 200 <= status < 300:
            self._on_invite_2xx(response, now)
            return
        if self.is_over:
            return
        if status == 422 and self._retry_with_min_se(response, now):
            return
        target = None if self._cancel_requested else redirect_target(response, self._visited)
        if target is not None and self._redirects < MAX_REDIRECTS:
            self._redirects += 1
            self._visited.add(target)
            self.core.emit(Redirected(self.call_id, status, str(target)))
            self._move(CallInput.REDIRECTED)
            assert self.invite is not None
            self._send_invite(target, now, self.invite.request.cseq.number + 1)
            return
        if target is not None:
            self.end(status, "Too many redirects", "error", now)
            return
        if isinstance(response, LocalResponse):
            by = "error"
        else:
            by = "local" if self._cancel_requested and status == 487 else "remote"
        self.end(status, response.reason, by, now)

    def _retry_with_min_se(self, response: Response, now: float) -> bool:
        """422 Session Interval Too Small (RFC 4028 7.4): the INVITE again with the
        interval the peer's Min-SE asks for; False when there is nothing to retry with."""
        wanted = min_se(response)
        if wanted is None or self._retries_422 >= MAX_422_RETRIES or self._cancel_requested:
            return False
        self._retries_422 += 1
        self._interval = max(wanted, self._interval or 0)
        assert self.invite is not None
        target = self.invite.request.uri
        assert isinstance(target, SipUri)  # our INVITEs go to SIP URIs only
        log.info("call %s: the peer wants sessions of at least %d s", self.call_id, wanted)
        self._send_invite(target, now, self.invite.request.cseq.number + 1)
        return True

    def _on_invite_2xx(self, response: Response, now: float) -> None:
        """The first 2xx wins: ACK it and confirm its dialog. A 2xx from another fork
        (another To tag) is ACKed and ended with BYE (RFC 3261 13.2.2.4), unless forks are
        kept, when it becomes a call of its own."""
        assert self.invite is not None and self.invite.sent is not None
        tag = response.to_address.tag or ""
        if self.dialog is not None and tag != self.dialog.remote_tag:
            self._other_fork(response, now)
            return
        if self.dialog is not None:
            self._resend_ack()  # the winning 2xx again: our ACK was lost
            return
        if self.is_over:  # we gave up before any answer came: ACK it, then BYE
            self._other_fork(response, now)
            return
        try:
            dialog = Dialog.from_uac(self.invite.sent, response)
        except ParseError:
            dialog = None
        if dialog is None:
            self.end(502, "2xx without a usable To tag or Contact", "error", now)
            return
        self.dialog = dialog
        early = self.early.pop(tag, None)
        if early is not None:  # its PRACKs and UPDATEs used CSeq numbers: go on from there
            dialog.local_seq = max(dialog.local_seq, early.local_seq)
        self.core.bind_dialog(self, dialog.key)
        answer_body = self._read_2xx_sdp(response)
        self._send_ack(answer_body, now)
        if self._cancel_requested:  # our CANCEL crossed this 200: ACK, then BYE
            self._move(CallInput.ACCEPT)
            self._bye(487, "Cancelled (the answer crossed our CANCEL)", "local", now)
            return
        if self.session is None or self.session.media is None:
            self._bye(488, self._sdp_problem or "No usable SDP in the answer", "error", now)
            return
        self._peer_updates = allows_update(response)
        self._answered(str(response.to_address.uri), now)
        self._run_session_timer(as_uac(response), now)

    _sdp_problem: str | None = None

    def _read_2xx_sdp(self, response: Response) -> bytes:
        """Our answer for the ACK when the 2xx carried an offer (we sent none), else b"";
        the session takes the 2xx's answer. Problems are noted for the BYE's reason."""
        session = self.session
        self._sdp_problem = None
        try:
            if session is not None and session.state is OfferState.LOCAL_OFFER:
                session.take_answer(response.body)
                return b""
            if session is not None and self._early_sdp is not None:
                # early media agreed the session already: the same answer again (RFC 3261
                # 13.2.1), or another phone's when a forking proxy let another answer
                if self._with_offer and response.body and response.body != self._early_sdp:
                    session.replace_answer(response.body)
                return b""
            if response.body:
                session = self._session(self._answer_port or 9)
                session.take_offer(response.body)
                return session.answer()
        except SdpError as error:
            self._sdp_problem = error.reason
        return b""

    def _other_fork(self, response: Response, now: float) -> None:
        """A 2xx that does not win (another fork's, or one after we gave up): ACK it and end
        its dialog with BYE, once per fork; forks kept by the API become calls instead."""
        assert self.invite is not None and self.invite.sent is not None
        try:
            dialog = Dialog.from_uac(self.invite.sent, response)
        except ParseError:
            return
        ack = dialog.create_ack(self.invite.request.cseq.number)
        self.core.send_stateless(ack, dialog.next_hop, self.invite.peer)
        if dialog.remote_tag in self._forks_done:
            return  # a retransmission: the ACK again, nothing more
        self._forks_done.add(dialog.remote_tag)
        if self.keep_forks and not self.is_over:
            self.core.keep_fork(self, dialog, response, now)
            return
        log.info("call %s: ending the answer of another fork (%s)", self.call_id,
                 dialog.remote_tag)
        self.core.exchange(dialog.create_request("BYE"), dialog.next_hop,
                           lambda response: None, None, now)

    def _send_ack(self, body: bytes, now: float) -> None:
        assert self.dialog is not None and self.invite is not None
        ack = self.dialog.create_ack(self.invite.request.cseq.number, body,
                                     SDP if body else None)
        self._ack = self.core.send_stateless(ack, self.dialog.next_hop, self.invite.peer)

    def _resend_ack(self) -> None:
        if self._ack is not None:
            self.core.resend(*self._ack)

    def repeat_ack(self) -> None:
        """A 2xx came again after our INVITE transaction ended: our ACK was lost."""
        self._resend_ack()

    def cancel(self, now: float) -> None:
        """Give up an unanswered outgoing call: CANCEL once a provisional came (RFC 3261
        9.1); before that, the call ends here and a late 1xx still gets its CANCEL."""
        if self.direction != "outgoing" or self.state not in (CallState.CALLING,
                                                              CallState.RINGING):
            return
        self._cancel_requested = True
        if self.invite is not None and self.invite.provisional:
            self._send_cancel(now)
        else:
            self.end(408, "No response before the timeout", "local", now)

    def _send_cancel(self, now: float) -> None:
        invite = self.invite
        if self._cancel_sent or invite is None or invite.sent is None or invite.peer is None:
            return
        self._cancel_sent = True
        self.core.send_cancel(make_cancel(invite.sent), invite.peer, invite.key, now)

    # --- answering a call (accept) ------------------------------------------------------------

    @classmethod
    def incoming(cls, core: UserAgentCore, request: Request, key: TransactionKey,
                 source: Peer, local_tag: str) -> CoreCall:
        call = cls(core, request.call_id, "incoming", request.call_id, local_tag,
                   request.from_address.uri)  # tel: or any other: only shown
        call.request, call.server_key, call.source = request, key, source
        call.peer_host = source.host
        if reliable_for(request, core.config.rel100):
            call._reliable = ReliableSender(core.random.randint(1, MAX_RSEQ_START // 2),
                                            core.config.timers.t1)
        return call

    def announce(self, now: float) -> None:
        assert self.request is not None
        log.info("incoming call %s from %s", self.call_id, self.request.from_address)
        self.core.emit(Incoming(self.call_id, str(self.request.from_address),
                                str(self.request.to_address)))
        self._arm("unanswered", now + self.core.config.unanswered_timeout)

    def _respond(self, status: int, reason: str | None = None, body: bytes = b"",
                 extra: Headers | None = None) -> None:
        assert self.request is not None and self.server_key is not None
        self.core.respond(self.server_key, make_response(
            self.request, status, reason, to_tag=self.local_tag, extra=extra, body=body))

    def _uas_dialog(self) -> Dialog:
        if self.dialog is None:
            assert self.request is not None
            transport = self.source.transport if self.source is not None else None
            self.dialog = Dialog.from_uas(self.request, self.local_tag,
                                          self.core.contact(transport, self.peer_host))
            self.core.bind_dialog(self, self.dialog.key)
        return self.dialog

    def ring(self, now: float) -> None:
        if self.state is CallState.RINGING:
            return  # rung already
        self._move(CallInput.RING)
        self._uas_dialog()
        self._send_provisional(180, b"", now)
        self.core.emit(Ringing(self.call_id, 180))

    def _send_provisional(self, status: int, body: bytes, now: float) -> None:
        """A 1xx of ours, reliable when the caller takes them (RFC 3262): stamped with
        RSeq, resent until its PRACK; while one awaits its PRACK, the next waits its turn."""
        assert self.request is not None and self.server_key is not None
        reliable = self._reliable
        if reliable is not None and reliable.pending is not None:
            reliable.queued.append((status, body))
            return
        extra = Headers([("Contact", self.core.contact_text(toward=self.peer_host))])
        if body:
            extra.add("Content-Type", SDP)
        response = make_response(self.request, status, to_tag=self.local_tag, extra=extra,
                                 body=body)
        if reliable is not None:
            reliable.send(response, now)
            self._arm("reliable_1xx", reliable.next_due(now))
        self._early_delivered = self._early_delivered or bool(body)
        self.core.respond(self.server_key, response)

    def early_media(self, now: float, rtp_port: int) -> None:
        """183 Session Progress with our SDP (RFC 3960): the answer to the INVITE's offer,
        or, to an INVITE without SDP, an offer (only in a reliable 183: the PRACK answers).
        The session it agrees is the call's; the 2xx repeats an unreliable 183's answer."""
        if self.state not in (CallState.INCOMING, CallState.RINGING):
            raise LocalProtocolError(f"a call that is {self.state.value} cannot start early "
                                     "media")
        if self._early_sdp is not None:
            return
        assert self.request is not None
        if not self.request.body and self._reliable is None:
            raise LocalProtocolError("early media to an INVITE without SDP needs reliable "
                                     "provisional responses (the caller did not offer 100rel)")
        self._answer_port = rtp_port
        session = self._session(rtp_port, self.source.transport if self.source else "udp")
        try:
            if self.request.body:
                session.take_offer(self.request.body)
                body = session.answer()
            else:
                body = session.offer()
        except SdpError as error:
            self._respond(error.status, error.reason)
            self.end(error.status, error.reason, "local", now)
            return
        self._uas_dialog()
        if self.state is CallState.INCOMING:
            self._move(CallInput.RING)
        self._early_sdp, self._early_reliable = body, self._reliable is not None
        self._send_provisional(183, body, now)
        self._announce_early_media(183)

    def _resend_reliable(self, now: float) -> None:
        """T1, doubling, until the PRACK; 64*T1 without one fails the INVITE with 504."""
        reliable = self._reliable
        if reliable is None or reliable.pending is None or self.server_key is None \
                or self.state not in (CallState.INCOMING, CallState.RINGING):
            return
        if reliable.given_up(now):
            self._respond(504, "No PRACK for our reliable provisional response")
            self.end(504, "No PRACK for our reliable provisional response (RFC 3262)",
                     "error", now)
            return
        reliable.pending.interval *= 2
        self.core.respond(self.server_key, reliable.pending.response)
        self._arm("reliable_1xx", reliable.next_due(now))

    def _on_prack(self, request: Request, key: TransactionKey, now: float) -> None:
        """PRACK of our reliable 1xx (200), carrying the answer when that 1xx offered; any
        other is 481 (RFC 3262 3). Then the next queued 1xx, or the 2xx that waited."""
        reliable = self._reliable
        try:
            rack = RAck.parse(request)
        except ParseError as error:
            self.core.respond(key, make_response(request, 400, error.reason))
            return
        assert self.request is not None
        acknowledged = reliable.acknowledge(rack, self.request.cseq.number) \
            if reliable is not None else None
        if acknowledged is None:
            self.core.respond(key, make_response(
                request, 481, "No reliable provisional response with that RAck"))
            return
        self._disarm("reliable_1xx")
        problem = self._take_prack_answer(request)
        self.core.respond(key, make_response(request, 200))
        if problem is not None:
            self.fail(problem, 488, now)
            return
        assert reliable is not None
        if self._accept_after_prack:
            self._accept_after_prack = False
            self._accept(now)
        elif reliable.queued and self.state is CallState.RINGING:
            status, body = reliable.queued.pop(0)
            self._send_provisional(status, body, now)

    def _take_prack_answer(self, request: Request) -> str | None:
        """The answer in a PRACK to the offer of our reliable 183: media starts. The
        problem, when it is unusable."""
        if self.session is None or self.session.state is not OfferState.LOCAL_OFFER:
            return None
        try:
            if not request.body:
                raise SdpError("The PRACK carried no answer to the offer in our 183")
            self.session.take_answer(request.body)
        except SdpError as error:
            return error.reason
        self._announce_early_media(183)
        return None

    def answer(self, now: float, rtp_port: int, after: float | None = None) -> None:
        """Answer now, or ring and answer ``after`` seconds (the UA's answer-after timer)."""
        if self.state not in (CallState.INCOMING, CallState.RINGING):
            raise LocalProtocolError(f"a call that is {self.state.value} cannot be answered")
        self._answer_port = rtp_port
        if after:
            if self.state is CallState.INCOMING:
                self.ring(now)
            self._arm("answer_after", now + after)
            return
        self._accept(now)

    def _accept(self, now: float) -> None:
        assert self.request is not None and self._answer_port is not None
        reliable = self._reliable
        if reliable is not None and reliable.pending is not None:
            if reliable.pending.carries_sdp:  # RFC 3262 3: no 2xx before that PRACK
                self._accept_after_prack = True
                return
            self._disarm("reliable_1xx")  # a final response ends the retransmissions
            reliable.queued.clear()
        session = self._session(self._answer_port,
                                self.source.transport if self.source else "udp")
        try:
            if self._early_sdp is not None:
                # the 183 agreed the session: a reliable one needs no repeat, an unreliable
                # one's answer is repeated in the 2xx (RFC 3261 13.2.1); one still queued
                # behind an unacknowledged 180 never left, so the 2xx carries its SDP
                delivered = self._early_reliable and self._early_delivered
                body = b"" if delivered else self._early_sdp
                self._awaiting_ack_answer = not delivered and not self.request.body
            elif self.request.body:
                session.take_offer(self.request.body)
                body = session.answer()
            else:  # an INVITE without SDP: we offer in the 2xx, they answer in the ACK
                body = session.offer()
                self._awaiting_ack_answer = True
        except SdpError as error:
            self._respond(error.status, error.reason)
            self.end(error.status, error.reason, "local", now)
            return
        self._uas_dialog()
        self._move(CallInput.ACCEPT)
        extra = self.core.capabilities(toward=self.peer_host)
        if body:
            extra.add("Content-Type", SDP)
        timer = self._timer_headers(self.request, extra)
        self._respond(200, body=body, extra=extra)
        self._peer_updates = allows_update(self.request)
        self._answered(str(self.request.from_address.uri), now)
        self._run_session_timer(timer, now)

    def reject(self, status: int, reason: str | None, now: float) -> None:
        if self.state not in (CallState.INCOMING, CallState.RINGING):
            raise LocalProtocolError(f"a call that is {self.state.value} cannot be rejected")
        self._respond(status, reason)
        self.end(status, reason or reason_phrase(status), "local", now)

    def redirect(self, target: str, status: int, now: float) -> None:
        if self.state not in (CallState.INCOMING, CallState.RINGING):
            raise LocalProtocolError(f"a call that is {self.state.value} cannot be "
                                     "redirected")
        self._respond(status, extra=Headers([("Contact", f"<{target}>")]))
        self.end(status, reason_phrase(status), "local", now)

    def on_cancel(self, now: float) -> None:
        if self.state in (CallState.INCOMING, CallState.RINGING):
            self._respond(487)
            self.end(487, "Request Terminated", "remote", now)

    def _answered(self, peer: str, now: float) -> None:
        if self.state is not CallState.ANSWERED:
            self._move(CallInput.ACCEPT)
        self.answered_at = now
        self.core.answered(self)
        self._disarm("unanswered", "ring_timeout", "answer_after")
        codec = self.session.media.description if self.session and self.session.media \
            else None
        log.info("call %s answered by %s, codec %s", self.call_id, peer, codec)
        self.core.emit(Answered(self.call_id, peer, codec))
        self._emit_media()
        self._report_transfer(200, "OK", True, now)
        if self.replacing is not None:  # RFC 3891: the call ours replaces ends now
            replaced, self.replacing = self.replacing, None
            replaced.replaced(now)
        if self._duration is not None:
            self._arm("duration", now + self._duration)
        if self.core.config.rtp_timeout is not None and self.session is not None:
            self._arm("media", now + self.core.config.rtp_timeout)

    # --- the ACK -----------------------------------------------------------------------------

    def on_ack(self, ack: Request, now: float) -> None:
        """The ACK to our 2xx: the dialog is confirmed; it carries the answer when our 2xx
        (to an INVITE or re-INVITE without SDP) made the offer."""
        if self.dialog is not None:
            self.dialog.state = "confirmed"
        if not self._awaiting_ack_answer or self.session is None:
            return
        self._awaiting_ack_answer = False
        try:
            if not ack.body:
                raise SdpError("The ACK carried no answer to our offer")
            self.session.take_answer(ack.body)
        except SdpError as error:
            self._bye(488, error.reason, "error", now)  # RFC 3264: no answer, no session
            return
        self._emit_media()

    def ack_missing(self, now: float) -> None:
        """64*T1 without an ACK for our 2xx (RFC 3261 13.3.1.4): end the call with BYE."""
        if not self.is_over:
            self._bye(408, "No ACK for our 200 OK", "error", now)

    # --- changing the session (modify) --------------------------------------------------------

    def reinvite(self, request_id: int, now: float, direction: str | None = None,
                 codecs: tuple[str, ...] | None = None) -> None:
        """A new offer in a re-INVITE (hold, resume, another codec). While one of ours or
        theirs is under way, it waits its turn."""
        if self.state is not CallState.ANSWERED or self.dialog is None \
                or self.session is None:
            raise LocalProtocolError(f"a call that is {self.state.value} cannot be "
                                     "re-negotiated")
        if self._modify is not None:
            raise LocalProtocolError("a re-INVITE of this call is already under way")
        self._modify = _Modify(request_id, direction, codecs)
        if self.session.state is OfferState.DONE and not self._awaiting_ack_answer:
            self._send_reinvite(now)
        else:
            self._arm("glare", now)  # retried as soon as their exchange is over

    def _send_reinvite(self, now: float) -> None:
        assert self._modify is not None and self.dialog is not None
        assert self.session is not None
        modify = self._modify
        self._held_before = self.session.held
        self._wish_before = self.session.wish
        body = self.session.offer(modify.direction, modify.codecs)
        reinvite = self.dialog.create_request("INVITE", body, SDP)
        self._add_refresh_headers(reinvite)
        modify.exchange = self.core.exchange(reinvite, self.dialog.next_hop,
                                             self._on_reinvite_final, None, now)

    _held_before = False
    _wish_before = "sendrecv"

    def _on_reinvite_final(self, response: Response) -> None:
        now = self.core.now
        modify = self._modify
        if modify is None or self.is_over or self.session is None:
            return
        status = response.status
        if status == 491:  # glare: try again after the random wait of RFC 3261 14.1
            self.session.rejected()
            self.session.wish = self._wish_before
            low, high = GLARE_OWNER if self.owns_call_id else GLARE_OTHER
            self._arm("glare", now + self.core.random.uniform(low, high))
            return
        self._modify = None
        if not 200 <= status < 300:
            self.session.rejected()  # the old session holds (RFC 3261 14.1)
            self.session.wish = self._wish_before
            self.core.emit(Completed(modify.request, status, response.reason, response))
            if status in (408, 481):  # the dialog is gone (RFC 3261 14.1)
                self._bye(status, f"re-INVITE failed: {status} {response.reason}", "error",
                          now)
            return
        assert self.dialog is not None and modify.exchange is not None
        self.dialog.refresh_from_response(response)  # a 2xx may move the target (12.2.1.2)
        ack = self.dialog.create_ack(modify.exchange.request.cseq.number)
        self.core.send_stateless(ack, self.dialog.next_hop, modify.exchange.peer)
        try:
            self.session.take_answer(response.body)
        except SdpError as error:
            self.core.emit(Completed(modify.request, 488, error.reason, response))
            self._bye(488, f"re-INVITE answer unusable: {error.reason}", "error", now)
            return
        self._emit_media()
        if self.session.held != self._held_before:
            self.core.emit(Hold(self.call_id, self.session.held, "local"))
        self._run_session_timer(self._after_refresh(response), now)
        self.core.emit(Completed(modify.request, status, response.reason, response))

    def _on_their_reinvite(self, request: Request, key: TransactionKey, now: float) -> None:
        """RFC 3261 14.2: an offer while ours is out is glare (491); otherwise it is answered
        at once (so a second INVITE never finds the first unanswered: the early-dialog case
        of that, 500 with Retry-After, is in on_request)."""
        assert self.session is not None
        if self.session.state is OfferState.LOCAL_OFFER or self._awaiting_ack_answer:
            self.core.respond(key, make_response(request, 491))
            return
        held_before = self.session.held
        extra = Headers([("Contact", self.core.contact_text(toward=self.peer_host)),
                         ("Content-Type", SDP)])
        try:
            if request.body:
                self.session.take_offer(request.body)
                body = self.session.answer()
            else:  # no SDP: we offer in the 2xx, the ACK answers
                body = self.session.offer()
                self._awaiting_ack_answer = True
        except SdpError as error:
            self.core.respond(key, make_response(request, error.status, error.reason))
            return
        timer = self._timer_headers(request, extra)
        self.core.respond(key, make_response(request, 200, extra=extra, body=body))
        self._run_session_timer(timer, now)  # a re-INVITE refreshes the session too
        if self._awaiting_ack_answer:
            return
        self._emit_media()
        if self.session.held != held_before:
            self.core.emit(Hold(self.call_id, self.session.held, "remote"))

    def _retry_reinvite(self, now: float) -> None:
        if self._modify is None or self.is_over or self.session is None:
            return
        if self.session.state is OfferState.DONE and not self._awaiting_ack_answer:
            self._send_reinvite(now)
        else:
            self._arm("glare", now + 0.1)  # theirs is still under way: look again soon

    def send_in_dialog(self, method: str, request_id: int, body: bytes, content_type: str,
                       now: float) -> None:
        """INFO or MESSAGE in the answered call; Completed(request_id) brings the answer."""
        if self.state is not CallState.ANSWERED or self.dialog is None:
            raise LocalProtocolError(f"a call that is {self.state.value} cannot send {method}")
        request = self.dialog.create_request(method, body, content_type)

        def done(response: Response) -> None:
            self.core.emit(Completed(request_id, response.status, response.reason, response))

        self.core.exchange(request, self.dialog.next_hop, done, None, now)

    # --- session timers (RFC 4028) and UPDATE (RFC 3311) ---------------------------------------

    def _timer_headers(self, request: Request, extra: Headers) -> SessionTimer | None:
        """Session-Expires (and Require: timer when the peer supports it) for our 2xx to
        ``request``; the timer that 2xx sets."""
        negotiated = as_uas(request, self.core.config.session_timer)
        if negotiated is None:
            return None
        timer, value = negotiated
        extra.add("Session-Expires", value)
        if supports_timer(request):
            extra.add("Require", "timer")
        return timer

    def _add_refresh_headers(self, request: Request) -> None:
        """A request of ours in the dialog keeps the session timer going (RFC 4028 7.4):
        the same interval, refreshed by us as this request's UAC."""
        if self.session_timer is not None:
            for name, value in offer_headers(self.core.config.session_timer,
                                             self.session_timer.interval, "uac"):
                request.headers.add(name, value)
            request.headers.add("Supported", "timer")

    def _run_session_timer(self, timer: SessionTimer | None, now: float) -> None:
        """Arm the refresh (ours) or the expiry (theirs) of a timer a 2xx just set; no
        timer: none runs (RFC 4028 7.2)."""
        self._disarm("session_refresh", "session_expired")
        self.session_timer = timer
        if timer is None or self.is_over:
            return
        if timer.we_refresh:
            self._arm("session_refresh", timer.refresh_at(now))
        else:
            self._arm("session_expired", timer.expires_at(now))

    def _after_refresh(self, response: Response) -> SessionTimer | None:
        """The timer after the 2xx to a request of ours in the dialog: what it says; or,
        when we refresh a peer that knows no session timers (no Session-Expires, no
        Supported: timer in its 2xx, as baresip), the same timer, still ours to refresh:
        the peer cannot turn off what it does not know (pjsip does the same)."""
        granted = as_uac(response)
        current = self.session_timer
        if granted is None and current is not None and current.we_refresh \
                and not supports_timer(response):
            return current
        return granted

    def _refresh_session(self, now: float) -> None:
        """Half the interval passed: UPDATE when the peer takes it (no SDP to redo), else
        re-INVITE. A re-INVITE already under way is a refresh of its own."""
        if self.state is not CallState.ANSWERED or self.dialog is None or self.is_over:
            return
        if self._modify is not None or self.session is None:
            self._arm("session_refresh", now + 1.0)
            return
        if not self._peer_updates:
            self.reinvite(0, now)  # (request 0: nobody waits on it)
            return
        update = self.dialog.create_request("UPDATE")
        self._add_refresh_headers(update)
        self.core.exchange(update, self.dialog.next_hop, self._on_refresh_final, None, now)

    def _on_refresh_final(self, response: Response) -> None:
        now = self.core.now
        if self.is_over:
            return
        if 200 <= response.status < 300:
            self._run_session_timer(self._after_refresh(response), now)
        elif response.status in (408, 481):
            self._bye(response.status, f"Session refresh failed: {response.status} "
                      f"{response.reason}", "error", now)
        elif response.status in (405, 501):
            self._peer_updates = False  # it does not take UPDATE after all: re-INVITE
            self._refresh_session(now)
        elif self.session_timer is not None:  # try again while the session lasts
            self._arm("session_refresh", now + min(32.0, self.session_timer.interval / 4))

    def update(self, request_id: int, now: float, direction: str | None = None,
               codecs: tuple[str, ...] | None = None) -> None:
        """Our new offer in an UPDATE (RFC 3311), in the confirmed dialog or, before the
        answer, in the early one whose media plays; the answer comes in its 2xx."""
        dialog = self._update_dialog()
        if dialog is None or self.session is None or self.session.state is not OfferState.DONE \
                or self._awaiting_ack_answer:
            raise LocalProtocolError(f"a call that is {self.state.value} has no agreed session "
                                     "to update")
        held_before = self.session.held
        wish_before = self.session.wish
        body = self.session.offer(direction, codecs)
        update = dialog.create_request("UPDATE", body, SDP)
        self._add_refresh_headers(update)

        def done(response: Response) -> None:
            session = self.session
            if session is None or self.is_over:
                return
            if not 200 <= response.status < 300:
                session.rejected()
                session.wish = wish_before
            else:
                try:
                    session.take_answer(response.body)
                except SdpError as error:
                    self.core.emit(Completed(request_id, 488, error.reason, response))
                    return
                self._emit_media()
                if session.held != held_before:
                    self.core.emit(Hold(self.call_id, session.held, "local"))
            self.core.emit(Completed(request_id, response.status, response.reason, response))

        self.core.exchange(update, dialog.next_hop, done, None, now)

    def _update_dialog(self) -> Dialog | None:
        if self.state is CallState.ANSWERED:
            return self.dialog
        if self.state is not CallState.RINGING or self._early_sdp is None:
            return None
        return self.dialog if self.direction == "incoming" else self.early.get(
            self._early_tag or "")

    def _on_update(self, request: Request, key: TransactionKey, now: float) -> None:
        """UPDATE (RFC 3311): a session refresh, or a new offer answered in its 200 at once
        (491 while an offer of ours is out)."""
        extra = Headers([("Contact", self.core.contact_text(toward=self.peer_host))])
        body = b""
        if request.body:
            if self.session is None or self.session.state is not OfferState.DONE \
                    or self._awaiting_ack_answer:
                self.core.respond(key, make_response(request, 491))
                return
            held_before = self.session.held
            try:
                self.session.take_offer(request.body)
                body = self.session.answer()
            except SdpError as error:
                self.core.respond(key, make_response(request, error.status, error.reason))
                return
            extra.add("Content-Type", SDP)
            self._emit_media()
            if self.session.held != held_before:
                self.core.emit(Hold(self.call_id, self.session.held, "remote"))
        timer = self._timer_headers(request, extra)
        self.core.respond(key, make_response(request, 200, extra=extra, body=body))
        self._run_session_timer(timer, now)

    # --- transfer (RFC 3515 REFER, RFC 3891 Replaces, RFC 4488 norefersub) ---------------------

    def refer(self, request_id: int, now: float, target: SipUri,
              replaces: Replaces | None = None) -> None:
        """Ask the peer to call ``target`` (blind), or to take over our call with the target
        that ``replaces`` names (attended). Completed(request_id) brings the outcome: the
        status of the transferee's call to the target, or the REFER's own failure."""
        if self.state is not CallState.ANSWERED or self.dialog is None:
            raise LocalProtocolError(f"a call that is {self.state.value} cannot be transferred")
        if self._refer_request is not None:
            raise LocalProtocolError("a transfer of this call is under way")
        refer = self.dialog.create_request("REFER")
        refer.headers.add("Refer-To", refer_to(target, replaces))
        refer.headers.add("Referred-By", referred_by(self.dialog.local_address))
        self._refer_request = request_id
        self.core.exchange(refer, self.dialog.next_hop, self._on_refer_final, None, now)

    def _on_refer_final(self, response: Response) -> None:
        now = self.core.now
        if self._refer_request is None:
            return
        if not 200 <= response.status < 300:
            self._transfer_outcome(response.status, response.reason, now)
            return
        self.core.emit(TransferProgress(self.call_id, response.status, response.reason,
                                        False))
        if (response.headers.get("Refer-Sub") or "").strip().lower() == "false":
            self._transfer_outcome(response.status, response.reason, now)  # no NOTIFYs
            return
        self._arm("transfer_wait", now + TRANSFER_WAIT)

    def _transfer_outcome(self, status: int, reason: str, now: float) -> None:
        """Our transfer's last word: the API hears it; a success ends our call soon, when
        the transferee has not ended it itself."""
        request, self._refer_request = self._refer_request, None
        self._disarm("transfer_wait")
        if request is None:
            return
        self.core.emit(TransferProgress(self.call_id, status, reason, True))
        self.core.emit(Completed(request, status, reason))
        if 200 <= status < 300 and self.state is CallState.ANSWERED:
            self._arm("transfer_bye", now + TRANSFER_BYE_AFTER)

    def _on_notify(self, request: Request, key: TransactionKey, now: float) -> None:
        """A NOTIFY of the refer subscription our REFER made: its sipfrag is the progress
        of the transferee's call. Other event packages are not ours here (489)."""
        event = (request.headers.get("Event") or "").split(";")[0].strip().lower()
        if event != REFER_EVENT:
            self.core.respond(key, make_response(request, 489, "Bad Event"))
            return
        if self._refer_request is None:
            self.core.respond(key, make_response(request, 481, "No transfer under way"))
            return
        self.core.respond(key, make_response(request, 200))
        status_line = read_sipfrag(request.body)
        status, reason = status_line or (0, "")
        if is_terminated(request) or status >= 200:
            if status_line is None:
                status, reason = 500, "The transfer ended without a status"
            self._transfer_outcome(status, reason, now)
        elif status_line is not None:
            self.core.emit(TransferProgress(self.call_id, status, reason, False))

    def _on_refer(self, request: Request, key: TransactionKey, now: float) -> None:
        """We are asked to call someone (the transferee): 202, NOTIFY 100, and the shell
        places the call; declined (603) when the user said so."""
        if not self.core.config.accept_transfers:
            self.core.respond(key, make_response(request, 603, "Transfers declined"))
            return
        try:
            refer = ReferRequest.parse(request)
        except ParseError as error:
            self.core.respond(key, make_response(request, 400, error.reason))
            return
        if self.state is not CallState.ANSWERED or self.transfer_call is not None \
                or self._pending_refer is not None:
            self.core.respond(key, make_response(request, 491, "A transfer is under way"))
            return
        extra = Headers([("Contact", self.core.contact_text(toward=self.peer_host))])
        self._notify_transfer = refer.wants_notify
        if not refer.wants_notify:
            extra.add("Refer-Sub", "false")
        self.core.respond(key, make_response(request, 202, extra=extra))
        self.core.emit(TransferRequested(self.call_id, str(refer.target), refer.referred_by,
                                         refer.replaces is not None))
        self._pending_refer = refer
        self.notify_transfer(100, "Trying", False, now)
        self.core.emit(TransferNeeded(self.handle, refer.target))

    _pending_refer: ReferRequest | None = None

    def take_refer(self) -> ReferRequest | None:
        """The REFER the call for ``TransferNeeded`` follows (the core's invite asks)."""
        refer, self._pending_refer = self._pending_refer, None
        return refer

    def _report_transfer(self, status: int, reason: str, final: bool, now: float) -> None:
        """Our call placed for a REFER: tell the transferor how it goes."""
        if self.transfer_for is not None and status > 100:
            transferor = self.transfer_for
            if final:
                self.transfer_for = None
            transferor.notify_transfer(status, reason, final, now)

    def notify_transfer(self, status: int, reason: str, final: bool, now: float) -> None:
        """NOTIFY the transferor (RFC 3515 2.4.5); after the final 2xx's NOTIFY is answered
        our call with it ends (the transfer is done)."""
        if final:
            self.transfer_call = None
        if self.is_over or self.dialog is None or self.state is not CallState.ANSWERED:
            return
        succeeded = final and 200 <= status < 300
        if not self._notify_transfer:
            if succeeded:
                self._bye(200, "Transferred", "local", now)
            return
        notify = self.dialog.create_request("NOTIFY", sipfrag(status, reason), SIPFRAG)
        notify.headers.add("Event", REFER_EVENT)
        notify.headers.add("Subscription-State", "terminated;reason=noresource" if final
                           else f"active;expires={SUBSCRIPTION_SECONDS}")

        def done(response: Response) -> None:
            if succeeded and self.state is CallState.ANSWERED:
                self._bye(200, "Transferred", "local", self.core.now)

        self.core.exchange(notify, self.dialog.next_hop, done, None, now)

    def replaced(self, now: float) -> None:
        """An INVITE with Replaces naming this call was answered: this call ends."""
        self._bye(200, "Replaced by a transferred call (RFC 3891)", "remote", now)

    # --- ending the call (close) --------------------------------------------------------------

    def hangup(self, now: float) -> None:
        """End the call whatever its state: BYE once answered, CANCEL before (for ours),
        603 Decline for an incoming call not yet answered."""
        if self.is_over or self.state is CallState.ENDING:
            return
        if self.state is CallState.ANSWERED:
            self._bye(200, "Local hangup", "local", now)
        elif self.direction == "outgoing":
            self.cancel(now)
        else:
            self.reject(603, None, now)

    def fail(self, reason: str, status: int, now: float) -> None:
        """Something failed here (media, a file, a socket): tell the peer as the state
        allows (BYE, CANCEL, or a final status), and end with by "error"."""
        if self.is_over:
            return
        log.warning("call %s failed locally: %s", self.call_id, reason)
        if self.state in (CallState.ANSWERED, CallState.ENDING):
            self._bye(status, reason, "error", now)
            return
        if self.direction == "outgoing":
            self._cancel_requested = True  # a late 2xx gets its ACK and BYE
            if self.invite is not None and self.invite.provisional:
                self._send_cancel(now)
        else:
            self._respond(status, reason)
        self.end(status, reason, "error", now)

    def _bye(self, status: int, reason: str, by: str, now: float) -> None:
        """Send BYE and end the call once it is answered (or times out)."""
        if self.dialog is None or self.is_over:
            self.end(status, reason, by, now)
            return
        if self.state is CallState.ENDING:
            return  # our BYE is out already
        self._move(CallInput.HANGUP)
        bye = self.dialog.create_request("BYE")
        if by == "error":  # RFC 3326: say why
            text = reason.replace("\\", "").replace('"', "'")[:120]
            bye.headers.add("Reason", f'SIP;cause={status};text="{text}"')
        self.dialog.state = "terminated"

        def done(response: Response) -> None:
            self.end(status, reason, by, self.core.now)

        self.core.exchange(bye, self.dialog.next_hop, done, None, now)

    # --- what arrives inside the dialog ---------------------------------------------------------

    def on_request(self, request: Request, key: TransactionKey, now: float) -> None:
        tag = request.from_address.tag or ""
        if self.dialog is not None:  # confirmed: other forks' early dialogs are over
            dialog = self.dialog if self.dialog.remote_tag == tag else None
        else:
            dialog = self.early.get(tag)
        if dialog is None:
            self.core.respond(key, make_response(request, 481))
            return
        status = dialog.accept_remote_request(request)
        if status is not None:  # a CSeq lower than the last: out of order (12.2.2)
            self.core.respond(key, make_response(request, status, "CSeq out of order"))
            return
        method = request.method
        if method == "BYE":
            self.core.respond(key, make_response(request, 200))
            self.end(200, "Remote hangup", "remote", now)
        elif method == "INVITE":
            if self.state is not CallState.ANSWERED or self.session is None:
                retry = str(self.core.random.randint(0, 10))
                self.core.respond(key, make_response(
                    request, 500, "The first INVITE is still unanswered",
                    extra=Headers([("Retry-After", retry)])))
                return
            self._on_their_reinvite(request, key, now)
        elif method in ("INFO", "OPTIONS"):
            self._on_info_or_options(request, key)
        elif method == "MESSAGE":
            self.core.deliver_message(request, key, self.call_id)
        elif method == "UPDATE":
            self._on_update(request, key, now)
        elif method == "PRACK":
            self._on_prack(request, key, now)
        elif method == "REFER":
            self._on_refer(request, key, now)
        elif method == "NOTIFY":
            self._on_notify(request, key, now)
        else:  # allowed by the agent but meaningless inside a call
            self.core.respond(key, make_response(request, 405, extra=Headers(
                [("Allow", self.core.policy.allow)])))

    def _on_info_or_options(self, request: Request, key: TransactionKey) -> None:
        if request.method == "OPTIONS":
            self.core.respond(key, make_response(request, 200,
                                                 extra=self.core.capabilities(
                                                     toward=self.peer_host)))
            return
        digit = info_digit(request)
        self.core.respond(key, make_response(request, 200))
        if digit is not None:
            self.core.emit(Dtmf(self.call_id, digit, "info"))

    # --- timers -----------------------------------------------------------------------------

    def on_timer(self, name: str, now: float) -> None:
        if name == "ring_timeout":
            self.cancel(now)
        elif name == "answer_after":
            if self.state in (CallState.INCOMING, CallState.RINGING):
                self._accept(now)
        elif name == "duration":
            self.hangup(now)
        elif name == "unanswered":
            if self.state in (CallState.INCOMING, CallState.RINGING):
                self.reject(480, "Temporarily Unavailable (not answered)", now)
        elif name == "glare":
            self._retry_reinvite(now)
        elif name == "media":
            self.core.emit(MediaCheck(self.handle))
        elif name == "session_refresh":
            self._refresh_session(now)
        elif name == "reliable_1xx":
            self._resend_reliable(now)
        elif name == "transfer_bye":
            if self.state is CallState.ANSWERED:
                self._bye(200, "Transferred", "local", now)
        elif name == "transfer_wait":
            self._transfer_outcome(408, "No final NOTIFY for the transfer", now)
        elif name == "session_expired":
            timer = self.session_timer
            seconds = timer.interval if timer else 0
            self._bye(408, f"Session expired: no refresh within {seconds} s (RFC 4028)",
                      "error", now)

    def media_status(self, last_packet: float, now: float) -> None:
        """The shell's answer to MediaCheck: when RTP last arrived (by the core's clock)."""
        timeout = self.core.config.rtp_timeout
        if timeout is None or self.state is not CallState.ANSWERED:
            return
        silent = now - last_packet
        if silent < timeout:
            self._arm("media", max(last_packet + timeout, now + 0.001))
            return
        self.core.emit(MediaTimeout(self.call_id, round(silent, 1)))
        if self.core.config.hangup_on_rtp_timeout:
            self._bye(408, f"No RTP for {silent:.0f} s", "local", now)
        else:
            self._arm("media", now + timeout)  # report again if it stays silent


class _Modify:
    """Our re-INVITE under way (or waiting out glare): the API request it answers."""

    def __init__(self, request: int, direction: str | None,
                 codecs: tuple[str, ...] | None) -> None:
        self.request = request
        self.direction = direction
        self.codecs = codecs
        self.exchange: Exchange | None = None


def info_digit(request: Request) -> str | None:
    """The digit of an INFO carrying application/dtmf-relay (``Signal=5``), if any."""
    content_type = request.content_type
    if request.method != "INFO" or content_type is None or content_type.mime != DTMF_RELAY:
        return None
    for line in request.body.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal" and len(value.strip()) == 1:
            digit = value.strip().upper()
            return digit if digit in DIGITS else None
    return None
