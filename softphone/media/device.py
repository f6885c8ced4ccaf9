"""The sound card as an audio port, through sounddevice (PortAudio).

An input and an output stream per port (one full-duplex stream stalled through ALSA's pulse
plugin, separate ones run at real time). PortAudio's callbacks run on its audio thread and do
nothing but copy between two ring buffers (DESIGN.md rule 2): microphone samples into
``capture``, ``playback`` samples out to the speaker. The event loop's pacing clock is the
other side of each ring. sounddevice is imported only here, so a machine without
libportaudio2 still runs file, tone and null audio.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from softphone.media.drift import DriftResampler, FillSteering, SteadyFrames
from softphone.media.echo import EchoCanceller
from softphone.media.rates import RateConverter

Samples = npt.NDArray[np.int16]
log = logging.getLogger("softphone.media")


class NoSoundDevice(RuntimeError):
    """PortAudio is missing or has no device that fits."""


class RingBuffer:
    """A single-producer, single-consumer ring of int16 samples.

    The two counters only grow and each has one writer, so the audio thread and the loop never
    need a lock: the producer publishes ``_written`` after copying, the consumer ``_read``."""

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(capacity, dtype=np.int16)
        self._written = 0
        self._read = 0
        self.overflows = 0   # samples dropped because the consumer fell behind
        self.underruns = 0   # samples made up (silence) because the producer fell behind

    @property
    def available(self) -> int:
        return self._written - self._read

    def write(self, samples: Samples) -> None:
        room = len(self._data) - self.available
        if len(samples) > room:
            self.overflows += len(samples) - room
            samples = samples[:room]
        start = self._written % len(self._data)
        first = min(len(samples), len(self._data) - start)
        self._data[start : start + first] = samples[:first]
        self._data[: len(samples) - first] = samples[first:]
        self._written += len(samples)

    def read(self, count: int) -> Samples:
        out = np.zeros(count, dtype=np.int16)
        take = min(count, self.available)
        start = self._read % len(self._data)
        first = min(take, len(self._data) - start)
        out[:first] = self._data[start : start + first]
        out[first:take] = self._data[: take - first]
        self._read += take
        self.underruns += count - take
        return out


def list_devices() -> list[dict[str, Any]]:
    """PortAudio's devices (empty when PortAudio is missing or sees none)."""
    try:
        import sounddevice
    except OSError:
        return []
    return [dict(device) for device in sounddevice.query_devices()]


def default_devices() -> tuple[int | None, int | None]:
    """PortAudio's default input and output device indexes."""
    try:
        import sounddevice
    except OSError:
        return None, None
    default_in, default_out = sounddevice.default.device
    return (default_in if default_in >= 0 else None, default_out if default_out >= 0 else None)


class SoundDevice:
    """Microphone source and speaker sink in one port. ``device`` is a name (substring) or
    an index, as sounddevice takes it; None means the system default. ``capture_device`` and
    ``playback_device`` choose each direction apart (a headset's microphone with the
    laptop's speakers, as pjsua's --capture-dev and --playback-dev). Each direction's stream
    opens when it is first used, so a call that only plays (its source a file) never opens
    the microphone; both run at the rate the first one opened at."""

    # PortAudio's suggested latency each way: what ALSA's buffer holds beyond our rings.
    # 0.1 s put 265-285 ms in a looped-back round trip over the pulse plugin, 0.04 s 160-190
    # ms, with no more underruns once settled (measured with `devices --latency` and the e2e
    # drift probe at each setting; scripts/bench_device.py prints the round trip now).
    LATENCY_SECONDS = 0.04
    # The card runs at 48 kHz whatever the call's rate: the drift steering's resampler holds
    # 240 samples at the rate it runs at (5 ms at 48 kHz, 30 at 8 kHz), the card's own rate
    # is most often 48 kHz (so its server does not resample again), and the call's 8 or
    # 16 kHz is converted once, in 1.5-3 ms (media/rates.py).
    PREFERRED_RATE = 48000
    STALL_SECONDS = 1.0  # no callback this long: the device is gone (or stalled)
    SETTLING_SECONDS = 1.0  # a device's first second is not steered (it starts in bursts)
    # the fill the drift steering aims at, in device blocks, as measured between blocks:
    # before a frame is read from the microphone, and before one is written for the speaker
    # (each raised a block whenever its ring runs dry all the same)
    CAPTURE_TARGET_BLOCKS = 1.5
    PLAYBACK_TARGET_BLOCKS = 0.5

    def __init__(self, device: str | int | None = None, buffer_seconds: float = 0.5,
                 device_rate: int | None = None, capture_device: str | int | None = None,
                 playback_device: str | int | None = None,
                 compensate_drift: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 echo_cancellation: bool = False) -> None:
        self.device = device
        self.compensate_drift = compensate_drift
        # what the speaker plays, taken back out of what the microphone hears (media/echo.py)
        self.echo: EchoCanceller | None = EchoCanceller() if echo_cancellation else None
        self.clock = clock
        # when each direction's callback last ran (the audio thread writes, the loop reads):
        # how far into its next block the device is, so the fill is measured between blocks
        self._last_callback = {"input": 0.0, "output": 0.0}
        self._first_callback = {"input": 0.0, "output": 0.0}
        self.stalled: set[str] = set()  # directions whose device stopped calling back
        self._callbacks = {"input": 0, "output": 0}
        self.steering: dict[str, FillSteering] = {}  # per direction, once its stream opens
        self._resamplers: dict[str, DriftResampler] = {}
        # the call's rate to the card's and back, per direction and call rate (a re-INVITE
        # may change the codec)
        self._converters: dict[tuple[str, int], RateConverter] = {}
        self._captured_frames = SteadyFrames()
        self._capture_owed = 0.0  # device samples due to the resampler, with their fraction
        # samples dropped to cut a late backlog (negative: silence made up for a deficit)
        self.dropped = {"input": 0, "output": 0}
        self._playback_backlog = 0  # samples still to drop from what the call writes
        self._underruns_seen = {"input": 0, "output": 0}
        self.devices = {"input": capture_device if capture_device is not None else device,
                        "output": playback_device if playback_device is not None else device}
        self.buffer_seconds = buffer_seconds
        self.device_rate = device_rate  # None: 48 kHz, else the call's, else the device's
        self.rate: int | None = None  # the rate the streams really run at
        self.capture: RingBuffer | None = None
        self.playback: RingBuffer | None = None
        self._streams: dict[str, Any] = {}

    def prepare(self, rate: int) -> None:
        """Open the microphone (the stream prepares its source before the first frame)."""
        self._ensure("input", rate)

    def _ensure(self, kind: str, rate: int) -> None:
        if kind in self._streams:
            return
        try:
            import sounddevice
        except OSError as error:
            raise NoSoundDevice(f"PortAudio is not available: {error}") from error
        device = self.devices[kind]
        fixed = self.rate if self.rate is not None else self.device_rate
        # A card that refuses 48 kHz runs at the call's rate, else at its own.
        rates = [fixed] if fixed is not None else [self.PREFERRED_RATE, rate, None]
        refusal: Exception = NoSoundDevice("no rate to open it at")
        for tried in dict.fromkeys(rates):  # (the call's rate may be 48 kHz)
            try:
                self._open(sounddevice, kind, tried if tried is not None else
                           int(sounddevice.query_devices(device, kind)["default_samplerate"]))
                return
            except (sounddevice.PortAudioError, ValueError) as error:
                self._drop(kind)
                refusal = error
        raise NoSoundDevice(f"cannot open sound device {device!r}: {refusal}") from refusal

    def _open(self, sounddevice: Any, kind: str, rate: int) -> None:
        buffer = RingBuffer(int(rate * self.buffer_seconds))
        block = rate // 50
        settings = dict(samplerate=rate, channels=1, dtype="int16", device=self.devices[kind],
                        blocksize=block, latency=self.LATENCY_SECONDS)
        blocks = self.CAPTURE_TARGET_BLOCKS if kind == "input" else self.PLAYBACK_TARGET_BLOCKS
        self.steering[kind] = FillSteering(rate, int(block * blocks))
        self._resamplers[kind] = DriftResampler()
        if kind == "input":
            self.capture = buffer
            stream = sounddevice.InputStream(callback=self._captured, **settings)
        else:
            self.playback = buffer
            stream = sounddevice.OutputStream(callback=self._play, **settings)
        self._streams[kind] = stream
        stream.start()
        self.rate = rate

    def _drop(self, kind: str) -> None:
        stream = self._streams.pop(kind, None)
        if stream is not None:
            stream.close()

    # PortAudio's audio thread: ring-buffer copies only.
    def _captured(self, indata: Any, frames: int, times: Any, status: Any) -> None:
        assert self.capture is not None
        self.capture.write(indata[:, 0])
        self._callbacks["input"] += 1
        self._last_callback["input"] = self.clock()
        self._first_callback["input"] = self._first_callback["input"] or \
            self._last_callback["input"]

    def _play(self, outdata: Any, frames: int, times: Any, status: Any) -> None:
        assert self.playback is not None
        outdata[:, 0] = self.playback.read(frames)
        self._callbacks["output"] += 1
        self._last_callback["output"] = self.clock()
        self._first_callback["output"] = self._first_callback["output"] or \
            self._last_callback["output"]

    def first_audio(self) -> float | None:
        """When the microphone first delivered (its clock), None if it never did."""
        return self._first_callback["input"] or None

    def _fill(self, kind: str, ring: RingBuffer) -> float:
        """A ring's fill as the device sees it now, not only at its last block: the
        microphone has captured since (more to come), the speaker has played since (less
        left). Between two nearly equal clocks the phase of their blocks drifts slowly, so
        the bare fill would wander by a block over a minute and the steering chase it."""
        assert self.rate is not None
        since = min(self.clock() - self._last_callback[kind], 1 / 50) * self.rate
        return ring.available + (since if kind == "input" else -since)

    def read(self, samples: int, rate: int) -> Samples:
        self._ensure("input", rate)
        assert self.capture is not None and self.rate is not None
        self._watch("input")
        captured = self._take_captured(samples, rate)
        if self.echo is not None:
            try:
                self.echo.set_delay(self._echo_delay_ms())
                captured = self.echo.near(captured, rate)
            except Exception as error:  # noqa: BLE001  (the call goes on, uncancelled)
                self._echo_failed(error)
        return captured

    def _watch(self, kind: str) -> None:
        """A device whose callbacks stopped (unplugged, or its server gone) is said once:
        the ring then gives silence and takes frames nowhere, and the call goes on."""
        last = self._last_callback[kind]
        # (a device that has not yet run a second's worth of blocks may still be starting:
        # ALSA's pulse plugin pulls a few, then nothing for up to two seconds)
        stalled = self._callbacks[kind] > 50 and self.clock() - last > self.STALL_SECONDS
        if stalled != (kind in self.stalled):
            part = "microphone" if kind == "input" else "speaker"
            name = self.devices[kind] if self.devices[kind] is not None else "default"
            if stalled:
                self.stalled.add(kind)
                log.warning("sound device %s: the %s stopped (unplugged?); the call goes on "
                            "with silence", name, part)
            else:
                self.stalled.discard(kind)
                log.warning("sound device %s: the %s is back", name, part)

    def _echo_failed(self, error: Exception) -> None:
        """The echo canceller refused a frame: the call goes on without it, said once."""
        log.warning("echo cancellation stopped: %s", error)
        self.echo = None

    def _echo_delay_ms(self) -> float:
        """What the buffers hold between a frame written for the speaker and its echo read
        from the microphone: both rings and PortAudio's own latency each way."""
        assert self.rate is not None
        held = sum(ring.available for ring in (self.capture, self.playback) if ring)
        return held * 1000 / self.rate + 2 * self.LATENCY_SECONDS * 1000

    def _take_captured(self, count: int, rate: int) -> Samples:
        """``count`` microphone samples at the call's ``rate``, the device's drift taken up
        (see media/drift.py) and its rate converted."""
        assert self.capture is not None and self.rate is not None
        ratio, jump = (self._steer("input", self.capture, count / rate)
                       if self.compensate_drift else (1.0, 0))
        frames = self._captured_frames
        if jump > 0:  # a late start or a stall left audio that would only be heard late
            self.capture.read(jump)
            self.dropped["input"] += jump
        elif jump < 0:  # bursts drain the ring lower than its margin: let it fill up
            frames.add(np.zeros(-jump * rate // self.rate, dtype=np.int16))
            self.dropped["input"] += jump
        for _ in range(3):  # the resamplers keep a sample or two back: ask again for them
            wanted = count - frames.available
            if wanted <= 0:
                break
            # a fraction of a sample a frame is the whole correction: carry it, not round it
            self._capture_owed += wanted * ratio * self.rate / rate
            taking = int(self._capture_owed)
            self._capture_owed -= taking
            piece = self.capture.read(taking)
            if self.compensate_drift:
                piece = self._resamplers["input"].process(piece, ratio)
            frames.add(self._converter("input", rate).process(piece))
        return frames.take(count)

    def _converter(self, kind: str, rate: int) -> RateConverter:
        """The converter between the call's ``rate`` and the card's for one direction, kept
        so that its filter runs on across frames (one made per frame would click)."""
        assert self.rate is not None
        key = (kind, rate)
        if key not in self._converters:
            self._converters[key] = RateConverter(self.rate, rate) if kind == "input" else \
                RateConverter(rate, self.rate)
        return self._converters[key]

    def _steer(self, kind: str, ring: RingBuffer, seconds: float) -> tuple[float, int]:
        """The resampling ratio for a frame of ``seconds`` and the samples to drop at once.
        Nothing is steered until the device has run for a second (ALSA's pulse plugin
        starts late and in bursts: steering an empty ring would wind the controller up for
        nothing); after that, a ring that ran dry makes its target a block higher (to half
        the ring at most)."""
        assert self.rate is not None
        started = self._first_callback[kind]
        settled = bool(started) and self.clock() - started > self.SETTLING_SECONDS
        underran, self._underruns_seen[kind] = \
            ring.underruns > self._underruns_seen[kind], ring.underruns
        if not settled:
            return 1.0, 0
        steering = self.steering[kind]
        if underran:
            steering.widen(self.rate // 50, int(self.rate * self.buffer_seconds / 2))
        return steering.ratio(self._fill(kind, ring), seconds), steering.jump()

    def write(self, frame: Samples, rate: int) -> None:
        self._ensure("output", rate)
        assert self.playback is not None and self.rate is not None
        self._watch("output")
        if self.echo is not None:
            try:
                self.echo.far(frame, rate)
            except Exception as error:  # noqa: BLE001  (the call goes on, uncancelled)
                self._echo_failed(error)
        data = self._converter("output", rate).process(frame)
        if self.compensate_drift:
            ratio, jump = self._steer("output", self.playback, len(frame) / rate)
            if jump < 0:  # bursts drain the ring lower than its margin: fill it up
                self.playback.write(np.zeros(-jump, dtype=np.int16))
                self.dropped["output"] += jump
            self._playback_backlog += max(0, jump)
            if self._playback_backlog:  # the speaker stalled (or started late): what would
                dropping = min(self._playback_backlog, len(data))  # queue now is heard late
                data, self._playback_backlog = data[dropping:], self._playback_backlog - dropping
                self.dropped["output"] += dropping
            data = self._resamplers["output"].process(data, ratio)
        self.playback.write(data)

    def close(self) -> None:
        for stream in self._streams.values():
            stream.stop()
            stream.close()
        self._streams = {}
