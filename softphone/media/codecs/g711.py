"""G.711 mu-law (PCMU) and A-law (PCMA) as numpy table lookups: one 65,536-entry table per law
for encoding (indexed by the int16 sample) and one 256-entry table for decoding. The tables
are computed here from the G.711 segment rules, vectorised, at import."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from softphone.media.codecs.conceal import FadingRepeat

Samples = npt.NDArray[np.int16]

_ALL16 = np.arange(-32768, 32768, dtype=np.int32)
_CODES = np.arange(256, dtype=np.int32)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = _ALL16 >> 2  # 14-bit
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + 33
    segment_ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(segment_ends, magnitude)
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0xF)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _ulaw_decode_table() -> Samples:
    code = ~_CODES & 0xFF
    t = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = _ALL16 >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    segment_ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    segment = np.searchsorted(segment_ends, magnitude)
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0xF)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_decode_table() -> Samples:
    code = _CODES ^ 0x55
    segment = (code & 0x70) >> 4
    t = ((code & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    t = np.where(segment > 1, t << np.maximum(segment - 1, 0), t)
    return np.where(code & 0x80, t, -t).astype(np.int16)


ULAW_ENCODE, ULAW_DECODE = _ulaw_encode_table(), _ulaw_decode_table()
ALAW_ENCODE, ALAW_DECODE = _alaw_encode_table(), _alaw_decode_table()
# The encoders look up by the sample's bit pattern as uint16 (a view of the frame, no widening
# copy and offset); the tables above are indexed from -32768 as the G.711 test data is.
_ULAW_BY_BITS, _ALAW_BY_BITS = np.roll(ULAW_ENCODE, -32768), np.roll(ALAW_ENCODE, -32768)


# Payloads of frames met before, per law and shared by every call of the process: silence
# and tones repeat, and a load test plays one file on hundreds of calls; a lookup is cheaper
# than the table's numpy call, fifty times a second per call. The first MEMO_FRAMES distinct
# frames are kept (about 2.5 MB), no more.
MEMO_FRAMES = 4096
_ULAW_MEMO: dict[bytes, bytes] = {}
_ALAW_MEMO: dict[bytes, bytes] = {}
# Payloads of whole cycles of frames a source said it repeats (ports.FrameCycle), per law,
# coded once for every call of the process that plays the same tone, file or silence. Keyed
# by the id of the cycle's frames, which the entry keeps alive, so no other object can take
# that id while it is here.
CYCLES_SHARED = 64
CodedCycles = dict[int, tuple[Sequence[Samples], tuple[bytes, ...]]]
_ULAW_CYCLES: CodedCycles = {}
_ALAW_CYCLES: CodedCycles = {}


class G711:
    """Encoder and decoder of one law; loss is concealed by repeating the last frame, fading."""

    __slots__ = ("_encode", "_memo", "_cycles", "_decode", "_concealment")

    def __init__(self, encode_by_bits: npt.NDArray[np.uint8], decode_table: Samples,
                 memo: dict[bytes, bytes], cycles: CodedCycles) -> None:
        self._encode = encode_by_bits
        self._memo = memo
        self._cycles = cycles
        self._decode = decode_table
        self._concealment = FadingRepeat()

    def encode(self, frame: Samples) -> bytes:
        key = frame.tobytes()
        payload = self._memo.get(key)
        if payload is None:
            payload = self._code(frame)
            if len(self._memo) < MEMO_FRAMES:
                self._memo[key] = payload
        return payload

    def encode_cycle(self, frames: Sequence[Samples]) -> Sequence[bytes]:
        """The payloads of a cycle's frames, in order: G.711 codes each sample on its own,
        with no state between frames, so a frame's payload is the same whenever it is sent
        and the cycle is coded once for the whole process."""
        known = self._cycles.get(id(frames))
        if known is not None and known[0] is frames:
            return known[1]
        payloads = tuple(self._code(frame) for frame in frames)
        if len(self._cycles) < CYCLES_SHARED:
            self._cycles[id(frames)] = (frames, payloads)
        return payloads

    def _code(self, frame: Samples) -> bytes:
        return self._encode[frame.astype(np.int16, copy=False).view(np.uint16)].tobytes()

    def decode(self, payload: bytes) -> Samples:
        frame = self._decode[np.frombuffer(payload, dtype=np.uint8)]
        self._concealment.heard(frame)
        return frame

    def conceal(self, samples: int) -> Samples:
        return self._concealment.conceal(samples)

    def samples(self, payload: bytes) -> int:
        return len(payload)  # one byte a sample


def pcmu() -> G711:
    return G711(_ULAW_BY_BITS, ULAW_DECODE, _ULAW_MEMO, _ULAW_CYCLES)


def pcma() -> G711:
    return G711(_ALAW_BY_BITS, ALAW_DECODE, _ALAW_MEMO, _ALAW_CYCLES)
