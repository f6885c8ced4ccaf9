"""Echo cancellation on the sound card path, with a simulated device whose speaker leaks
into its microphone (40 ms later, 6 dB down, with a reflection): the far end must hear its
own voice back at least 25 dB down (ERLE), and the near end's voice must still get through
while both talk."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from softphone.media.device import SoundDevice
from softphone.media.virtual_card import run_room, stand_in_sounddevice
from softphone.media.wav import load_wav

SPEECH = Path(__file__).parents[1] / "data" / "speech"
RATE, BLOCK = 16000, 320


@pytest.fixture(autouse=True)
def virtual_card(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "sounddevice", stand_in_sounddevice())
    yield


def _power(samples: np.ndarray) -> float:
    return float(np.mean(samples.astype(np.float64) ** 2)) + 1e-9


def speech() -> tuple[np.ndarray, np.ndarray]:
    far, far_rate = load_wav(SPEECH / "far.wav")
    near, near_rate = load_wav(SPEECH / "near.wav")
    assert far_rate == near_rate == RATE
    return far, near


def test_the_far_end_hears_its_echo_at_least_25_db_down() -> None:
    far, _ = speech()
    silent = np.zeros(len(far))
    _, uncancelled = run_room(far, silent, cancel=False)
    _, cancelled = run_room(far, silent, cancel=True)
    settled = slice(len(far) // 3, len(uncancelled))  # after the canceller has converged
    erle = 10 * np.log10(_power(uncancelled[settled]) / _power(cancelled[settled]))
    assert _power(uncancelled[settled]) > 1e5  # the echo was there to cancel
    assert erle >= 25, f"ERLE {erle:.1f} dB"


def test_the_near_end_gets_through_while_both_talk() -> None:
    far, near_voice = speech()
    near = np.zeros(len(far))
    start = len(far) // 2  # the near end talks over the second half of the prompt
    near[start : start + len(near_voice)] = near_voice[: len(far) - start]
    _, cancelled = run_room(far, near, cancel=True)
    talking = slice(start, min(len(far), start + len(near_voice)) - BLOCK)
    kept = 10 * np.log10(_power(cancelled[talking]) / _power(near[talking]))
    assert kept > -6, f"the near end came through {kept:.1f} dB down"
    # and what came through is the near end's voice, not the far end's echo
    best = max(_correlation(cancelled[talking.start + lag : talking.stop + lag], near[talking])
               for lag in range(0, 480, 16))
    assert best > 0.4
    only_echo = slice(len(far) // 3, start - RATE // 10)
    assert 10 * np.log10(_power(cancelled[only_echo]) / _power(near_voice)) < -25


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def test_a_canceller_that_fails_leaves_the_call_going_without_it() -> None:
    card = SoundDevice(None, compensate_drift=False, echo_cancellation=True, device_rate=RATE)
    card.prepare(RATE)
    assert card.echo is not None

    def refuse(frame: np.ndarray, rate: int) -> np.ndarray:
        raise RuntimeError("an RtcError occurred")

    card.echo.near = refuse  # type: ignore[method-assign]
    card._captured(np.full((BLOCK, 1), 1000, dtype=np.int16), BLOCK, None, None)
    assert len(card.read(BLOCK, RATE)) == BLOCK  # the frame, uncancelled
    assert card.echo is None
    card.close()
