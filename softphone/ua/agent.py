"""UserAgent: the public Python API, and the asyncio shell around the sans-IO core.

Everything SIP lives in ``softphone.core.UserAgentCore``. The shell does what the core
cannot: it owns the sockets (one registry of transports), the clock (one ``loop.call_at``
for the core's next deadline), DNS (answering the core's ResolveNeeded), the RTP sockets and
media streams (started and changed by the core's MediaReady), and the futures the API's
coroutines await (resolved by the core's Completed and the calls' events). As aioquic's
asyncio protocol does: feed inputs in, send what the core wants sent, re-arm the timer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

from softphone import __version__
from softphone.core.agent import (
    CoreConfig,
    Credentials,
    ListeningPoint,
    UserAgentCore,
    options_result,
    transport_for,
)
from softphone.core.events import (
    CallCreated,
    CallGone,
    Completed,
    CoreEvent,
    MediaCheck,
    MediaReady,
    ResolveNeeded,
    TransferNeeded,
)
from softphone.core.guard import GuardSettings
from softphone.core.session_timer import SessionTimerSettings
from softphone.events import (
    Answered,
    Event,
    Listening,
    MessageSent,
    OptionsResult,
    RegistrationFailed,
)
from softphone.media.codecs import usable_codecs
from softphone.media.device import SoundDevice
from softphone.media.ports import (
    AudioSink,
    AudioSource,
    BothWays,
    Discard,
    Echo,
    Silence,
    Tone,
)
from softphone.media.wav import WavSink, WavSource
from softphone.sdp.negotiation import CODECS, DEFAULT_CODECS
from softphone.sip import Headers, ParseError, Request, Response, SipUri, parse_sip_uri
from softphone.sip.errors import LocalProtocolError, SipError
from softphone.sip.headers import Address
from softphone.sip.transaction import Peer, TimerSettings
from softphone.sip.validate import EndpointPolicy
from softphone.transport.base import ListenError, Transport
from softphone.transport.resolver import ResolutionError, make_dns_resolver, resolve
from softphone.transport.route import default_address, source_address_toward
from softphone.transport.rtp import DEFAULT_RTP_PORTS, Impairment, PortRange, RtpEndpoint
from softphone.transport.stun import parse_server
from softphone.transport.tcp import TcpTransport
from softphone.transport.tls import TlsSettings, TlsTransport
from softphone.transport.udp import UdpTransport
from softphone.ua.call import Call
from softphone.ua.conference import Conference
from softphone.ua.registration import MwiSubscription, Registration, RegistrationError

log = logging.getLogger("softphone.agent")
sip_log = logging.getLogger("softphone.sip")


@dataclass(frozen=True)
class AudioConfig:
    """Where a call's audio comes from and goes to (no sound device yet: silence/discard)."""

    play: str | None = None      # a WAV file sent to the peer
    tone: float | None = None    # a sine of this many Hz sent to the peer
    record: str | None = None    # a WAV file of what the peer sends
    record_both: bool = False    # ... stereo instead: left what we send, right what we hear
    echo: bool = False           # send back what arrives
    device: str | int | None = None  # sound device name or index (None: the default one)
    device_in: bool = False      # the microphone feeds the call where no file or tone does
    device_out: bool = False     # the speaker plays the call where no recording takes it
    capture_device: str | int | None = None   # the microphone's device, if not ``device``
    playback_device: str | int | None = None  # the speaker's device, if not ``device``
    aec: bool = True  # echo cancellation and noise suppression on the sound device

    def prepare(self, rates: set[int]) -> None:
        """Decode and resample the file to play at every rate a call may use, now: the first
        call would otherwise stall the event loop (and every other call) while it does."""
        if self.play is not None:
            source = WavSource(self.play)
            for rate in rates:
                source.prepare(rate)

    def ports(self) -> tuple[AudioSource, AudioSink]:
        if self.echo:
            echo = Echo()
            return echo, echo
        card = SoundDevice(self.device, capture_device=self.capture_device,
                           playback_device=self.playback_device,
                           echo_cancellation=self.aec and self.device_in and self.device_out) \
            if self.device_in or self.device_out else None
        source: AudioSource = Silence()
        if self.play is not None:
            source = WavSource(self.play)
        elif self.tone is not None:
            source = Tone(self.tone)
        elif self.device_in and card is not None:
            source = card
        sink: AudioSink = Discard()
        if self.record is not None and self.record_both:
            both = BothWays(WavSink(self.record, channels=2))
            return both.tap(source), both
        if self.record is not None:
            sink = WavSink(self.record)
        elif self.device_out and card is not None:
            sink = card
        return source, sink


@dataclass(frozen=True)
class AgentConfig:
    """How the agent presents itself and where it listens."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 5060  # 0 picks a free port (the Listening event says which)
    transport: str = "udp"   # default transport for requests we send
    user: str = "softphone"
    domain: str | None = None  # for From/AOR; defaults to the listening address
    display_name: str | None = None
    credentials: Credentials | None = None
    outbound_proxy: str | None = None
    codecs: tuple[str, ...] = DEFAULT_CODECS
    timers: TimerSettings = field(default_factory=TimerSettings)
    user_agent: str = f"softphone/{__version__}"
    nameservers: tuple[str, ...] = ()  # DNS servers for RFC 3263; () = the system's
    nameserver_port: int = 53
    # Bounds on calls nobody has answered yet: beyond the count a new one gets 486 Busy Here,
    # and one left ringing this long gets 480 (RFC 3261 13.3.1: a UAS may give up itself).
    max_unanswered_calls: int = 1000
    unanswered_timeout: float = 180.0
    audio: AudioConfig = field(default_factory=AudioConfig)
    media: bool = True  # False: SDP is negotiated but no RTP flows (signalling load tests)
    # voice activity of both directions of every call (Call.conversation): decodes what
    # arrives even when nobody listens; load --voice-timing, and every TestAgent
    voice_timing: bool = False
    # Ports for each call, when AudioConfig cannot say it (test monitors, say).
    port_factory: Callable[[Call], tuple[AudioSource, AudioSink]] | None = None
    dtmf_method: str = "auto"  # auto (RFC 4733 when negotiated, else SIP INFO), rfc4733, info
    rtcp_interval: float = 5.0  # mean seconds between RTCP reports
    rtp_timeout: float | None = None  # seconds without RTP before a media_timeout event
    hangup_on_rtp_timeout: bool = False
    impairment: Impairment | None = None  # tests: seeded loss/jitter on sent RTP
    rtp_ports: tuple[int, int] = DEFAULT_RTP_PORTS  # each call binds an even/odd pair in here
    close_timeout: float = 4.0  # seconds close() waits for the answers to its BYEs
    tls: TlsSettings = field(default_factory=TlsSettings)  # CA, certificate, verification
    stun: str | None = None  # HOST[:PORT] of a STUN server: our public address from it
    keepalive: float | None = None  # seconds between keep-alives on a registration's flow
    srtp: str = "off"  # off, optional (RTP/AVP with keys), mandatory (RTP/SAVP)
    srtp_insecure: bool = False  # SRTP keys also over signalling that is not TLS
    # The address to advertise in Via, Contact and SDP instead of the bound one (a NAT's
    # public address, say); None: the bound address, or on 0.0.0.0 the route's source.
    public_host: str | None = None
    guard: GuardSettings = field(default_factory=GuardSettings)  # --auth, per-source limits
    # RFC 4028: the session interval we propose (0: none of ours) and the least we accept
    session_timer: SessionTimerSettings = field(default_factory=SessionTimerSettings)
    rel100: str = "supported"  # reliable provisional responses (RFC 3262): off, required
    accept_transfers: bool = True  # follow a peer's REFER (False: decline it with 603)
    reuse_port: bool = False  # SO_REUSEPORT on the SIP port: worker processes share it

    def core_config(self, codecs: tuple[str, ...]) -> CoreConfig:
        """What of this configuration the sans-IO core needs (``codecs``: those that load)."""
        return CoreConfig(
            user=self.user, domain=self.domain, display_name=self.display_name,
            credentials=self.credentials, outbound_proxy=self.outbound_proxy,
            transport=self.transport, codecs=codecs, timers=self.timers,
            user_agent=self.user_agent, max_unanswered_calls=self.max_unanswered_calls,
            unanswered_timeout=self.unanswered_timeout, rtp_timeout=self.rtp_timeout,
            hangup_on_rtp_timeout=self.hangup_on_rtp_timeout, public_host=self.public_host,
            keepalive=self.keepalive, srtp=self.srtp, srtp_insecure=self.srtp_insecure,
            guard=self.guard, session_timer=self.session_timer, rel100=self.rel100,
            accept_transfers=self.accept_transfers)


class UserAgent:
    """One SIP user agent (client and server) on one event loop.

    ``async with UserAgent(AgentConfig(...)) as agent:`` binds UDP and TCP on the same port;
    ``agent.call(uri)``, ``agent.register(...)``, ``agent.options(uri)`` act as a client;
    incoming calls arrive on ``agent.incoming`` as Call objects.
    """

    def __init__(self, config: AgentConfig | None = None) -> None:
        self.config = config or AgentConfig()
        self.codecs = _codecs_that_load(self.config.codecs)
        self.core = UserAgentCore(self.config.core_config(self.codecs),
                                  route_source=self._route_source)
        self.transports: dict[str, Transport] = {
            transport.name: transport for transport in (
                UdpTransport(self), TcpTransport(self), TlsTransport(self, self.config.tls))}
        for transport in self.transports.values():
            transport.reuse_port = self.config.reuse_port
        self.rtp_ports = PortRange(*self.config.rtp_ports)
        self.incoming: asyncio.Queue[Call] = asyncio.Queue()
        self.calls: set[Call] = set()
        self.registrations: list[Registration] = []
        self.subscriptions: list[MwiSubscription] = []
        self._by_handle: dict[str, Call] = {}
        # handles by Call-ID (a call's forks, and both ends of a call to oneself, share one):
        # an event naming a Call-ID finds its calls without a scan of every call
        self._handles_by_call_id: dict[str, set[str]] = {}
        self._waiting: dict[int, asyncio.Future[Completed]] = {}
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._tracers: list[Callable[[str, bytes, Peer], None]] = []
        self._timer: asyncio.Handle | None = None
        self._timer_deadline: float | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dns = make_dns_resolver(self.config.nameservers, self.config.nameserver_port) \
            if self.config.nameservers else None
        self._stun_server: tuple[str, int] | None = None

    @property
    def policy(self) -> EndpointPolicy:
        return self.core.policy

    @property
    def udp(self) -> UdpTransport:
        transport = self.transports["udp"]
        assert isinstance(transport, UdpTransport)
        return transport

    # --- life cycle --------------------------------------------------------------------------

    async def _bind_transports(self) -> None:
        """Bind every transport on one port. With an ephemeral port the first transport's
        choice may already be taken for another (a TCP connection's local port, say), so a
        few fresh choices are tried before giving up; a port the user named is tried once."""
        host, wanted = self.config.listen_host, self.config.listen_port
        attempts = 1 if wanted else 8
        for attempt in range(attempts):
            port = wanted
            try:
                for transport in self.transports.values():
                    await transport.start(host, port)
                    port = port or transport.port  # the others on the first one's port
                return
            except OSError as error:
                for transport in self.transports.values():
                    transport.close()
                if attempt == attempts - 1:
                    raise ListenError.of(host, port or wanted, error) from None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.config.media:
            self.config.audio.prepare({CODECS[key].audio_rate for key in self.codecs
                                       if key in CODECS})
        await self._bind_transports()
        for transport in self.transports.values():
            self.core.listen(ListeningPoint(transport.name, transport.host, transport.port,
                                            transport.via, transport.uri_transport,
                                            transport.secure))
        if self.config.stun:
            await self._learn_public_address()
        log.info("listening on %s %s:%d as %s", " and ".join(self.transports), self.host,
                 self.port, self.address_of_record)
        self.emit(Listening("udp", self.host, self.port))

    async def close(self) -> None:
        """Hang up every call and remove every registration, all at once, waiting at most
        ``close_timeout`` for the answers (a dead peer would otherwise hold each BYE for
        64*T1); then close the sockets. Calls still unanswered by then end locally."""
        goodbyes = [asyncio.ensure_future(call.hangup()) for call in list(self.calls)]
        goodbyes += [asyncio.ensure_future(subscription.unsubscribe())
                     for subscription in list(self.subscriptions)]
        goodbyes += [asyncio.ensure_future(registration.unregister())
                     for registration in list(self.registrations)]
        if goodbyes:
            log.info("closing: %d calls and registrations to end", len(goodbyes))
            _, late = await asyncio.wait(goodbyes, timeout=self.config.close_timeout)
            for job in late:
                job.cancel()
            for job in goodbyes:
                if not job.cancelled() and job.done() and job.exception() is not None:
                    log.info("while closing: %s", job.exception())
        for call in list(self.calls):
            call.abandon(f"No answer to our hang-up within {self.config.close_timeout:g} s")
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for transport in self.transports.values():
            transport.close()
        for transport in self.transports.values():
            await transport.wait_closed()

    async def stun_server(self) -> tuple[str, int] | None:
        """The STUN server's address (its name resolved once), or None when none is set."""
        if not self.config.stun:
            return None
        if self._stun_server is None:
            host, port = parse_server(self.config.stun)
            assert self._loop is not None
            infos = await self._loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            self._stun_server = (str(infos[0][4][0]), int(infos[0][4][1]))
        return self._stun_server

    async def _learn_public_address(self) -> None:
        """Our SIP socket's address as the STUN server sees it: the Contact's from now on."""
        try:
            server = await self.stun_server()
            assert server is not None
            host, port = await self.udp.stun.mapped_address(server)
        except OSError as error:
            log.warning("STUN: %s; advertising the local address", error)
            return
        self.core.learn_public("udp", host, port)

    async def media_address(self, rtp: RtpEndpoint) -> tuple[str, int] | None:
        """Where a call's RTP socket is reached from outside, by STUN (None: no STUN)."""
        server = await self.stun_server() if self.config.stun else None
        if server is None:
            return None
        try:
            return await rtp.stun.mapped_address(server)
        except OSError as error:
            log.warning("STUN for RTP: %s; the SDP names the local address", error)
            return None

    async def __aenter__(self) -> UserAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- identity ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.udp.host

    @property
    def port(self) -> int:
        return self.udp.port

    @property
    def address_of_record(self) -> SipUri:
        return self.core.address_of_record

    def advertised_host(self, toward: str | None = None) -> str:
        """The address others reach us at (see UserAgentCore.advertised_host)."""
        return self.core.advertised_host(toward)

    def _route_source(self, toward: str) -> str | None:
        if not toward:
            return default_address(ipv6=":" in self.host)
        return source_address_toward(toward)

    def contact(self, transport: str | None = None, toward: str | None = None) -> Address:
        return self.core.contact(transport, toward)

    def contact_text(self, transport: str | None = None, toward: str | None = None) -> str:
        return self.core.contact_text(transport, toward)

    def local_address(self) -> Address:
        return self.core.local_address()

    def capabilities(self) -> Headers:
        """What OPTIONS answers and every dialog-creating message carries."""
        return self.core.capabilities()

    # --- events ------------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[Event]:
        """A queue that receives every event from now on."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def add_tracer(self, tracer: Callable[[str, bytes, Peer], None]) -> None:
        """``tracer(direction, data, peer)`` sees every SIP message sent and received, raw."""
        self._tracers.append(tracer)

    def trace(self, direction: str, data: bytes, peer: Peer) -> None:
        if sip_log.isEnabledFor(logging.DEBUG):
            first_line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
            sip_log.debug("%s %s %s (%d bytes): %s", direction,
                          "to" if direction == "sent" else "from", peer, len(data), first_line)
        for tracer in self._tracers:
            tracer(direction, data, peer)

    def emit(self, event: Event) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)
        for listener in self._listeners:
            listener(event)

    # --- the shell: inputs in, bytes and events out, one timer -------------------------------

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def message_received(self, message: Request | Response, source: Peer) -> None:
        self.core.receive(message, source, self.now())
        self.transmit()

    def bad_message(self, data: bytes, error: ParseError, source: Peer) -> None:
        """A request that does not parse gets a 400 naming the defect, when it can be built."""
        self.core.receive_garbage(data, error, source)
        self.transmit()

    def transport_failed(self, peer: Peer, reason: str) -> None:
        log.info("%s: %s", peer, reason)
        self.core.transport_failed(peer, reason, self.now())
        self.transmit()

    def connection_lost(self, peer: Peer) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self.core.connection_lost(peer, self.now())
            self.transmit()

    def keepalive_answered(self, peer: Peer) -> None:
        self.core.keepalive_answered(peer, self.now())
        self.transmit()

    def _on_timer(self) -> None:
        self._timer = self._timer_deadline = None
        self.core.handle_timer(self.now())
        self.transmit()

    def transmit(self) -> None:
        """After every input: carry out what the core asks, send what it wants sent, and
        re-arm the one timer for its next deadline. Its requests come first: a call's media
        then starts (and its first packet leaves) before the 200 OK that lets the peer send,
        so a NAT on our side has the mapping before the peer's RTP arrives."""
        while True:
            while (event := self.core.next_event()) is not None:
                self._carry_out(event)
            datagrams = self.core.datagrams_to_send()
            if not datagrams:
                break
            for data, peer in datagrams:
                self.transports[peer.transport].send(data, peer)
        deadline = self.core.get_timer()
        if self._timer is not None:
            if deadline == self._timer_deadline:
                return
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None and self._loop is not None:
            # uvloop's handles do not know their time, so the deadline is kept beside them
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _carry_out(self, event: Event | CoreEvent) -> None:
        if isinstance(event, Event):
            if isinstance(event, Answered):
                for named in self._calls_named(event.call_id):
                    named.note_answered()
            self.emit(event)
        elif isinstance(event, CallCreated):
            self._call_created(event)
        elif isinstance(event, MediaReady | MediaCheck):
            call = self._by_handle.get(event.handle)
            if call is None:
                return
            if isinstance(event, MediaReady):
                call.media_ready(event.media)
            else:
                self.core.media_status(event.handle, call.last_packet(self.now()), self.now())
        elif isinstance(event, CallGone):
            gone = self._forget(event.handle)
            if gone is not None:
                gone.gone(event.ended)
            else:
                self.emit(event.ended)
        elif isinstance(event, ResolveNeeded):
            self.spawn(self._resolve_for_core(event))
        elif isinstance(event, TransferNeeded):
            self.spawn(self._follow_transfer(event))
        elif isinstance(event, Completed):
            waiting = self._waiting.pop(event.request, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(event)

    def _calls_named(self, call_id: str) -> list[Call]:
        return [self._by_handle[handle]
                for handle in self._handles_by_call_id.get(call_id, ())]

    def _keep(self, handle: str, call: Call) -> None:
        self._by_handle[handle] = call
        self._handles_by_call_id.setdefault(call.call_id, set()).add(handle)
        self.calls.add(call)

    def _forget(self, handle: str) -> Call | None:
        """Undo ``_keep``: the call under ``handle``, if there was one, is let go."""
        call = self._by_handle.pop(handle, None)
        if call is not None:
            handles = self._handles_by_call_id[call.call_id]
            handles.discard(handle)
            if not handles:
                del self._handles_by_call_id[call.call_id]
            self.calls.discard(call)
        return call

    def _call_created(self, event: CallCreated) -> None:
        core_call = self.core.calls[event.handle]
        call = Call(self, core_call)
        self._keep(event.handle, call)
        if event.direction == "incoming":
            if core_call.replacing is not None:  # RFC 3891: it takes over a call we have
                call.replaces = self._by_handle.get(core_call.replacing.handle)
                self.spawn(call.answer())
            self.incoming.put_nowait(call)
            return
        first = self._by_handle.get(event.handle.split("#")[0])  # a fork the API keeps
        if first is not None:
            first.forks.append(call)
            call.note_answered()

    async def _follow_transfer(self, event: TransferNeeded) -> None:
        """A REFER we accepted: call its target; the old call's ``transferred`` gives the
        new one. A call that cannot even be placed is the transfer's failure."""
        old = self._by_handle.get(event.handle)
        try:
            new = await self.call(str(event.target), transfer_of=event.handle)
        except (OSError, SipError) as error:
            self.core.transfer_failed(event.handle, self.now(), str(error))
            self.transmit()
            return
        if old is not None and not old.transferred.done():
            old.transferred.set_result(new)

    async def _resolve_for_core(self, event: ResolveNeeded) -> None:
        try:
            peers = await resolve(event.uri, event.transport, self._dns)
        except ResolutionError as error:
            self.core.resolution_failed(event.lookup, str(error), self.now())
        else:
            self.core.resolved(event.lookup, peers, self.now())
        self.transmit()

    def spawn(self, coroutine: Coroutine[object, object, object]) -> asyncio.Task[object]:
        """Run a background job of the agent; close() cancels whatever is left."""
        task: asyncio.Task[object] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def waiting_for(self, request: int) -> asyncio.Future[Completed]:
        """The future Completed(request) will resolve (set before the core can answer)."""
        assert self._loop is not None
        future: asyncio.Future[Completed] = self._loop.create_future()
        self._waiting[request] = future
        return future

    async def completion(self, request: int) -> Completed:
        """Wait for the core's verdict on ``request`` (the transmit that follows an API
        call may already have produced it)."""
        future = self._waiting.get(request)
        if future is None:
            raise LocalProtocolError(f"nothing waits for request {request}")
        return await future

    # --- the API: requests ------------------------------------------------------------------

    def request(self, start: Callable[[float], int]) -> asyncio.Future[Completed]:
        """Start a core request and wait for its Completed, whatever comes first."""
        assert self._loop is not None
        future: asyncio.Future[Completed] = self._loop.create_future()
        request = start(self.now())
        self._waiting[request] = future
        self.transmit()
        return future

    async def targets(self, uri: SipUri) -> list[Peer]:
        """Where a request for ``uri`` goes: the outbound proxy if set, else ``uri`` itself."""
        return await self.resolve(self.core.route_for(uri))

    async def resolve(self, uri: SipUri) -> list[Peer]:
        """RFC 3263 for ``uri`` (raises ResolutionError)."""
        return await resolve(uri, self.config.transport, self._dns)

    def new_request(self, method: str, uri: SipUri, to: Address | None = None,
                    call_id: str | None = None, from_tag: str | None = None,
                    cseq: int = 1) -> Request:
        """An out-of-dialog request from our identity (RFC 3261 8.1.1), without Via."""
        return self.core.new_request(method, uri, to, call_id, from_tag, cseq)

    async def send_request(self, request: Request, peers: list[Peer]) -> tuple[Response, Request]:
        """Send any request (a test's own, in a dialog or out of one) to ``peers`` through the
        core, challenges answered; the final response and the request as last sent."""
        done = await self.request(lambda now: self.core.send(request, peers, now))
        assert done.response is not None and done.sent is not None
        return done.response, done.sent

    async def within(self, timeout: float | None, waiting: Awaitable[Completed]) -> Completed:
        """``waiting``, or a 408 Completed once ``timeout`` passes."""
        try:
            return await asyncio.wait_for(waiting, timeout)
        except TimeoutError:
            return Completed(0, 408, f"No response within {timeout:g} s")

    async def options(self, uri: str, timeout: float | None = None) -> OptionsResult:
        """Ask a peer what it supports, without calling it; ``timeout`` bounds the wait
        (a 408 result) below the transaction's own 64*T1."""
        done = await self.within(timeout, self.request(lambda now: self.core.options(uri, now)))
        result = options_result(uri, done)
        self.emit(result)
        return result

    async def message(self, uri: str, text: str, timeout: float | None = None) -> MessageSent:
        """Send ``text`` to ``uri`` in a MESSAGE (RFC 3428 pager mode, no call); the result
        says whether it was delivered (2xx) or why not. Over UDP a message above 1300 bytes
        is refused (RFC 3428 5: no congestion control there): use TCP or TLS for those."""
        target = parse_sip_uri(uri)
        if len(text.encode()) > MESSAGE_UDP_LIMIT and \
                transport_for(target, self.config.transport) == "udp":
            raise SipError(f"A MESSAGE of {len(text.encode())} bytes needs TCP or TLS: over "
                           f"UDP RFC 3428 allows {MESSAGE_UDP_LIMIT}")
        done = await self.within(timeout, self.request(
            lambda now: self.core.message(target, text, now)))
        result = MessageSent(uri, done.status, done.reason)
        self.emit(result)
        return result

    async def call(self, uri: str, duration: float | None = None,
                   ring_timeout: float | None = None, keep_forks: bool = False,
                   transfer_of: str | None = None) -> Call:
        """Place a call; returns at once with a Call whose ``answered``/``ended`` to await.
        When a forking proxy has several phones answer, the first answer wins and the
        others get ACK and BYE; with ``keep_forks`` they become calls of their own instead
        (``call.forks``: signalling only, the media follows the first answer).
        ``transfer_of``: the handle of the call whose REFER this call follows (the agent
        places such calls itself; see ``Call.transferred``)."""
        target = parse_sip_uri(uri)
        rtp = RtpEndpoint(self.config.impairment)
        port = await rtp.open(self.host, self.rtp_ports) if self.config.media else DISCARD_PORT
        public = await self.media_address(rtp) if self.config.media else None
        placed = self.core.invite(target, self.now(), port, ring_timeout=ring_timeout,
                                  duration=duration, keep_forks=keep_forks,
                                  media_address=public, transfer_of=transfer_of)
        call = Call(self, placed, rtp)
        self._keep(placed.handle, call)
        self.transmit()
        return call

    async def subscribe_mwi(self, target: str | None = None, expires: int = 3600,
                            timeout: float | None = None) -> MwiSubscription:
        """Subscribe to message waiting indication (RFC 3842) at ``target`` (default: our
        address of record, as a PBX's voicemail serves it); ``mwi`` events follow. Raises
        RegistrationError when the server refuses; refreshed until closed."""
        number, request = self.core.subscribe_mwi(target, self.now(), expires)
        waiting = self.waiting_for(request)
        self.transmit()
        done = await self.within(timeout, waiting)
        if not done.ok:
            await self.request(lambda now: self.core.unsubscribe(number, now))
            raise RegistrationError(done.status, done.reason)
        subscription = MwiSubscription(self, number, done.status)
        self.subscriptions.append(subscription)
        return subscription

    def conference(self) -> Conference:
        """A new, empty local conference; ``await conference.add(call)`` joins calls to it."""
        return Conference(self)

    async def register(self, registrar: str, expires: int = 3600, refresh: bool = True,
                       timeout: float | None = None) -> Registration:
        """REGISTER our contact with ``registrar``; raises RegistrationError on failure.
        ``timeout`` bounds the wait for each answer (default: the transaction's 64*T1)."""
        number, request = self.core.register(registrar, self.now(), expires, refresh)
        registration = Registration(self, number, self.core.registrations[number], timeout)
        waiting = self.waiting_for(request)
        self.transmit()
        done = await self.within(timeout, waiting)
        if not done.ok:
            if done.response is None and timeout is not None:
                self.emit(RegistrationFailed(str(registration.aor), done.status, done.reason))
            raise RegistrationError(done.status, done.reason)
        self.registrations.append(registration)
        return registration


DISCARD_PORT = 9  # the port an SDP names when no RTP flows (RFC 863's discard service)
MESSAGE_UDP_LIMIT = 1300  # bytes of a MESSAGE body over UDP (RFC 3428 5)
_warned_codecs: set[str] = set()


def _codecs_that_load(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The configured codecs whose libraries load; one warning per process for each that
    does not (it is left out of every offer and answer). None left is a ValueError."""
    usable, dropped = usable_codecs(keys)
    for key, why in dropped.items():
        if key not in _warned_codecs:
            _warned_codecs.add(key)
            log.warning("%s", why)
    if not usable:
        raise ValueError(f"no usable codec among {', '.join(keys)}: "
                         + "; ".join(dropped.values()))
    return usable


__all__ = ["AgentConfig", "AudioConfig", "Call", "Credentials", "Registration", "ResolutionError",
           "UserAgent"]
