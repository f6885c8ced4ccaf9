"""STUN binding requests over a call's RTP socket (transport/stun.py, aioice's messages):
the answers of today's and of RFC 3489's servers, an answer without an address, and junk
that looks like STUN arriving on a socket that carries RTP."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from softphone.transport.rtp import RtpEndpoint
from tests.peers.stun_server import StunServer


async def _ask(attribute: str | None) -> tuple[tuple[str, int], int]:
    """Our mapped address as a server that answers in ``attribute`` gives it; our port."""
    loop = asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(lambda: StunServer(attribute),
                                                    local_addr=("127.0.0.1", 0))
    endpoint = RtpEndpoint()
    await endpoint.open("127.0.0.1")
    try:
        mapped = await endpoint.stun.mapped_address(server.get_extra_info("sockname"), 1)
        return mapped, endpoint.port
    finally:
        endpoint.close()
        server.close()


@pytest.mark.parametrize("attribute", ["XOR-MAPPED-ADDRESS", "MAPPED-ADDRESS"])
async def test_the_mapped_address_is_read_from_either_attribute(attribute: str) -> None:
    mapped, port = await _ask(attribute)
    assert mapped == ("127.0.0.1", port)


async def test_an_answer_without_an_address_is_an_oserror_naming_the_server() -> None:
    with pytest.raises(OSError, match="gives no mapped address"):
        await _ask(None)


async def test_a_truncated_stun_attribute_on_the_rtp_socket_is_dropped_without_a_trace(
        caplog: pytest.LogCaptureFixture) -> None:
    """aioice raised struct.error for it, up through the socket's callback (an ERROR with a
    traceback in the log for one datagram from anyone); the socket goes on either way."""
    endpoint = RtpEndpoint()
    await endpoint.open("127.0.0.1")
    heard: list[bytes] = []
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # a binding answer whose attribute 0x8029 (ICE-CONTROLLED, 8 bytes) holds 4
    truncated = bytes.fromhex("010100082112a442" + "00" * 12 + "80290004" + "00000001")
    with caplog.at_level(logging.ERROR):
        sender.sendto(truncated, ("127.0.0.1", endpoint.port))
        await asyncio.sleep(0.1)
        endpoint.handler = lambda data, source: heard.append(data)
        sender.sendto(b"\x80" + bytes(171), ("127.0.0.1", endpoint.port))
        await asyncio.sleep(0.1)
    sender.close()
    endpoint.close()
    assert heard and not [r for r in caplog.records if r.levelno >= logging.ERROR]
