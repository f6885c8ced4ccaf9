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
PROPORTIONAL = 0.05  # per second of fill error: 10 ms off target -> 500 ppm
INTEGRAL = 0.001  # per second of fill error per second: learns a steady drift in ~a minute
SMOOTHING_SECONDS = 1.0  # the fill jumps a device block at every callback: average it out


class FillSteering:
    """The in/out resampling ratio that brings a ring buffer's fill to ``target`` samples.
    Both directions use it the same way: a fill above target makes the ratio above 1 (the
    capture side takes more device samples per call sample, the playback side gives fewer)."""

    def __init__(self, rate: int, target: int) -> None:
        self.rate = rate
        self.target = target
        self.smoothed: float | None = None
        self._integral = 0.0
        self.correction = 0.0  # the last ratio - 1, for the live view and the benchmarks

    def ratio(self, fill: float, elapsed: float) -> float:
        """The ratio for the next ``elapsed`` seconds, given the fill now."""
        weight = min(1.0, elapsed / SMOOTHING_SECONDS)
        self.smoothed = fill if self.smoothed is None else \
            self.smoothed + weight * (fill - self.smoothed)
        error = (self.smoothed - self.target) / self.rate  # seconds of audio too many
        self._integral += error * elapsed
        limit = MAX_CORRECTION / INTEGRAL  # anti-windup: the integral alone stays in range
        self._integral = max(-limit, min(limit, self._integral))
        correction = PROPORTIONAL * error + INTEGRAL * self._integral
        self.correction = max(-MAX_CORRECTION, min(MAX_CORRECTION, correction))
        return 1.0 + self.correction


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
