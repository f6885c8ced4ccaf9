"""SIP over UDP: one datagram is one message (RFC 3261 18.3)."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from softphone.sip import ParseError, parse
from softphone.sip.transaction import Peer
from softphone.transport.base import MessageSink
from softphone.transport.stun import StunClient, is_stun


class UdpTransport(asyncio.DatagramProtocol):
    name = "udp"
    via = "UDP"
    uri_transport: str | None = None
    secure = False

    def __init__(self, sink: MessageSink) -> None:
        self._sink = sink
        self.stun = StunClient(self._send_raw)
        self._transport: asyncio.DatagramTransport | None = None
        self.host = ""
        self.port = 0
        self.reuse_port = False  # SO_REUSEPORT: worker processes share one SIP port

    async def start(self, host: str, port: int) -> None:
        """Bind ``host:port`` (0: any free port). Raises OSError with its errno (uvloop's
        own bind error has none), which the agent turns into a sentence."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if self.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        await loop.create_datagram_endpoint(lambda: self, sock=sock)
        assert self._transport is not None
        self.host, self.port = self._transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        source = Peer("udp", str(addr[0]), int(str(addr[1])))
        if is_stun(data):
            self.stun.received(data, (source.host, source.port))
            return  # an answer to our binding request (the SIP socket's public address)
        self._sink.trace("received", data, source)
        if data.strip(b"\r\n") == b"":
            return  # keep-alive (RFC 5626 CRLF ping)
        try:
            message = parse(data)
        except ParseError as error:
            self._sink.bad_message(data, error, source)
            return
        self._sink.message_received(message, source)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors on an unconnected socket: the transaction timers handle loss

    def send(self, data: bytes, peer: Peer) -> None:
        if self._transport is not None:
            self._sink.trace("sent", data, peer)
            self._transport.sendto(data, (peer.host, peer.port))

    def _send_raw(self, data: bytes, destination: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, destination)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        pass
