"""The RTP and RTCP sockets of a call: an even port for RTP and the next one for RTCP
(RFC 3550 11), with a count of what arrives. The media stream reads and writes through it."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

from softphone.transport.stun import StunClient, is_stun

PacketHandler = Callable[[bytes, tuple[str, int]], None]
PORT_PAIR_ATTEMPTS = 256


@dataclass(frozen=True)
class Impairment:
    """Deterministic network trouble for tests: drop ``loss`` of the packets sent, delay each
    by up to ``jitter`` seconds (which reorders them), from a seeded generator."""

    loss: float = 0.0
    jitter: float = 0.0
    seed: int = 1

    @classmethod
    def parse(cls, text: str) -> Impairment:
        """``loss=5%,jitter=30ms,seed=1`` (loss also as a fraction, jitter also in seconds:
        ``0.05``, ``0.03s``); ValueError naming the part that is wrong."""
        settings: dict[str, float | int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, equals, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not equals or key not in ("loss", "jitter", "seed") or key in settings:
                raise ValueError(f"{part!r}: expected loss=PERCENT%, jitter=MILLISECONDSms "
                                 "or seed=N, each once")
            settings[key] = _impairment_value(key, value)
        if not settings:
            raise ValueError("nothing to impair: give loss=, jitter= and/or seed=")
        return cls(**settings)  # type: ignore[arg-type]


def _impairment_value(key: str, value: str) -> float | int:
    try:
        if key == "seed":
            return int(value)
        if key == "loss":
            fraction = float(value[:-1]) / 100 if value.endswith("%") else float(value)
            if not 0 <= fraction <= 1:
                raise ValueError
            return fraction
        seconds = float(value[:-2]) / 1000 if value.endswith("ms") else \
            float(value.removesuffix("s"))
        if not 0 <= seconds <= 10:
            raise ValueError
        return seconds
    except ValueError:
        wanted = {"seed": "a whole number", "loss": "a percentage 0-100% (or fraction 0-1)",
                  "jitter": "milliseconds 0-10000ms (or seconds)"}[key]
        raise ValueError(f"{key}={value!r}: expected {wanted}") from None


DEFAULT_RTP_PORTS = (16384, 32767)


class PortRange:
    """Where calls bind their RTP/RTCP pairs: even ports of ``first``..``last``, taken in turn
    from a random start (and at random after a taken one), so a pair is usually free at the
    first try; the kernel's ephemeral ports, above 32767 on Linux, come odd and even alike."""

    def __init__(self, first: int = DEFAULT_RTP_PORTS[0],
                 last: int = DEFAULT_RTP_PORTS[1]) -> None:
        if not 0 < first < last <= 65535:
            raise ValueError(f"Not a port range: {first}-{last}")
        self.first = first + first % 2
        self.pairs = (last - self.first + 1) // 2
        if self.pairs < 1:
            raise ValueError(f"Port range {first}-{last} holds no even/odd pair")
        self._cursor = random.randrange(self.pairs)

    def bind_pair(self, host: str) -> tuple[socket.socket, socket.socket]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for pair_index in self._candidates():
            port = self.first + 2 * pair_index
            pair = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(2)]
            try:
                pair[0].bind((host, port))
                pair[1].bind((host, port + 1))
            except OSError:
                for sock in pair:
                    sock.close()
                continue
            self._cursor = (pair_index + 1) % self.pairs
            for sock in pair:
                sock.setblocking(False)
            return pair[0], pair[1]
        last = self.first + 2 * self.pairs - 1
        raise OSError(f"no free RTP/RTCP port pair in {self.first}-{last}")

    def _candidates(self) -> Iterator[int]:
        """Pairs to try, as they are needed: a small range in turn from the cursor, all of
        it; a large one from the cursor, then at random, since a run of taken pairs (another
        process's calls from the same range) can be long, while random tries rarely all miss."""
        if self.pairs <= PORT_PAIR_ATTEMPTS:
            yield from ((self._cursor + i) % self.pairs for i in range(self.pairs))
            return
        yield self._cursor
        for _ in range(PORT_PAIR_ATTEMPTS - 1):
            yield random.randrange(self.pairs)


DEFAULT_PORTS = PortRange()


class RtpEndpoint(asyncio.DatagramProtocol):
    """``sendto`` is the way a packet leaves now, rebound as the endpoint's state changes: the
    transport's own ``sendto`` while it is open and nothing impairs it, so a media stream's
    packet goes from its tick to the socket without another Python call; the impairment's
    delay line when there is one; nothing before the socket opens or after it closes.

    The way in is rebound the same way: ``datagram_received``, which the transport calls for
    every datagram, is the ``handler`` itself while there is one and the socket is IPv4 (its
    addresses come as the (host, port) handlers expect), so a packet reaches the media stream
    without a call between; the handler gives back what is not RTP (a STUN answer) through
    ``not_rtp``. Otherwise it is the endpoint's own ``_received``, which sorts them."""

    def __init__(self, impairment: Impairment | None = None) -> None:
        self.impairment = impairment
        # seeded per endpoint, so an impaired test run repeats; none without an impairment
        # (a generator's state is 2.5 KB and its seeding a cost every call would pay)
        self._random = random.Random(impairment.seed) if impairment else None
        self._transport: asyncio.DatagramTransport | None = None
        self.sendto: PacketHandler = _nowhere
        self.datagram_received: PacketHandler = self._received  # type: ignore[assignment]
        self.port = 0
        self._ipv4 = False
        self._handler: PacketHandler | None = None
        self.rtcp_handler: PacketHandler | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self.stun = StunClient(self._send_now)

    async def open(self, host: str, ports: PortRange | None = None) -> int:
        """Bind an even RTP port and RTCP on the port above it; returns the RTP port."""
        rtp, rtcp = (ports or DEFAULT_PORTS).bind_pair(host)
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, sock=rtp)
            self._rtcp, _ = await loop.create_datagram_endpoint(lambda: _RtcpProtocol(self),
                                                                sock=rtcp)
        except BaseException:
            self.close()
            for sock in (rtp, rtcp):
                sock.close()
            raise
        self.port = rtp.getsockname()[1]
        return self.port

    def send_rtcp(self, data: bytes, destination: tuple[str, int]) -> None:
        if self._rtcp is not None:
            self._rtcp.sendto(data, destination)

    def rtcp_received(self, data: bytes, source: tuple[str, int]) -> None:
        if self.rtcp_handler is not None:
            self.rtcp_handler(data, source)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.sendto = self._impaired if self.impairment is not None else \
            self._transport.sendto
        self._ipv4 = len(transport.get_extra_info("sockname") or ()) == 2
        self._rebind()

    @property
    def handler(self) -> PacketHandler | None:
        """Who gets the RTP that arrives (see the class's text)."""
        return self._handler

    @handler.setter
    def handler(self, handler: PacketHandler | None) -> None:
        self._handler = handler
        self._rebind()

    def _rebind(self) -> None:
        direct = self._handler is not None and self._ipv4
        self.datagram_received = self._handler if direct else self._received  # type: ignore

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(addr) != 2:
            addr = addr[:2]  # IPv6 adds flow info and scope
        if self._handler is None or data[:1] < b"\x02":  # no RTP begins below version 2
            self.not_rtp(data, addr)
        else:
            self._handler(data, addr)

    def not_rtp(self, data: bytes, source: tuple[str, int]) -> None:
        """A datagram that is not RTP (the handler gives those back) or that came while no
        handler was set: a STUN answer is the endpoint's, anything else is dropped."""
        if data and data[0] < 2 and is_stun(data):
            self.stun.received(data, source)

    def error_received(self, exc: Exception) -> None:
        pass

    def send(self, data: bytes, destination: tuple[str, int]) -> None:
        self.sendto(data, destination)

    def _impaired(self, data: bytes, destination: tuple[str, int]) -> None:
        trouble, generator = self.impairment, self._random
        assert trouble is not None and generator is not None
        if generator.random() < trouble.loss:
            return
        delay = generator.uniform(0, trouble.jitter)
        asyncio.get_running_loop().call_later(delay, self._send_now, data, destination)

    def _send_now(self, data: bytes, destination: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, destination)

    def close(self) -> None:
        for transport in (self._transport, self._rtcp):
            if transport is not None:
                transport.close()
        self._transport = self._rtcp = None
        self.sendto = _nowhere


def _nowhere(data: bytes, destination: tuple[str, int]) -> None:
    """An endpoint's ``sendto`` while it has no socket: the packet is dropped."""


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.endpoint.rtcp_received(data, (str(addr[0]), int(str(addr[1]))))

    def error_received(self, exc: Exception) -> None:
        pass
