"""SIP over TCP: messages framed by Content-Length, connections reused both ways.

A connection we accept is keyed by the peer's address so that responses go back on it
(RFC 3261 18.2.2); one we open is keyed by the destination and reused for later requests."""

from __future__ import annotations

import asyncio
import contextlib

from softphone.sip import ParseError, StreamFramer
from softphone.sip.transaction import Peer
from softphone.transport.base import MessageSink

IDLE_TIMEOUT = 300.0


class TcpTransport:
    name = "tcp"
    via = "TCP"
    uri_transport: str | None = "tcp"

    def __init__(self, sink: MessageSink) -> None:
        self._sink = sink
        self._server: asyncio.Server | None = None
        self._writers: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._connecting: dict[tuple[str, int], asyncio.Future[asyncio.StreamWriter]] = {}
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accepted, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def _accepted(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        self._writers[(host, port)] = writer
        await self._read(reader, writer, Peer("tcp", host, port))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    peer: Peer) -> None:
        framer = StreamFramer()
        try:
            while data := await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT):
                self._sink.trace("received", data, peer)
                try:
                    messages = framer.feed(data)
                except ParseError as error:
                    self._sink.bad_message(data, error, peer)
                    break  # framing is lost: close the connection
                for message in messages:
                    self._sink.message_received(message, peer)
        except (OSError, TimeoutError):
            pass
        finally:
            self._writers.pop((peer.host, peer.port), None)
            writer.close()

    async def _connection(self, peer: Peer) -> asyncio.StreamWriter:
        """The connection to ``peer``: the open one, the one being opened, or a new one
        (messages sent while it connects share it)."""
        writer = self._writers.get((peer.host, peer.port))
        if writer is not None and not writer.is_closing():
            return writer
        pending = self._connecting.get((peer.host, peer.port))
        if pending is None:
            pending = asyncio.ensure_future(self._connect(peer))
            self._connecting[(peer.host, peer.port)] = pending
            pending.add_done_callback(
                lambda _: self._connecting.pop((peer.host, peer.port), None))
        return await asyncio.shield(pending)

    async def _connect(self, peer: Peer) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(peer.host, peer.port)
        self._writers[(peer.host, peer.port)] = writer
        task = asyncio.ensure_future(self._read(reader, writer, peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return writer

    def send(self, data: bytes, peer: Peer) -> None:
        """Send on the connection to ``peer`` at once when it is up, else once a new one
        is; a failure to connect or write is reported to the sink, naming its reason."""
        writer = self._writers.get((peer.host, peer.port))
        if writer is not None and not writer.is_closing():
            self._sink.trace("sent", data, peer)
            writer.write(data)
            return
        task = asyncio.ensure_future(self._connect_and_send(data, peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_and_send(self, data: bytes, peer: Peer) -> None:
        try:
            writer = await self._connection(peer)
            self._sink.trace("sent", data, peer)
            writer.write(data)
            await writer.drain()
        except OSError as error:
            reason = f"{(error.strerror or str(error)).capitalize()} ({peer})"
            self._sink.transport_failed(peer, reason)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers.values()):
            writer.close()
        for task in self._tasks:
            task.cancel()

    async def wait_closed(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
