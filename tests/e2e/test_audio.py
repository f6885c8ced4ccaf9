"""Audio sent versus audio received, end to end over real sockets."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from softphone.media.quality import dominant_frequency, similarity, tone_level
from softphone.media.wav import load_wav, resample
from softphone.transport.rtp import Impairment
from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent
from tests.peers import baresip


def voice_like(path: Path, seconds: float = 3.0, rate: int = 16000) -> None:
    """A gliding tone plus a steady one, amplitude-modulated at a syllable rate."""
    t = np.arange(int(rate * seconds)) / rate
    signal = (0.5 * np.sin(2 * np.pi * (250 + 150 * t) * t) + 0.3 * np.sin(2 * np.pi * 900 * t))
    signal *= 0.55 + 0.45 * np.sin(2 * np.pi * 2.5 * t)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((signal * 12000).astype("<i2").tobytes())


def score(sent: Path, received: Path) -> float:
    source, source_rate = load_wav(sent)
    recording, recording_rate = load_wav(received)
    reference = resample(source, source_rate, 8000)
    heard = resample(recording, recording_rate, 8000)
    assert len(heard) > 0.8 * len(reference), "most of the audio never arrived"
    return similarity(reference, heard, max_lag=4000).score


@pytest.mark.parametrize(("codec", "threshold"), [("pcmu", 0.99), ("pcma", 0.99),
                                                  ("g722", 0.95), ("opus", 0.9)])
def test_wav_played_in_one_process_is_recorded_in_the_other(
        tmp_path: Path, codec: str, threshold: float) -> None:
    sent, received = tmp_path / "sent.wav", tmp_path / "received.wav"
    voice_like(sent)
    callee = subprocess.Popen(
        [sys.executable, "-m", "softphone", "answer", "--null-audio", "--listen", "127.0.0.1:0",
         "--auto-answer", "--record", str(received), "--codec", codec, "--max-calls", "1",
         "--json"], stdout=subprocess.PIPE, text=True)
    try:
        assert callee.stdout is not None
        port = json.loads(callee.stdout.readline())["port"]
        caller = subprocess.run(
            [sys.executable, "-m", "softphone", "call", "--null-audio",
             f"sip:bob@127.0.0.1:{port}", "--play", str(sent), "--codec", codec,
             "--duration", "3.5", "--json"],
            capture_output=True, text=True, timeout=30)
        assert caller.returncode == 0, caller.stderr
        ended = json.loads(caller.stdout.strip().splitlines()[-1])
        assert ended["rtp"]["packets_sent"] >= 170 and ended["rtp"]["packets_lost"] == 0
        assert callee.wait(15) == 0
    finally:
        if callee.poll() is None:
            callee.kill()
        callee.wait()
        if callee.stdout is not None:
            callee.stdout.close()
    assert score(sent, received) >= threshold


@pytest.mark.parametrize(("codec", "threshold"), [("pcmu", 0.8), ("opus", 0.75)])
async def test_audio_survives_loss_and_jitter(tmp_path: Path, codec: str,
                                              threshold: float) -> None:
    """5% loss and up to 30 ms of jitter (which reorders packets), seeded: the audio still
    arrives recognisably and nothing escapes; Opus rebuilds lost frames from in-band FEC."""
    sent, received = tmp_path / "sent.wav", tmp_path / "received.wav"
    voice_like(sent)
    caller = UserAgent(AgentConfig(listen_port=0, codecs=(codec,),
                                   audio=AudioConfig(play=str(sent)),
                                   impairment=Impairment(loss=0.05, jitter=0.03, seed=4733)))
    callee = UserAgent(AgentConfig(listen_port=0, codecs=(codec,),
                                   audio=AudioConfig(record=str(received))))
    async with caller, callee:
        call = await caller.call(f"sip:bob@127.0.0.1:{callee.port}", duration=3.5)
        incoming = await asyncio.wait_for(callee.incoming.get(), 5)
        await incoming.answer()
        assert incoming.stream is not None
        stream = incoming.stream
        ended = await asyncio.wait_for(incoming.ended, 10)
        await asyncio.wait_for(call.ended, 10)
    assert ended.rtp is not None
    lost = ended.rtp["packets_lost"]
    assert isinstance(lost, int) and 3 <= lost <= 20  # about 5% of 175
    if codec == "opus":
        assert stream.recovered > 0
    assert score(sent, received) >= threshold


@pytest.mark.peers
async def test_audio_both_ways_with_baresip(tmp_path: Path) -> None:
    """baresip plays its 440 Hz file to us; we play our voice-like file to it, and its
    sndfile module dumps what it decoded."""
    sent, received = tmp_path / "sent.wav", tmp_path / "received.wav"
    voice_like(sent)
    with baresip(answermode="auto", dump_audio=True) as peer:
        config = AgentConfig(listen_port=0, codecs=("pcmu",),
                             audio=AudioConfig(play=str(sent), record=str(received)))
        async with UserAgent(config) as alice:
            call = await alice.call(peer.uri, duration=3.5)
            assert await asyncio.wait_for(call.answered, 10)
            await asyncio.wait_for(call.ended, 10)
        await asyncio.sleep(0.5)
        dumps = sorted(peer.directory.glob("dump-*-dec.wav"))
        assert dumps, peer.log()
        assert score(sent, dumps[-1]) >= 0.95  # what baresip heard from us
    heard, rate = load_wav(received)  # what we heard from baresip: its 440 Hz tone
    middle = heard[rate // 2 : rate * 2]
    assert abs(dominant_frequency(middle, rate) - 440) < 5
    assert tone_level(middle, rate, 440) > 0.8


@pytest.mark.peers
async def test_g722_with_baresip_carries_wideband_audio_both_ways(tmp_path: Path) -> None:
    """baresip (its g722 module) hears our 6 kHz tone, which only a wideband codec carries,
    and we hear its 440 Hz tone; RTP timestamps run on G.722's 8 kHz clock (low jitter)."""
    received = tmp_path / "received.wav"
    with baresip(answermode="auto", codecs="G722/8000/1", dump_audio=True) as peer:
        config = AgentConfig(listen_port=0, codecs=("g722",),
                             audio=AudioConfig(tone=6000, record=str(received)))
        async with UserAgent(config) as alice:
            call = await alice.call(peer.uri, duration=2.5)
            assert await asyncio.wait_for(call.answered, 10) and call.codec == "G722/8000"
            ended = await asyncio.wait_for(call.ended, 10)
        await asyncio.sleep(0.5)
        dumps = sorted(peer.directory.glob("dump-*-dec.wav"))
        assert dumps, peer.log()
        theirs, their_rate = load_wav(dumps[-1])
    assert their_rate == 16000
    assert abs(dominant_frequency(theirs[8000:], 16000) - 6000) < 10
    ours, rate = load_wav(received)
    assert rate == 16000 and tone_level(ours[rate // 2 : rate * 2], rate, 440) > 0.8
    assert ended.rtp is not None and float(ended.rtp["jitter_ms"] or 0) < 10


@pytest.mark.parametrize("codec", ["pcmu", "opus"])
async def test_level_meters_show_the_tone_sent_and_heard_by_a_discarding_far_end(
        codec: str) -> None:
    """The far end plays nothing (a Discard sink, as in load tests) and so decodes nothing
    until its meter is read; the meter must still show what arrived. A live view reads it
    ten times a second: the first reading starts the decoding (one lone packet, which Opus
    decodes several dB off), the later ones are exact."""
    sender = UserAgent(AgentConfig(listen_port=0, codecs=(codec,),
                                   audio=AudioConfig(tone=1000)))
    listener = UserAgent(AgentConfig(listen_port=0, codecs=(codec,)))
    async with sender, listener:
        call = await sender.call(f"sip:bob@127.0.0.1:{listener.port}")
        incoming = await asyncio.wait_for(listener.incoming.get(), 5)
        await incoming.answer()
        await asyncio.wait_for(call.answered, 5)
        await asyncio.sleep(0.4)
        assert call.stream is not None and incoming.stream is not None
        assert incoming.stream.level_out > -40  # the first reading: something arrives
        await asyncio.sleep(0.3)
        sine_rms = -10 - 3.01  # a -10 dBFS peak sine
        assert abs(call.stream.level_in - sine_rms) < 0.5
        assert abs(incoming.stream.level_out - sine_rms) < 1.5
        assert incoming.stream.level_in == -96.0  # it sends silence
        await call.hangup()


def test_record_both_writes_our_side_left_and_theirs_right(tmp_path: Path) -> None:
    """`--record-both`, as call recorders do: a stereo file, left our 500 Hz, right the
    answerer's 700 Hz, the two in step for the whole call."""
    both = tmp_path / "both.wav"
    callee = subprocess.Popen(
        [sys.executable, "-m", "softphone", "answer", "--null-audio", "--listen", "127.0.0.1:0",
         "--auto-answer", "--tone", "700", "--max-calls", "1", "--json"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert callee.stdout is not None
        port = json.loads(callee.stdout.readline())["port"]
        caller = subprocess.run(
            [sys.executable, "-m", "softphone", "call", "--null-audio", "--tone", "500",
             f"sip:bob@127.0.0.1:{port}", "--record", str(both), "--record-both",
             "--codec", "pcmu", "--duration", "2.5", "--json"],
            capture_output=True, text=True, timeout=30)
        assert caller.returncode == 0, caller.stderr
        assert callee.wait(15) == 0
        ended = json.loads(caller.stdout.strip().splitlines()[-1])
        assert ended["rtp"]["mos"] >= 4.3  # loopback: G.711 at its best (E-model)
    finally:
        if callee.poll() is None:
            callee.kill()
        callee.wait()
        if callee.stdout is not None:
            callee.stdout.close()
    with wave.open(str(both)) as recording:
        assert (recording.getnchannels(), recording.getframerate()) == (2, 8000)
        frames = np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")
    left, right = frames[0::2], frames[1::2]
    assert 2.0 * 8000 <= len(left) <= 2.7 * 8000
    middle = slice(len(left) // 4, 3 * len(left) // 4)
    assert tone_level(left[middle], 8000, 500) > 0.9
    assert tone_level(right[middle], 8000, 700) > 0.9
