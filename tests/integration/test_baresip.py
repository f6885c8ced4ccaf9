"""Against baresip 1.0 (Debian baresip-core), a user agent nobody here wrote."""

from __future__ import annotations

import asyncio

import pytest

from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent
from tests.peers import baresip

pytestmark = pytest.mark.peers


def agent(codecs: tuple[str, ...] = ("pcmu", "pcma")) -> UserAgent:
    return UserAgent(AgentConfig(listen_host="127.0.0.1", listen_port=0, user="alice",
                                 codecs=codecs))


async def test_we_call_baresip_and_it_answers_with_media() -> None:
    with baresip(answermode="auto") as peer:
        async with agent() as alice:
            call = await alice.call(peer.uri)
            assert await asyncio.wait_for(call.answered, 10)
            assert call.codec == "PCMU/8000"
            await asyncio.sleep(1.0)
            assert call.stream is not None and call.stream.stats.received > 25  # baresip's tone
            await call.hangup()
            ended = await asyncio.wait_for(call.ended, 10)
            assert (ended.status, ended.by) == (200, "local")
        await asyncio.sleep(0.3)
        assert "terminated" in peer.log()


async def test_baresip_calls_us_and_we_answer() -> None:
    with baresip(answermode="auto") as peer:
        async with agent() as alice:
            answer = peer.command("dial", f"sip:alice@127.0.0.1:{alice.port}")
            assert answer.get("ok") is True, answer
            incoming = await asyncio.wait_for(alice.incoming.get(), 10)
            await incoming.ring()
            await incoming.answer()
            assert incoming.codec == "PCMU/8000"
            await asyncio.sleep(1.0)
            assert incoming.stream is not None and incoming.stream.stats.received > 25
            assert incoming.dialog is not None and incoming.dialog.state == "confirmed"  # ACKed
            peer.command("hangup")
            ended = await asyncio.wait_for(incoming.ended, 10)
            assert (ended.status, ended.by) == (200, "remote")


async def test_we_cancel_before_baresip_answers() -> None:
    with baresip(answermode="manual") as peer:
        async with agent() as alice:
            call = await alice.call(peer.uri)
            while call.state != "ringing":
                await asyncio.sleep(0.05)
            await call.hangup()
            ended = await asyncio.wait_for(call.ended, 10)
            assert (ended.status, ended.by) == (487, "local")


async def test_no_common_codec_is_refused() -> None:
    with baresip(answermode="auto", codecs="PCMA/8000/1") as peer:
        async with agent(codecs=("pcmu",)) as alice:
            call = await alice.call(peer.uri)
            ended = await asyncio.wait_for(call.ended, 10)
            assert ended.status == 488 and not await call.answered


async def test_we_send_opus_at_the_bit_rate_baresip_asks_for() -> None:
    """baresip's opus module puts maxaveragebitrate=12000 in its answer; we keep to it."""
    with baresip(answermode="auto", codecs="opus/48000/2", config=("opus_bitrate 12000",)) \
            as peer:
        async with UserAgent(AgentConfig(listen_host="127.0.0.1", listen_port=0,
                                         codecs=("opus",), audio=AudioConfig(tone=440))) as alice:
            call = await alice.call(peer.uri)
            assert await asyncio.wait_for(call.answered, 10) and call.codec == "opus/48000"
            await asyncio.sleep(1.5)
            assert call.stream is not None and call.stream.packets_sent > 50
            payload_bytes = call.stream.octets_sent / call.stream.packets_sent
            assert payload_bytes * 8 * 50 <= 12000 * 1.2  # unbounded, a 440 Hz tone is ~45 kbit/s
            assert call.stream.stats.received > 50  # and baresip's opus reaches us
            await call.hangup()
