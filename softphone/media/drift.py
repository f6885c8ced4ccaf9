"""Taking up the drift between the sound card's clock and the call's.

The card's crystal and the clock that paces RTP differ by a few hundred parts per million: at
300 ppm a ring buffer between them gains or loses 18 ms a minute, a second an hour, and then
overflows (audio dropped) or runs dry (gaps), whatever its size. Each direction therefore
resamples what passes by a ratio a hair off 1, steered by the ring's fill: a PI controller
on the smoothed fill (the proportional part settles a change within seconds, the integral
part learns the steady drift so the fill returns to its target). The resampling is soxr's
variable-rate mode (python-soxr: maintained, SIMD, a ratio change per chunk without clicks).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

Samples = npt.NDArray[np.int16]

MAX_CORRECTION = 0.002  # 2,000 ppm: far past real crystals, short of audible pitch change
PROPORTIONAL = 0.02  # per second of fill error: 10 ms off target -> 200 ppm
INTEGRAL = 0.0002  # per second of fill error per second: learns a steady drift in minutes
SMOOTHING_SECONDS = 1.0  # the fill swings by a device burst: average it out
WINDOW_SECONDS = 2.0  # a smoothed fill off by a jump this long is a backlog or a deficit
JUMP_SECONDS = 0.04  # ... this far off target: jump, not steer


class FillSteering:
    """The in/out resampling ratio that keeps a ring buffer's fill at ``target`` samples.
    Both directions use it the same way: a fill above target makes the ratio above 1 (the
    capture side takes more device samples per call sample, the playback side gives fewer).

    It steers the fill averaged over about a second: real devices move audio in bursts
    (ALSA's pulse plugin: several blocks back to back, then nothing for tens of
    milliseconds), so the fill swings by a burst; the device raises the target when the ring
    runs dry all the same (``widen``). A fill far off target for a whole window (a backlog
    from a late start or a stall) is a ``jump``: steering 2,000 ppm at most would take
    minutes to close it."""

    def __init__(self, rate: int, target: int) -> None:
        self.rate = rate
        self.target = target
        self.smoothed: float | None = None
        self._integral = 0.0
        self._off_for = 0.0  # seconds the smoothed fill has been more than a jump off
        self._started = False  # the first jump, to target from wherever the fill began
        self.correction = 0.0  # the last ratio - 1, for the live view and the benchmarks

    def ratio(self, fill: float, elapsed: float) -> float:
        """The ratio for the next ``elapsed`` seconds, given the fill now."""
        weight = min(1.0, elapsed / SMOOTHING_SECONDS)
        self.smoothed = fill if self.smoothed is None else \
            self.smoothed + weight * (fill - self.smoothed)
        error = (self.smoothed - self.target) / self.rate  # seconds of audio too many
        self._off_for = self._off_for + elapsed if abs(error) > JUMP_SECONDS else 0.0
        self._integral += error * elapsed
        limit = MAX_CORRECTION / INTEGRAL  # anti-windup: the integral alone stays in range
        self._integral = max(-limit, min(limit, self._integral))
        correction = PROPORTIONAL * error + INTEGRAL * self._integral
        self.correction = max(-MAX_CORRECTION, min(MAX_CORRECTION, correction))
        return 1.0 + self.correction

    def widen(self, step: int, limit: int) -> None:
        """The ring ran dry all the same (a burstier device than its target allows for):
        aim ``step`` samples higher, up to ``limit``, as adaptive jitter buffers do."""
        self.target = min(limit, self.target + step)

    def jump(self) -> int:
        """Samples to drop at once (positive) or to make up with silence (negative): on the
        first call, to start on target; after that when the smoothed fill has stayed more
        than ``JUMP_SECONDS`` off target for a window. The fill is then taken as on target."""
        if self.smoothed is None or (self._started and self._off_for < WINDOW_SECONDS):
            return 0
        gap = int(self.smoothed - self.target)  # the first time: start on target
        self.smoothed, self._off_for, self._started = float(self.target), 0.0, True
        return gap


class DriftResampler:
    """A stream resampled by a ratio that may change with every chunk (in/out, near 1)."""

    def __init__(self) -> None:
        self._stream = soxr.ResampleStream(1.0 + MAX_CORRECTION, 1.0, 1, dtype="int16",
                                           vr=True)

    def process(self, samples: Samples, ratio: float) -> Samples:
        self._stream.set_io_ratio(ratio, 1.0)
        out: Samples = self._stream.resample_chunk(samples)
        return out


class SteadyFrames:
    """Frames of exactly ``count`` samples cut from resampled pieces of varying length: the
    capture side's output, which the call takes 20 ms at a time."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)

    @property
    def available(self) -> int:
        return len(self._pending)

    def add(self, samples: Samples) -> None:
        self._pending = np.concatenate((self._pending, samples)) if len(self._pending) \
            else samples

    def take(self, count: int) -> Samples:
        frame, self._pending = self._pending[:count], self._pending[count:]
        if len(frame) < count:  # the resampler's first delay: silence before the first words
            frame = np.concatenate((np.zeros(count - len(frame), dtype=np.int16), frame))
        return frame
