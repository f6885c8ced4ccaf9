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
from softphone.media.ports import content_rate
from softphone.media.quality import level_dbfs, tone_level
from softphone.media.rates import RateConverter
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
    assert fake_sounddevice == [("output", "pulse", 48000)]
    assert len(card.read(320, 16000)) == 320  # the microphone, at the rate the card runs at
    assert fake_sounddevice == [("output", "pulse", 48000), ("input", "USB headset", 48000)]
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
    assert fake_sounddevice[-1] == ("input", None, 48000)


def test_a_card_that_refuses_48_khz_runs_at_the_calls_rate(
        fake_sounddevice: list[tuple[str, Any, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    refusing = sys.modules["sounddevice"]

    class Picky(FakeStream):
        def __init__(self, callback: Any, **settings: Any) -> None:
            if settings["samplerate"] == 48000:
                raise refusing.PortAudioError("Invalid sample rate")
            super().__init__(callback, **settings)

    monkeypatch.setattr(refusing, "InputStream", type("InputStream", (Picky,), {}))
    card = SoundDevice("USB headset", compensate_drift=False)
    card.prepare(16000)
    assert fake_sounddevice == [("input", "USB headset", 16000)]
    card._captured(np.full((320, 1), 1000, dtype=np.int16), 320, None, None)
    assert card.read(320, 16000).tolist() == [1000] * 320  # no conversion: the very samples
    card.close()


def test_wideband_calls_meet_the_card_at_48_khz_and_are_converted_at_most_once(
        fake_sounddevice: list[tuple[str, Any, int]]) -> None:
    """Opus codes at the rate of the port it serves, and a card's is 48 kHz: its frames
    pass untouched. G.722's 16 kHz is converted once, straight to the card's rate."""
    card = SoundDevice("pulse", compensate_drift=False)
    assert content_rate(card) == 48000
    card.prepare(48000)
    assert fake_sounddevice == [("input", "pulse", 48000)]
    voice = np.random.default_rng(1).integers(-8000, 8000, 960).astype(np.int16)
    card._captured(voice.reshape(-1, 1), 960, None, None)
    assert card.read(960, 48000).tolist() == voice.tolist()  # the very samples
    tone = (np.sin(2 * np.pi * 1000 * np.arange(48000) / 48000) * 8000).astype(np.int16)
    heard = []
    for start in range(0, 48000, 960):
        card._captured(tone[start : start + 960].reshape(-1, 1), 960, None, None)
        heard.append(card.read(320, 16000))
    wideband = np.concatenate(heard)[1600:]
    assert tone_level(wideband, 16000, 1000) > 0.99
    assert level_dbfs(wideband) == pytest.approx(level_dbfs(tone), abs=0.2)
    card.close()


def test_the_calls_rate_is_converted_to_the_cards_and_back_in_a_few_milliseconds() -> None:
    """8 kHz up to 48 kHz and down again, 20 ms frames one way and odd chunks the other: a
    1 kHz tone comes back whole (no clicks at the frame edges, as resampling each frame
    apart would leave) at its level, and a click comes back under 4 ms later each way."""
    tone = (np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000) * 10000).astype(np.int16)
    back = _there_and_back(tone)
    assert len(back) == 8000
    settled = back[100:].astype(np.float64)
    at = 2 * np.pi * 1000 * np.arange(100, 8000) / 8000
    basis = np.column_stack((np.sin(at), np.cos(at)))
    fit, *_ = np.linalg.lstsq(basis, settled, rcond=None)
    assert float(np.hypot(*fit)) == pytest.approx(10000, rel=0.05)  # the level kept
    residue = settled - basis @ fit
    assert float(np.sqrt(np.mean(residue**2))) < 100  # 1%: nothing but the tone
    click = np.zeros(8000, dtype=np.int16)
    click[4000:4008] = 20000
    delay = int(np.argmax(_there_and_back(click))) - 4004
    assert 0 < delay <= 2 * 8 * 4  # samples at 8 kHz: under 4 ms each way


def _there_and_back(signal: np.ndarray) -> np.ndarray:
    up, down = RateConverter(8000, 48000), RateConverter(48000, 8000)
    there = np.concatenate([up.process(signal[i : i + 160]) for i in range(0, 8000, 160)])
    # odd chunks (as the drift resampler gives them): the kept samples' phase carries over
    return np.concatenate([down.process(there[i : i + 901]) for i in range(0, 48000, 901)])


def test_a_device_that_stops_calling_back_is_said_once_and_the_call_gets_silence(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unplugged: PortAudio's callbacks stop. Reads go on giving frames (silence), writes go
    on taking them, one warning says what happened, and another when it comes back."""
    monkeypatch.setitem(sys.modules, "sounddevice", stand_in_sounddevice())
    clock = [0.0]
    card = SoundDevice("USB headset", clock=lambda: clock[0], device_rate=8000)
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
