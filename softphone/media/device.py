"""The sound card as an audio port, through sounddevice (PortAudio).

An input and an output stream per port (one full-duplex stream stalled through ALSA's pulse
plugin, separate ones run at real time). PortAudio's callbacks run on its audio thread and do
nothing but copy between two ring buffers (DESIGN.md rule 2): microphone samples into
``capture``, ``playback`` samples out to the speaker. The event loop's pacing clock is the
other side of each ring. sounddevice is imported only here, so a machine without
libportaudio2 still runs file, tone and null audio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from softphone.media.wav import resample

Samples = npt.NDArray[np.int16]


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

    def __init__(self, device: str | int | None = None, buffer_seconds: float = 0.5,
                 device_rate: int | None = None, capture_device: str | int | None = None,
                 playback_device: str | int | None = None) -> None:
        self.device = device
        self.devices = {"input": capture_device if capture_device is not None else device,
                        "output": playback_device if playback_device is not None else device}
        self.buffer_seconds = buffer_seconds
        self.device_rate = device_rate  # None: the call's rate, else the device's default
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
        try:
            self._open(sounddevice, kind, fixed or rate)
        except (sounddevice.PortAudioError, ValueError) as error:
            self._drop(kind)
            if fixed is not None:
                raise NoSoundDevice(f"cannot open sound device {device!r}: {error}") \
                    from error
            # The device refuses the call's rate: run it at its own and resample frames.
            try:
                default = int(sounddevice.query_devices(device, kind)["default_samplerate"])
                self._open(sounddevice, kind, default)
            except (sounddevice.PortAudioError, ValueError) as again:
                self._drop(kind)
                raise NoSoundDevice(f"cannot open sound device {device!r}: {again}") \
                    from again

    def _open(self, sounddevice: Any, kind: str, rate: int) -> None:
        buffer = RingBuffer(int(rate * self.buffer_seconds))
        settings = dict(samplerate=rate, channels=1, dtype="int16", device=self.devices[kind],
                        blocksize=rate // 50, latency=0.1)
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
    def _captured(self, indata: Any, frames: int, time: Any, status: Any) -> None:
        assert self.capture is not None
        self.capture.write(indata[:, 0])

    def _play(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        assert self.playback is not None
        outdata[:, 0] = self.playback.read(frames)

    def read(self, samples: int, rate: int) -> Samples:
        self._ensure("input", rate)
        assert self.capture is not None and self.rate is not None
        if self.rate == rate:
            return self.capture.read(samples)
        frame = resample(self.capture.read(samples * self.rate // rate), self.rate, rate)
        return np.resize(frame, samples) if len(frame) != samples else frame

    def write(self, frame: Samples, rate: int) -> None:
        self._ensure("output", rate)
        assert self.playback is not None and self.rate is not None
        self.playback.write(frame if self.rate == rate else resample(frame, rate, self.rate))

    def close(self) -> None:
        for stream in self._streams.values():
            stream.stop()
            stream.close()
        self._streams = {}
