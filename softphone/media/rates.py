"""Converting a stream of frames between the call's rate and the sound card's, once, with
little delay.

The card runs at 48 kHz whatever the codec (media/device.py says why), so a G.711 call's
8 kHz frames are converted up for the speaker and the microphone's down, 20 ms at a time.
Resampling each frame apart clicks at every frame edge, and a general-purpose stream
resampler holds back tens of milliseconds (soxr's stream holds 30-130 ms at 8 kHz,
measured). Between rates one a whole multiple of the other (8 or 16 kHz and 48 kHz, 8 and
16 kHz) a windowed-sinc low-pass FIR does it in 1.5-3 ms of delay: a Kaiser window for 60 dB
of stop-band (numpy's window and sinc, Kaiser's formulas for its length and shape), applied
by numpy over the previous frame's tail (going up, polyphase: no product is computed for the
zeros put between the samples). Not scipy's filters: importing
scipy.signal takes two seconds, which at a call's first frame would stall its media.
Other pairs (a card that only runs at 44.1 kHz) go through soxr's stream, delay and all.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

Samples = npt.NDArray[np.int16]

STOP_BAND_DB = 60.0  # images and aliases this far down: under the codec's own noise
TRANSITION = 0.15  # of the lower rate's Nyquist band, given up to keep the filter short


class RateConverter:
    """A stream of int16 samples from ``from_rate`` to ``to_rate``, chunk by chunk of any
    length; what goes in comes out in order, delayed only by the filter."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate, self.to_rate = from_rate, to_rate
        higher, lower = max(from_rate, to_rate), min(from_rate, to_rate)
        self.factor = higher // lower if higher % lower == 0 else 0
        self._taps: npt.NDArray[np.float64] | None = None  # going down
        self._phases: list[npt.NDArray[np.float64]] | None = None  # going up: per phase
        self._history = np.zeros(0)  # the input's last samples, one short of a filter
        self._phase = 0  # where in the next chunk the next kept sample is (going down)
        self._stream: soxr.ResampleStream | None = None
        if self.factor > 1:
            taps = _low_pass(higher, lower)
            if to_rate > from_rate:  # each output phase's taps, padded to whole phases
                padded = np.zeros(-(-len(taps) // self.factor) * self.factor)
                padded[: len(taps)] = taps
                self._phases = [padded[phase :: self.factor] for phase in range(self.factor)]
                self._history = np.zeros(len(self._phases[0]) - 1)
            else:
                self._taps = taps
                self._history = np.zeros(len(taps) - 1)
        elif self.factor == 0:
            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16")

    def process(self, samples: Samples) -> Samples:
        if self.factor == 1 or len(samples) == 0:
            return samples
        if self._stream is not None:
            out: Samples = self._stream.resample_chunk(samples)
            return out
        if self.to_rate > self.from_rate:
            return self._up(samples)
        return self._down(samples)

    def _up(self, samples: Samples) -> Samples:
        """As if zeros went between the samples and the images they make were filtered out,
        computed without the zeros (polyphase): output phase ``p`` of each input sample is
        the input filtered by every ``factor``-th tap from ``p``. The gain puts back the
        energy the zeros would have spread."""
        assert self._phases is not None
        joined = self._after_history(samples)
        phases = [np.convolve(joined, taps, mode="valid") for taps in self._phases]
        return self._to_int16(np.stack(phases, axis=1).reshape(-1) * self.factor)

    def _down(self, samples: Samples) -> Samples:
        """Filtered below the lower rate's Nyquist frequency (no aliases), then every
        ``factor``-th sample kept, counted across chunks of any length. (Computing only the
        kept outputs, polyphase or by strided windows, measured no faster in numpy.)"""
        assert self._taps is not None
        joined = self._after_history(samples)
        filtered = np.convolve(joined, self._taps, mode="valid")
        kept = filtered[self._phase :: self.factor]
        self._phase = (self._phase - len(samples)) % self.factor
        return self._to_int16(kept)

    def _after_history(self, samples: Samples) -> npt.NDArray[np.float64]:
        """``samples`` behind the stream's last ones (what the filter still reaches back
        to), which are then kept from this chunk's end for the next."""
        joined = np.concatenate((self._history, samples.astype(np.float64)))
        self._history = joined[len(joined) - len(self._history) :]
        return joined

    @staticmethod
    def _to_int16(signal: npt.NDArray[np.float64]) -> Samples:
        return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def _low_pass(higher: int, lower: int) -> npt.NDArray[np.float64]:
    """Taps at ``higher`` passing what ``lower`` can carry: flat to 85% of its Nyquist
    frequency, 60 dB down by its Nyquist frequency (Kaiser's formulas for a window meeting
    that attenuation over that transition)."""
    width = TRANSITION * lower / 2
    count = int(np.ceil((STOP_BAND_DB - 7.95) / (2.285 * 2 * np.pi * width / higher))) + 1
    count |= 1  # odd: a whole-sample delay
    beta = 0.1102 * (STOP_BAND_DB - 8.7)  # (the shape for 50 dB and more)
    cutoff = (lower / 2 - width / 2) / higher  # cycles per sample
    middle = np.arange(count) - (count - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * middle) * np.kaiser(count, beta)
    return np.asarray(taps / taps.sum(), dtype=np.float64)  # unity gain at 0 Hz
