"""Audio ports: every source and sink of a call implements one small interface, so a call
does not care where its audio comes from or goes (DESIGN.md rule 4). Frames are int16 numpy
arrays at the rate the caller asks for."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]


class AudioSource(Protocol):
    def prepare(self, rate: int) -> None:
        """Do slow work (loading, resampling) now, before the pacing clock needs frames."""
        ...

    def read(self, samples: int, rate: int) -> Samples:
        """Exactly ``samples`` samples at ``rate`` Hz."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FrameCycle:
    """What a source's reads of one frame size will return from now on, known in advance:
    ``frames[start]``, then each next one, and after the last ``frames[loop_from]`` again,
    forever (a tone's second, a file followed by silence, silence). The frames are read-only
    and the same objects every time round, shared with every source playing the same audio,
    so a stream can code them once for all its calls (G.711: every call of a load test
    playing one prompt sends payloads coded once) instead of reading and coding each frame.

    A source offers one with ``cycle(samples, rate)`` (optional: a microphone cannot). Who
    takes it reads the frames itself from then on; before it reads the source again it
    brings the source to where it got to with ``catch_up`` (a codec change, say)."""

    frames: Sequence[Samples]
    rate: int
    start: int
    loop_from: int = 0

    def after(self, index: int) -> int:
        """The index of the frame that follows ``frames[index]``."""
        return index + 1 if index + 1 < len(self.frames) else self.loop_from

    def catch_up(self, source: AudioSource, index: int) -> None:
        """Read ``source`` as far as the frames taken up to ``index`` (the next to take):
        at most once round, however long it was taken for, since the frames repeat."""
        taken = index - self.start if index >= self.start else \
            len(self.frames) - self.start + index - self.loop_from
        samples = len(self.frames[0])
        for _ in range(taken):
            source.read(samples, self.rate)


class AudioSink(Protocol):
    def write(self, frame: Samples, rate: int) -> None: ...

    def close(self) -> None: ...


FULL_BAND = 48000


def content_rate(port: object) -> int:
    """A sampling rate that holds all the audio ``port`` carries (its ``content_rate``): 0
    for none (silence), a file's own rate, a little over twice a tone's frequency.
    A port that does not say is taken for full band. A stream codes its audio at the
    narrowest rate its codec allows that holds both ports' (Opus: 8 to 48 kHz)."""
    return int(getattr(port, "content_rate", FULL_BAND))


# One read-only frame of zeros per frame size, shared by every silent source of the process.
_SILENT_FRAMES: dict[int, tuple[Samples]] = {}


def silent_frames(samples: int) -> tuple[Samples]:
    """The process's frame of ``samples`` zeros (as a one-frame cycle); nobody may change it."""
    frames = _SILENT_FRAMES.get(samples)
    if frames is None:
        frame = np.zeros(samples, dtype=np.int16)
        frame.flags.writeable = False
        frames = (frame,)
        if len(_SILENT_FRAMES) < TONES_SHARED:
            _SILENT_FRAMES[samples] = frames
    return frames


class Silence:
    """Every frame is the same read-only array of zeros, shared by the process, so a load
    test's thousand silent streams allocate nothing per frame."""

    content_rate = 0

    def __init__(self) -> None:
        self._frame = np.zeros(0, dtype=np.int16)

    def prepare(self, rate: int) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self, samples: int, rate: int) -> Samples:
        if len(self._frame) != samples:
            self._frame = silent_frames(samples)[0]
        return self._frame

    def cycle(self, samples: int, rate: int) -> FrameCycle:
        """Silence, forever: one frame (see FrameCycle)."""
        return FrameCycle(silent_frames(samples), rate, 0)


class Discard:
    # No content_rate: nothing is decoded for it, except a level meter's last frame, which a
    # full-band decoder measures best on its own.
    def write(self, frame: Samples, rate: int) -> None:
        pass

    def close(self) -> None:
        pass


# A tone's second of samples, and that second cut in frames, shared by every Tone of the same
# frequency and level in the process: a load test's calls all playing one tone then read the
# same few kilobytes (which stay in the CPU's cache) instead of a copy each. A handful of
# tones is usual; the bound only stops a script making thousands from keeping them all.
_TONE_TABLES: dict[tuple[float, float, int], Samples] = {}
_TONE_FRAMES: dict[tuple[float, float, int, int], list[Samples]] = {}
TONES_SHARED = 64  # also bounds the silent frames kept, one per frame size


class Tone:
    """A sine at ``hz``, ``level`` dBFS; the phase runs on across frames. One second of it is
    computed once per rate and read in slices (a whole number of Hz repeats every second).
    When the frames divide the second, as 10-60 ms frames do, that second's frames are cut
    once and handed out in turn: the same array objects over and over, cheaper than slicing
    anew on every tick of every call playing it. Both are shared with the process's other
    Tones of the same frequency and level."""

    __slots__ = ("hz", "amplitude", "_position", "_frames", "_frame_samples", "_frame_rate")

    def __init__(self, hz: float, level_dbfs: float = -10.0) -> None:
        self.hz = hz
        self.amplitude = 32767 * 10 ** (level_dbfs / 20)
        self._position = 0
        self._frames: list[Samples] = []  # one second at _frame_rate, cut in frames
        self._frame_samples = self._frame_rate = 0  # (none cut yet)

    @property
    def content_rate(self) -> int:
        """Above twice the frequency (Nyquist), with a margin for the codec's filters."""
        return int(self.hz * 2.5)

    def prepare(self, rate: int) -> None:
        self._table(rate)

    def close(self) -> None:
        pass

    def _table(self, rate: int) -> Samples:
        key = (self.hz, self.amplitude, rate)
        table = _TONE_TABLES.get(key)
        if table is None:
            n = np.arange(rate)
            table = (self.amplitude * np.sin(2 * np.pi * self.hz * n / rate)).astype(np.int16)
            table.flags.writeable = False  # frames are views of it: nobody may change them
            if len(_TONE_TABLES) < TONES_SHARED:
                _TONE_TABLES[key] = table
        return table

    def _cut(self, samples: int, rate: int) -> list[Samples]:
        key = (self.hz, self.amplitude, rate, samples)
        frames = _TONE_FRAMES.get(key)
        if frames is None:
            table = self._table(rate)
            frames = [table[i : i + samples] for i in range(0, rate, samples)]
            if len(_TONE_FRAMES) < TONES_SHARED:
                _TONE_FRAMES[key] = frames
        return frames

    def read(self, samples: int, rate: int) -> Samples:
        start = self._position % rate
        self._position += samples
        if samples == self._frame_samples and rate == self._frame_rate and not start % samples:
            return self._frames[start // samples]
        if rate % samples == 0 and start % samples == 0:
            self._frames = self._cut(samples, rate)
            self._frame_samples, self._frame_rate = samples, rate
            return self._frames[start // samples]
        table = self._table(rate)
        if start + samples <= rate:
            return table[start : start + samples]
        return np.take(table, np.arange(start, start + samples), mode="wrap")

    def cycle(self, samples: int, rate: int) -> FrameCycle | None:
        """The second of frames read in turn (see FrameCycle); None when frames of this size
        do not divide the second, or the tone stands between two of them."""
        start = self._position % rate
        if rate % samples or start % samples:
            return None
        return FrameCycle(self._cut(samples, rate), rate, start // samples)


class CallWaiting:
    """A sink that mixes the call-waiting tone into what the user hears while another call
    rings (ITU-T E.180: 425 or 440 Hz; here 440 Hz bursts of 0.3 s every ``period``
    seconds, at -20 dBFS beside the conversation). ``inner`` is the call's own sink."""

    BURST = 0.3

    def __init__(self, inner: AudioSink, period: float = 3.0) -> None:
        self.inner = inner
        self.period = period
        self._tone = Tone(440, level_dbfs=-20.0)
        self._played = 0  # samples since the tone started, at the last rate seen

    def write(self, frame: Samples, rate: int) -> None:
        cycle, burst = int(self.period * rate), int(self.BURST * rate)
        beep = self._tone.read(len(frame), rate)
        offsets = (self._played + np.arange(len(frame))) % cycle
        self._played += len(frame)
        mixed = frame.astype(np.int32) + np.where(offsets < burst, beep, 0)
        self.inner.write(np.clip(mixed, -32768, 32767).astype(np.int16), rate)

    def close(self) -> None:
        self.inner.close()


class Echo:
    """Both a sink and a source: what is written is read back (an echo test for the far end).
    Bounded: it keeps at most ``max_samples``, dropping the oldest."""

    def __init__(self, max_samples: int = 48000) -> None:
        self._buffer = np.zeros(0, dtype=np.int16)
        self._max = max_samples

    def prepare(self, rate: int) -> None:
        pass

    def write(self, frame: Samples, rate: int) -> None:
        self._buffer = np.concatenate([self._buffer, frame])[-self._max :]

    def read(self, samples: int, rate: int) -> Samples:
        out = np.zeros(samples, dtype=np.int16)
        take = min(samples, len(self._buffer))
        out[:take] = self._buffer[:take]
        self._buffer = self._buffer[take:]
        return out

    def close(self) -> None:
        self._buffer = np.zeros(0, dtype=np.int16)


class Recorder:
    """A sink that keeps everything in memory (tests and audio assertions)."""

    def __init__(self) -> None:
        self.frames: list[Samples] = []
        self.rate: int | None = None

    def write(self, frame: Samples, rate: int) -> None:
        self.rate = rate
        self.frames.append(frame.copy())

    def close(self) -> None:
        pass

    @property
    def samples(self) -> Samples:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=np.int16)


class Switch:
    """A source whose input can be replaced while the call runs (play this, then that)."""

    def __init__(self, source: AudioSource | None = None) -> None:
        self.source: AudioSource = source or Silence()
        self._rate: int | None = None
        self.taps: list[AudioSink] = []  # see every frame sent (voice activity)

    def set(self, source: AudioSource) -> None:
        if self._rate is not None:
            source.prepare(self._rate)
        self.source.close()
        self.source = source

    def prepare(self, rate: int) -> None:
        self._rate = rate
        self.source.prepare(rate)

    def read(self, samples: int, rate: int) -> Samples:
        frame = self.source.read(samples, rate)
        for tap in self.taps:
            tap.write(frame, rate)
        return frame

    def close(self) -> None:
        self.source.close()
        for tap in self.taps:
            tap.close()


class Tee:
    """A sink that hands every frame to several (a recording and a voice-activity detector)."""

    def __init__(self, *sinks: AudioSink) -> None:
        self.sinks = sinks

    def write(self, frame: Samples, rate: int) -> None:
        for sink in self.sinks:
            sink.write(frame, rate)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class Monitor:
    """A sink that keeps the last seconds of what was heard, for audio assertions, and can
    also pass everything on to a recording."""

    def __init__(self, keep_seconds: float = 10.0) -> None:
        self.keep_seconds = keep_seconds
        self.rate = 8000
        self.frames: deque[Samples] = deque()
        self._kept = 0
        self.written = 0  # samples ever written: a position for since()
        self.recording: AudioSink | None = None
        self.taps: list[AudioSink] = []  # see every frame heard (voice activity)

    def write(self, frame: Samples, rate: int) -> None:
        if rate != self.rate:
            self.rate, self.frames, self._kept = rate, deque(), 0
        self.frames.append(frame)
        self._kept += len(frame)
        self.written += len(frame)
        while self._kept - len(self.frames[0]) >= self.keep_seconds * rate:
            self._kept -= len(self.frames.popleft())
        if self.recording is not None:
            self.recording.write(frame, rate)
        for tap in self.taps:
            tap.write(frame, rate)

    def last(self, seconds: float) -> Samples:
        wanted = int(seconds * self.rate)
        if not self.frames:
            return np.zeros(0, dtype=np.int16)
        joined = np.concatenate(list(self.frames))
        return joined[-wanted:]

    def since(self, position: int) -> Samples:
        """What was heard after ``position`` (an earlier ``written``), as far as it is
        still kept: a listener that takes audio piece by piece (speech recognition) gets
        each sample once without copying the whole window every time."""
        wanted = min(self.written - position, self._kept)
        pieces: list[Samples] = []
        for frame in reversed(self.frames):
            if wanted <= 0:
                break
            pieces.append(frame[-wanted:])
            wanted -= len(frame)
        if not pieces:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(pieces[::-1])

    def close(self) -> None:
        if self.recording is not None:
            self.recording.close()
        for tap in self.taps:
            tap.close()


class DtmfTones:
    """In-band DTMF: each digit as its two tones (70 ms) and a pause (50 ms), then silence."""

    TONE_SECONDS, GAP_SECONDS = 0.07, 0.05
    content_rate = 8000  # the highest DTMF tone is 1633 Hz

    def __init__(self, digits: str, level_dbfs: float = -10.0) -> None:
        from softphone.media.quality import DTMF_HIGH, DTMF_KEYS, DTMF_LOW

        self.pairs = []
        for digit in digits.upper():
            row = next(i for i, keys in enumerate(DTMF_KEYS) if digit in keys)
            self.pairs.append((DTMF_LOW[row], DTMF_HIGH[DTMF_KEYS[row].index(digit)]))
        self.amplitude = 32767 * 10 ** (level_dbfs / 20) / 2
        self._audio: Samples | None = None
        self._position = 0

    def prepare(self, rate: int) -> None:
        if self._audio is None:
            parts = []
            tone = np.arange(int(rate * self.TONE_SECONDS)) / rate
            for low, high in self.pairs:
                parts.append(self.amplitude * (np.sin(2 * np.pi * low * tone)
                                               + np.sin(2 * np.pi * high * tone)))
                parts.append(np.zeros(int(rate * self.GAP_SECONDS)))
            self._audio = np.concatenate(parts).astype(np.int16) if parts else \
                np.zeros(0, dtype=np.int16)

    def read(self, samples: int, rate: int) -> Samples:
        self.prepare(rate)
        assert self._audio is not None
        out = np.zeros(samples, dtype=np.int16)
        chunk = self._audio[self._position : self._position + samples]
        out[: len(chunk)] = chunk
        self._position += samples
        return out

    def close(self) -> None:
        pass


class BothWays:
    """A call recorded both ways into one stereo sink, as call recorders and pjsua's
    conference recorder do: left what we send, right what we hear. ``tap(source)`` wraps the
    call's source so that every frame sent is recorded; the BothWays is itself the call's
    sink. The two sides are written as far as both have come; when one stops (on hold, the
    jitter buffer filling) and the other runs ahead by more than ``MAX_LEAD`` seconds, the
    silent side is written as silence, so the two stay in step."""

    MAX_LEAD = 0.2

    def __init__(self, sink: AudioSink) -> None:
        self.sink = sink  # a stereo sink: (samples, 2) frames
        self._sides: tuple[list[Samples], list[Samples]] = ([], [])
        self._lengths = [0, 0]

    def tap(self, source: AudioSource) -> AudioSource:
        return _Tapped(source, self)

    def sending_side(self) -> AudioSink:
        """A sink for what the call sends (a tap of its source): the left channel."""
        return _SendingSide(self)

    def sent(self, frame: Samples, rate: int) -> None:
        self._add(0, frame, rate)

    def write(self, frame: Samples, rate: int) -> None:
        self._add(1, frame, rate)

    def _add(self, side: int, frame: Samples, rate: int) -> None:
        self._sides[side].append(frame)
        self._lengths[side] += len(frame)
        lead = abs(self._lengths[0] - self._lengths[1])
        if lead > self.MAX_LEAD * rate:  # the other side is silent: write it as silence
            other = 1 - side
            self._sides[other].append(np.zeros(lead, dtype=np.int16))
            self._lengths[other] += lead
        self._flush(rate)

    def _flush(self, rate: int) -> None:
        ready = min(self._lengths)
        if not ready:
            return
        columns = [self._take(side, ready) for side in (0, 1)]
        self.sink.write(np.column_stack(columns), rate)

    def _take(self, side: int, count: int) -> Samples:
        joined = np.concatenate(self._sides[side]) if len(self._sides[side]) > 1 \
            else self._sides[side][0]
        taken, rest = joined[:count], joined[count:]
        self._sides[side].clear()
        if len(rest):
            self._sides[side].append(rest)
        self._lengths[side] -= count
        return taken

    def close(self) -> None:
        self.sink.close()


class _SendingSide:
    """What a call sends, handed to a BothWays recorder (which the heard side closes)."""

    def __init__(self, recorder: BothWays) -> None:
        self.recorder = recorder

    def write(self, frame: Samples, rate: int) -> None:
        self.recorder.sent(frame, rate)

    def close(self) -> None:
        pass


class _Tapped:
    """A source whose frames are also handed to a BothWays recorder."""

    def __init__(self, source: AudioSource, recorder: BothWays) -> None:
        self.source = source
        self.recorder = recorder

    def prepare(self, rate: int) -> None:
        self.source.prepare(rate)

    def read(self, samples: int, rate: int) -> Samples:
        frame = self.source.read(samples, rate)
        self.recorder.sent(frame, rate)
        return frame

    def close(self) -> None:
        self.source.close()
