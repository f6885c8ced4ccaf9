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


class FakeStream:
    opened: list[tuple[str, Any, int]] = []

    def __init__(self, callback: Any, **settings: Any) -> None:
        self.kind = "input" if type(self).__name__ == "InputStream" else "output"
        FakeStream.opened.append((self.kind, settings["device"], settings["samplerate"]))

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


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
