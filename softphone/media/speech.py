"""Words on a call, offline: prompts spoken by a speech synthesiser and what the far end says
recognised as text, for call tests of IVRs and voice agents.

Speaking uses Flite (Debian's ``flite``: CMU's synthesiser with its voices built in) and
recognition PocketSphinx (PyPI's ``pocketsphinx``, which ships its English model), both
offline. Flite rather than eSpeak NG, measured: PocketSphinx turned eSpeak NG's formant voice
into nearly all wrong words (about 90% word error rate on IVR prompts), Flite's rms voice into
6% (12% after G.711).

Recognition runs in a child process (``python -m softphone.media.speech``) fed 16 kHz audio
through a pipe: PocketSphinx needs about half a second of CPU per second of speech, which
inside the event loop would stall the media clock of every call; the child uses the other
core and its start-up (loading the model) overlaps the audio already arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

Samples = npt.NDArray[np.int16]

VOICES = ("rms", "awb", "slt", "kal16", "kal")
# rms is the voice PocketSphinx understands best, measured on ten IVR prompts: 6% word error
# rate at 16 kHz, 12% after G.711 (awb 10/21%, kal16 12/31%, slt 19/52%, kal 37/35%)
DEFAULT_VOICE = "rms"
RECOGNISER_RATE = 16000
# one word in four may be misheard: "press one for cereals" passes for "press one for sales"
# (and so would "press two for sales": max_wer 0 when every word counts)
DEFAULT_MAX_WER = 0.25
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class SpeechError(RuntimeError):
    """Speech could not be made or recognised: a tool or package is missing, or failed."""


# --- speaking -------------------------------------------------------------------------------


async def synthesize(text: str, voice: str = DEFAULT_VOICE) -> Path:
    """A WAV file of ``text`` spoken by Flite's ``voice``, made once and kept in a cache
    directory (a prompt said on many calls is synthesised once per machine)."""
    if voice not in VOICES:
        raise SpeechError(f"unknown voice {voice!r} (choose from {', '.join(VOICES)})")
    flite = shutil.which("flite")
    if flite is None:
        raise SpeechError("saying words needs Flite: sudo apt-get install flite")
    cache = Path(tempfile.gettempdir()) / f"softphone-speech-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    digest = hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()[:24]
    path = cache / f"{voice}-{digest}.wav"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.part.wav")
        process = await asyncio.create_subprocess_exec(
            flite, "-voice", voice, "-t", text, "-o", str(partial),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, error = await process.communicate()
        if process.returncode != 0:
            raise SpeechError(f"flite failed: {error.decode(errors='replace').strip()}")
        partial.replace(path)
    return path


# --- matching words -------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    """The words of ``text`` as a recogniser writes them: lower case, no punctuation, each
    digit spelled ("press 1" -> press one)."""
    spelled = re.sub(r"\d", lambda digit: f" {_DIGITS[int(digit.group())]} ", text.lower())
    return re.findall(r"[a-z']+", spelled)


def word_error_rate(expected: list[str], heard: list[str]) -> float:
    """The word error rate of the best-matching stretch of ``heard`` against ``expected``:
    substitutions, deletions and insertions over the expected words, with whatever was heard
    before and after the phrase free (a prompt is usually found inside longer speech)."""
    if not expected:
        return 0.0
    previous = [0] * (len(heard) + 1)  # no expected word yet: any start in heard is free
    for count, word in enumerate(expected, start=1):
        current = [count] + [0] * len(heard)
        for column, other in enumerate(heard, start=1):
            current[column] = min(previous[column - 1] + (word != other),
                                  previous[column] + 1, current[column - 1] + 1)
        previous = current
    return min(previous) / len(expected)


# --- recognising ----------------------------------------------------------------------------


class Transcriber:
    """Speech recognition of one stretch of audio in a child process: ``feed`` it audio as
    it is heard, read ``text`` (the hypothesis so far, updated as the child decodes), and
    ``finish`` for the final transcript."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.text = ""
        self.final: str | None = None
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())
        # audio comes in pieces: a resampler that keeps its filter state between them (one
        # converted piece at a time would click at every edge and ruin recognition)
        self._resampler: tuple[int, soxr.ResampleStream] | None = None

    @classmethod
    async def start(cls) -> Transcriber:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "softphone.media.speech",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        return cls(process)

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            update = json.loads(line)
            self.text = str(update.get("final", update.get("partial", self.text)))
            if "final" in update:
                self.final = self.text
            self._changed.set()

    def feed(self, samples: Samples, rate: int) -> None:
        if len(samples) and self._process.stdin is not None:
            if self._resampler is None or self._resampler[0] != rate:
                self._resampler = (rate, soxr.ResampleStream(rate, RECOGNISER_RATE, 1,
                                                             dtype="int16"))
            audio = self._resampler[1].resample_chunk(samples)
            with contextlib.suppress(ConnectionError):  # the child's end shows in finish()
                self._process.stdin.write(audio.astype("<i2").tobytes())

    async def changed(self, timeout: float) -> None:
        """Until the hypothesis changes, or ``timeout`` seconds."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def finish(self, timeout: float) -> str:
        """The final transcript of everything fed: the child decodes what is left (waiting
        at most ``timeout`` seconds; the hypothesis so far if it takes longer)."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        if self.final is None and self._process.returncode not in (None, 0):
            raise SpeechError(await self._failure())
        return self.text

    async def _failure(self) -> str:
        assert self._process.stderr is not None
        lines = (await self._process.stderr.read()).decode(errors="replace").splitlines()
        return lines[-1] if lines else f"speech recognition exited {self._process.returncode}"

    async def close(self) -> None:
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _recognise_stdin() -> None:
    """The child: split 16 kHz 16-bit audio from stdin into utterances (PocketSphinx's
    endpointer, by voice activity) and decode each whole, printing the transcript so far as a
    JSON line after each, and the final one at the end of input.

    Whole utterances, not a running decode: the model normalises each utterance's features
    by their mean (batch CMN), which decoding piece by piece can only estimate; measured on a
    G.711 call, piecewise decoding got "welcome to the ship hardline what a shitty old
    question" where the whole utterance got every word right."""
    try:
        from pocketsphinx import Decoder, Endpointer  # the model ships inside the package
    except ImportError:
        sys.exit("recognising words needs PocketSphinx: pip install 'softphone[speech]'")
    decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL")
    endpointer = Endpointer(sample_rate=RECOGNISER_RATE)
    said: list[str] = []
    utterance: list[bytes] = []

    def decode() -> None:
        decoder.start_utt()
        decoder.process_raw(b"".join(utterance), False, True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        if hypothesis is not None and hypothesis.hypstr:
            said.append(hypothesis.hypstr)
        utterance.clear()

    while True:
        frame = sys.stdin.buffer.read(endpointer.frame_bytes)
        last = len(frame) < endpointer.frame_bytes
        if last:  # it takes no empty frame: the end of input padded with silence
            speech = endpointer.end_stream(frame.ljust(endpointer.frame_bytes, b"\0"))
        else:
            speech = endpointer.process(frame)
        if speech is not None:
            utterance.append(speech)
        if utterance and (last or not endpointer.in_speech):
            decode()
            if not last:
                print(json.dumps({"partial": " ".join(said)}), flush=True)
        if last:
            break
    print(json.dumps({"final": " ".join(said)}), flush=True)


if __name__ == "__main__":
    _recognise_stdin()
