"""Clock drift between the sound card and the call, simulated on a virtual clock: a device
whose clock runs 300 ppm fast or slow exchanges 20 ms blocks with the call's 20 ms frames
for an hour. With the steering neither ring buffer grows or drains and a tone passes
intact; without it, the same drift fills or empties them within minutes."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pytest

from softphone.media.drift import DriftResampler, FillSteering
from softphone.media.virtual_card import click_delay, run_drift, stand_in_sounddevice

RATE, BLOCK = 8000, 160


@pytest.fixture(autouse=True)
def virtual_card(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "sounddevice", stand_in_sounddevice())
    yield


@pytest.mark.parametrize(("ppm", "seconds", "device_rate"), [
    (300, 3600, 8000), (-300, 3600, 8000),  # an hour: the card at 8 kHz runs it in 18 s
    (300, 600, None), (-300, 600, None),  # the card as it opens by default (48 kHz), 10 min
], ids=["+300 ppm, an hour", "-300 ppm, an hour", "+300 ppm, 48 kHz", "-300 ppm, 48 kHz"])
def test_drift_is_taken_up_and_a_tone_passes_intact(ppm: float, seconds: float,
                                                    device_rate: int | None) -> None:
    """The steering is the same at any card rate (it counts seconds of audio); the hour
    proves nothing creeps, the 48 kHz runs the default card and rate conversion."""
    run = run_drift(ppm, seconds, compensate=True, device_rate=device_rate)
    # a block's swing (and a few ms the resampler holds or gives at once), no trend
    assert run.capture_ms[1] - run.capture_ms[0] <= 25
    assert run.playback_ms[1] - run.playback_ms[0] <= 25
    assert run.capture_ms[1] < 70 and run.playback_ms[1] < 110  # near their targets
    assert run.capture_underruns == 0 and run.playback_underruns == 0
    # the steering learned the drift: the capture side takes ppm more, playback gives less
    assert run.correction_ppm[0] == pytest.approx(ppm, abs=30)
    assert run.correction_ppm[1] == pytest.approx(-ppm, abs=30)
    # resampled a hair off 1, the tone is whole (440 Hz and 300 ppm: the device's clock)
    assert run.heard_tone > 0.98


@pytest.mark.parametrize("ppm", [300, -300])
def test_without_the_steering_the_same_drift_fills_or_drains_the_rings(ppm: float) -> None:
    run = run_drift(ppm, 600, compensate=False)
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
    starting = FillSteering(RATE, target=400)
    starting.ratio(0, 0.02)
    assert starting.jump() == -400  # the first time, whatever the gap: start on target
    steering = FillSteering(RATE, target=400)
    steering.ratio(400, 0.02)
    assert steering.jump() == 0
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


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_the_steering_adds_under_60_ms_at_every_calls_rate(rate: int) -> None:
    """A click each way through softphone's side of the card, on the virtual clock: the
    steered path against the bare ring (a block, what any ring between block clocks holds,
    and the conversion from the call's rate to the card's 48 kHz). The card runs at 48 kHz
    for every call because the variable-rate resampler holds 240 samples at its rate: at
    8 kHz that was 30 ms each way (scripts/bench_device.py prints the figures)."""
    steered = click_delay("capture", rate=rate) + click_delay("playback", rate=rate)
    bare = click_delay("capture", False, rate) + click_delay("playback", False, rate)
    assert 20 <= bare < 28  # the block, and the conversion's filters (3 ms at 8 kHz)
    assert steered - bare < 60
