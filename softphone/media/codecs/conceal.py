"""Loss concealment for codecs that have none of their own (G.711, G.722)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]


class FadingRepeat:
    """A lost frame is the last one heard again, at half the level each time: short gaps
    pass unnoticed, a long one fades to silence instead of buzzing."""

    def __init__(self) -> None:
        self._last: Samples | None = None
        self._fade = 1.0

    def heard(self, frame: Samples) -> None:
        self._last, self._fade = frame, 1.0

    def conceal(self, samples: int) -> Samples:
        if self._last is None or len(self._last) != samples:
            return np.zeros(samples, dtype=np.int16)
        self._fade *= 0.5
        return (self._last * self._fade).astype(np.int16)
