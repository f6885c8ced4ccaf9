"""Judging audio: how alike a recording is to what was sent, and which tones it holds.

``similarity`` finds the delay between a reference and a recording by FFT cross-correlation,
then scores the overlap by normalised correlation (1.0 = identical up to gain). ``tone_level``
is the Goertzel algorithm: the energy at one frequency, as a fraction of the signal's energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Signal = npt.NDArray[np.floating] | npt.NDArray[np.integer]


@dataclass(frozen=True)
class Match:
    score: float   # normalised correlation of the aligned overlap, -1..1
    lag: int       # samples by which the recording trails the reference
    overlap: int   # samples compared


def similarity(reference: Signal, recording: Signal, max_lag: int | None = None) -> Match:
    ref = np.asarray(reference, dtype=np.float64)
    rec = np.asarray(recording, dtype=np.float64)
    if len(ref) == 0 or len(rec) == 0:
        return Match(0.0, 0, 0)
    size = 1 << int(np.ceil(np.log2(len(ref) + len(rec))))
    spectrum = np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size))
    correlation = np.fft.irfft(spectrum, size)
    lags = np.concatenate([np.arange(0, len(rec)), np.arange(-len(ref) + 1, 0)])
    values = np.concatenate([correlation[: len(rec)], correlation[size - len(ref) + 1 :]])
    if max_lag is not None:
        keep = np.abs(lags) <= max_lag
        lags, values = lags[keep], values[keep]
    lag = int(lags[int(np.argmax(values))])
    a, b = (ref, rec[lag:]) if lag >= 0 else (ref[-lag:], rec)
    overlap = min(len(a), len(b))
    a, b = a[:overlap], b[:overlap]
    denominator = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    score = float(np.dot(a, b) / denominator) if denominator > 0 else 0.0
    return Match(score, lag, overlap)


def tone_level(signal: Signal, rate: int, hz: float) -> float:
    """Fraction (0..1) of the signal's energy at ``hz`` (Goertzel, one bin)."""
    x = np.asarray(signal, dtype=np.float64)
    n = len(x)
    if n == 0:
        return 0.0
    coefficient = 2 * np.cos(2 * np.pi * hz / rate)  # the exact frequency, not a DFT bin
    # The Goertzel recurrence is sequential by nature; scipy's lfilter runs it in C.
    from scipy.signal import lfilter

    state = lfilter([1.0], [1.0, -coefficient, 1.0], x)
    s_prev, s_prev2 = float(state[-1]), float(state[-2]) if n > 1 else 0.0
    power = s_prev**2 + s_prev2**2 - coefficient * s_prev * s_prev2
    energy = float(np.dot(x, x))
    return float(2 * power / (n * energy)) if energy > 0 else 0.0


def dominant_frequency(signal: Signal, rate: int) -> float:
    x = np.asarray(signal, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))
