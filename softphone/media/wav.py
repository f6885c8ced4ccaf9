"""WAV files (and whatever else libsndfile reads) as audio ports, through soundfile.

WavSource reads any file libsndfile knows (WAV in 8/16/24/32-bit integer or float, mono or
not; FLAC, OGG ...), mixes it to mono and resamples it once, with scipy's polyphase filter,
to the rate asked for. WavSink writes 16-bit mono PCM WAV with libsndfile's automatic header
update, so the file on disk is a valid WAV after every frame: after Ctrl-C, a crash, SIGKILL,
or a peer that vanished. Every error names the file and says what is wrong with it."""

from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile

from softphone.media.ports import FrameCycle, silent_frames

Samples = npt.NDArray[np.int16]
# libsndfile's sf_command: rewrite the header after every write (sndfile.h)
SFC_SET_UPDATE_HEADER_AUTO = 0x1061
_SHORT_CHUNK_RE = re.compile(r"data : (\d+) \(should be (\d+)\)")


class WavError(ValueError):
    """A file that is not audio we can read; the message names it and the defect."""


def load_wav(path: str | Path) -> tuple[Samples, int]:
    """Mono int16 samples and the file's rate."""
    _check_readable(Path(path))
    try:
        # As floats: libsndfile scales every format into -1..1 that way (read as int16, a
        # float file would come out as zeros).
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, OSError) as error:
        raise WavError(f"{path}: not audio libsndfile can read ({_cause(error)})") from None
    if data.shape[0] == 0:
        raise WavError(f"{path}: holds no audio (0 samples)")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    samples: Samples = np.clip(np.round(mono * 32768), -32768, 32767).astype(np.int16)
    return samples, int(rate)


def _check_readable(path: Path) -> None:
    """A missing, empty or truncated file is refused with a sentence that says which."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise WavError(f"{path}: {error.strerror}") from None
    if path.is_dir():
        raise WavError(f"{path}: is a directory")
    if size == 0:
        raise WavError(f"{path}: empty file (0 bytes), not a WAV")
    try:
        details = soundfile.info(str(path)).extra_info
    except (soundfile.SoundFileError, OSError) as error:
        raise WavError(f"{path}: not audio libsndfile can read ({_cause(error)})") from None
    short = _SHORT_CHUNK_RE.search(details)
    if short is not None:
        promised, present = int(short.group(1)), int(short.group(2))
        raise WavError(f"{path}: truncated: its header promises {promised} bytes of audio, "
                       f"the file holds {present}")


def _last_errno() -> int:
    """The C errno libsndfile's last system call left (cffi keeps it per thread)."""
    code: int = soundfile._ffi.errno
    return code


def _cause(error: BaseException) -> str:
    text = str(error)
    return text.rpartition(": ")[2] if ": " in text else text


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


@functools.lru_cache(maxsize=8)
def _frames(path: str, version: tuple[int, int], rate: int, samples: int,
            loop: bool) -> tuple[Samples, ...] | None:
    """A file's audio at ``rate`` cut in frames of ``samples`` once, for every call playing
    it (see FrameCycle): played once, its last frame padded with zeros and a silent frame
    after it; looped, None unless the frames divide the file (a loop would join mid-frame)."""
    data = _audio(path, version, rate)[0]
    whole = len(data) // samples * samples
    frames = [data[i : i + samples] for i in range(0, whole, samples)]
    if loop:
        return tuple(frames) if whole == len(data) and frames else None
    if whole < len(data):
        last = np.zeros(samples, dtype=np.int16)
        last[: len(data) - whole] = data[whole:]
        last.flags.writeable = False
        frames.append(last)
    return (*frames, silent_frames(samples)[0])


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
    def content_rate(self) -> int:
        """The file's own rate: coding it wider adds nothing."""
        return self.rate

    @property
    def finished(self) -> bool:
        """Read to its end (reads, not the frames of a cycle taken from it)."""
        return not self.loop and self._position >= len(self._at(self._reading_rate))

    def prepare(self, rate: int) -> None:
        self._at(rate)

    def close(self) -> None:
        pass

    def _at(self, rate: int) -> Samples:
        return _audio(*self._file, rate)[0]

    def cycle(self, samples: int, rate: int) -> FrameCycle | None:
        """The file's frames from here (see FrameCycle): played once, then silence; in a loop
        when the frames divide the file. None between two frames, or for a loop they do not
        divide."""
        frames = _frames(*self._file, rate, samples, self.loop)
        if frames is None:
            return None
        if not self.loop and self._position >= len(self._at(rate)):
            return FrameCycle(frames, rate, len(frames) - 1, len(frames) - 1)
        if self._position % samples:
            return None
        return FrameCycle(frames, rate, self._position // samples,
                          0 if self.loop else len(frames) - 1)

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
    """Records 16-bit PCM WAV (mono, or stereo with ``channels=2``); the header is kept
    true after every write (libsndfile's automatic header update), so the file is valid
    whenever the process stops. The file is
    opened at the first frame, whose rate it takes; later frames at another rate are
    resampled to it. Write failures raise OSError naming the file."""

    def __init__(self, path: str | Path, channels: int = 1) -> None:
        self.path = Path(path)
        self.channels = channels  # 2: frames are (samples, 2) arrays, left then right
        self._file: Any = None
        self.rate: int | None = None
        self._closed = False

    def write(self, frame: Samples, rate: int) -> None:
        if self._closed:
            return
        if self._file is None:
            self._open(rate)
        elif rate != self.rate:
            assert self.rate is not None
            frame = resample(frame, rate, self.rate)
        try:
            self._file.write(frame)
        except (soundfile.SoundFileError, OSError) as error:
            raise self._error(error) from None

    def _open(self, rate: int) -> None:
        try:
            self._file = soundfile.SoundFile(str(self.path), "w", rate, self.channels,
                                             "PCM_16", format="WAV")
        except (soundfile.SoundFileError, OSError) as error:
            raise self._error(error) from None
        self.rate = rate
        soundfile._snd.sf_command(self._file._file, SFC_SET_UPDATE_HEADER_AUTO,
                                  soundfile._ffi.NULL, 1)

    def _error(self, error: BaseException) -> OSError:
        """libsndfile says "System error"; errno says which (ENOSPC, EIO ...)."""
        code = getattr(error, "errno", None) or _last_errno()
        reason = os.strerror(code) if code else _cause(error)
        return OSError(code or 0, reason, str(self.path))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._file is None:  # nothing was written: still leave a valid, empty WAV
            try:
                self._open(8000)
            except OSError:
                return
        try:
            self._file.close()
        except (soundfile.SoundFileError, OSError):
            pass  # the header was kept true after every write; nothing more to save
