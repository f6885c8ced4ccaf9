"""A local conference of three participants: N-1 mixing, the shared codec, joining and leaving."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

from softphone.media.quality import tone_level
from softphone.media.wav import load_wav
from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent

TONES = {"a": 400.0, "b": 700.0, "c": 1100.0}
CODECS = {"a": ("pcmu", "pcma"), "b": ("pcma", "pcmu"), "c": ("opus", "pcma")}


def frames_in(path: Path) -> int:
    with wave.open(str(path), "rb") as recording:  # valid while being written
        return recording.getnframes()


def levels(path: Path, start: int, end: int) -> dict[str, float]:
    samples, rate = load_wav(path)
    part = samples[start:end]
    return {name: tone_level(part, rate, hz) for name, hz in TONES.items()}


async def test_everyone_hears_the_others_on_the_codec_they_all_share(tmp_path: Path) -> None:
    host = UserAgent(AgentConfig(listen_port=0, user="host"))
    people = {name: UserAgent(AgentConfig(
        listen_port=0, user=name, codecs=CODECS[name],
        audio=AudioConfig(tone=TONES[name], record=str(tmp_path / f"{name}.wav"))))
        for name in TONES}
    async with host, people["a"], people["b"], people["c"]:
        conference = host.conference()
        calls = {}
        for name, agent in people.items():  # everyone dials in, one after the other
            calls[name] = await agent.call(f"sip:conf@127.0.0.1:{host.port}")
            incoming = await asyncio.wait_for(host.incoming.get(), 5)
            await incoming.answer()
            assert await asyncio.wait_for(calls[name].answered, 5)
            await conference.add(incoming)
        assert conference.codec == "pcma"
        assert all(joined.codec == "PCMA/8000" for joined in conference.legs)  # host side
        assert all(call.codec == "PCMA/8000" for call in calls.values())  # participants

        await asyncio.sleep(1.0)  # settle after the re-INVITEs
        marks = {name: frames_in(tmp_path / f"{name}.wav") for name in TONES}
        await asyncio.sleep(1.5)
        together = {name: frames_in(tmp_path / f"{name}.wav") for name in TONES}
        await calls["c"].hangup()  # c leaves; a and b go on talking
        await asyncio.sleep(1.0)
        left = frames_in(tmp_path / "a.wav")
        await asyncio.sleep(1.5)
        end = frames_in(tmp_path / "a.wav")
        for call in (calls["a"], calls["b"]):
            await call.hangup()

    for name in TONES:
        heard = levels(tmp_path / f"{name}.wav", marks[name], together[name])
        others = [other for other in TONES if other != name]
        for other in others:
            assert heard[other] > 0.2, (name, heard)  # each other voice is clearly there
        assert heard[name] < 0.01, (name, heard)  # and not one's own (N-1)
    after = levels(tmp_path / "a.wav", left, end)
    assert after["b"] > 0.5 and after["c"] < 0.01, after  # c gone, b still there
