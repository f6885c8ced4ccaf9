"""G.722 (64 kbit/s SB-ADPCM, 16 kHz audio) through the G722 package (sippy's libg722, public
domain C). Its RTP clock is 8000 although it samples at 16 kHz (RFC 3551 4.5.2): a 20 ms frame
is 320 samples and 160 bytes but advances the timestamp by 160. The package is imported only
when G.722 is used."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from softphone.media.codecs.conceal import FadingRepeat

Samples = npt.NDArray[np.int16]
RATE = 16000
BIT_RATE = 64000


class G722:
    """One encoder and one decoder (each keeps its own ADPCM state); a lost frame repeats
    the last one, fading (FadingRepeat), as G.711's does."""

    def __init__(self) -> None:
        from G722 import G722 as Engine

        self._encoder: Any = Engine(RATE, BIT_RATE)
        self._decoder: Any = Engine(RATE, BIT_RATE)
        self._concealment = FadingRepeat()

    def encode(self, frame: Samples) -> bytes:
        payload: bytes = self._encoder.encode(np.ascontiguousarray(frame, dtype=np.int16))
        return payload

    def decode(self, payload: bytes) -> Samples:
        frame = np.frombuffer(self._decoder.decode(payload), dtype=np.int16).copy()
        self._concealment.heard(frame)
        return frame

    def conceal(self, samples: int) -> Samples:
        return self._concealment.conceal(samples)

    def samples(self, payload: bytes) -> int:
        return 2 * len(payload)  # 64 kbit/s: a byte carries two of the 16 kHz samples
