"""The RTP socket of a call. For now it reserves the port our SDP advertises and counts what
arrives (so a peer's RTP meets an open port, and tests can see media flowing); the media
engine reads and writes packets through it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

PacketHandler = Callable[[bytes, tuple[str, int]], None]


@dataclass(frozen=True)
class Impairment:
    """Deterministic network trouble for tests: drop ``loss`` of the packets sent, delay each
    by up to ``jitter`` seconds (which reorders them), from a seeded generator."""

    loss: float = 0.0
    jitter: float = 0.0
    seed: int = 1


class RtpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, impairment: Impairment | None = None) -> None:
        self.impairment = impairment
        self._random = random.Random(impairment.seed if impairment else 0)
        self._transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.packets_received = 0
        self.bytes_received = 0
        self.last_source: tuple[str, int] | None = None
        self.handler: PacketHandler | None = None

    async def open(self, host: str) -> int:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, 0))
        assert self._transport is not None
        self.port = int(self._transport.get_extra_info("sockname")[1])
        return self.port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        source = (str(addr[0]), int(str(addr[1])))
        self.packets_received += 1
        self.bytes_received += len(data)
        self.last_source = source
        if self.handler is not None:
            self.handler(data, source)

    def error_received(self, exc: Exception) -> None:
        pass

    def send(self, data: bytes, destination: tuple[str, int]) -> None:
        if self._transport is None:
            return
        trouble = self.impairment
        if trouble is None:
            self._transport.sendto(data, destination)
            return
        if self._random.random() < trouble.loss:
            return
        delay = self._random.uniform(0, trouble.jitter)
        asyncio.get_running_loop().call_later(delay, self._send_now, data, destination)

    def _send_now(self, data: bytes, destination: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, destination)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
