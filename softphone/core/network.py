"""An in-memory network of user-agent cores on a virtual clock: two or more agents in one
process, without sockets and without sleeping (aioquic's tests and h11's ConnectionPair
work the same way).

Datagrams travel as bytes (so every message is built and parsed as on a wire) with a fixed
latency; the clock jumps to the next delivery or timer. Rules can lose, delay or duplicate
chosen messages, which is how the tests make a lost ACK, a lost 200, crossing re-INVITEs
or a forking proxy. Names resolve through a table the test fills (``dns``), RTP inactivity
questions are answered from a per-call "last packet" the test controls, and every event is
kept per agent.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from softphone.core.agent import CoreConfig, ListeningPoint, UserAgentCore
from softphone.core.call import CoreCall
from softphone.core.events import (
    CallCreated,
    CallGone,
    CoreEvent,
    MediaCheck,
    ResolveNeeded,
    TransferNeeded,
)
from softphone.events import Ended, Event
from softphone.sip import ParseError, Request, Response, parse
from softphone.sip.transaction import Peer

Rule = Callable[[bytes, Peer, Peer], bool]
# A scripted server (a registrar, a proxy that challenges): the responses to one request.
Responder = Callable[[Request, Peer], list[Response]]


@dataclass
class _Fate:
    """What happens to the datagrams a rule picks: lost, delayed or duplicated, ``times``
    times (None: every time)."""

    matches: Rule
    action: str
    times: int | None
    delay: float = 0.0


class VirtualAgent:
    """A core on the virtual network, and what happened to it."""

    def __init__(self, network: VirtualNetwork, name: str, host: str, port: int,
                 core: UserAgentCore) -> None:
        self.network = network
        self.name = name
        self.host = host
        self.port = port
        self.core = core
        self.events: list[Event | CoreEvent] = []
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self.last_packet: dict[str, float] = {}  # handle -> when RTP last "arrived"
        self._rtp_ports = itertools.count(20000, 2)

    @property
    def peer(self) -> Peer:
        return Peer("udp", self.host, self.port)

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@{self.host}:{self.port}"

    def rtp_port(self) -> int:
        return next(self._rtp_ports)

    # the API, at the network's current time
    def call(self, uri: str, **options: object) -> str:
        return self.core.invite(uri, self.network.now, self.rtp_port(),
                                **options).handle  # type: ignore[arg-type]

    def answer(self, handle: str, after: float | None = None) -> None:
        self.core.answer(handle, self.network.now, self.rtp_port(), after)

    def incoming(self) -> list[str]:
        """Handles of the incoming calls this agent has been offered, in order."""
        self.network.flush()
        return [e.handle for e in self.events
                if isinstance(e, CallCreated) and e.direction == "incoming"]

    def ended(self, handle: str) -> Ended | None:
        self.network.flush()
        return next((e.ended for e in self.events
                     if isinstance(e, CallGone) and e.handle == handle), None)

    def of(self, kind: type[Event | CoreEvent]) -> list[Event | CoreEvent]:
        self.network.flush()
        return [e for e in self.events if isinstance(e, kind)]

    def call_state(self, handle: str) -> CoreCall | None:
        return self.core.calls.get(handle)

    def _serve(self, event: Event | CoreEvent) -> None:
        """The shell's part: answer the core's questions as a real one would."""
        now = self.network.now
        if isinstance(event, ResolveNeeded):
            peers = self.network.dns.get(event.uri.host)
            if peers:
                self.core.resolved(event.lookup, peers, now)
            else:
                self.core.resolution_failed(event.lookup, f"Cannot resolve {event.uri.host}",
                                            now)
        elif isinstance(event, MediaCheck):
            self.core.media_status(event.handle, self.last_packet.get(event.handle, now), now)
        elif isinstance(event, TransferNeeded):  # a REFER we took: call its target
            self.core.invite(event.target, now, self.rtp_port(), transfer_of=event.handle)
        elif isinstance(event, CallCreated) and event.direction == "incoming":
            call = self.core.calls.get(event.handle)
            if call is not None and call.replacing is not None:  # RFC 3891: taken at once
                self.answer(event.handle)


class _Nat:
    """A NAT with a public address: a mapped port per inside address, alive ``timeout``
    seconds after the last outbound datagram (as a home router's UDP bindings are)."""

    def __init__(self, public_host: str, timeout: float) -> None:
        self.public_host = public_host
        self.timeout = timeout
        self._ports = itertools.count(40000)
        self._mapped: dict[Peer, int] = {}
        self._inside: dict[int, tuple[Peer, float]] = {}

    def outbound(self, source: Peer, now: float) -> Peer:
        port = self._mapped.get(source)
        if port is None:
            port = self._mapped[source] = next(self._ports)
        self._inside[port] = (source, now + self.timeout)
        return Peer(source.transport, self.public_host, port)

    def inbound(self, destination: Peer, now: float) -> Peer | None:
        found = self._inside.get(destination.port)
        if found is None or found[1] < now:
            return None
        return found[0]


@dataclass(order=True)
class _Delivery:
    when: float
    sequence: int
    data: bytes = field(compare=False)
    source: Peer = field(compare=False)
    destination: Peer = field(compare=False)


class VirtualNetwork:
    def __init__(self, latency: float = 0.005, seed: int = 1) -> None:
        self.now = 0.0
        self.latency = latency
        self.agents: dict[Peer, VirtualAgent] = {}
        self.responders: dict[Peer, Responder] = {}
        self._nats: dict[str, _Nat] = {}  # inside host -> its NAT
        self.dns: dict[str, list[Peer]] = {}
        self.log: list[tuple[float, Peer, Peer, bytes]] = []  # every datagram delivered
        self._fates: list[_Fate] = []
        self._in_flight: list[_Delivery] = []
        self._sequence = itertools.count()
        self._hosts = itertools.count(1)
        self._seed = seed

    def agent(self, name: str, host: str | None = None, port: int = 5060,
              **config: object) -> VirtualAgent:
        host = host or f"10.0.0.{next(self._hosts)}"
        core = UserAgentCore(CoreConfig(user=name, **config),  # type: ignore[arg-type]
                             rng=random.Random(f"{self._seed}:{name}"))
        core.listen(ListeningPoint("udp", host, port, "UDP"))
        agent = VirtualAgent(self, name, host, port, core)
        self.agents[agent.peer] = agent
        return agent

    def responder(self, host: str, port: int, answer: Responder) -> Peer:
        """A scripted server at ``host:port``: ``answer(request, source)`` gives the
        responses to send back (statelessly) for each request that arrives there."""
        peer = Peer("udp", host, port)
        self.responders[peer] = answer
        return peer

    def nat(self, inside_host: str, public_host: str, timeout: float = 30.0) -> None:
        """Put ``inside_host`` behind a NAT: what it sends leaves from ``public_host`` on a
        mapped port; what comes back to that port reaches it only while the mapping lives,
        ``timeout`` seconds after it last sent something through it."""
        self._nats[inside_host] = _Nat(public_host, timeout)

    def inject(self, data: bytes, source: Peer, destination: Peer) -> None:
        """A datagram of the test's own making, delivered after the usual latency."""
        self._send(data, source, destination)

    # --- the network's misbehaviour ------------------------------------------------------------

    def lose(self, matches: Rule, times: int | None = 1) -> None:
        self._fates.append(_Fate(matches, "lose", times))

    def delay(self, matches: Rule, seconds: float, times: int | None = 1) -> None:
        self._fates.append(_Fate(matches, "delay", times, seconds))

    def duplicate(self, matches: Rule, times: int | None = 1) -> None:
        self._fates.append(_Fate(matches, "duplicate", times))

    # --- running ---------------------------------------------------------------------------

    def step(self) -> bool:
        """Move everything one instant on: flush what agents want to send and the events
        they emitted, then deliver or fire what is due next. False when nothing is left."""
        self.flush()
        next_delivery = self._in_flight[0].when if self._in_flight else None
        timers = [t for t in (a.core.get_timer() for a in self.agents.values()) if t is not None]
        candidates = [t for t in (next_delivery, min(timers) if timers else None)
                      if t is not None]
        if not candidates:
            return False
        self.now = max(self.now, min(candidates))
        while self._in_flight and self._in_flight[0].when <= self.now:
            self._deliver(heapq.heappop(self._in_flight))
        for agent in list(self.agents.values()):
            deadline = agent.core.get_timer()
            if deadline is not None and deadline <= self.now:
                agent.core.handle_timer(self.now)
        self.flush()
        return True

    def run(self, seconds: float | None = None, until: Callable[[], bool] | None = None,
            max_steps: int = 100_000) -> None:
        """Run until ``until()`` holds, ``seconds`` of virtual time pass, or nothing is left
        to happen; a cap on steps catches a loop that never settles."""
        stop_at = self.now + seconds if seconds is not None else None
        for _ in range(max_steps):
            self.flush()
            if until is not None and until():
                return
            upcoming = self._next_time()
            if upcoming is None or (stop_at is not None and upcoming > stop_at):
                if stop_at is not None:
                    self.now = max(self.now, stop_at)
                return
            self.step()
        raise AssertionError(f"the network did not settle in {max_steps} steps")

    def _next_time(self) -> float | None:
        times = [d.when for d in self._in_flight[:1]]
        times += [t for t in (a.core.get_timer() for a in self.agents.values()) if t is not None]
        return min(times) if times else None

    def flush(self) -> None:
        """Collect what every agent wants sent and the events it emitted (serving the
        core's questions), until nothing more comes."""
        busy = True
        while busy:
            busy = False
            for agent in list(self.agents.values()):
                for data, destination in agent.core.datagrams_to_send():
                    busy = True
                    agent.sent.append(data)
                    self._send(data, agent.peer, destination)
                while (event := agent.core.next_event()) is not None:
                    busy = True
                    agent.events.append(event)
                    agent._serve(event)

    def _send(self, data: bytes, source: Peer, destination: Peer) -> None:
        nat = self._nats.get(source.host)
        if nat is not None:
            source = nat.outbound(source, self.now)
        delay, copies = self.latency, 1
        for fate in self._fates:
            if fate.times == 0 or not fate.matches(data, source, destination):
                continue
            if fate.times is not None:
                fate.times -= 1
            if fate.action == "lose":
                return
            if fate.action == "delay":
                delay += fate.delay
            elif fate.action == "duplicate":
                copies += 1
        for _ in range(copies):
            heapq.heappush(self._in_flight, _Delivery(self.now + delay, next(self._sequence),
                                                      data, source, destination))

    def _deliver(self, delivery: _Delivery) -> None:
        for nat in self._nats.values():
            if delivery.destination.host == nat.public_host:
                inside = nat.inbound(delivery.destination, self.now)
                if inside is None:
                    return  # no live mapping: the NAT drops it
                delivery.destination = inside
        where = Peer("udp", delivery.destination.host, delivery.destination.port)
        self.log.append((self.now, delivery.source, delivery.destination, delivery.data))
        if not delivery.data.strip(b"\r\n"):
            return  # a keep-alive (RFC 5626): nothing to read, as a real UDP transport does
        responder = self.responders.get(where)
        if responder is not None:
            message = parse(delivery.data)
            if isinstance(message, Request):
                for response in responder(message, delivery.source):
                    self._send(bytes(response), where, delivery.source)
            return
        agent = self.agents.get(where)
        if agent is None:
            return  # nobody there: lost, as UDP is
        agent.received.append(delivery.data)
        source = Peer("udp", delivery.source.host, delivery.source.port)
        try:
            message = parse(delivery.data)
        except ParseError as error:
            agent.core.receive_garbage(delivery.data, error, source)
            return
        agent.core.receive(message, source, self.now)


def is_request(method: str) -> Rule:
    """A rule's test: a request of ``method``."""
    prefix = f"{method} ".encode()
    return lambda data, source, destination: data.startswith(prefix)


def is_response(status: int, method: str | None = None) -> Rule:
    """A rule's test: a response with ``status`` (to ``method``, when given)."""
    prefix = f"SIP/2.0 {status} ".encode()

    def matches(data: bytes, source: Peer, destination: Peer) -> bool:
        if not data.startswith(prefix):
            return False
        return method is None or f" {method}\r\n".encode() in data.split(b"\r\n\r\n")[0]

    return matches
