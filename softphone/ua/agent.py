"""UserAgent: the public Python API, and the asyncio adapter around the sans-IO SIP core.

The adapter does three things only, as aioquic's protocol does: it feeds received messages and
timer ticks into the transaction layer, sends what the layer wants sent, and re-arms a single
``loop.call_at`` for the layer's next deadline. Everything else here is the transaction user:
routing requests to calls, answering OPTIONS, and awaiting responses for the API's coroutines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

from softphone import __version__
from softphone.media.codecs import usable_codecs
from softphone.media.device import SoundDevice
from softphone.media.ports import AudioSink, AudioSource, Discard, Echo, Silence, Tone
from softphone.media.wav import WavSink, WavSource
from softphone.sdp.negotiation import CODECS, DEFAULT_CODECS
from softphone.sip import Headers, ParseError, Request, Response, SipUri, parse_sip_uri
from softphone.sip.auth import authorize, choose_challenge
from softphone.sip.builder import make_response, new_branch, new_call_id, new_tag
from softphone.sip.errors import AuthError
from softphone.sip.headers import Address
from softphone.sip.recovery import bad_request_response
from softphone.sip.transaction import (
    AckNotReceived,
    Peer,
    RequestReceived,
    ResponseReceived,
    TimerSettings,
    TransactionEvent,
    TransactionKey,
    TransactionLayer,
    TransactionTimedOut,
    local_response,
)
from softphone.sip.uri import format_host
from softphone.sip.validate import EndpointPolicy, check_request
from softphone.transport.base import ListenError
from softphone.transport.resolver import ResolutionError, make_dns_resolver, resolve
from softphone.transport.route import default_address, is_wildcard, source_address_toward
from softphone.transport.rtp import DEFAULT_RTP_PORTS, Impairment, PortRange
from softphone.transport.tcp import TcpTransport
from softphone.transport.udp import UdpTransport
from softphone.ua.call import Call
from softphone.ua.conference import Conference
from softphone.ua.events import Event, Listening, OptionsResult
from softphone.ua.registration import Registration

log = logging.getLogger("softphone.agent")
sip_log = logging.getLogger("softphone.sip")
ProvisionalHandler = Callable[[Response], None]
ACCEPT = "application/sdp"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class AudioConfig:
    """Where a call's audio comes from and goes to (no sound device yet: silence/discard)."""

    play: str | None = None      # a WAV file sent to the peer
    tone: float | None = None    # a sine of this many Hz sent to the peer
    record: str | None = None    # a WAV file of what the peer sends
    echo: bool = False           # send back what arrives
    device: str | int | None = None  # sound device name or index (None: the default one)
    device_in: bool = False      # the microphone feeds the call where no file or tone does
    device_out: bool = False     # the speaker plays the call where no recording takes it

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
        card = SoundDevice(self.device) if self.device_in or self.device_out else None
        source: AudioSource = Silence()
        if self.play is not None:
            source = WavSource(self.play)
        elif self.tone is not None:
            source = Tone(self.tone)
        elif self.device_in and card is not None:
            source = card
        sink: AudioSink = Discard()
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
    # Ports for each call, when AudioConfig cannot say it (test monitors, say).
    port_factory: Callable[[Call], tuple[AudioSource, AudioSink]] | None = None
    dtmf_method: str = "auto"  # auto (RFC 4733 when negotiated, else SIP INFO), rfc4733, info
    rtcp_interval: float = 5.0  # mean seconds between RTCP reports
    rtp_timeout: float | None = None  # seconds without RTP before a media_timeout event
    hangup_on_rtp_timeout: bool = False
    impairment: Impairment | None = None  # tests: seeded loss/jitter on sent RTP
    rtp_ports: tuple[int, int] = DEFAULT_RTP_PORTS  # each call binds an even/odd pair in here
    close_timeout: float = 4.0  # seconds close() waits for the answers to its BYEs
    # The address to advertise in Via, Contact and SDP instead of the bound one (a NAT's
    # public address, say); None: the bound address, or on 0.0.0.0 the route's source.
    public_host: str | None = None


class UserAgent:
    """One SIP user agent (client and server) on one event loop.

    ``async with UserAgent(AgentConfig(...)) as agent:`` binds UDP and TCP on the same port;
    ``agent.call(uri)``, ``agent.register(...)``, ``agent.options(uri)`` act as a client;
    incoming calls arrive on ``agent.incoming`` as Call objects.
    """

    def __init__(self, config: AgentConfig | None = None) -> None:
        self.config = config or AgentConfig()
        self.codecs = _codecs_that_load(self.config.codecs)
        self.policy = EndpointPolicy()
        self.layer = TransactionLayer(settings=self.config.timers)
        self.udp = UdpTransport(self)
        self.rtp_ports = PortRange(*self.config.rtp_ports)
        self.tcp = TcpTransport(self)
        self.incoming: asyncio.Queue[Call] = asyncio.Queue()
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._tracers: list[Callable[[str, bytes, Peer], None]] = []
        self._pending: dict[TransactionKey, tuple[asyncio.Future[Response],
                                                  ProvisionalHandler | None]] = {}
        self._calls_by_dialog: dict[tuple[str, str, str], Call] = {}
        self._calls_by_invite: dict[TransactionKey, Call] = {}
        self._dialog_keys_of: dict[Call, list[tuple[str, str, str]]] = {}
        self._unanswered: set[Call] = set()  # incoming calls, some perhaps answered since
        self._contacts: dict[tuple[str, str], tuple[Address, str]] = {}
        self.calls: set[Call] = set()
        self.registrations: list[Registration] = []
        self._timer: asyncio.Handle | None = None
        self._timer_deadline: float | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dns = make_dns_resolver(self.config.nameservers, self.config.nameserver_port) \
            if self.config.nameservers else None

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.config.media:
            self.config.audio.prepare({CODECS[key].audio_rate for key in self.codecs
                                       if key in CODECS})
        host, port = self.config.listen_host, self.config.listen_port
        try:
            await self.udp.start(host, port)
            await self.tcp.start(host, self.udp.port)
        except OSError as error:
            self.udp.close()
            raise ListenError.of(host, port or self.udp.port, error) from None
        log.info("listening on udp and tcp %s:%d as %s", self.udp.host, self.udp.port,
                 self.address_of_record)
        self.emit(Listening("udp", self.udp.host, self.udp.port))

    async def close(self) -> None:
        """Hang up every call and remove every registration, all at once, waiting at most
        ``close_timeout`` for the answers (a dead peer would otherwise hold each BYE for
        64*T1); then close the sockets. Calls still unanswered by then end locally."""
        goodbyes = [asyncio.ensure_future(call.hangup()) for call in list(self.calls)]
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
        self.udp.close()
        self.tcp.close()
        await self.tcp.wait_closed()

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
        return SipUri(host=self.config.domain or self.advertised_host(), user=self.config.user)

    def advertised_host(self, toward: str | None = None) -> str:
        """The address others reach us at, for Via, Contact and SDP: the configured public
        one; else the bound address; else (bound to 0.0.0.0 or ::, which reaches nobody)
        the address the route toward ``toward`` leaves from."""
        if self.config.public_host:
            return self.config.public_host
        if not is_wildcard(self.host):
            return self.host
        found = source_address_toward(toward) if toward else None
        return found or default_address(ipv6=":" in self.host)

    def contact(self, transport: str | None = None, toward: str | None = None) -> Address:
        return self._contact_of(transport, toward)[0]

    def contact_text(self, transport: str | None = None, toward: str | None = None) -> str:
        return self._contact_of(transport, toward)[1]

    def _contact_of(self, transport: str | None, toward: str | None) -> tuple[Address, str]:
        """Our Contact, and as text: built once per transport and advertised address (they
        no longer change once the agent is bound), since nearly every message carries it."""
        chosen = transport or self.config.transport
        host = self.advertised_host(toward)
        known = self._contacts.get((chosen, host))
        if known is not None:
            return known
        uri = SipUri(host=host, port=self.port, user=self.config.user)
        if chosen == "tcp":
            uri = uri.with_param("transport", "tcp")
        address = Address(uri=uri)
        contact = (address, str(address))
        if self.port:
            self._contacts[(chosen, host)] = contact
        return contact

    def local_address(self) -> Address:
        return Address(uri=self.address_of_record, display_name=self.config.display_name)

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

    # --- the adapter: bytes in, bytes out, one timer -------------------------------------------

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def message_received(self, message: Request | Response, source: Peer) -> None:
        try:
            self.layer.receive(message, source, self.now())
        except ParseError:
            return  # a header the layer needed was unusable: nothing we can answer
        self._transmit()

    def bad_message(self, data: bytes, error: ParseError, source: Peer) -> None:
        """A request that does not parse gets a 400 naming the defect, when it can be built."""
        answer = bad_request_response(data, error)
        if answer is not None:
            self._send_bytes(answer, source)

    def _on_timer(self) -> None:
        self._timer = self._timer_deadline = None
        self.layer.handle_timer(self.now())
        self._transmit()

    def _transmit(self) -> None:
        for data, peer in self.layer.datagrams_to_send():
            self._send_bytes(data, peer)
        while (event := self.layer.next_event()) is not None:
            self._dispatch(event)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.layer.get_timer()
        if self._timer is not None:
            if deadline == self._timer_deadline:
                return
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None and self._loop is not None:
            # uvloop's handles do not know their time, so the deadline is kept beside them
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _send_bytes(self, data: bytes, peer: Peer) -> None:
        if peer.transport == "udp":
            self.udp.send(data, peer)
        else:
            self.spawn(self._send_tcp(data, peer))

    async def _send_tcp(self, data: bytes, peer: Peer) -> None:
        try:
            await self.tcp.send(data, peer)
        except OSError as error:
            reason = f"{(error.strerror or str(error)).capitalize()} ({peer})"
            log.info("%s: %s", peer, reason)
            for key, transaction in list(self.layer.client.items()):
                if transaction.peer == peer:
                    self.layer.transport_error(key, reason)
            self._transmit()

    def spawn(self, coroutine: Coroutine[object, object, object]) -> asyncio.Task[object]:
        """Run a background job of the agent; close() cancels whatever is left."""
        task: asyncio.Task[object] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- client side -------------------------------------------------------------------------

    def prepare(self, request: Request, peer: Peer) -> Request:
        """Add the Via for ``peer``'s transport (new branch, rport) and our User-Agent; on a
        wildcard address, our Contact names the address the route to ``peer`` leaves from."""
        headers = request.headers.copy()
        host = self.advertised_host(peer.host)
        sent_by = f"{format_host(host)}:{self.port}"
        self._route_contact(headers, peer)
        headers.prepend("Via", f"SIP/2.0/{peer.transport.upper()} {sent_by}"
                               f";branch={new_branch()};rport")
        if "Max-Forwards" not in headers:
            headers.add("Max-Forwards", "70")
        if "User-Agent" not in headers:
            headers.add("User-Agent", self.config.user_agent)
        return Request(request.method, request.uri, headers, request.body)

    def _route_contact(self, headers: Headers, peer: Peer) -> None:
        """On a wildcard address, replace our default Contact by the one routed to ``peer``
        (the message was built before its destination was known)."""
        if not is_wildcard(self.host) or self.config.public_host:
            return
        default = self.contact_text(peer.transport)
        routed = self.contact_text(peer.transport, peer.host)
        if default != routed and headers.get("Contact") == default:
            headers.set("Contact", routed)

    async def targets(self, uri: SipUri) -> list[Peer]:
        """Where a request for ``uri`` goes: the outbound proxy if set, else ``uri`` itself."""
        destination = parse_sip_uri(self.config.outbound_proxy) if self.config.outbound_proxy \
            else uri
        return await self.resolve(destination)

    async def resolve(self, uri: SipUri) -> list[Peer]:
        """RFC 3263 for ``uri`` (raises ResolutionError)."""
        return await resolve(uri, self.config.transport, self._dns)

    def start_transaction(self, request: Request, peer: Peer,
                          on_provisional: ProvisionalHandler | None = None
                          ) -> tuple[TransactionKey, asyncio.Future[Response]]:
        assert self._loop is not None
        future: asyncio.Future[Response] = self._loop.create_future()
        key = self.layer.send_request(request, peer, self.now())
        self._pending[key] = (future, on_provisional)
        self._transmit()
        return key, future

    async def send_request(self, request: Request, peers: list[Peer],
                           on_provisional: ProvisionalHandler | None = None,
                           on_started: Callable[[Request, TransactionKey, Peer], None] | None
                           = None) -> tuple[Response, Request]:
        """Send in a client transaction, answering one digest challenge per realm.

        Returns the final response and the request that got it (its CSeq and Authorization
        are what later requests build on). A timeout or transport failure comes back as a
        synthetic 408 or 503 response, so callers handle one kind of outcome."""
        tried_realms: set[str] = set()
        current = request
        peer = peers[0]
        while True:
            prepared = self.prepare(current, peer)
            key, future = self.start_transaction(prepared, peer, on_provisional)
            if on_started is not None:
                on_started(prepared, key, peer)
            response = await future
            retry = self._authorized_retry(current, response, tried_realms)
            if retry is None:
                return response, prepared
            current = retry

    async def within(self, timeout: float | None,
                     exchange: Awaitable[tuple[Response, Request]],
                     request: Request) -> Response:
        """The final response of ``exchange``, or a local 408 once ``timeout`` passes."""
        try:
            response, _ = await asyncio.wait_for(exchange, timeout)
        except TimeoutError:
            return local_response(request, 408, f"No response within {timeout:g} s")
        return response

    def _authorized_retry(self, request: Request, response: Response,
                          tried: set[str]) -> Request | None:
        if response.status not in (401, 407) or self.config.credentials is None:
            return None
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        try:
            challenge = choose_challenge(response.headers.get_all(header))
        except (AuthError, ParseError):
            return None
        if challenge.realm in tried and not challenge.stale:
            return None  # challenged again for a realm we answered: the password is wrong
        tried.add(challenge.realm)
        credentials = self.config.credentials
        answer = authorize(challenge, credentials.username, credentials.password,
                           request.method, str(request.uri), request.body)
        headers = request.headers.copy()
        auth_header = "Authorization" if response.status == 401 else "Proxy-Authorization"
        headers.remove(auth_header)
        headers.add(auth_header, str(answer))
        cseq = request.cseq
        headers.set("CSeq", f"{cseq.number + 1} {cseq.method}")
        return Request(request.method, request.uri, headers, request.body)

    def send_stateless(self, request: Request, peer: Peer) -> Request:
        """An ACK for a 2xx: no transaction of its own. Returns it as sent (with its Via),
        for repeating when the 2xx comes again."""
        prepared = self.prepare(request, peer)
        self.resend(prepared, peer)
        return prepared

    def resend(self, message: Request, peer: Peer) -> None:
        self.layer.send_stateless(message, peer)
        self._transmit()

    def respond(self, key: TransactionKey, response: Response) -> None:
        if "User-Agent" not in response.headers and response.status != 100:
            response.headers.add("Server", self.config.user_agent)
        transaction = self.layer.server.get(key)
        if transaction is not None:
            self._route_contact(response.headers, transaction.peer)
        self.layer.respond(key, response, self.now())
        self._transmit()

    def new_request(self, method: str, uri: SipUri, to: Address | None = None,
                    call_id: str | None = None, from_tag: str | None = None,
                    cseq: int = 1) -> Request:
        """An out-of-dialog request from our identity (RFC 3261 8.1.1), without Via."""
        headers = Headers([
            ("Max-Forwards", "70"),
            ("From", str(self.local_address().with_param("tag", from_tag or new_tag()))),
            ("To", str(to or Address(uri=uri))),
            ("Call-ID", call_id or new_call_id(self.advertised_host())),
            ("CSeq", f"{cseq} {method}"),
        ])
        if self.config.outbound_proxy:
            proxy = parse_sip_uri(self.config.outbound_proxy)
            loose = proxy if proxy.has_param("lr") else proxy.with_param("lr")
            headers.add("Route", f"<{loose}>")
        return Request(method, uri, headers)

    async def options(self, uri: str, timeout: float | None = None) -> OptionsResult:
        """Ask a peer what it supports, without calling it; ``timeout`` bounds the wait
        (a 408 result) below the transaction's own 64*T1."""
        target = parse_sip_uri(uri)
        request = self.new_request("OPTIONS", target)
        request.headers.add("Accept", ACCEPT)
        response = await self.within(timeout, self.send_request(
            request, await self.targets(target)), request)
        result = OptionsResult(
            uri=uri, status=response.status, reason=response.reason,
            allow=_tokens(response, "Allow"), accept=response.headers.get_all("Accept"),
            supported=_tokens(response, "Supported"),
            user_agent=response.headers.get("User-Agent") or response.headers.get("Server"))
        self.emit(result)
        return result

    async def call(self, uri: str, duration: float | None = None,
                   ring_timeout: float | None = None) -> Call:
        """Place a call; returns at once with a Call whose ``answered``/``ended`` to await."""
        call = Call.outgoing(self, parse_sip_uri(uri))
        self.calls.add(call)
        call.start(duration=duration, ring_timeout=ring_timeout)
        return call

    def conference(self) -> Conference:
        """A new, empty local conference; ``await conference.add(call)`` joins calls to it."""
        return Conference(self)

    async def register(self, registrar: str, expires: int = 3600, refresh: bool = True,
                       timeout: float | None = None) -> Registration:
        """REGISTER our contact with ``registrar``; raises RegistrationError on failure.
        ``timeout`` bounds each REGISTER's wait (default: the transaction's 64*T1)."""
        registration = Registration(self, parse_sip_uri(registrar), expires, timeout)
        await registration.register()
        self.registrations.append(registration)
        if refresh:
            registration.keep_refreshed()
        return registration

    # --- dispatch of the layer's events ----------------------------------------------------------

    def _dispatch(self, event: TransactionEvent) -> None:
        if isinstance(event, ResponseReceived):
            self._on_response(event)
        elif isinstance(event, TransactionTimedOut):
            log.info("%s %s: %s", event.request.method, event.request.uri,
                     "no response (timeout)" if event.status == 408 else "transport failed")
            self._resolve(event.transaction,
                          local_response(event.request, event.status, event.reason))
        elif isinstance(event, RequestReceived):
            self._on_request(event)
        elif isinstance(event, AckNotReceived):
            call = self._calls_by_invite.get(event.transaction)
            if call is not None and 200 <= event.status < 300:
                call.ack_missing()

    def _on_response(self, event: ResponseReceived) -> None:
        response = event.response
        if event.transaction is not None and event.transaction in self._pending:
            if response.status < 200:
                handler = self._pending[event.transaction][1]
                if handler is not None:
                    handler(response)
            else:
                self._resolve(event.transaction, response)
            return
        if response.cseq.method == "INVITE" and 200 <= response.status < 300:
            call = self._calls_by_dialog.get(_dialog_key_of_response(response))
            if call is not None:
                call.repeat_ack(response)

    def _resolve(self, key: TransactionKey, response: Response) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None and not pending[0].done():
            pending[0].set_result(response)

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        key = event.transaction
        if key is None:  # an ACK for a 2xx
            call = self._calls_by_dialog.get(_dialog_key_of_request(request))
            if call is not None:
                call.on_ack(request)
            return
        if request.method == "ACK":
            return
        rejection = check_request(request, self.policy)
        if rejection is not None:
            extra = Headers(list(rejection.headers))
            self.respond(key, make_response(request, rejection.status, rejection.reason,
                                            to_tag=new_tag(), extra=extra))
            return
        if request.to_address.tag is not None:
            call = self._calls_by_dialog.get(_dialog_key_of_request(request))
            if call is None:
                self.respond(key, make_response(request, 481, to_tag=new_tag()))
            else:
                call.on_request(request, key)
            return
        self._on_new_request(request, key, event)

    def _on_new_request(self, request: Request, key: TransactionKey,
                        event: RequestReceived) -> None:
        if request.method == "INVITE":
            if self._unanswered_calls_full():
                self.respond(key, make_response(request, 486, to_tag=new_tag()))
                return
            call = Call.incoming(self, request, key, event.source)
            self.calls.add(call)
            self._unanswered.add(call)
            self._calls_by_invite[key] = call
            call.announce()
            self.incoming.put_nowait(call)
        elif request.method == "CANCEL":
            cancelled = self._calls_by_invite.get(event.cancels) if event.cancels else None
            if cancelled is None:
                self.respond(key, make_response(request, 481, to_tag=new_tag()))
            else:
                self.respond(key, make_response(request, 200, to_tag=cancelled.local_tag))
                cancelled.on_cancel()
        elif request.method == "OPTIONS":
            self.respond(key, make_response(request, 200, to_tag=new_tag(),
                                            extra=self.capabilities()))
        else:
            self.respond(key, make_response(request, 481, to_tag=new_tag()))

    def _unanswered_calls_full(self) -> bool:
        """Whether max_unanswered_calls are waiting. The set is pruned of answered calls only
        when it looks full, so an INVITE does not cost a walk over every call."""
        if len(self._unanswered) >= self.config.max_unanswered_calls:
            self._unanswered = {c for c in self._unanswered if c.state in ("incoming", "ringing")}
        return len(self._unanswered) >= self.config.max_unanswered_calls

    def capabilities(self) -> Headers:
        """What OPTIONS answers and every dialog-creating message carries."""
        return Headers([("Allow", self.policy.allow), ("Accept", ACCEPT),
                        ("Supported", ", ".join(sorted(self.policy.extensions))),
                        ("Contact", self.contact_text())])

    # --- bookkeeping for calls -----------------------------------------------------------------

    def bind_dialog(self, call: Call, key: tuple[str, str, str]) -> None:
        self._calls_by_dialog[key] = call
        self._dialog_keys_of.setdefault(call, []).append(key)

    def forget(self, call: Call) -> None:
        self.calls.discard(call)
        self._unanswered.discard(call)
        for dialog_key in self._dialog_keys_of.pop(call, ()):
            if self._calls_by_dialog.get(dialog_key) is call:
                del self._calls_by_dialog[dialog_key]
        if call.invite_key is not None and self._calls_by_invite.get(call.invite_key) is call:
            del self._calls_by_invite[call.invite_key]


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


def _tokens(response: Response, name: str) -> list[str]:
    try:
        return response.tokens(name)
    except ParseError:
        return response.headers.get_all(name)





def _dialog_key_of_request(request: Request) -> tuple[str, str, str]:
    return (request.call_id, request.to_address.tag or "", request.from_address.tag or "")


def _dialog_key_of_response(response: Response) -> tuple[str, str, str]:
    return (response.call_id, response.from_address.tag or "", response.to_address.tag or "")

__all__ = ["AgentConfig", "AudioConfig", "Call", "Credentials", "Registration", "ResolutionError",
           "UserAgent"]
