"""One call, placed or received: its INVITE transaction, its dialog, its offer/answer.

A Call is driven by the agent (responses and requests of its dialog) and by the API
(``answer``, ``reject``, ``hangup`` ...). It reports everything as events; ``answered`` and
``ended`` are futures for scripts that simply want to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import TYPE_CHECKING

from softphone.media.stream import MediaStream
from softphone.rtp.dtmf import DIGITS, event_code
from softphone.sdp.model import SdpError, SessionDescription
from softphone.sdp.negotiation import (
    NegotiatedMedia,
    answer_offer,
    known_codecs,
    make_offer,
    read_answer,
)
from softphone.sip import Headers, ParseError, Request, Response, SipUri
from softphone.sip.builder import make_cancel, make_response, new_call_id, new_tag, reason_phrase
from softphone.sip.dialog import Dialog
from softphone.sip.errors import SipError
from softphone.sip.headers import Address
from softphone.sip.transaction import LocalResponse, Peer, TransactionKey
from softphone.transport.resolver import ResolutionError
from softphone.transport.rtp import RtpEndpoint
from softphone.ua.events import (
    Answered,
    Calling,
    Dtmf,
    DtmfSent,
    Ended,
    Hold,
    Incoming,
    MediaTimeout,
    Progress,
    Redirected,
    Ringing,
)

if TYPE_CHECKING:
    from softphone.ua.agent import UserAgent

log = logging.getLogger("softphone.call")
MAX_REDIRECTS = 5
SDP_TYPE = "application/sdp"
DTMF_RELAY = "application/dtmf-relay"


class Call:
    def __init__(self, agent: UserAgent, direction: str, remote_uri: SipUri, call_id: str,
                 local_tag: str) -> None:
        self.agent = agent
        self.direction = direction
        self.remote_uri = remote_uri
        self.call_id = call_id
        self.local_tag = local_tag
        self.state = "idle"
        self.dialog: Dialog | None = None
        self.media: NegotiatedMedia | None = None
        self.rtp = RtpEndpoint(agent.config.impairment)
        self.stream: MediaStream | None = None
        self.answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[Ended] = asyncio.get_running_loop().create_future()
        self.created_at = time.monotonic()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.invite: Request | None = None
        self.invite_key: TransactionKey | None = None
        self.invite_peer: Peer | None = None
        self.peer_host: str | None = None  # the address our requests go to (resolved)
        self._session_id = secrets.randbelow(2**31)
        self._sdp_version = 0
        self._got_provisional = False
        self._cancel_requested = False
        self._cancel_sent = False
        self._ack: tuple[Request, Peer] | None = None
        self._offer: SessionDescription | None = None
        self.peer_codecs: list[str] = []  # codecs the peer listed in its offer or answer
        # cancelled once answered or over: a busy answering agent would otherwise keep one
        # timer per call for the whole unanswered_timeout (minutes)
        self._unanswered_timer: asyncio.TimerHandle | None = None

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def outgoing(cls, agent: UserAgent, uri: SipUri) -> Call:
        return cls(agent, "outgoing", uri, new_call_id(agent.advertised_host()), new_tag())

    @classmethod
    def incoming(cls, agent: UserAgent, invite: Request, key: TransactionKey,
                 source: Peer) -> Call:
        call = cls(agent, "incoming", invite.from_address.sip_uri, invite.call_id, new_tag())
        call.invite, call.invite_key, call.invite_peer = invite, key, source
        call.peer_host = source.host
        call.state = "incoming"
        call._unanswered_timer = asyncio.get_running_loop().call_later(
            agent.config.unanswered_timeout, call._give_up_unanswered)
        return call

    def announce(self) -> None:
        """Tell listeners about an incoming call (once the agent knows it)."""
        assert self.invite is not None
        log.info("incoming call %s from %s", self.call_id, self.invite.from_address)
        self.agent.emit(Incoming(self.call_id, str(self.invite.from_address),
                                 str(self.invite.to_address)))

    def _give_up_unanswered(self) -> None:
        if self.state in ("incoming", "ringing"):
            self.agent.spawn(self.reject(480, "Temporarily Unavailable (not answered)"))

    def _media_host(self) -> str:
        """The address our SDP gives for RTP: the one the route to the peer leaves from."""
        return self.agent.advertised_host(self.peer_host)

    @property
    def codec(self) -> str | None:
        return self.media.description if self.media else None

    @property
    def is_over(self) -> bool:
        return self.state == "ended"

    @property
    def succeeded(self) -> bool:
        """Answered, and not ended by a local failure (media, a file, a socket)."""
        if self.answered_at is None:
            return False
        return not (self.ended.done() and self.ended.result().by == "error")

    # --- outgoing ----------------------------------------------------------------------------

    def start(self, duration: float | None = None, ring_timeout: float | None = None) -> None:
        self.agent.spawn(self._run_outgoing(duration, ring_timeout))

    async def _run_outgoing(self, duration: float | None, ring_timeout: float | None) -> None:
        try:
            await self._place(ring_timeout)
        except (SipError, OSError) as error:
            await self.fail(str(error), 503)
            return
        if self.state == "answered" and duration is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.ended), duration)
            if not self.is_over:
                await self.hangup()

    async def _place(self, ring_timeout: float | None) -> None:
        self.state = "calling"
        await self.rtp.open(self.agent.host, self.agent.rtp_ports)
        log.info("calling %s (call %s)", self.remote_uri, self.call_id)
        self.agent.emit(Calling(self.call_id, str(self.remote_uri)))
        if ring_timeout is not None:
            asyncio.get_running_loop().call_later(
                ring_timeout, lambda: self.agent.spawn(self.cancel()))
        target, visited, cseq = self.remote_uri, {self.remote_uri}, 1
        for _ in range(MAX_REDIRECTS + 1):
            response, sent = await self._invite(target, cseq)
            cseq = sent.cseq.number + 1
            if 200 <= response.status < 300:
                await self._confirm(sent, response)
                return
            next_target = self._redirect_target(response, visited)
            if next_target is None:
                self._end(response.status, response.reason, self._who_ended(response))
                return
            visited.add(next_target)
            self.agent.emit(Redirected(self.call_id, response.status, str(next_target)))
            target = next_target
        self._end(response.status, "Too many redirects", "error")

    async def _invite(self, target: SipUri, cseq: int) -> tuple[Response, Request]:
        peers = await self.agent.targets(target)
        self.peer_host = peers[0].host
        self._sdp_version += 1
        self._offer = make_offer(self.agent.codecs, self._media_host(), self.rtp.port,
                                 self._session_id, self._sdp_version)
        invite = self.agent.new_request("INVITE", target, to=Address(uri=self.remote_uri),
                                        call_id=self.call_id, from_tag=self.local_tag,
                                        cseq=cseq)
        invite.headers.add("Contact", self.agent.contact_text())
        invite.headers.add("Allow", self.agent.policy.allow)
        invite.headers.add("Content-Type", SDP_TYPE)
        invite.body = bytes(self._offer)
        self._got_provisional = False
        return await self.agent.send_request(invite, peers, self._on_provisional,
                                             self._on_invite_started)

    def _who_ended(self, response: Response) -> str:
        if isinstance(response, LocalResponse):
            return "error"
        return "local" if self._cancel_requested and response.status == 487 else "remote"

    def _on_invite_started(self, invite: Request, key: TransactionKey, peer: Peer) -> None:
        self.invite, self.invite_key, self.invite_peer = invite, key, peer
        self._cancel_sent = False

    def _on_provisional(self, response: Response) -> None:
        if response.status == 100:
            return
        self._got_provisional = True
        if self.is_over:
            self._send_cancel()
            return
        if response.status in (180, 183):
            self.state = "ringing"
            self.agent.emit(Ringing(self.call_id, response.status))
        else:
            self.agent.emit(Progress(self.call_id, response.status, response.reason))
        if self._cancel_requested:
            self._send_cancel()

    def _redirect_target(self, response: Response, visited: set[SipUri]) -> SipUri | None:
        if self._cancel_requested:
            return None
        return redirect_target(response, visited)

    async def _confirm(self, invite: Request, response: Response) -> None:
        """ACK a 2xx; the call is answered, or, when it was given up meanwhile, ended by BYE."""
        self.dialog = Dialog.from_uac(invite, response)
        self.agent.bind_dialog(self, self.dialog.key)
        ack = self.dialog.create_ack(invite.cseq.number)
        peer = (await self.agent.resolve(self.dialog.next_hop))[0]
        self._ack = (self.agent.send_stateless(ack, peer), peer)
        if self.is_over:  # answered after the user gave up: hang up at once
            await self._send_bye()
            return
        try:
            answer = SessionDescription.parse(response.body)
            self.media = read_answer(answer, self.agent.codecs)
            self.peer_codecs = known_codecs(answer)
        except SdpError as error:
            await self._bye(error.status, error.reason)
            return
        self._mark_answered(str(response.to_address.uri))
        if self._cancel_requested:
            await self.hangup()

    def repeat_ack(self, response: Response) -> None:
        """A 2xx came again: our ACK was lost (RFC 3261 13.2.2.4)."""
        if self._ack is not None:
            self.agent.resend(*self._ack)

    async def cancel(self) -> None:
        """Give up an unanswered outgoing call. The CANCEL waits for a provisional response
        (RFC 3261 9.1); the call ends when the 487 arrives."""
        if self.direction != "outgoing" or self.state not in ("calling", "ringing"):
            return
        self._cancel_requested = True
        if self._got_provisional:
            self._send_cancel()
        else:
            # No CANCEL before a provisional (RFC 3261 9.1), but the user stops waiting now;
            # a late provisional still gets its CANCEL, a late 2xx its ACK and BYE.
            self._end(408, "No response before the timeout", "local")

    def _send_cancel(self) -> None:
        if self._cancel_sent or self.invite is None or self.invite_peer is None:
            return
        self._cancel_sent = True
        self.agent.start_transaction(make_cancel(self.invite), self.invite_peer)
        if self.invite_key is not None:
            self.agent.layer.expect_final_within(self.invite_key, self.agent.now(),
                                                 self.agent.config.timers.b)

    # --- incoming ----------------------------------------------------------------------------

    def _respond(self, status: int, reason: str | None = None, body: bytes = b"",
                 extra: Headers | None = None) -> None:
        assert self.invite is not None and self.invite_key is not None
        response = make_response(self.invite, status, reason, to_tag=self.local_tag,
                                 extra=extra, body=body)
        self.agent.respond(self.invite_key, response)

    def _dialog_for_incoming(self) -> Dialog:
        if self.dialog is None:
            assert self.invite is not None
            self.dialog = Dialog.from_uas(self.invite, self.local_tag, self.agent.contact())
            self.agent.bind_dialog(self, self.dialog.key)
        return self.dialog

    async def ring(self) -> None:
        if self.state != "incoming":
            return
        self._dialog_for_incoming()
        self._respond(180, extra=Headers([("Contact", self.agent.contact_text())]))
        self.state = "ringing"
        self.agent.emit(Ringing(self.call_id, 180))

    async def answer(self) -> None:
        if self.state not in ("incoming", "ringing"):
            return
        assert self.invite is not None
        await self.rtp.open(self.agent.host, self.agent.rtp_ports)
        try:
            body = self._answer_sdp(self.invite.body)
        except SdpError as error:
            self._respond(error.status, error.reason)
            self._end(error.status, error.reason, "local")
            return
        self._dialog_for_incoming()
        extra = self.agent.capabilities()
        extra.add("Content-Type", SDP_TYPE)
        self._respond(200, body=body, extra=extra)
        self._mark_answered(str(self.invite.from_address.uri))

    def _answer_sdp(self, offer_body: bytes) -> bytes:
        """Our SDP for a 2xx: an answer to their offer, or our offer when they made none."""
        self._sdp_version += 1
        codecs = self.agent.codecs
        if not offer_body:
            self._offer = make_offer(codecs, self._media_host(), self.rtp.port, self._session_id,
                                     self._sdp_version)
            return bytes(self._offer)
        offer = SessionDescription.parse(offer_body)
        answer, self.media = answer_offer(offer, codecs, self._media_host(), self.rtp.port,
                                          self._session_id, self._sdp_version)
        if not self.peer_codecs:
            self.peer_codecs = known_codecs(offer)
        if self.stream is not None:
            self.stream.update(self.media)  # a re-INVITE: hold, resume, new address
        return bytes(answer)

    async def reject(self, status: int = 486, reason: str | None = None) -> None:
        if self.state not in ("incoming", "ringing"):
            return
        self._respond(status, reason)
        response_reason = reason or reason_phrase(status)
        self._end(status, response_reason, "local")

    async def redirect(self, target: str, status: int = 302) -> None:
        if self.state not in ("incoming", "ringing"):
            return
        self._respond(status, extra=Headers([("Contact", f"<{target}>")]))
        self._end(status, reason_phrase(status), "local")

    def on_cancel(self) -> None:
        if self.state in ("incoming", "ringing"):
            self._respond(487)
            self._end(487, "Request Terminated", "remote")

    def on_ack(self, ack: Request) -> None:
        if self.media is None and ack.body and self._offer is not None:
            with contextlib.suppress(SdpError):
                self.media = read_answer(SessionDescription.parse(ack.body),
                                         self.agent.codecs)
                self._start_media()
        if self.dialog is not None:
            self.dialog.state = "confirmed"

    def ack_missing(self) -> None:
        if not self.is_over:
            self.agent.spawn(self._bye(408, "No ACK for our 200 OK"))

    # --- inside the dialog ---------------------------------------------------------------------

    def on_request(self, request: Request, key: TransactionKey) -> None:
        assert self.dialog is not None
        status = self.dialog.accept_remote_request(request)
        if status is not None:
            self.agent.respond(key, make_response(request, status, to_tag=self.local_tag))
            return
        if request.method == "BYE":
            self.agent.respond(key, make_response(request, 200))
            self._end(200, "Remote hangup", "remote")
        elif request.method == "INVITE":
            self._answer_reinvite(request, key)
        else:  # INFO, OPTIONS
            self.agent.respond(key, make_response(request, 200))
            digit = _info_digit(request)
            if digit is not None:
                self.agent.emit(Dtmf(self.call_id, digit, "info"))

    def _answer_reinvite(self, request: Request, key: TransactionKey) -> None:
        was_held = self.media is not None and self.media.direction in ("recvonly", "inactive")
        try:
            body = self._answer_sdp(request.body)
        except SdpError as error:
            self.agent.respond(key, make_response(request, error.status, error.reason))
            return
        held = self.media is not None and self.media.direction in ("recvonly", "inactive")
        if held != was_held:
            self.agent.emit(Hold(self.call_id, held, "remote"))
        extra = Headers([("Contact", self.agent.contact_text()), ("Content-Type", SDP_TYPE)])
        self.agent.respond(key, make_response(request, 200, extra=extra, body=body))

    async def hangup(self) -> None:
        """End the call whatever its state: BYE, CANCEL or a 603 as fits."""
        if self.is_over:
            return
        if self.state == "answered":
            await self._bye(200, "Local hangup")
        elif self.direction == "outgoing":
            await self.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.ended), self.agent.config.timers.b)
            if not self.is_over:
                self._end(487, "Cancelled", "local")
        else:
            await self.reject(603)

    async def fail(self, reason: str, status: int = 500) -> None:
        """End the call because something failed here (media, a file, a socket), telling
        the peer as its state allows: BYE once answered, CANCEL while our INVITE is pending,
        ``status`` to an INVITE we have not answered. The ``ended`` event says by "error"."""
        if self.is_over:
            return
        log.warning("call %s failed locally: %s", self.call_id, reason)
        if self.state in ("answered", "ending"):
            await self._bye(status, reason, by="error")
        elif self.direction == "outgoing" and self.state in ("calling", "ringing"):
            self._cancel_requested = True  # a late 2xx gets its ACK and BYE (_confirm)
            if self._got_provisional:
                self._send_cancel()
            self._end(status, reason, "error")
        elif self.direction == "incoming" and self.state in ("incoming", "ringing"):
            self._respond(status, reason)
            self._end(status, reason, "error")
        else:
            self._end(status, reason, "error")

    def abandon(self, reason: str) -> None:
        """End the call here without waiting any longer for the peer (closing the agent)."""
        if not self.is_over:
            self._end(200 if self.answered_at is not None else 487, reason, "local")

    async def _bye(self, status: int, reason: str, by: str = "local") -> None:
        if self.dialog is None or self.is_over:
            self._end(status, reason, by)
            return
        self.state = "ending"
        await self._send_bye(status if by == "error" else None, reason)
        self._end(status, reason, by)

    async def _send_bye(self, cause: int | None = None, reason: str = "") -> None:
        """BYE; after a local failure it says why in a Reason header (RFC 3326)."""
        assert self.dialog is not None
        bye = self.dialog.create_request("BYE")
        if cause is not None:
            text = reason.replace("\\", "").replace('"', "'")[:120]
            bye.headers.add("Reason", f'SIP;cause={cause};text="{text}"')
        try:
            peers = await self.agent.resolve(self.dialog.next_hop)
            await self.agent.send_request(bye, peers)
        except (ResolutionError, SipError, OSError):
            pass

    # --- shared ------------------------------------------------------------------------------

    def _mark_answered(self, peer: str) -> None:
        self._stop_unanswered_timer()
        self.state = "answered"
        self.answered_at = time.monotonic()
        if not self.answered.done():
            self.answered.set_result(True)
        log.info("call %s answered by %s, codec %s", self.call_id, peer, self.codec)
        self.agent.emit(Answered(self.call_id, peer, self.codec))
        self._start_media()

    def _start_media(self) -> None:
        """Audio flows once both the call is answered and the codec is agreed."""
        if self.stream is not None or self.media is None or self.state != "answered" \
                or not self.agent.config.media:
            return
        factory = self.agent.config.port_factory
        try:
            source, sink = factory(self) if factory else self.agent.config.audio.ports()
            self.stream = MediaStream(self.rtp, self.media, source, sink,
                                      rtcp_interval=self.agent.config.rtcp_interval)
            self.stream.on_dtmf = lambda digit: self.agent.emit(
                Dtmf(self.call_id, digit, "rfc4733"))
            self.stream.rtp_timeout = self.agent.config.rtp_timeout
            self.stream.on_inactive = self._media_stopped
            self.stream.on_failure = self._media_failed
            self.stream.start()
        except Exception as error:  # noqa: BLE001  (whatever broke, the peer must hear BYE)
            self.agent.spawn(self.fail(f"media could not start: {_describe(error)}"))

    def _media_failed(self, error: BaseException) -> None:
        """The stream stopped itself: its source or sink raised (device lost, disk full)."""
        self.agent.spawn(self.fail(f"media failed: {_describe(error)}"))

    def _media_stopped(self, seconds: float) -> None:
        self.agent.emit(MediaTimeout(self.call_id, round(seconds, 1)))
        if self.agent.config.hangup_on_rtp_timeout and self.state == "answered":
            self.agent.spawn(self._bye(408, f"No RTP for {seconds:.0f} s"))

    async def hold(self) -> None:
        """Put the peer on hold: a re-INVITE offering sendonly (RFC 3264 8.4)."""
        await self._reoffer("sendonly")

    async def resume(self) -> None:
        await self._reoffer("sendrecv")

    async def renegotiate(self, codecs: list[str]) -> None:
        """Re-offer with only ``codecs`` (a conference moving everybody to a shared codec)."""
        direction = self.media.direction if self.media else "sendrecv"
        await self._reoffer(direction, codecs)

    async def _reoffer(self, direction: str, codecs: list[str] | None = None) -> None:
        if self.state != "answered" or self.dialog is None:
            raise SipError("Hold, resume and renegotiation need an answered call")
        codecs = codecs or list(self.agent.codecs)
        self._sdp_version += 1
        self._offer = make_offer(codecs, self._media_host(), self.rtp.port,
                                 self._session_id, self._sdp_version, direction)
        reinvite = self.dialog.create_request("INVITE", bytes(self._offer), SDP_TYPE)
        response, sent = await self.agent.send_request(
            reinvite, await self.agent.resolve(self.dialog.next_hop))
        if not 200 <= response.status < 300:
            raise SipError(f"re-INVITE refused: {response.status} {response.reason}")
        self.dialog.refresh_from_response(response)  # a 2xx may move the target (12.2.1.2)
        ack = self.dialog.create_ack(sent.cseq.number)
        self.agent.send_stateless(ack, (await self.agent.resolve(self.dialog.next_hop))[0])
        held_before = self.media is not None and self.media.direction != "sendrecv"
        self.media = read_answer(SessionDescription.parse(response.body), codecs)
        if self.stream is not None:
            self.stream.update(self.media)
        if held_before != (direction != "sendrecv"):
            self.agent.emit(Hold(self.call_id, direction != "sendrecv", "local"))

    async def send_dtmf(self, digits: str) -> str:
        """Send digits as RFC 4733 events, or by SIP INFO (application/dtmf-relay) when the
        peer did not negotiate telephone-event or the agent is set to; returns the method."""
        for digit in digits:
            event_code(digit)  # ValueError before anything is sent
        method = self.agent.config.dtmf_method
        if method != "info" and self.stream is not None and self.stream.send_dtmf(digits):
            self.agent.emit(DtmfSent(self.call_id, digits.upper(), "rfc4733"))
            return "rfc4733"
        if method == "rfc4733":
            raise SipError("The peer did not negotiate telephone-event")
        for digit in digits:
            await self._info_digit(digit)
            self.agent.emit(DtmfSent(self.call_id, digit.upper(), "info"))
        return "info"

    async def _info_digit(self, digit: str) -> None:
        if self.dialog is None or self.state != "answered":
            raise SipError("DTMF needs an answered call")
        info = self.dialog.create_request("INFO", f"Signal={digit}\r\nDuration=100\r\n".encode(),
                                          DTMF_RELAY)
        await self.agent.send_request(info, await self.agent.resolve(self.dialog.next_hop))

    def _stop_unanswered_timer(self) -> None:
        if self._unanswered_timer is not None:
            self._unanswered_timer.cancel()
            self._unanswered_timer = None

    def _end(self, status: int, reason: str, by: str) -> None:
        if self.is_over:
            return
        self.state = "ended"
        self.ended_at = time.monotonic()
        self._stop_unanswered_timer()
        if self.dialog is not None:
            self.dialog.state = "terminated"
        stats = None
        if self.stream is not None:
            self.stream.stop()
            stats = self.stream.snapshot().to_json()
        self.rtp.close()
        duration = time.monotonic() - self.answered_at if self.answered_at else 0.0
        event = Ended(self.call_id, status, reason, by, round(duration, 3), stats)
        log.info("call %s ended: %d %s (by %s, %.1f s)", self.call_id, status, reason, by,
                 duration)
        if not self.answered.done():
            self.answered.set_result(False)
        if not self.ended.done():
            self.ended.set_result(event)
        self.agent.forget(self)
        self.agent.emit(event)


def _describe(error: BaseException) -> str:
    """An error in one line for a reason phrase: OSError's text with its file name."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return str(error) or type(error).__name__


def _info_digit(request: Request) -> str | None:
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


def redirect_target(response: Response, visited: set[SipUri]) -> SipUri | None:
    """The best Contact of a 3xx not tried yet: q-values high to low, then their order
    (RFC 3261 8.1.3.4); ``visited`` is what protects against redirect loops."""
    if not 300 <= response.status < 400:
        return None
    try:
        contacts = response.contacts
    except ParseError:
        return None
    ranked = sorted(enumerate(contacts), key=lambda item: (-_q(item[1]), item[0]))
    for _, contact in ranked:
        if isinstance(contact.uri, SipUri) and contact.uri not in visited:
            return contact.uri
    return None


def _q(contact: Address) -> float:
    try:
        return float(contact.param("q") or 1.0)
    except ValueError:
        return 0.0
