"""SIP over TCP (and, by subclassing, TLS): messages framed by Content-Length, connections
reused both ways.

A connection we accept is keyed by the peer's address so that responses go back on it
(RFC 3261 18.2.2); one we open is keyed by the destination and reused for later requests,
and incoming requests on it are served too (the registration's connection, RFC 5626).
CRLF keep-alives: a double CRLF (ping) is answered with a single one (pong), a pong is
reported to the engine. A connection that stays silent, or holds a partial message too
long (slowloris), is closed; so is any beyond the bounds on connections per source and in
all. A lost connection is reported, so that a registration over it can be renewed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from softphone.sip import ParseError, StreamFramer
from softphone.sip.transaction import Peer
from softphone.transport.base import MessageSink

IDLE_TIMEOUT = 300.0         # seconds a connection may stay silent between messages
FIRST_MESSAGE_TIMEOUT = 30.0  # an accepted connection must send a message within this
PARTIAL_TIMEOUT = 10.0        # a message once begun must be complete within this
MAX_CONNECTIONS = 1024
MAX_CONNECTIONS_PER_SOURCE = 32
PING, PONG = b"\r\n\r\n", b"\r\n"


CLOSE_SECONDS = 1.0  # how long a closing connection may take before it is aborted


class TcpTransport:
    name = "tcp"
    via = "TCP"
    uri_transport: str | None = "tcp"
    secure = False

    def __init__(self, sink: MessageSink) -> None:
        self._sink = sink
        self._server: asyncio.Server | None = None
        self._writers: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._connecting: dict[tuple[str, int], asyncio.Future[asyncio.StreamWriter]] = {}
        self._per_source: dict[str, int] = {}
        self._closed = False  # a connection that completes after close() is closed at once
        # the connections close() closed, kept for wait_closed to see gone: their reading
        # tasks, cancelled, take them out of _writers on their way out
        self._closing: list[asyncio.StreamWriter] = []
        self.host = ""
        self.port = 0
        self.reuse_port = False  # SO_REUSEPORT: worker processes share one SIP port

    # --- hooks a secure transport overrides -------------------------------------------------

    def _server_context(self) -> ssl.SSLContext | None:
        return None

    async def _open(self, peer: Peer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(peer.host, peer.port)

    def _failure(self, error: OSError, peer: Peer) -> str:
        return f"{(error.strerror or str(error)).capitalize()} ({peer})"

    # --- listening --------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        self._closed = False  # (started again after a failed bind)
        self._server = await asyncio.start_server(self._accepted, host, port,
                                                  ssl=self._server_context(),
                                                  reuse_port=self.reuse_port or None)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def _accepted(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        if len(self._writers) >= MAX_CONNECTIONS or \
                self._per_source.get(host, 0) >= MAX_CONNECTIONS_PER_SOURCE:
            writer.close()  # bounded: a flood of connections gets nothing
            return
        self._per_source[host] = self._per_source.get(host, 0) + 1
        self._writers[(host, port)] = writer
        try:
            await self._read(reader, writer, Peer(self.name, host, port), accepted=True)
        finally:
            self._per_source[host] -= 1
            if not self._per_source[host]:
                del self._per_source[host]

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    peer: Peer, accepted: bool = False) -> None:
        framer = StreamFramer()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (FIRST_MESSAGE_TIMEOUT if accepted else IDLE_TIMEOUT)
        begun: float | None = None  # when the message now arriving began
        try:
            while data := await asyncio.wait_for(reader.read(65536), deadline - loop.time()):
                self._sink.trace("received", data, peer)
                try:
                    messages = framer.feed(data)
                except ParseError as error:
                    self._sink.bad_message(data, error, peer)
                    break  # framing is lost: close the connection
                self._keepalives(framer, writer, peer)
                for message in messages:
                    self._sink.message_received(message, peer)
                # a message once begun has PARTIAL_TIMEOUT in all, however slowly its
                # bytes trickle in (slowloris); between messages a connection may idle
                if messages or not framer.pending:
                    begun, deadline = None, loop.time() + IDLE_TIMEOUT
                if framer.pending and begun is None:
                    begun = loop.time()
                    deadline = begun + PARTIAL_TIMEOUT
        except (OSError, TimeoutError, ssl.SSLError):
            pass
        finally:
            if self._writers.get((peer.host, peer.port)) is writer:
                del self._writers[(peer.host, peer.port)]
            _close(writer)
            self._sink.connection_lost(peer)

    def _keepalives(self, framer: StreamFramer, writer: asyncio.StreamWriter,
                    peer: Peer) -> None:
        """RFC 5626 3.5.1: answer a ping (CRLFCRLF) with a pong (CRLF); report a pong."""
        for run in framer.keepalives:
            if run >= len(PING):
                writer.write(PONG)
            else:
                self._sink.keepalive_answered(peer)
        framer.keepalives.clear()

    # --- sending ----------------------------------------------------------------------------

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
        reader, writer = await self._open(peer)
        if self._closed:  # closed while it connected: nobody would ever close it
            writer.close()
            raise OSError(f"The transport closed while connecting ({peer})")
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
            if data not in (PING, PONG):
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
        except OSError as error:  # ssl.SSLError is an OSError too
            self._sink.transport_failed(peer, self._failure(error, peer))

    def close(self) -> None:
        self._closed = True
        if self._server is not None:
            self._server.close()
        self._closing += self._writers.values()
        for writer in self._closing:
            _close(writer)
        for task in self._pending():
            task.cancel()

    def _pending(self) -> list[asyncio.Future[Any]]:
        """Reading tasks and connections still being opened."""
        return [*self._tasks, *self._connecting.values()]

    async def wait_closed(self) -> None:
        for task in self._pending():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        writers = {*self._closing, *self._writers.values()}
        await asyncio.gather(*(_shut(writer) for writer in writers))


def _close(writer: asyncio.StreamWriter) -> None:
    """Close a connection once: asyncio's TLS transport, closed a second time, lets go of
    its protocol, and its abort() then does nothing (see _shut)."""
    if not writer.is_closing():
        writer.close()


async def _shut(writer: asyncio.StreamWriter) -> None:
    """A closed connection, gone for good: a TLS peer that never answers our close_notify
    would keep asyncio's socket underneath open for its 30 s shutdown timeout (and past the
    agent's end), so after a moment it is aborted."""
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_SECONDS)
    except (TimeoutError, OSError):
        writer.transport.abort()
