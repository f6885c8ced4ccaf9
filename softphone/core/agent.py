"""The user-agent core: everything SIP of one agent, sans-IO (aioquic's QuicConnection is
the model).

It owns the transaction layer, the calls with their dialogs and offer/answer sessions, the
registrations, digest credentials, RFC 3263 target lists with failover, and every UA timer.
It is driven only by inputs, each given the time:

- the network: ``receive(message, source, now)``, ``receive_garbage(data, error, source)``,
  ``transport_failed(peer, reason, now)``;
- the clock: ``handle_timer(now)``;
- the API: ``invite``, ``ring``, ``answer``, ``reject``, ``redirect``, ``hangup``,
  ``cancel``, ``reinvite``, ``info``, ``register``, ``unregister``, ``options`` ...;
- answers to what it asked: ``resolved(lookup, peers, now)`` for a DNS name,
  ``media_status(handle, last_packet, now)`` for RTP inactivity.

It answers with ``datagrams_to_send()`` (bytes and where to), ``next_event()`` (public
events of ``softphone.events`` and the requests of ``softphone.core.events``) and
``get_timer()`` (the next deadline). It imports no asyncio, socket or clock: tests drive
whole calls, with every race, on a virtual clock.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from softphone.core.auth import AuthCache
from softphone.core.call import CoreCall
from softphone.core.events import CallCreated, Completed, CoreEvent, ResolveNeeded
from softphone.core.guard import DigestGuard, GuardSettings, SourceLimiter, busy
from softphone.core.registration import CoreRegistration
from softphone.core.reliable import REL100, supports_100rel
from softphone.core.requests import Exchange, RequestRefused, fails_over, retry_after
from softphone.core.session_timer import SessionTimerSettings, too_brief
from softphone.core.state import CallState
from softphone.core.subscription import CoreSubscription, is_message_summary, mwi_event
from softphone.core.timers import TimerSet
from softphone.core.transfer import Replaces
from softphone.events import Event, MessageReceived, OptionsResult
from softphone.sdp.negotiation import DEFAULT_CODECS
from softphone.sip import Headers, ParseError, Request, Response, SipUri, parse_sip_uri
from softphone.sip.builder import make_response, new_branch, new_call_id, new_tag
from softphone.sip.dialog import Dialog
from softphone.sip.errors import LocalProtocolError
from softphone.sip.headers import Address
from softphone.sip.recovery import bad_request_response
from softphone.sip.transaction import (
    AckNotReceived,
    Peer,
    RequestReceived,
    ResponseReceived,
    TimerSettings,
    TransactionKey,
    TransactionLayer,
    TransactionTimedOut,
    local_response,
    response_destination,
    server_key,
)
from softphone.sip.uri import format_host
from softphone.sip.validate import TEXT_PLAIN, EndpointPolicy, check_request, check_response

log = logging.getLogger("softphone.core")
ACCEPT = "application/sdp"
TEXT_PLAIN_UTF8 = "text/plain;charset=UTF-8"  # what our MESSAGEs carry
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}

CoreEventOrEvent = Event | CoreEvent


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class CoreConfig:
    """Who the agent is and how it behaves; everything about sockets and audio is the
    shell's."""

    user: str = "softphone"
    domain: str | None = None
    display_name: str | None = None
    credentials: Credentials | None = None
    outbound_proxy: str | None = None
    transport: str = "udp"   # for requests whose URI does not say
    codecs: tuple[str, ...] = DEFAULT_CODECS
    timers: TimerSettings = field(default_factory=TimerSettings)
    user_agent: str = "softphone"
    max_unanswered_calls: int = 1000
    unanswered_timeout: float = 180.0
    rtp_timeout: float | None = None
    hangup_on_rtp_timeout: bool = False
    public_host: str | None = None
    dns_cache_seconds: float = 60.0
    # Seconds between keep-alives on a registration's flow; None: 25 on UDP (NAT bindings
    # last about 30 s), 90 on TCP/TLS (RFC 5626 4.4.1 suggests 95-120); 0: none.
    keepalive: float | None = None
    instance_id: str | None = None  # RFC 5626 +sip.instance (a UUID); None: a new one
    srtp: str = "off"  # off, optional, mandatory: SRTP with SDES keys (RFC 4568)
    srtp_insecure: bool = False  # send SRTP keys over signalling that is not TLS anyway
    guard: GuardSettings = field(default_factory=GuardSettings)  # the UAS's defences
    session_timer: SessionTimerSettings = field(default_factory=SessionTimerSettings)
    rel100: str = "supported"  # off, supported, required: reliable 1xx (RFC 3262)
    accept_transfers: bool = True  # a REFER is followed (202); False: declined (603)


@dataclass(frozen=True)
class ListeningPoint:
    """A transport the agent listens on, as the shell's registry describes it: what its
    Via says (``via``), what a Contact for it adds (``uri_transport``)."""

    transport: str          # the registry's key: udp, tcp, tls, ws ...
    host: str
    port: int
    via: str                # UDP, TCP, TLS ...
    uri_transport: str | None = None  # transport=tcp in a Contact; None for UDP
    secure: bool = False    # a Contact for it is a sips: URI


class UserAgentCore:
    def __init__(self, config: CoreConfig | None = None,
                 route_source: Callable[[str], str | None] | None = None,
                 rng: random.Random | None = None) -> None:
        self.config = config or CoreConfig()
        self.codecs = self.config.codecs
        self.policy = EndpointPolicy() if self.config.rel100 != "off" else EndpointPolicy(
            extensions=EndpointPolicy.extensions - {"100rel"})
        settings = self.config.guard
        self.layer = TransactionLayer(settings=self.config.timers,
                                      follow_maddr=settings.follow_maddr)
        self.guard = DigestGuard(settings.callers, settings.realm or self.config.domain
                                 or "softphone", settings.nonce_lifetime,
                                 algorithms=settings.algorithms) if settings.callers else None
        self.limiter = SourceLimiter(settings.source_rate, settings.source_burst) \
            if settings.source_rate > 0 else None
        self._trusted = [ipaddress.ip_network(net, strict=False) for net in settings.trusted]
        self._calls_from: Counter[str] = Counter()  # calls in progress per source address
        self.timers = TimerSet()
        self.random = rng or random.Random()
        self.now = 0.0
        self.points: dict[str, ListeningPoint] = {}
        self.calls: dict[str, CoreCall] = {}
        self.registrations: dict[int, CoreRegistration] = {}
        self.auth = AuthCache(self.config.credentials.username,
                              self.config.credentials.password) \
            if self.config.credentials else None
        self._route_source = route_source or (lambda host: None)
        self._events: deque[CoreEventOrEvent] = deque()
        self._outbox: list[tuple[bytes, Peer]] = []
        self._exchanges: dict[TransactionKey, Exchange] = {}
        self._calls_by_dialog: dict[tuple[str, str, str], CoreCall] = {}
        self._calls_by_local: dict[tuple[str, str], CoreCall] = {}
        self.subscriptions: dict[int, CoreSubscription] = {}
        self._subscriptions_by_dialog: dict[tuple[str, str, str], CoreSubscription] = {}
        self._calls_by_invite: dict[TransactionKey, CoreCall] = {}
        self._unanswered = 0
        self._avoid: dict[Peer, float] = {}   # servers in their Retry-After
        self._dns: dict[tuple[str, int | None, str | None], tuple[list[Peer], float]] = {}
        self._lookups: dict[int, tuple[tuple[str, int | None, str | None], list[
            Callable[[list[Peer] | None, str], None]]]] = {}
        self._lookup_of: dict[tuple[str, int | None, str | None], int] = {}
        self._ids = 0
        self._contacts: dict[tuple[str, str, bool], tuple[Address, str]] = {}
        self.instance_id = self.config.instance_id or str(uuid.UUID(int=self.random.getrandbits(
            128), version=4))
        # our address as the world sees it, per transport: from STUN or from a registrar's
        # received/rport (RFC 3581) when a NAT is in between
        self.learned: dict[str, tuple[str, int]] = {}

    # --- outputs -----------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        out = self.layer.datagrams_to_send()
        if self._outbox:
            out += self._outbox
            self._outbox = []
        return out

    def next_event(self) -> CoreEventOrEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The next deadline of the transactions' and the agent's own timers (asked after
        every input)."""
        transactions, own = self.layer.get_timer(), self.timers.next_deadline()
        if transactions is None or own is None:
            return own if transactions is None else transactions
        return min(transactions, own)

    def emit(self, event: CoreEventOrEvent) -> None:
        self._events.append(event)

    # --- identity ------------------------------------------------------------------------------

    def listen(self, point: ListeningPoint) -> None:
        """A transport the shell bound: requests over it carry its Via and Contact."""
        self.points[point.transport] = point
        self._contacts.clear()

    def _point(self, transport: str | None = None) -> ListeningPoint:
        chosen = transport or self.config.transport
        point = self.points.get(chosen) or next(iter(self.points.values()), None)
        if point is None:
            raise LocalProtocolError("the core has no listening point: call listen() first")
        return point

    def advertised_host(self, toward: str | None = None) -> str:
        """The address others reach us at: the configured public one; else the bound one;
        else (bound to a wildcard, which reaches nobody) the route's source toward ``toward``
        as the shell's ``route_source`` tells."""
        if self.config.public_host:
            return self.config.public_host
        learned = self.learned.get(self._point().transport)
        if learned is not None:
            return learned[0]
        host = self._point().host
        if host not in WILDCARDS:
            return host
        found = self._route_source(toward) if toward else None
        return found or self._route_source("") or "127.0.0.1"

    @property
    def address_of_record(self) -> SipUri:
        return SipUri(host=self.config.domain or self.advertised_host(), user=self.config.user)

    def contact(self, transport: str | None = None, toward: str | None = None) -> Address:
        return self._contact_of(transport, toward)[0]

    def contact_text(self, transport: str | None = None, toward: str | None = None) -> str:
        return self._contact_of(transport, toward)[1]

    def _contact_of(self, transport: str | None, toward: str | None) -> tuple[Address, str]:
        """Our Contact for a transport and the address advertised toward a peer, built once
        each (nearly every message carries it)."""
        point = self._point(transport)
        learned = self.learned.get(point.transport)
        host = learned[0] if learned and not self.config.public_host else \
            self.advertised_host(toward)
        port = learned[1] if learned else point.port
        # RFC 5626 4.2.1/4.3: with an outbound registration (reg-id, +sip.instance) the
        # Contact carries ``ob``: requests in our dialogs come back over the same flow
        outbound = bool(self.registrations)
        known = self._contacts.get((point.transport, host, outbound))
        if known is not None:
            return known
        uri = SipUri(host=host, port=port, user=self.config.user,
                     scheme="sips" if point.secure else "sip")
        if point.uri_transport:
            uri = uri.with_param("transport", point.uri_transport)
        if outbound:
            uri = uri.with_param("ob", None)
        address = Address(uri=uri)
        self._contacts[(point.transport, host, outbound)] = (address, str(address))
        return address, str(address)

    def learn_public(self, transport: str, host: str, port: int) -> bool:
        """Our public address on ``transport`` (STUN, or a registrar's received/rport):
        Contacts from now on carry it. True when it is news."""
        if self.learned.get(transport) == (host, port):
            return False
        log.info("our public address on %s is %s:%d", transport, host, port)
        self.learned[transport] = (host, port)
        self._contacts.clear()
        return True

    def local_address(self) -> Address:
        return Address(uri=self.address_of_record, display_name=self.config.display_name)

    def capabilities(self, toward: str | None = None) -> Headers:
        """What OPTIONS answers and every dialog-creating message carries."""
        return Headers([("Allow", self.policy.allow), ("Accept", ACCEPT),
                        ("Supported", ", ".join(sorted(self.policy.extensions))),
                        ("Contact", self.contact_text(toward=toward))])

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # --- building and sending requests --------------------------------------------------------

    def new_request(self, method: str, uri: SipUri, to: Address | None = None,
                    call_id: str | None = None, from_tag: str | None = None, cseq: int = 1,
                    routes: bool = True) -> Request:
        """An out-of-dialog request from our identity (RFC 3261 8.1.1), without Via; its
        Route is the registrar's Service-Route, else the outbound proxy (``routes``)."""
        headers = Headers([
            ("Max-Forwards", "70"),
            ("From", str(self.local_address().with_param("tag", from_tag or new_tag()))),
            ("To", str(to or Address(uri=uri))),
            ("Call-ID", call_id or new_call_id(self.advertised_host())),
            ("CSeq", f"{cseq} {method}"),
        ])
        for route in self._preloaded_route(routes):
            headers.add("Route", route)
        return Request(method, uri, headers)

    def _preloaded_route(self, with_service_route: bool) -> list[str]:
        if with_service_route:
            for registration in self.registrations.values():
                if registration.service_route:
                    return [str(route) for route in registration.service_route]
        if self.config.outbound_proxy:
            proxy = parse_sip_uri(self.config.outbound_proxy)
            loose = proxy if proxy.has_param("lr") else proxy.with_param("lr")
            return [f"<{loose}>"]
        return []

    def route_for(self, uri: SipUri, registering: bool = False) -> SipUri:
        """Where an out-of-dialog request for ``uri`` goes first: the Service-Route's first
        hop (not for REGISTER), the outbound proxy, or ``uri`` itself."""
        if not registering:
            for registration in self.registrations.values():
                if registration.service_route:
                    return registration.service_route[0].sip_uri
        if self.config.outbound_proxy:
            return parse_sip_uri(self.config.outbound_proxy)
        return uri

    def exchange(self, request: Request, destination: SipUri,
                 on_final: Callable[[Response], None],
                 on_provisional: Callable[[Response], None] | None, now: float,
                 prepare_body: Callable[[Exchange, Peer], None] | None = None) -> Exchange:
        """Send ``request`` toward ``destination`` and see it through (challenges, failover);
        ``on_final`` gets the one final response (for an INVITE, every 2xx)."""
        exchange = Exchange(request, destination, on_final, on_provisional,
                            prepare_body=prepare_body)
        self._locate(destination, lambda peers, why: self._start(exchange, peers, why))
        return exchange

    def _start(self, exchange: Exchange, peers: list[Peer] | None, why: str) -> None:
        if not peers:
            exchange.done = True
            exchange.on_final(local_response(exchange.request, 503, why))
            return
        exchange.targets = peers
        self._transmit(exchange, exchange.first_target(self.now, self._avoid))

    def _transmit(self, exchange: Exchange, peer: Peer) -> None:
        if exchange.prepare_body is not None:
            try:
                exchange.prepare_body(exchange, peer)
            except RequestRefused as refused:
                exchange.done = True
                exchange.on_final(local_response(exchange.request, refused.status,
                                                 refused.reason))
                return
        request = exchange.request
        if self.auth is not None:
            request = self.auth.preauthorize(request, _hop(peer))
        prepared = self._prepare(request, peer)
        if exchange.key is not None:
            self._exchanges.pop(exchange.key, None)
        exchange.key = self.layer.send_request(prepared, peer, self.now)
        exchange.sent, exchange.peer, exchange.provisional = prepared, peer, False
        self._exchanges[exchange.key] = exchange

    def _prepare(self, request: Request, peer: Peer) -> Request:
        """Our Via for ``peer``'s transport (new branch, rport), Max-Forwards, User-Agent;
        on a wildcard address the default Contact becomes the one routed to ``peer``."""
        point = self._point(peer.transport)
        headers = request.headers.copy()
        host = self.advertised_host(peer.host)
        headers.prepend("Via", f"SIP/2.0/{point.via} {format_host(host)}:{point.port}"
                               f";branch={new_branch()};rport")
        if "Max-Forwards" not in headers:
            headers.add("Max-Forwards", "70")
        if "User-Agent" not in headers:
            headers.add("User-Agent", self.config.user_agent)
        self._route_contact(headers, peer)
        return Request(request.method, request.uri, headers, request.body)

    def _route_contact(self, headers: Headers, peer: Peer) -> None:
        """A message built before its destination was known carries our default Contact;
        the one it needs is for the transport that sends it (a sips: URI over TLS) and,
        on a wildcard address, the address the route to ``peer`` leaves from."""
        contact = headers.get("Contact")
        if contact is None or contact != self.contact_text():
            return
        routed = self.contact_text(peer.transport, peer.host)
        if routed != contact:
            headers.set("Contact", routed)

    def send_stateless(self, request: Request, destination: SipUri,
                       fallback: Peer | None) -> tuple[Request, Peer] | None:
        """An ACK for a 2xx (no transaction of its own): to ``destination`` when it needs no
        DNS (or is cached), else where ``fallback`` went. Returns it as sent, for repeats."""
        peers = self._known_targets(destination)
        peer = peers[0] if peers else fallback
        if peer is None:
            return None
        prepared = self._prepare(request, peer)
        self.resend(prepared, peer)
        return prepared, peer

    def send_raw(self, data: bytes, peer: Peer) -> None:
        """Bytes that are no SIP message (a keep-alive) to ``peer``."""
        self._outbox.append((data, peer))

    def srtp_mode(self, transport: str) -> str | None:
        """The SRTP mode for a call signalled over ``transport``. SDES keys travel in the
        SDP, so over plain UDP or TCP anyone on the path reads them (RFC 4568 8.3): then
        "optional" becomes off, and "mandatory" is None (the call must not go ahead),
        unless the user allowed keys in clear (``srtp_insecure``)."""
        mode = self.config.srtp
        if mode == "off" or transport == "tls" or self.config.srtp_insecure:
            return mode
        log.warning("SRTP keys would travel in clear over %s signalling: %s", transport.upper(),
                    "refusing the call" if mode == "mandatory" else "no SRTP for this call")
        return None if mode == "mandatory" else "off"

    def keepalive_interval(self, flow: Peer | None) -> float | None:
        if flow is None or self.config.keepalive == 0:
            return None
        if self.config.keepalive is not None:
            return self.config.keepalive
        return 90.0 if flow.reliable else 25.0

    def resend(self, message: Request | Response, peer: Peer) -> None:
        self.layer.send_stateless(message, peer)

    def send_cancel(self, cancel: Request, peer: Peer, invite_key: TransactionKey | None,
                    now: float) -> None:
        """CANCEL goes where its INVITE went, hop by hop (RFC 3261 9.1); the INVITE must
        then end within 64*T1 or is given up."""
        key = self.layer.send_request(cancel, peer, now)
        self._exchanges[key] = Exchange(cancel, SipUri(host=peer.host), lambda r: None,
                                        targets=[peer], key=key, sent=cancel, peer=peer)
        if invite_key is not None:
            self.layer.expect_final_within(invite_key, now, self.config.timers.b)

    def respond(self, key: TransactionKey, response: Response) -> None:
        if "User-Agent" not in response.headers and "Server" not in response.headers \
                and response.status != 100:
            response.headers.add("Server", self.config.user_agent)
        transaction = self.layer.server.get(key)
        if transaction is not None:
            self._route_contact(response.headers, transaction.peer)
        self.layer.respond(key, response, self.now)

    # --- locating targets (RFC 3263) ----------------------------------------------------------

    def _known_targets(self, uri: SipUri) -> list[Peer] | None:
        """The targets of ``uri`` without asking anyone: an address literal, or cached."""
        transport = transport_for(uri, self.config.transport)
        host = uri.param("maddr") or uri.host
        if _is_address(host):
            return [Peer(transport, host, uri.port or DEFAULT_PORTS.get(transport, 5060))]
        cached = self._dns.get(_dns_key(uri))
        if cached is not None and cached[1] > self.now:
            return cached[0]
        return None

    def _locate(self, uri: SipUri, then: Callable[[list[Peer] | None, str], None]) -> None:
        if uri.scheme.lower() == "sips" and "tls" not in self.points:
            then(None, "sips: needs TLS, which this version does not support")
            return
        known = self._known_targets(uri)
        if known is not None:
            then(known, "")
            return
        key = _dns_key(uri)
        lookup = self._lookup_of.get(key)
        if lookup is None:  # one question per name, however many requests wait on it
            lookup = self._lookup_of[key] = self._next_id()
            self._lookups[lookup] = (key, [])
            self.emit(ResolveNeeded(lookup, uri, transport_for(uri, self.config.transport)))
        self._lookups[lookup][1].append(then)

    def resolved(self, lookup: int, peers: list[Peer], now: float) -> None:
        """The shell's answer to ResolveNeeded: the targets, best first."""
        self.now = now
        entry = self._lookups.pop(lookup, None)
        if entry is None:
            return
        key, waiting = entry
        self._lookup_of.pop(key, None)
        if peers:
            self._dns[key] = (peers, now + self.config.dns_cache_seconds)
        for then in waiting:
            then(peers or None, f"Cannot resolve {key[0]}")

    def resolution_failed(self, lookup: int, reason: str, now: float) -> None:
        self.now = now
        entry = self._lookups.pop(lookup, None)
        if entry is not None:
            self._lookup_of.pop(entry[0], None)
            for then in entry[1]:
                then(None, reason)

    # --- inputs from the network -----------------------------------------------------------------

    def receive(self, message: Request | Response, source: Peer, now: float) -> None:
        self.now = now
        if isinstance(message, Response) and check_response(message) is not None:
            return  # RFC 3261 8.1.3.3: misrouted or malformed, dropped
        if isinstance(message, Request):
            refusal = self._screen(message, source)
            if refusal is not None:
                with contextlib.suppress(ParseError):
                    self._outbox.append((bytes(refusal),
                                         response_destination(message.top_via, source)))
                return
        try:
            self.layer.receive(message, source, now)
        except ParseError:
            return  # a header the layer needed was unusable: nothing we can answer
        self._drain_layer()

    def _screen(self, request: Request, source: Peer) -> Response | None:
        """What a new request from outside a dialog gets before any transaction exists:
        503 with Retry-After when its source sends too many, 401 when callers must
        authenticate and it does not. Both go statelessly (as a proxy's challenge does): a
        stranger, or a forged source address, gets one response per request, never our
        retransmissions, and leaves nothing behind. None: the request goes on."""
        if request.method in ("ACK", "CANCEL"):
            return None
        try:
            if server_key(request) in self.layer.server or request.to_address.tag is not None:
                return None  # a retransmission, or in a dialog: its own checks apply
        except ParseError:
            return None  # the transaction layer's 400 names the defect
        if self.limiter is not None and not self.spared(source.host) \
                and not self.limiter.allow(source.host, self.now):
            return busy(request)
        if self.guard is not None:
            return self.guard.check(request, source.host, self.now)
        return None

    def spared(self, host: str) -> bool:
        """Whether per-source limits leave ``host`` alone: a trusted network, or a
        registrar of ours (every call it carries comes from its one address)."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if any(address in network for network in self._trusted):
            return True
        return any(r.flow is not None and r.flow.host == host
                   for r in self.registrations.values())

    def receive_garbage(self, data: bytes, error: ParseError, source: Peer) -> None:
        """Bytes that did not parse: a 400 naming the defect when one can be routed."""
        answer = bad_request_response(data, error)
        if answer is not None:
            self._outbox.append((answer, source))

    def transport_failed(self, peer: Peer, reason: str, now: float) -> None:
        """The shell could not send to ``peer`` (connection refused, reset): every client
        transaction toward it fails now, as a 503 with ``reason``."""
        self.now = now
        for key, transaction in list(self.layer.client.items()):
            if transaction.peer == peer:
                self.layer.transport_error(key, reason)
        self._drain_layer()

    def connection_lost(self, peer: Peer, now: float) -> None:
        """A TCP or TLS connection closed: a registration whose flow it was re-registers
        (RFC 5626 4.4.1), after a back-off when it keeps failing."""
        self.now = now
        for registration in list(self.registrations.values()):
            registration.flow_lost(peer, now)

    def keepalive_answered(self, peer: Peer, now: float) -> None:
        """A pong (CRLF) or STUN answer to our keep-alive came from ``peer``."""
        self.now = now
        for registration in list(self.registrations.values()):
            registration.pong(peer, now)

    def handle_timer(self, now: float) -> None:
        self.now = now
        self.layer.handle_timer(now)
        self._drain_layer()
        for owner, name in self.timers.due(now):
            owner.on_timer(name, now)  # type: ignore[attr-defined]
            self._drain_layer()

    def _drain_layer(self) -> None:
        while (event := self.layer.next_event()) is not None:
            if isinstance(event, ResponseReceived):
                self._on_response(event)
            elif isinstance(event, TransactionTimedOut):
                exchange = self._exchanges.get(event.transaction)
                if exchange is not None:
                    log.info("%s %s: %s", event.request.method, event.request.uri,
                             "no response (timeout)" if event.status == 408 else
                             event.reason or "transport failed")
                    self._final(exchange, local_response(event.request, event.status,
                                                         event.reason))
            elif isinstance(event, RequestReceived):
                self._on_request(event)
            elif isinstance(event, AckNotReceived):
                call = self._calls_by_invite.get(event.transaction)
                if call is not None and 200 <= event.status < 300:
                    call.ack_missing(self.now)

    def _on_response(self, event: ResponseReceived) -> None:
        response = event.response
        exchange = self._exchanges.get(event.transaction) if event.transaction else None
        if exchange is None:
            if response.cseq.method == "INVITE" and 200 <= response.status < 300:
                self._stray_2xx(response)
            return
        if response.status < 200:
            exchange.provisional = True
            if exchange.on_provisional is not None:
                exchange.on_provisional(response)
            return
        if exchange.done:
            if exchange.method == "INVITE" and 200 <= response.status < 300:
                exchange.on_final(response)  # a 2xx again, or another fork's
            return
        self._final(exchange, response)

    def _final(self, exchange: Exchange, response: Response) -> None:
        """A final response for ``exchange``'s transaction: answer a challenge, fail over
        to the next target, or hand it to the owner."""
        if exchange.done:
            return
        assert exchange.peer is not None
        if response.status in (401, 407) and self.auth is not None:
            retry = self.auth.answer(exchange.request, response, _hop(exchange.peer),
                                     exchange.tried_realms)
            if retry is not None:
                exchange.request = retry
                self._transmit(exchange, exchange.peer)
                return
        if fails_over(exchange, response):
            if response.status == 503 and response.headers.get("Retry-After"):
                self._avoid[exchange.peer] = self.now + retry_after(response)
            following = exchange.next_target(self.now, self._avoid)
            if following is not None:
                log.info("%s to %s failed (%d): trying %s", exchange.method, exchange.peer,
                         response.status, following)
                self._transmit(exchange, following)
                return
        exchange.done = True
        keeps_answers = exchange.method == "INVITE" and 200 <= response.status < 300
        if not keeps_answers and exchange.key is not None:  # a 2xx may come again
            self._exchanges.pop(exchange.key, None)
        exchange.on_final(response)

    def _stray_2xx(self, response: Response) -> None:
        """A 2xx after our INVITE transaction ended: ACK it again (RFC 3261 13.2.2.4), or,
        from a fork we did not know, ACK and BYE it."""
        call = self._calls_by_dialog.get(
            (response.call_id, response.from_address.tag or "", response.to_address.tag or ""))
        if call is not None:
            call.repeat_ack()
            return
        call = self._calls_by_local.get((response.call_id, response.from_address.tag or ""))
        if call is not None and call.invite is not None:
            call._on_invite_final(response)

    def _on_request(self, event: RequestReceived) -> None:
        request, key = event.request, event.transaction
        if key is None:  # an ACK for a 2xx
            call = self._calls_by_dialog.get(_dialog_key_of_request(request))
            if call is not None:
                call.on_ack(request, self.now)
            return
        if request.method == "ACK":
            return
        rejection = check_request(request, self.policy)
        if rejection is not None:
            self.respond(key, make_response(request, rejection.status, rejection.reason,
                                            to_tag=new_tag(),
                                            extra=Headers(list(rejection.headers))))
            return
        if request.to_address.tag is not None:
            call = self._calls_by_dialog.get(_dialog_key_of_request(request))
            subscription = self._subscription_of(request) if call is None else None
            if call is not None:
                call.on_request(request, key, self.now)
            elif subscription is not None:
                subscription.on_notify(request, key, self.now)
            else:
                self.respond(key, make_response(request, 481, to_tag=new_tag()))
            return
        if request.method == "INVITE":
            self._on_invite(request, key, event.source)
        elif request.method == "CANCEL":
            cancelled = self._calls_by_invite.get(event.cancels) if event.cancels else None
            if cancelled is None:
                self.respond(key, make_response(request, 481, to_tag=new_tag()))
            else:
                self.respond(key, make_response(request, 200, to_tag=cancelled.local_tag))
                cancelled.on_cancel(self.now)
        elif request.method == "OPTIONS":
            self.respond(key, make_response(request, 200, to_tag=new_tag(),
                                            extra=self.capabilities(toward=event.source.host)))
        elif request.method == "MESSAGE":
            self.deliver_message(request, key, None)
        elif request.method == "NOTIFY" and is_message_summary(request):
            self.respond(key, make_response(request, 200, to_tag=new_tag()))  # unsolicited
            self.emit(mwi_event(request))
        elif request.method == "NOTIFY":
            self.respond(key, make_response(request, 489, "Bad Event", to_tag=new_tag()))
        else:
            self.respond(key, make_response(request, 481, to_tag=new_tag()))

    def _on_invite(self, request: Request, key: TransactionKey, source: Peer) -> None:
        if self._unanswered >= self.config.max_unanswered_calls:
            self.respond(key, make_response(request, 486, to_tag=new_tag()))
            return
        brief = too_brief(request, self.config.session_timer)
        if brief is not None:  # RFC 4028 9: an interval below our Min-SE
            self.respond(key, make_response(request, 422, to_tag=new_tag(),
                                            extra=Headers([("Min-SE", str(brief))])))
            return
        if self.config.rel100 == "required" and not supports_100rel(request):
            self.respond(key, make_response(request, 421, to_tag=new_tag(),
                                            extra=Headers([("Require", REL100)])))
            return
        limit = self.config.guard.max_calls_per_source
        if limit and self._calls_from[source.host] >= limit and not self.spared(source.host):
            self.respond(key, busy(request, reason="Too many calls from your address"))
            return
        refused, replaced = self._replaced_by(request, key)
        if refused:
            return
        call = CoreCall.incoming(self, request, key, source, new_tag())
        call.replacing = replaced
        if call.handle in self.calls:  # our own call to ourselves shares its Call-ID
            call.handle = f"{call.handle}#{call.local_tag}"
        self.calls[call.handle] = call
        self._calls_by_invite[key] = call
        self._unanswered += 1
        self._calls_from[source.host] += 1
        self.emit(CallCreated(call.handle, "incoming"))
        call.announce(self.now)

    def _replaced_by(self, request: Request,
                     key: TransactionKey) -> tuple[bool, CoreCall | None]:
        """(refused, call): the answered call an INVITE's Replaces names (RFC 3891), None
        without Replaces; refused when it names none we have (481 sent) or cannot be read
        (400 sent)."""
        value = request.headers.get("Replaces")
        if value is None:
            return False, None
        try:
            replaces = Replaces.parse(value)
        except ParseError as error:
            self.respond(key, make_response(request, 400, error.reason, to_tag=new_tag()))
            return True, None
        call = self._calls_by_dialog.get((replaces.call_id, replaces.to_tag,
                                          replaces.from_tag))
        if call is None or call.state is not CallState.ANSWERED or replaces.early_only:
            self.respond(key, make_response(request, 481, "No call to replace",
                                            to_tag=new_tag()))
            return True, None
        return False, call

    # --- bookkeeping for calls and registrations --------------------------------------------

    def _subscription_of(self, request: Request) -> CoreSubscription | None:
        """The subscription of ours a NOTIFY belongs to: by its dialog, or, when it
        overtook the SUBSCRIBE's 2xx, by Call-ID and our tag."""
        if request.method != "NOTIFY":
            return None
        found = self._subscriptions_by_dialog.get(_dialog_key_of_request(request))
        if found is not None:
            return found
        tag = request.to_address.tag
        return next((s for s in self.subscriptions.values()
                     if s.dialog is None and (s.call_id, s.from_tag) == (request.call_id, tag)),
                    None)

    def bind_subscription(self, subscription: CoreSubscription,
                          key: tuple[str, str, str]) -> None:
        self._subscriptions_by_dialog[key] = subscription

    def unbind_subscription(self, key: tuple[str, str, str]) -> None:
        self._subscriptions_by_dialog.pop(key, None)

    def forget_subscription(self, subscription: CoreSubscription) -> None:
        self.timers.cancel_all(subscription, ("refresh",))
        for number, known in list(self.subscriptions.items()):
            if known is subscription:
                del self.subscriptions[number]

    def bind_dialog(self, call: CoreCall, key: tuple[str, str, str]) -> None:
        self._calls_by_dialog[key] = call

    def forget(self, call: CoreCall) -> None:
        """A call ended: drop every index that leads to it."""
        self.calls.pop(call.handle, None)
        if call.direction == "incoming" and call.answered_at is None:
            self._unanswered -= 1
        if call.direction == "incoming" and call.source is not None:
            self._calls_from[call.source.host] -= 1
            if self._calls_from[call.source.host] <= 0:
                del self._calls_from[call.source.host]
        for dialog in (call.dialog, *call.early.values()):
            if dialog is not None and self._calls_by_dialog.get(dialog.key) is call:
                del self._calls_by_dialog[dialog.key]
        if self._calls_by_local.get((call.call_id, call.local_tag)) is call:
            del self._calls_by_local[(call.call_id, call.local_tag)]
        if call.server_key is not None and self._calls_by_invite.get(call.server_key) is call:
            del self._calls_by_invite[call.server_key]
        if call.invite is not None and call.invite.key is not None and call.invite.done:
            # (one still unanswered stays: a late 1xx gets its CANCEL, a late 2xx its ACK
            # and BYE, and its own final response or timeout removes it)
            self._exchanges.pop(call.invite.key, None)

    def answered(self, call: CoreCall) -> None:
        if call.direction == "incoming":
            self._unanswered -= 1

    def forget_registration(self, registration: CoreRegistration) -> None:
        for key, known in list(self.registrations.items()):
            if known is registration:
                del self.registrations[key]
                self.timers.cancel_all(registration, ("refresh", "keepalive", "pong"))

    def keep_fork(self, call: CoreCall, dialog: Dialog, response: Response,
                  now: float) -> None:
        """Another fork's 2xx that the API keeps: a call of its own (signalling only: the
        RTP port belongs to the first answer), named ``CALLID#TOTAG``."""
        fork = CoreCall(self, f"{call.call_id}#{dialog.remote_tag}", "outgoing", call.call_id,
                        call.local_tag, call.remote_uri)
        fork.dialog = dialog
        fork.state = CallState.ANSWERED
        fork.answered_at = now
        self.calls[fork.handle] = fork
        self.bind_dialog(fork, dialog.key)
        self.emit(CallCreated(fork.handle, "outgoing"))

    # --- the API: calls -------------------------------------------------------------------------

    def _call(self, handle: str) -> CoreCall:
        call = self.calls.get(handle)
        if call is None:
            raise LocalProtocolError(f"no call {handle!r} (it may have ended)")
        return call

    def invite(self, uri: str | SipUri, now: float, rtp_port: int,
               ring_timeout: float | None = None, duration: float | None = None,
               with_offer: bool = True, keep_forks: bool = False,
               call_id: str | None = None,
               media_address: tuple[str, int] | None = None,
               transfer_of: str | None = None) -> CoreCall:
        """Place a call; returns it (its ``handle``, the Call-ID, names it in events; it may
        be over already, when the request could not even leave). ``rtp_port`` is the port
        the shell bound for its media; ``with_offer=False`` sends the INVITE without SDP
        (the offer then comes in the 2xx, our answer in the ACK). ``media_address``: where
        our RTP is reached from outside (a STUN answer), for the SDP. ``transfer_of``: the
        call whose REFER this call follows (TransferNeeded): it carries Referred-By and
        Replaces, and its progress is NOTIFYed to the transferor."""
        self.now = now
        target = uri if isinstance(uri, SipUri) else parse_sip_uri(uri)
        call_id = call_id or new_call_id(self.advertised_host())
        call = CoreCall(self, call_id, "outgoing", call_id, new_tag(), target)
        call.keep_forks = keep_forks
        call.media_address = media_address
        self._follow_refer(call, transfer_of)
        self.calls[call.handle] = call
        self._calls_by_local[(call_id, call.local_tag)] = call
        call.start(now, rtp_port, ring_timeout, duration, with_offer)
        return call

    def _follow_refer(self, call: CoreCall, transfer_of: str | None) -> None:
        old = self.calls.get(transfer_of) if transfer_of is not None else None
        refer = old.take_refer() if old is not None else None
        if old is None or refer is None:
            return
        call.transfer_for, old.transfer_call = old, call
        if refer.referred_by:
            call.invite_headers.append(("Referred-By", refer.referred_by))
        if refer.replaces is not None:
            call.invite_headers.append(("Replaces", str(refer.replaces)))

    def transfer(self, handle: str, now: float, target: str | SipUri | None = None,
                 replacing: str | None = None) -> int:
        """REFER the peer of ``handle`` to ``target`` (blind), or to the peer of our call
        ``replacing`` with Replaces (attended: that call is taken over by the transferee's).
        Completed(request) brings the transfer's final status."""
        self.now = now
        call = self._call(handle)
        replaces = None
        if replacing is not None:
            other = self._call(replacing)
            if other.dialog is None or other.state is not CallState.ANSWERED:
                raise LocalProtocolError("an attended transfer needs the other call answered")
            uri: SipUri = other.dialog.remote_target
            replaces = Replaces.of(other.dialog)
        elif target is not None:
            uri = target if isinstance(target, SipUri) else parse_sip_uri(target)
        else:
            raise LocalProtocolError("a transfer needs a target or a call to replace")
        request = self._next_id()
        call.refer(request, now, uri, replaces)
        return request

    def transfer_failed(self, handle: str, now: float, reason: str) -> None:
        """The shell could not place the call a REFER asked for: the transferor hears so."""
        self.now = now
        call = self.calls.get(handle)
        if call is not None:
            call.take_refer()
            call.notify_transfer(500, reason, True, now)

    def ring(self, handle: str, now: float) -> None:
        self.now = now
        self._call(handle).ring(now)

    def answer(self, handle: str, now: float, rtp_port: int, after: float | None = None,
               media_address: tuple[str, int] | None = None) -> None:
        self.now = now
        call = self._call(handle)
        call.media_address = media_address
        call.answer(now, rtp_port, after)

    def early_media(self, handle: str, now: float, rtp_port: int,
                    media_address: tuple[str, int] | None = None) -> None:
        """183 Session Progress with our SDP: media before the answer (RFC 3960)."""
        self.now = now
        call = self._call(handle)
        call.media_address = media_address
        call.early_media(now, rtp_port)

    def reject(self, handle: str, now: float, status: int = 486,
               reason: str | None = None) -> None:
        self.now = now
        self._call(handle).reject(status, reason, now)

    def redirect(self, handle: str, now: float, target: str, status: int = 302) -> None:
        self.now = now
        self._call(handle).redirect(target, status, now)

    def hangup(self, handle: str, now: float) -> None:
        """End the call whatever its state (BYE, CANCEL or 603); a call already over is
        left alone."""
        self.now = now
        call = self.calls.get(handle)
        if call is not None:
            call.hangup(now)

    def cancel(self, handle: str, now: float) -> None:
        self.now = now
        call = self.calls.get(handle)
        if call is not None:
            call.cancel(now)

    def fail(self, handle: str, now: float, reason: str, status: int = 500) -> None:
        """A local failure (media, a file) ends the call, telling the peer as it can."""
        self.now = now
        call = self.calls.get(handle)
        if call is not None:
            call.fail(reason, status, now)

    def abandon(self, handle: str, now: float, reason: str) -> None:
        """End the call here without waiting for the peer any longer (the agent closes)."""
        self.now = now
        call = self.calls.get(handle)
        if call is not None:
            call.end(200 if call.answered_at is not None else 487, reason, "local", now)

    def reinvite(self, handle: str, now: float, direction: str | None = None,
                 codecs: tuple[str, ...] | None = None) -> int:
        """A new offer (hold: direction sendonly; resume: sendrecv; codecs: another set);
        Completed(request) says how it went, after any glare retries."""
        self.now = now
        request = self._next_id()
        self._call(handle).reinvite(request, now, direction, codecs)
        return request

    def update(self, handle: str, now: float, direction: str | None = None,
               codecs: tuple[str, ...] | None = None) -> int:
        """A new offer in an UPDATE (RFC 3311): in the confirmed dialog, or in the early
        one once early media agreed a session; Completed(request) says how it went."""
        self.now = now
        request = self._next_id()
        self._call(handle).update(request, now, direction, codecs)
        return request

    def info(self, handle: str, now: float, body: bytes, content_type: str) -> int:
        self.now = now
        request = self._next_id()
        self._call(handle).send_in_dialog("INFO", request, body, content_type, now)
        return request

    def call_message(self, handle: str, now: float, text: str,
                     content_type: str = TEXT_PLAIN_UTF8) -> int:
        """A MESSAGE inside the call ``handle`` (RFC 3428 7); Completed brings the answer."""
        self.now = now
        request = self._next_id()
        self._call(handle).send_in_dialog("MESSAGE", request, text.encode(), content_type,
                                          now)
        return request

    def deliver_message(self, request: Request, key: TransactionKey,
                        call_id: str | None) -> None:
        """An incoming MESSAGE, in a call (``call_id``) or not: 200, and the text as an event
        (RFC 3428 7: a UAS that takes the message answers 200; no dialog is made)."""
        self.respond(key, make_response(request, 200, to_tag=None if call_id else new_tag()))
        content_type = request.content_type
        self.emit(MessageReceived(str(request.from_address),
                                  request.body.decode("utf-8", errors="replace"),
                                  content_type.mime if content_type else TEXT_PLAIN,
                                  call_id))

    def media_status(self, handle: str, last_packet: float, now: float) -> None:
        self.now = now
        call = self.calls.get(handle)
        if call is not None:
            call.media_status(last_packet, now)

    # --- the API: registrations and OPTIONS -----------------------------------------------------

    def register(self, registrar: str | SipUri, now: float, expires: int = 3600,
                 refresh: bool = True) -> tuple[int, int]:
        """REGISTER with ``registrar``; returns (registration, request): Completed(request)
        comes with the outcome, Registered or RegistrationFailed too."""
        self.now = now
        uri = registrar if isinstance(registrar, SipUri) else parse_sip_uri(registrar)
        registration = CoreRegistration(self, uri, expires, refresh)
        number = self._next_id()
        self.registrations[number] = registration
        request = self._next_id()
        registration.register(request, now)
        return number, request

    def subscribe_mwi(self, target: str | SipUri | None, now: float,
                      expires: int = 3600) -> tuple[int, int]:
        """Subscribe to message-summary (RFC 3842) at ``target`` (default: our address of
        record); returns (subscription, request): Completed(request) brings the answer,
        ``mwi`` events the mailbox's state, refreshed until ``unsubscribe``."""
        self.now = now
        uri = self.address_of_record if target is None else (
            target if isinstance(target, SipUri) else parse_sip_uri(target))
        subscription = CoreSubscription(self, uri, expires)
        number = self._next_id()
        self.subscriptions[number] = subscription
        request = self._next_id()
        subscription.subscribe(request, now)
        return number, request

    def unsubscribe(self, subscription: int, now: float) -> int:
        self.now = now
        request = self._next_id()
        found = self.subscriptions.get(subscription)
        if found is None:
            self.emit(Completed(request, 200, "Not subscribed"))
        else:
            found.unsubscribe(request, now)
        return request

    def unregister(self, registration: int, now: float) -> int:
        self.now = now
        request = self._next_id()
        found = self.registrations.get(registration)
        if found is None:
            self.emit(Completed(request, 200, "Not registered"))
        else:
            found.unregister(request, now)
        return request

    def options(self, uri: str | SipUri, now: float) -> int:
        """Ask a peer what it supports; Completed(request) brings its answer (the shell
        makes the public OptionsResult of it with ``options_result``)."""
        self.now = now
        target = uri if isinstance(uri, SipUri) else parse_sip_uri(uri)
        request = self.new_request("OPTIONS", target)
        request.headers.add("Accept", ACCEPT)
        number = self._next_id()
        sending: list[Exchange] = []
        sending.append(self.exchange(request, self.route_for(target),
                                     self._completer(number, sending), None, now))
        return number

    def message(self, uri: str | SipUri, text: str, now: float,
                content_type: str = TEXT_PLAIN_UTF8) -> int:
        """Send ``text`` in a MESSAGE outside any dialog (RFC 3428 pager mode), through the
        outbound proxy or Service-Route like any request, challenges answered;
        Completed(request) brings the answer."""
        self.now = now
        target = uri if isinstance(uri, SipUri) else parse_sip_uri(uri)
        request = self.new_request("MESSAGE", target)
        body = text.encode()
        request.headers.add("Content-Type", content_type)
        request = Request(request.method, request.uri, request.headers, body)
        number = self._next_id()
        sending: list[Exchange] = []
        sending.append(self.exchange(request, self.route_for(target),
                                     self._completer(number, sending), None, now))
        return number

    def send(self, request: Request, targets: list[Peer], now: float) -> int:
        """Any request of the caller's making (a test's, say) to ``targets`` in order, with
        challenges answered and failover; Completed(request) brings the outcome."""
        self.now = now
        number = self._next_id()
        sending: list[Exchange] = []
        exchange = Exchange(request, SipUri(host=targets[0].host),
                            self._completer(number, sending), targets=list(targets))
        sending.append(exchange)
        self._transmit(exchange, exchange.first_target(now, self._avoid))
        return number

    def _completer(self, number: int, sending: list[Exchange]) -> Callable[[Response], None]:
        """An exchange's final handler that reports it as Completed(number), with the
        request as last sent (``sending`` holds the exchange once it exists)."""
        def done(response: Response) -> None:
            sent = sending[0].sent if sending else None
            self.emit(Completed(number, response.status, response.reason, response, sent))
        return done


def options_result(uri: str, done: Completed) -> OptionsResult:
    """The public event for an OPTIONS outcome: what the peer allows, accepts, supports."""
    response = done.response
    if response is None:
        return OptionsResult(uri=uri, status=done.status, reason=done.reason, allow=[],
                             accept=[], supported=[], user_agent=None)
    return OptionsResult(
        uri=uri, status=response.status, reason=response.reason,
        allow=_tokens(response, "Allow"), accept=response.headers.get_all("Accept"),
        supported=_tokens(response, "Supported"),
        user_agent=response.headers.get("User-Agent") or response.headers.get("Server"))


def transport_for(uri: SipUri, default: str) -> str:
    """The transport a request for ``uri`` takes: its transport parameter, TLS for a sips:
    URI (RFC 3261 26.2), else the agent's default."""
    if uri.transport:
        return uri.transport
    return "tls" if uri.scheme.lower() == "sips" else default


def _hop(peer: Peer) -> str:
    return f"{peer.transport}:{peer.host}:{peer.port}"


def _dns_key(uri: SipUri) -> tuple[str, int | None, str | None]:
    return (uri.param("maddr") or uri.host, uri.port, uri.transport)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _tokens(response: Response, name: str) -> list[str]:
    try:
        return response.tokens(name)
    except ParseError:
        return response.headers.get_all(name)


def _dialog_key_of_request(request: Request) -> tuple[str, str, str]:
    return (request.call_id, request.to_address.tag or "", request.from_address.tag or "")
