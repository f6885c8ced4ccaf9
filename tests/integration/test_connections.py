"""TCP connections a stranger opens cannot pin the agent: a silent connection is closed, a
message trickled in byte by byte (slowloris) is closed once it has had its time in all, and
connections from one address are bounded, while a well-behaved connection is served."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from softphone.transport import tcp
from softphone.ua.agent import AgentConfig, UserAgent

OPTIONS = ("OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
           "Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{n}\r\nMax-Forwards: 70\r\n"
           "From: <sip:m@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c{n}\r\n"
           "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "FIRST_MESSAGE_TIMEOUT", 0.5)
    monkeypatch.setattr(tcp, "PARTIAL_TIMEOUT", 1.0)
    monkeypatch.setattr(tcp, "MAX_CONNECTIONS_PER_SOURCE", 4)


@contextlib.asynccontextmanager
async def listening() -> AsyncIterator[int]:
    async with UserAgent(AgentConfig(listen_port=0)) as agent:
        yield agent.port


async def closed(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closed the connection within ``within`` seconds."""
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except TimeoutError:
        return False


async def test_a_silent_connection_is_closed(short_timeouts: None) -> None:
    async with listening() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed(reader, 10)
        writer.close()


async def test_a_trickled_message_is_closed_when_its_time_is_up(short_timeouts: None) -> None:
    async with listening() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = OPTIONS.format(n="slow").encode()
        sent = 0
        with contextlib.suppress(ConnectionError):
            for sent in range(len(message)):  # a byte every 0.1 s: each read is "on time"
                writer.write(message[sent:sent + 1])
                await writer.drain()
                if reader.at_eof():
                    break
                await asyncio.sleep(0.1)
        assert sent < len(message) - 1  # cut off long before the message was whole
        assert await closed(reader, 5)
        writer.close()


async def test_connections_from_one_address_are_bounded_and_good_ones_served(
        short_timeouts: None) -> None:
    async with listening() as port:
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(6)]
        refused = [await closed(reader, 0.3) for reader, _ in opened[4:]]
        assert refused == [True, True]  # beyond 4 from one address: closed at once
        reader, writer = opened[0]
        writer.write(OPTIONS.format(n="good").encode())
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert answer.startswith(b"SIP/2.0 200 OK")
        for _, other in opened:
            other.close()
