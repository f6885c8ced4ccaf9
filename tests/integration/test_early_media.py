"""Reliable provisionals (RFC 3262) and early media (RFC 3960) on real sockets: between our
agents (PRACK on the wire, the 183's tone heard before the answer, the caller silent until
then), through `softphone answer --early-media`, baresip 1.0 calling us (no 100rel: an
unreliable 183), and Linphone with 100rel mandatory both ways (its reliable 183 with early
media PRACKed by us, our reliable 180 PRACKed by it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from softphone.core.reliable import supports_100rel
from softphone.sip import parse
from softphone.testing import TestAgent
from tests.integration.test_cli import Agent, agents, start  # noqa: F401
from tests.peers import baresip, linphone, write_tone_wav

__all__ = ["agents"]


def first_lines(trace: list[bytes]) -> list[str]:
    return [data.split(b"\r\n", 1)[0].decode() for data in trace]


async def test_a_reliable_183_plays_its_tone_before_the_answer_and_the_caller_waits() -> None:
    async with TestAgent("bob", codecs=("pcmu",)) as bob, \
            TestAgent("alice", codecs=("pcmu",)) as alice:
        wire: list[bytes] = []
        alice.agent.add_tracer(lambda direction, data, peer: wire.append(data))
        call = await alice.call(bob.uri)
        call.play_tone(500)  # not sent before the answer
        incoming = await bob.next_call()
        incoming.play_tone(600)
        await incoming.progress_with_media()
        early = await call.early_media()
        assert (early.status, early.codec) == (183, "PCMU/8000")
        await call.hears_tone(600, seconds=0.5)
        assert call.call.state == "ringing"
        assert call.call.stream is not None and call.call.stream.packets_sent == 0
        lines = first_lines(wire)
        assert "SIP/2.0 183 Session Progress" in lines
        prack = parse(next(d for d in wire if d.startswith(b"PRACK ")))
        progress = parse(next(d for d in wire if d.startswith(b"SIP/2.0 183")))
        assert prack.headers.get("RAck") == f"{progress.headers.get('RSeq')} 1 INVITE"
        await incoming.answer()
        await call.answered()
        await incoming.hears_tone(500, seconds=0.5)  # from the answer on, we send
        incoming.play_tone(700)
        await call.hears_tone(700, seconds=0.5)
        await call.hangup()
        assert (await incoming.ended(by="remote")).status == 200


async def test_without_100rel_the_183_is_unreliable_and_media_still_flows() -> None:
    async with TestAgent("bob", codecs=("pcmu",)) as bob, \
            TestAgent("alice", codecs=("pcmu",), rel100="off") as alice:
        wire: list[bytes] = []
        alice.agent.add_tracer(lambda direction, data, peer: wire.append(data))
        call = await alice.call(bob.uri)
        incoming = await bob.next_call()
        incoming.play_tone(600)
        await incoming.progress_with_media()
        await call.early_media()
        await call.hears_tone(600, seconds=0.5)
        assert not any(d.startswith(b"PRACK ") for d in wire)
        await incoming.answer()
        await call.answered()
        await call.hears_tone(600, seconds=0.3)
        await call.hangup()


def test_answer_early_media_plays_the_file_then_answers_with_its_own_audio(
        agents: list[Agent], tmp_path: Path) -> None:
    announcement = tmp_path / "announcement.wav"
    write_tone_wav(announcement, seconds=1.5, hz=440)
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--early-media",
                str(announcement), "--auto-answer", "--tone", "900", "--max-calls", "1")

    async def caller() -> None:
        async with TestAgent("alice", codecs=("pcmu",)) as alice:
            call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
            await call.early_media()
            await call.hears_tone(440, seconds=0.5)
            assert call.call.state == "ringing"
            await call.answered(timeout=5)
            await call.hears_tone(900, seconds=0.5)
            await call.hangup()

    asyncio.run(caller())
    assert bob.finish() == 0
    assert bob.names() == ["listening", "incoming", "early_media", "answered", "ended",
                           "summary"]
    early = next(e for e in bob.events if e["event"] == "early_media")
    assert early["status"] == 183 and early["codec"] == "PCMU/8000"


def test_a_bad_early_media_file_is_refused_before_listening(tmp_path: Path) -> None:
    import subprocess

    from tests.integration.test_cli import SOFTPHONE

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    result = subprocess.run([*SOFTPHONE, "answer", "--early-media", str(empty), "--null-audio"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--early-media" in result.stderr


@pytest.mark.peers
async def test_baresip_calling_us_hears_our_183_then_the_answered_call() -> None:
    """baresip 1.0 knows no 100rel (its INVITE does not offer it), so our 183 goes
    unreliable with the answer repeated in the 200; its decoder's dump holds the early tone,
    then the answered call's."""
    from softphone.media.quality import dominant_frequency
    from softphone.media.wav import load_wav

    with baresip(answermode="auto", dump_audio=True) as peer:
        async with TestAgent("alice", codecs=("pcmu",)) as alice:
            received: list[bytes] = []
            alice.agent.add_tracer(lambda direction, data, where: received.append(data))
            assert peer.command("dial", alice.uri).get("ok") is True
            incoming = await alice.next_call(timeout=10)
            invite = parse(next(d for d in received if d.startswith(b"INVITE ")))
            assert not supports_100rel(invite)
            incoming.play_tone(600)
            await incoming.progress_with_media()
            await asyncio.sleep(1.5)
            assert incoming.call.state == "ringing"
            incoming.play_tone(900)
            await incoming.answer()
            await asyncio.sleep(1.5)
            await incoming.hangup()
        await asyncio.sleep(0.5)
        dumps = sorted(peer.directory.glob("dump-*-dec.wav"))
        assert dumps, peer.log()
        heard, rate = load_wav(dumps[-1])
        assert abs(dominant_frequency(heard[rate // 2: rate], rate) - 600) < 20
        assert abs(dominant_frequency(heard[-rate: -rate // 2], rate) - 900) < 20


@pytest.mark.peers
async def test_linphone_plays_early_media_in_a_reliable_183_we_prack() -> None:
    """Linphone (liblinphone 5.1) with 100rel mandatory and early media: its 183 carries
    RSeq and SDP; our PRACK gets its 200; the call is answered when its user answers."""
    with linphone(rel100=2, early_media=True) as phone:
        async with TestAgent("alice", codecs=("pcmu",)) as alice:
            wire: list[bytes] = []
            alice.agent.add_tracer(lambda direction, data, peer: wire.append(data))
            call = await alice.call(phone.uri)
            early = await call.early_media(timeout=10)
            assert early.status == 183 and early.codec == "PCMU/8000"
            await asyncio.sleep(0.5)
            progress = parse(next(d for d in wire if d.startswith(b"SIP/2.0 183")))
            assert progress.headers.get("RSeq") is not None
            prack = parse(next(d for d in wire if d.startswith(b"PRACK ")))
            assert prack.headers.get("RAck") == f"{progress.headers.get('RSeq')} 1 INVITE"
            assert any(d.startswith(b"SIP/2.0 200") and b"PRACK" in d.split(b"\r\n\r\n")[0]
                       for d in wire)
            phone.command("answer")
            await call.answered(timeout=10)
            await call.hangup()
            assert (await call.ended()).status == 200


@pytest.mark.peers
async def test_linphone_calling_us_pracks_our_reliable_180() -> None:
    with linphone(rel100=2) as phone:
        async with TestAgent("bob", codecs=("pcmu",)) as bob:
            wire: list[bytes] = []
            bob.agent.add_tracer(lambda direction, data, peer: wire.append(data))
            phone.command(f"call {bob.uri}")
            incoming = await bob.next_call(timeout=10)
            invite = parse(next(d for d in wire if d.startswith(b"INVITE ")))
            assert supports_100rel(invite)
            await incoming.ring()
            await asyncio.sleep(1.0)
            ringing = parse(next(d for d in wire if d.startswith(b"SIP/2.0 180")))
            prack = parse(next(d for d in wire if d.startswith(b"PRACK ")))
            assert prack.headers.get("RAck") == \
                f"{ringing.headers.get('RSeq')} {invite.cseq.number} INVITE"
            resent = [d for d in wire if d.startswith(b"SIP/2.0 180")]
            assert len(resent) == 1  # PRACKed at once: never resent
            await incoming.answer()
            await asyncio.sleep(0.5)
            assert incoming.call.state == "answered"
            await incoming.hangup()


async def test_update_holds_early_media_and_the_answered_call_on_real_sockets() -> None:
    async with TestAgent("bob", codecs=("pcmu",)) as bob, \
            TestAgent("alice", codecs=("pcmu",)) as alice:
        call = await alice.call(bob.uri)
        incoming = await bob.next_call()
        incoming.play_tone(600)
        await incoming.progress_with_media()
        await call.early_media()
        await call.hears_tone(600, seconds=0.3)
        await incoming.call.update("sendonly")  # hold the early media
        await call.held(True)
        await incoming.call.update("sendrecv")
        await call.held(False)
        await call.hears_tone(600, seconds=0.3)
        await incoming.answer()
        await call.answered()
        await call.call.update("sendonly")  # and in the confirmed dialog
        await incoming.held(True)
        await call.hangup()
