"""One call of the public API: a thin shell over the core's call (``softphone.core.call``).

The core holds every state (the call's, the dialog's, offer/answer) and decides every
message; this object gives it what only the shell has: the call's RTP sockets and media
stream, and coroutines and futures for scripts (``answered`` and ``ended`` to await,
``hangup()``, ``hold()`` ... that return once the core says how it went).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from softphone.core.call import CoreCall
from softphone.core.events import Completed
from softphone.events import Dtmf, DtmfSent, Ended, MessageSent, TransferProgress
from softphone.media.diagnosis import CallFacts, diagnose
from softphone.media.ports import AudioSink, AudioSource, Discard, Silence, Switch, Tee
from softphone.media.stream import MediaStream
from softphone.media.voice import Conversation
from softphone.rtp.dtmf import event_code
from softphone.sdp.negotiation import NegotiatedMedia
from softphone.sip import Request, parse_sip_uri
from softphone.sip.dialog import Dialog
from softphone.sip.errors import SipError
from softphone.sip.uri import URI
from softphone.transport.rtp import RtpEndpoint

if TYPE_CHECKING:
    from softphone.ua.agent import UserAgent

log = logging.getLogger("softphone.call")
DTMF_RELAY = "application/dtmf-relay"


class Call:
    def __init__(self, agent: UserAgent, core_call: CoreCall,
                 rtp: RtpEndpoint | None = None) -> None:
        self.agent = agent
        self.core_call = core_call
        self.handle = core_call.handle
        self.rtp = rtp or RtpEndpoint(agent.config.impairment)
        self.stream: MediaStream | None = None
        self.conversation: Conversation | None = None  # with AgentConfig.voice_timing
        loop = asyncio.get_running_loop()
        self.answered: asyncio.Future[bool] = loop.create_future()
        self.ended: asyncio.Future[Ended] = loop.create_future()
        self.created_at = time.monotonic()
        self.answered_at: float | None = None  # time.monotonic(), for views and summaries
        self.ended_at: float | None = None
        self._answering = False
        self._early_source: AudioSource | None = None  # what our 183 plays (early media)
        self._switch: Switch | None = None  # the stream's source until the answer
        self._main_source: AudioSource | None = None  # the call's own, after the answer
        self.forks: list[Call] = []
        # transfer: the call we placed because our peer REFERred us (transferee), and the
        # call of ours an incoming INVITE with Replaces took over (RFC 3891)
        self.transferred: asyncio.Future[Call] = loop.create_future()
        self.replaces: Call | None = None  # other phones' answers, kept (agent.call(keep_forks))

    # --- what the core knows -----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.core_call.call_id

    @property
    def direction(self) -> str:
        return self.core_call.direction

    @property
    def remote_uri(self) -> URI:
        """Who the call is with: the URI we called, or the caller's From (any scheme)."""
        return self.core_call.remote_uri

    @property
    def local_tag(self) -> str:
        return self.core_call.local_tag

    @property
    def state(self) -> str:
        """incoming, calling, ringing, answered, ending or ended."""
        return self.core_call.state.value

    @property
    def dialog(self) -> Dialog | None:
        return self.core_call.dialog

    @property
    def invite(self) -> Request | None:
        """The INVITE that made the call: theirs, or ours as last sent."""
        if self.core_call.request is not None:
            return self.core_call.request
        exchange = self.core_call.invite
        return exchange.sent if exchange is not None else None

    @property
    def media(self) -> NegotiatedMedia | None:
        session = self.core_call.session
        return session.media if session is not None else None

    @property
    def peer_codecs(self) -> list[str]:
        """The codecs the peer listed in its offer or answer."""
        session = self.core_call.session
        return list(session.peer_codecs) if session is not None else []

    @property
    def codec(self) -> str | None:
        return self.media.description if self.media else None

    @property
    def is_over(self) -> bool:
        return self.core_call.is_over

    @property
    def succeeded(self) -> bool:
        """Answered, and not ended by a local failure (media, a file, a socket)."""
        if self.answered_at is None:
            return False
        ended = self.ended
        return not (ended.done() and not ended.cancelled() and ended.result().by == "error")

    # --- the API -------------------------------------------------------------------------------

    def _act(self, action: str, *arguments: object) -> None:
        """Give the core an API input for this call now, then let the shell transmit."""
        getattr(self.agent.core, action)(self.handle, self.agent.now(), *arguments)
        self.agent.transmit()

    async def ring(self) -> None:
        if self.is_over or self.state not in ("incoming", "ringing"):
            return
        self._act("ring")

    async def answer(self) -> None:
        """Answer (with 200 OK and our SDP). A call that ended meanwhile is left alone."""
        if self.is_over or self._answering or self.state == "answered":
            return
        self._answering = True
        port = await self._open_rtp()
        public = await self.agent.media_address(self.rtp) if self.agent.config.media else None
        if not self.is_over:
            self._act("answer", port, None, public)

    async def early_media(self, source: AudioSource | None = None) -> None:
        """Send 183 Session Progress with our SDP and start media before answering (RFC
        3960): ``source`` plays (an announcement, a ringback of our own), else the call's
        own audio; ``answer()`` later switches to the call's own. Reliable (PRACKed) when
        the caller supports 100rel."""
        if self.is_over or self.state == "answered" or self._early_source is not None:
            return
        self._early_source = source or Silence()
        port = await self._open_rtp()
        public = await self.agent.media_address(self.rtp) if self.agent.config.media else None
        if not self.is_over:
            self._act("early_media", port, public)

    async def reject(self, status: int = 486, reason: str | None = None) -> None:
        if not self.is_over:
            self._act("reject", status, reason)

    async def redirect(self, target: str, status: int = 302) -> None:
        if not self.is_over:
            self._act("redirect", target, status)

    async def cancel(self) -> None:
        """Give up an unanswered outgoing call (CANCEL once a provisional came)."""
        if not self.is_over:
            self._act("cancel")

    async def hangup(self) -> None:
        """End the call whatever its state (BYE, CANCEL or 603) and wait until it is over."""
        if self.is_over:
            return
        self._act("hangup")
        await asyncio.shield(self.ended)

    async def fail(self, reason: str, status: int = 500) -> None:
        """End the call for a local failure, telling the peer why (BYE with a Reason once
        answered, CANCEL or ``status`` before); the ended event says by "error"."""
        if self.is_over:
            return
        self._act("fail", reason, status)
        await asyncio.shield(self.ended)

    def abandon(self, reason: str) -> None:
        """End the call here without waiting for the peer any longer (closing the agent)."""
        if not self.is_over:
            self._act("abandon", reason)

    async def hold(self) -> None:
        """Put the peer on hold: a re-INVITE offering sendonly (RFC 3264 8.4)."""
        await self._reoffer("sendonly", None)

    async def resume(self) -> None:
        await self._reoffer("sendrecv", None)

    async def renegotiate(self, codecs: list[str]) -> None:
        """Re-offer with only ``codecs`` (a conference moving everybody to a shared codec)."""
        await self._reoffer(None, tuple(codecs))

    async def update(self, direction: str | None = None,
                     codecs: list[str] | None = None) -> None:
        """A new offer in an UPDATE (RFC 3311) rather than a re-INVITE: in the answered
        call, or before the answer once early media agreed a session (``direction``
        "sendonly" holds, "sendrecv" resumes)."""
        done = await self._completion(lambda now: self.agent.core.update(
            self.handle, now, direction, tuple(codecs) if codecs else None))
        if not done.ok:
            raise SipError(f"UPDATE refused: {done.status} {done.reason}")

    async def _reoffer(self, direction: str | None, codecs: tuple[str, ...] | None) -> None:
        if self.state != "answered":
            raise SipError("Hold, resume and renegotiation need an answered call")
        done = await self._completion(lambda now: self.agent.core.reinvite(
            self.handle, now, direction, codecs))
        if not done.ok:
            raise SipError(f"re-INVITE refused: {done.status} {done.reason}")

    async def _completion(self, start: Callable[[float], int]) -> Completed:
        return await self.agent.request(start)

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
            if self.state != "answered":
                raise SipError("DTMF needs an answered call")
            await self._completion(self._info(f"Signal={digit}\r\nDuration=100\r\n".encode()))
            self.agent.emit(DtmfSent(self.call_id, digit.upper(), "info"))
        return "info"

    async def message(self, text: str) -> MessageSent:
        """Send ``text`` in a MESSAGE inside this (answered) call, as chat beside the
        audio; the result says whether the peer took it."""
        if self.state != "answered":
            raise SipError("A MESSAGE inside a call needs the call answered")
        done = await self._completion(
            lambda now: self.agent.core.call_message(self.handle, now, text))
        result = MessageSent(str(self.remote_uri), done.status, done.reason, self.call_id)
        self.agent.emit(result)
        return result

    async def transfer(self, target: str | Call | None = None, *,
                       to: Call | None = None) -> TransferProgress:
        """Transfer our peer (RFC 3515 REFER): blind to the URI ``target``, or attended
        (``to=other_call``, or that call as ``target``) to the peer of another answered call
        of ours, which the transferee's call then replaces (RFC 3891). Returns the last
        word: status 200 when the transferee reached the target (our call then ends), the
        target's failure, or the REFER's refusal."""
        if self.state != "answered":
            raise SipError("A transfer needs an answered call")
        target = to if to is not None else target
        if target is None:
            raise SipError("A transfer needs a target: a URI, or to=another call")
        if isinstance(target, Call):
            other = target.handle
            done = await self._completion(lambda now: self.agent.core.transfer(
                self.handle, now, replacing=other))
        else:
            uri = parse_sip_uri(target)
            done = await self._completion(lambda now: self.agent.core.transfer(
                self.handle, now, uri))
        return TransferProgress(self.call_id, done.status, done.reason, True)

    def _info(self, body: bytes) -> Callable[[float], int]:
        return lambda now: self.agent.core.info(self.handle, now, body, DTMF_RELAY)

    # --- what the shell does for the core --------------------------------------------------

    async def _open_rtp(self) -> int:
        if not self.agent.config.media:
            from softphone.ua.agent import DISCARD_PORT

            return DISCARD_PORT
        if self.rtp.port:
            return self.rtp.port
        return await self.rtp.open(self.agent.host, self.agent.rtp_ports)

    def note_answered(self) -> None:
        if self.core_call.answered_at is not None and self.answered_at is None:
            self.answered_at = time.monotonic()
            if self.conversation is not None:
                self.conversation.answered_at = self.answered_at
            if self.stream is not None:  # early media gives way to the call's own audio
                self.stream.listen_only = False
                if self._switch is not None and self._main_source is not None:
                    self._switch.set(self._main_source)
                    self._main_source = None
            if not self.answered.done():
                self.answered.set_result(True)

    def media_ready(self, media: NegotiatedMedia) -> None:
        """The core agreed a session: start the stream, or change it (hold, a new codec)."""
        if not self.agent.config.media:
            return
        if self.stream is not None:
            self.stream.update(media)
            return
        factory = self.agent.config.port_factory
        try:
            source, sink = factory(self) if factory else self.agent.config.audio.ports()
            early = self.core_call.answered_at is None
            if early and self._early_source not in (None, source):  # our 183's, till answer
                assert self._early_source is not None
                self._main_source, self._switch = source, Switch(self._early_source)
                source = self._switch
            if self.agent.config.voice_timing:  # what is sent, early media included
                source, sink = self._timed(source, sink)
            self.stream = MediaStream(self.rtp, media, source, sink,
                                      rtcp_interval=self.agent.config.rtcp_interval)
            # the network's ringback or announcement is heard; we send from the answer on
            self.stream.listen_only = early and self.direction == "outgoing"
            self.stream.on_dtmf = lambda digit: self.agent.emit(
                Dtmf(self.call_id, digit, "rfc4733"))
            self.stream.on_failure = self._media_failed
            self.stream.start()
        except Exception as error:  # noqa: BLE001  (whatever broke, the peer must hear BYE)
            self.agent.spawn(self.fail(f"media could not start: {_describe(error)}"))

    def _timed(self, source: AudioSource, sink: AudioSink) -> tuple[AudioSource, AudioSink]:
        """The ports with voice activity taken on both ways (``conversation``); the heard
        side replaces a Discard, so what arrives is decoded."""
        conversation = self.conversation = Conversation(answered_at=self.answered_at)
        timed_source = Switch(source)
        timed_source.taps.append(conversation.said)
        heard = conversation.heard if isinstance(sink, Discard) else Tee(sink,
                                                                          conversation.heard)
        return timed_source, heard

    def _media_failed(self, error: BaseException) -> None:
        """The stream stopped itself: its source or sink raised (device lost, disk full)."""
        self.agent.spawn(self.fail(f"media failed: {_describe(error)}"))

    def last_packet(self, now: float) -> float:
        """When RTP last arrived, on the core's clock (``now`` is that clock's present)."""
        if self.stream is None:
            return now
        return now - (time.monotonic() - self.stream.last_rtp)

    def gone(self, ended: Ended) -> None:
        """The core ended the call: stop the media, publish the end with its RTP figures."""
        self.ended_at = time.monotonic()
        if self._main_source is not None:  # ended during early media: never switched to
            self._main_source.close()
        if self.stream is not None:
            self.stream.stop()
            ended = replace(ended, rtp=self.stream.snapshot().to_json())
        ended = replace(ended, diagnosis=diagnose(self._facts(ended)))
        self.rtp.close()
        if not self.answered.done():
            self.answered.set_result(False)
        if not self.ended.done():
            self.ended.set_result(ended)
        self.agent.emit(ended)


    def _facts(self, ended: Ended) -> CallFacts:
        """What the call's diagnosis looks at."""
        media = self.media
        return CallFacts(ended.status, ended.reason, ended.by, self.answered_at is not None,
                         ended.duration, media.direction if media is not None else "sendrecv",
                         ended.rtp, self.stream.heard if self.stream is not None else None,
                         self.agent.config.credentials is not None)


def _describe(error: BaseException) -> str:
    """An error in one line for a reason phrase: OSError's text with its file name."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return str(error) or type(error).__name__
