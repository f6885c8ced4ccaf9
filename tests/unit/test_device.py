"""The sound device's two directions, each on its own device and opened when first used,
against a stand-in for the sounddevice module (the real one is driven by tests/e2e)."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from softphone.media.device import SoundDevice
from softphone.media.virtual_card import StillStream, stand_in_sounddevice


class FakeStream(StillStream):
    """A still stream that also notes which device each direction opened, at what rate."""

    opened: list[tuple[str, Any, int]] = []

    def __init__(self, callback: Any, **settings: Any) -> None:
        super().__init__(callback, **settings)
        self.kind = "input" if type(self).__name__ == "InputStream" else "output"
        FakeStream.opened.append((self.kind, settings["device"], settings["samplerate"]))


@pytest.fixture
def fake_sounddevice(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any, int]]]:
    module = types.ModuleType("sounddevice")
    module.InputStream = type("InputStream", (FakeStream,), {})  # type: ignore[attr-defined]
    module.OutputStream = type("OutputStream", (FakeStream,), {})  # type: ignore[attr-defined]
    module.PortAudioError = type("PortAudioError", (Exception,), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    FakeStream.opened = []
    yield FakeStream.opened


def test_each_direction_opens_its_own_device_when_first_used(
        fake_sounddevice: list[tuple[str, Any, int]]) -> None:
    card = SoundDevice("pulse", capture_device="USB headset")
    card.write(np.zeros(160, dtype=np.int16), 8000)  # the speaker only: no microphone yet
    assert fake_sounddevice == [("output", "pulse", 8000)]
    assert len(card.read(320, 16000)) == 320  # the microphone, at the rate the card runs at
    assert fake_sounddevice == [("output", "pulse", 8000), ("input", "USB headset", 8000)]
    card.read(320, 16000)
    card.close()
    assert len(fake_sounddevice) == 2  # each opened once


def test_without_separate_devices_both_directions_use_the_one(
        fake_sounddevice: list[tuple[str, Any, int]]) -> None:
    card = SoundDevice(3, playback_device=5)
    card.prepare(48000)
    card.write(np.zeros(960, dtype=np.int16), 48000)
    assert fake_sounddevice == [("input", 3, 48000), ("output", 5, 48000)]
    default = SoundDevice(None)
    default.prepare(8000)
    assert fake_sounddevice[-1] == ("input", None, 8000)


def test_a_device_that_stops_calling_back_is_said_once_and_the_call_gets_silence(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unplugged: PortAudio's callbacks stop. Reads go on giving frames (silence), writes go
    on taking them, one warning says what happened, and another when it comes back."""
    monkeypatch.setitem(sys.modules, "sounddevice", stand_in_sounddevice())
    clock = [0.0]
    card = SoundDevice("USB headset", clock=lambda: clock[0])
    card.prepare(8000)
    card.write(np.zeros(160, dtype=np.int16), 8000)
    tone = np.full((160, 1), 3000, dtype=np.int16)
    for tick in range(300):  # 6 s: 2 s working, 3 s unplugged, 1 s back
        clock[0] = tick * 0.02
        if not 100 <= tick < 250:
            card._captured(tone, 160, None, None)
            card._play(np.zeros((160, 1), dtype=np.int16), 160, None, None)
        frame = card.read(160, 8000)
        card.write(frame, 8000)
        assert len(frame) == 160
        if tick == 240:
            assert card.stalled == {"input", "output"}
            assert np.abs(frame).max() <= 2  # silence (the resampler's last bit aside)
    card.close()
    said = [r.getMessage() for r in caplog.records if "USB headset" in r.getMessage()]
    assert said == [
        "sound device USB headset: the microphone stopped (unplugged?); the call goes on with "
        "silence",
        "sound device USB headset: the speaker stopped (unplugged?); the call goes on with "
        "silence",
        "sound device USB headset: the microphone is back",
        "sound device USB headset: the speaker is back"]
