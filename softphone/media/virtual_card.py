"""A sound card on a virtual clock, for the tests and benchmarks of the sound-card path.

``stand_in_sounddevice()`` is a module to put in place of sounddevice: its streams open and
never run, so a SoundDevice can be driven by hand, calling its PortAudio callbacks as a device
would. ``run_drift`` runs such a device ``ppm`` off the call's clock, ``run_room`` one whose
speaker leaks into its microphone, ``click_delay`` times a click through each direction: the
figures drift steering, echo cancellation and latency are judged by."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from softphone.media.device import SoundDevice
from softphone.media.quality import tone_level

Samples = npt.NDArray[np.int16]
Signal = npt.NDArray[np.float64]


class StillStream:
    """A PortAudio stream that opens, starts and closes, and never calls back by itself."""

    def __init__(self, callback: Any, **settings: Any) -> None:
        self.callback, self.settings = callback, settings

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def stand_in_sounddevice() -> types.ModuleType:
    """A module to install as ``sounddevice`` (sys.modules) while a virtual card runs."""
    module = types.ModuleType("sounddevice")
    module.InputStream = type("InputStream", (StillStream,), {})  # type: ignore[attr-defined]
    module.OutputStream = type("OutputStream", (StillStream,), {})  # type: ignore[attr-defined]
    module.PortAudioError = type("PortAudioError", (Exception,), {})  # type: ignore[attr-defined]
    return module


@dataclass(frozen=True)
class DriftRun:
    """What a drift run saw over its second half (after settling), rings in ms of audio."""

    capture_ms: tuple[float, float]
    playback_ms: tuple[float, float]
    capture_underruns: int
    playback_underruns: int
    correction_ppm: tuple[float, float]  # capture, playback
    heard_tone: float  # the share of the last 0.2 s heard at 440 Hz


def run_drift(ppm: float, seconds: float, compensate: bool, rate: int = 8000,
              device_rate: int | None = None) -> DriftRun:
    """A device ``ppm`` off the call's clock: its callbacks capture a 440 Hz tone and play
    what the call wrote; the call reads a frame and writes it back every 20 ms. The device
    runs at ``device_rate`` (None: where a SoundDevice opens a card, 48 kHz)."""
    frame_samples = rate // 50
    clock = _Clock()
    card = SoundDevice(None, compensate_drift=compensate, clock=clock, device_rate=device_rate)
    card.prepare(rate)
    card.write(np.zeros(frame_samples, dtype=np.int16), rate)
    assert card.rate is not None
    block = card.rate // 50
    tone = (np.sin(2 * np.pi * 440 * np.arange(card.rate) / card.rate) * 8000).astype(np.int16)
    device_period = block / (card.rate * (1 + ppm * 1e-6))
    device_at = frame_at = 0.0
    blocks = 0
    fills: list[tuple[int, int]] = []
    last_frames: list[Samples] = []
    underruns_at_half = (0, 0)
    while frame_at < seconds:
        if device_at <= frame_at:  # the device's block is due first
            clock.now = device_at
            start = blocks % 50 * block  # a second of tone: 440 whole periods
            card._captured(tone[start:start + block].reshape(-1, 1), block, None, None)
            card._play(np.zeros((block, 1), dtype=np.int16), block, None, None)
            blocks += 1
            device_at += device_period
            continue
        clock.now = frame_at
        frame = card.read(frame_samples, rate)
        card.write(frame, rate)
        frame_at += 0.02
        assert card.capture is not None and card.playback is not None
        if frame_at >= seconds / 2:
            if not fills:
                underruns_at_half = (card.capture.underruns, card.playback.underruns)
            fills.append((card.capture.available, card.playback.available))
            last_frames = [*last_frames[-9:], frame]  # 0.2 s: its bins are 5 Hz wide
    assert card.capture is not None and card.playback is not None
    capture, playback = (np.array([f[i] for f in fills]) * 1000 / card.rate for i in (0, 1))
    corrections = tuple(card.steering[k].correction * 1e6 for k in ("input", "output"))
    return DriftRun((float(capture.min()), float(capture.max())),
                    (float(playback.min()), float(playback.max())),
                    card.capture.underruns - underruns_at_half[0],
                    card.playback.underruns - underruns_at_half[1],
                    (corrections[0], corrections[1]),
                    tone_level(np.concatenate(last_frames), rate, 440))


@dataclass(frozen=True)
class Room:
    """The speaker's way into the microphone: a direct echo and one reflection."""

    delay: int = 640  # samples (40 ms at 16 kHz)
    gain: float = 0.5  # -6 dB
    reflection_delay: int = 720
    reflection_gain: float = 0.15

    def echo(self, played: Signal, start: int, block: int) -> Signal:
        return (self.gain * _delayed(played, start, self.delay, block)
                + self.reflection_gain * _delayed(played, start, self.reflection_delay, block))


def run_room(far: Samples, near: Signal, cancel: bool, rate: int = 16000,
             room: Room | None = None) -> tuple[Signal, Samples]:
    """Run the far end's speech out of the card's speaker and what its microphone hears (the
    speaker's echo plus ``near``) back in, 20 ms at a time, as a call would. Returns what the
    speaker played and what the call got from the microphone."""
    room = room or Room()
    block = rate // 50
    clock = _Clock()
    card = SoundDevice(None, compensate_drift=False, clock=clock, echo_cancellation=cancel,
                       device_rate=rate)  # (the room's delays count samples at the call's)
    card.prepare(rate)
    played = np.zeros(len(far) + block, dtype=np.float64)
    heard: list[Samples] = []
    for start in range(0, len(far) - block, block):
        clock.now = start / rate
        card.write(far[start:start + block], rate)  # the call sends the far end's voice
        speaker = np.zeros((block, 1), dtype=np.int16)
        card._play(speaker, block, None, None)  # the device plays it ...
        played[start:start + block] = speaker[:, 0]
        microphone = np.clip(room.echo(played, start, block) + near[start:start + block],
                             -32768, 32767)
        card._captured(microphone.astype(np.int16).reshape(-1, 1), block, None, None)
        heard.append(card.read(block, rate))  # ... and the call takes the microphone's
    card.close()
    return played[: len(far)], np.concatenate(heard)


def _delayed(played: Signal, start: int, delay: int, block: int) -> Signal:
    begin = start - delay
    piece = np.zeros(block)
    if begin + block > 0:
        available = played[max(0, begin) : begin + block]
        piece[block - len(available):] = available
    return piece


def click_delay(direction: str, compensate: bool = True, rate: int = 8000,
                settle_seconds: float = 3.0) -> float:
    """Milliseconds a click takes through softphone's side of one direction of the card
    (its ring, its rate conversion, the drift steering's resampler, its margin), the device
    exchanging 20 ms blocks with the call in step: ``capture`` from the device's block to
    the frame the call reads, ``playback`` from the frame the call writes to the device's
    block. The click is a millisecond long, so that it passes the rate conversion's filter."""
    clock = _Clock()
    card = SoundDevice(None, compensate_drift=compensate, clock=clock)
    card.prepare(rate)
    card.write(np.zeros(rate // 50, dtype=np.int16), rate)  # both directions open
    assert card.rate is not None
    click_at = int(settle_seconds * 50)
    for tick in range(click_at + 50):
        clock.now = tick * 0.02
        card._captured(_click(card.rate, tick == click_at and direction == "capture"),
                       card.rate // 50, None, None)
        speaker = np.zeros((card.rate // 50, 1), dtype=np.int16)
        card._play(speaker, card.rate // 50, None, None)
        clock.now = tick * 0.02 + 0.01  # the call's tick falls between the device's blocks
        heard = card.read(rate // 50, rate)
        card.write(_click(rate, tick == click_at and direction == "playback")[:, 0], rate)
        out, out_rate = (heard, rate) if direction == "capture" else (speaker[:, 0], card.rate)
        if tick >= click_at and np.abs(out).max() > 5000:
            return ((tick - click_at) * out_rate // 50 + int(np.argmax(np.abs(out)))) * 1000 \
                / out_rate
    return float("inf")


def _click(rate: int, sounding: bool) -> Samples:
    """A 20 ms block (as a device's column), a millisecond's click at its start or quiet."""
    block = np.zeros((rate // 50, 1), dtype=np.int16)
    if sounding:
        block[: rate // 1000] = 20000
    return block


class _Clock:
    """The virtual time the card's callbacks and the call's ticks happen at."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

