"""WAV files as audio ports.

WavSource reads any PCM WAV the stdlib ``wave`` module reads (8/16/24/32-bit, mono or not),
mixes it to mono and resamples it once, with scipy's polyphase filter, to the rate asked for.
WavSink writes 16-bit mono PCM and rewrites the header after every frame, so the file on disk
is a valid WAV at every moment: after Ctrl-C, a crash, or a peer that vanished."""

from __future__ import annotations

import functools
import math
import struct
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]


class WavError(ValueError):
    """A file that is not a WAV we can read."""


def load_wav(path: str | Path) -> tuple[Samples, int]:
    """Mono int16 samples and the file's rate."""
    try:
        with wave.open(str(path), "rb") as source:
            rate, width, channels = (source.getframerate(), source.getsampwidth(),
                                     source.getnchannels())
            raw = source.readframes(source.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise WavError(f"{path}: {error}") from error
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        data = ((bytes3[:, 0] << 8) | (bytes3[:, 1] << 16) | (bytes3[:, 2] << 24)) >> 16
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.int64) >> 16
    else:
        raise WavError(f"{path}: unsupported sample width {width}")
    mono = data.reshape(-1, channels).mean(axis=1)
    samples: Samples = np.clip(mono, -32768, 32767).astype(np.int16)
    return samples, rate


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    if from_rate == to_rate or len(samples) == 0:
        return samples
    from scipy.signal import resample_poly  # heavy: imported only when a rate must change

    divisor = math.gcd(from_rate, to_rate)
    converted = np.asarray(resample_poly(samples.astype(np.float64), to_rate // divisor,
                                         from_rate // divisor), dtype=np.float64)
    result: Samples = np.clip(np.round(converted), -32768, 32767).astype(np.int16)
    return result


@functools.lru_cache(maxsize=8)  # file versions x rates; a prompt or two is the usual case
def _audio(path: str, version: tuple[int, int], rate: int | None) -> tuple[Samples, int]:
    """A file's samples at ``rate`` (None: its own) and that rate, decoded and resampled once
    per version (mtime, size) of the file: a load test plays one file on hundreds of calls.
    The arrays are shared, so they are read-only."""
    if rate is None:
        samples, file_rate = load_wav(path)
    else:
        original, file_rate = _audio(path, version, None)
        samples, file_rate = resample(original, file_rate, rate), rate
    samples.flags.writeable = False
    return samples, file_rate


class WavSource:
    """Plays a WAV file once (then silence), or in a loop."""

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        try:
            status = Path(path).stat()
        except OSError as error:
            raise WavError(f"{path}: {error.strerror}") from error
        self._file = (str(Path(path).resolve()), (status.st_mtime_ns, status.st_size))
        self.samples, self.rate = _audio(*self._file, None)
        self.loop = loop
        self._position = 0
        self._reading_rate = self.rate

    @property
    def finished(self) -> bool:
        return not self.loop and self._position >= len(self._at(self._reading_rate))

    def prepare(self, rate: int) -> None:
        self._at(rate)

    def close(self) -> None:
        pass

    def _at(self, rate: int) -> Samples:
        return _audio(*self._file, rate)[0]

    def read(self, samples: int, rate: int) -> Samples:
        self._reading_rate = rate
        data = self._at(rate)
        if self._position + samples <= len(data):  # most frames: a view of the shared audio
            self._position += samples
            return data[self._position - samples : self._position]
        out = np.zeros(samples, dtype=np.int16)
        filled = 0
        while filled < samples and len(data):
            if self._position >= len(data):
                if not self.loop:
                    break
                self._position = 0
            take = min(samples - filled, len(data) - self._position)
            out[filled : filled + take] = data[self._position : self._position + take]
            filled += take
            self._position += take
        return out


class WavSink:
    """Records 16-bit mono PCM; the header is kept true after every write."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: BinaryIO | None = self.path.open("wb")
        self.rate: int | None = None
        self._data_bytes = 0

    def write(self, frame: Samples, rate: int) -> None:
        if self._file is None:
            return
        if self.rate is None:
            self.rate = rate
            self._write_header()
        elif rate != self.rate:
            frame = resample(frame, rate, self.rate)
        payload = frame.astype("<i2").tobytes()
        self._file.seek(0, 2)
        self._file.write(payload)
        self._data_bytes += len(payload)
        self._write_header()

    def _write_header(self) -> None:
        assert self._file is not None and self.rate is not None
        header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + self._data_bytes, b"WAVE",
                             b"fmt ", 16, 1, 1, self.rate, self.rate * 2, 2, 16, b"data",
                             self._data_bytes)
        self._file.seek(0)
        self._file.write(header)
        self._file.flush()

    def close(self) -> None:
        if self._file is None:
            return
        if self.rate is None:  # nothing was written: still leave a valid, empty WAV
            self.rate = 8000
            self._write_header()
        self._file.close()
        self._file = None
