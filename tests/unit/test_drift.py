"""Clock drift between the sound card and the call, simulated on a virtual clock: a device
whose clock runs 300 ppm fast or slow exchanges 20 ms blocks with the call's 20 ms frames
for an hour. With the steering neither ring buffer grows or drains and a tone passes
intact; without it, the same drift fills or empties them within minutes."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from softphone.media.device import SoundDevice
from softphone.media.drift import DriftResampler, FillSteering
from softphone.media.quality import tone_level
from tests.unit.test_device import FakeStream

RATE, BLOCK = 8000, 160


@pytest.fixture(autouse=True)
def fake_sounddevice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    module = types.ModuleType("sounddevice")
    module.InputStream = type("InputStream", (FakeStream,), {})  # type: ignore[attr-defined]
    module.OutputStream = type("OutputStream", (FakeStream,), {})  # type: ignore[attr-defined]
    module.PortAudioError = type("PortAudioError", (Exception,), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    yield


@dataclass
class Run:
    """What a simulated run saw, in ms of audio, over its last half (after settling)."""

    capture_ms: tuple[float, float]
    playback_ms: tuple[float, float]
    capture_underruns: int
    playback_underruns: int
    correction_ppm: tuple[float, float]
    heard_tone: float


def simulate(ppm: float, seconds: float, compensate: bool) -> Run:
    """A device at ``ppm`` off the call's clock: its callbacks capture a 440 Hz tone and play
    what the call wrote; the call reads a frame and writes it back every 20 ms."""
    now = [0.0]
    card = SoundDevice(None, compensate_drift=compensate, clock=lambda: now[0])
    card.prepare(RATE)
    card.write(np.zeros(BLOCK, dtype=np.int16), RATE)
    tone = (np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE) * 8000).astype(np.int16)
    device_period = BLOCK / (RATE * (1 + ppm * 1e-6))
    device_at = frame_at = 0.0
    blocks = frames = 0
    fills: list[tuple[int, int]] = []
    last_frames: list[np.ndarray] = []
    underruns_at_half = (0, 0)
    while frame_at < seconds:
        if device_at <= frame_at:  # the device's block is due first
            now[0] = device_at
            start = blocks % (RATE // BLOCK) * BLOCK  # a second of tone: 440 whole periods
            card._captured(tone[start:start + BLOCK].reshape(-1, 1), BLOCK, None, None)
            card._play(np.zeros((BLOCK, 1), dtype=np.int16), BLOCK, None, None)
            blocks += 1
            device_at += device_period
            continue
        now[0] = frame_at
        frame = card.read(BLOCK, RATE)
        card.write(frame, RATE)
        frames += 1
        frame_at += 0.02
        assert card.capture is not None and card.playback is not None
        if frame_at >= seconds / 2:
            if not fills:
                underruns_at_half = (card.capture.underruns, card.playback.underruns)
            fills.append((card.capture.available, card.playback.available))
            last_frames = [*last_frames[-9:], frame]  # 0.2 s: its bins are 5 Hz wide
    assert card.capture is not None and card.playback is not None
    capture, playback = (np.array([f[i] for f in fills]) * 1000 / RATE for i in (0, 1))
    return Run((capture.min(), capture.max()), (playback.min(), playback.max()),
               card.capture.underruns - underruns_at_half[0],
               card.playback.underruns - underruns_at_half[1],
               tuple(card.steering[k].correction * 1e6 for k in ("input", "output")),
               tone_level(np.concatenate(last_frames), RATE, 440))


@pytest.mark.parametrize("ppm", [300, -300])
def test_an_hour_of_drift_is_taken_up_and_a_tone_passes_intact(ppm: float) -> None:
    run = simulate(ppm, 3600, compensate=True)
    assert run.capture_ms[1] - run.capture_ms[0] <= 21  # a block's swing, no trend
    assert run.playback_ms[1] - run.playback_ms[0] <= 21
    assert run.capture_ms[1] < 70 and run.playback_ms[1] < 110  # near their targets
    assert run.capture_underruns == 0 and run.playback_underruns == 0
    # the steering learned the drift: the capture side takes ppm more, playback gives less
    assert run.correction_ppm[0] == pytest.approx(ppm, abs=30)
    assert run.correction_ppm[1] == pytest.approx(-ppm, abs=30)
    # resampled a hair off 1, the tone is whole (440 Hz and 300 ppm: the device's clock)
    assert run.heard_tone > 0.98


@pytest.mark.parametrize("ppm", [300, -300])
def test_without_the_steering_the_same_drift_fills_or_drains_the_rings(ppm: float) -> None:
    run = simulate(ppm, 600, compensate=False)
    if ppm > 0:  # the microphone gains 18 ms a minute, the speaker runs dry
        assert run.capture_ms[1] >= 150 and run.playback_underruns > 0
    else:
        assert run.capture_underruns > 0 and run.playback_ms[1] >= 150


def test_the_steering_follows_the_smoothed_fill_and_stays_within_bounds() -> None:
    steering = FillSteering(RATE, target=400)
    assert steering.ratio(400, 0.02) == 1.0  # on target: no correction
    assert steering.ratio(4000, 0.02) > 1.0  # too full: take more (capture), give less
    for _ in range(100_000):  # a ring stuck full for half an hour: bounded, no windup
        steering.ratio(4000, 0.02)
    assert steering.correction == pytest.approx(0.002)
    for _ in range(200):
        steering.ratio(0, 0.02)
    assert steering.correction < 0.002  # it turns as soon as the fill does


def test_a_fill_far_off_target_for_a_whole_window_jumps() -> None:
    steering = FillSteering(RATE, target=400)
    for _ in range(50):  # a burst: the smoothed fill rises, but not for long enough
        steering.ratio(4000, 0.02)
    assert steering.jump() == 0
    for _ in range(200):  # a backlog that stays: dropped at once, down to target
        steering.ratio(4000, 0.02)
    assert 3000 < steering.jump() <= 3600
    assert steering.jump() == 0  # and it counts as on target from there
    for _ in range(200):  # a ring that stays low (bursts bigger than its margin): filled
        steering.ratio(0, 0.02)
    assert -400 <= steering.jump() < -300
    steering.widen(160, limit=600)
    steering.widen(160, limit=600)
    assert steering.target == 600  # ran dry: aims higher, to its limit


def test_the_resampler_gives_fewer_samples_for_a_ratio_above_one() -> None:
    resampler, given, got = DriftResampler(), 0, 0
    noise = np.random.default_rng(1).integers(-3000, 3000, BLOCK).astype(np.int16)
    for _ in range(100):  # past the filter's own delay
        resampler.process(noise, 1.001)
    for _ in range(5000):
        got += len(resampler.process(noise, 1.001))
        given += BLOCK
    assert given / got == pytest.approx(1.001, abs=0.00005)
