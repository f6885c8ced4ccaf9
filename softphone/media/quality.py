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


# ITU-T G.107 E-model, simplified to what a call knows: codec impairment (Ie) and packet-loss
# robustness (Bpl) per codec from G.113 Appendix I, random loss, and one-way delay.
_EQUIPMENT = {"PCMU": (0.0, 4.3), "PCMA": (0.0, 4.3), "opus": (0.0, 20.0), "G722": (13.0, 4.3)}


def mos_estimate(codec: str, loss_fraction: float, delay_ms: float) -> float:
    """Listening-quality MOS (1..4.5) from the E-model's R factor."""
    ie, bpl = _EQUIPMENT.get(codec, (10.0, 10.0))
    ppl = 100.0 * max(0.0, min(1.0, loss_fraction))
    ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl)
    delay = max(0.0, delay_ms)
    idd = 0.024 * delay + (0.11 * (delay - 177.3) if delay > 177.3 else 0.0)
    r = 93.2 - ie_eff - idd
    if r <= 0:
        return 1.0
    r = min(r, 100.0)
    return round(1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6, 2)


def stream_quality(codec: str, received: int, lost: int, jitter_ms: float,
                   rtt_ms: float | None) -> tuple[float, float]:
    """(loss fraction, MOS estimate) of a stream from its RTP figures. One-way delay is taken
    as half the round trip, plus the jitter buffer (about twice the jitter) and one frame."""
    loss = lost / (received + lost) if received + lost else 0.0
    delay = (rtt_ms or 0.0) / 2 + 2 * jitter_ms + 20
    return loss, mos_estimate(codec, loss, delay)


def level_dbfs(frame: Signal) -> float:
    """RMS level of a frame in dB relative to full scale (-96 for silence)."""
    x = np.asarray(frame, dtype=np.float64)
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return max(-96.0, 20 * float(np.log10(rms / 32768))) if rms > 0 else -96.0


DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")
DTMF_BLOCK_SECONDS = 0.02
DTMF_MIN_SHARE = 0.25  # of a block's energy, for each of the digit's two tones


def detect_dtmf(signal: Signal, rate: int, min_blocks: int = 2) -> str:
    """Digits sent as audio (in-band DTMF), in order: each is a low and a high tone holding
    for ``min_blocks`` consecutive 20 ms blocks, with a pause (or another digit) between."""
    x = np.asarray(signal, dtype=np.float64)
    block = int(rate * DTMF_BLOCK_SECONDS)
    digits: list[str] = []
    current, run_length = "", 0
    for start in range(0, len(x) - block + 1, block):
        key = _dtmf_block(x[start : start + block], rate)
        if key == current:
            run_length += 1
        else:
            current, run_length = key, 1
        if key and run_length == min_blocks:
            digits.append(key)
    return "".join(digits)


def _dtmf_block(block: npt.NDArray[np.float64], rate: int) -> str:
    if level_dbfs(block) < -45:
        return ""
    low = [tone_level(block, rate, hz) for hz in DTMF_LOW]
    high = [tone_level(block, rate, hz) for hz in DTMF_HIGH]
    row, column = int(np.argmax(low)), int(np.argmax(high))
    if low[row] < DTMF_MIN_SHARE or high[column] < DTMF_MIN_SHARE:
        return ""  # a digit is two tones at once, each with its share
    return DTMF_KEYS[row][column]
