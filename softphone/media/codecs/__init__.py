"""The codec registry the media stream uses: one factory per SDP codec key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from softphone.media.codecs.g711 import pcma, pcmu

Samples = npt.NDArray[np.int16]


class AudioCodec(Protocol):
    """Encodes and decodes one frame at a time; ``conceal`` makes up a lost frame."""

    def encode(self, frame: Samples) -> bytes: ...

    def decode(self, payload: bytes) -> Samples: ...

    def conceal(self, samples: int) -> Samples: ...


def _opus() -> AudioCodec:
    from softphone.media.codecs.opus import Opus

    return Opus()


def _g722() -> AudioCodec:
    from softphone.media.codecs.g722 import G722

    return G722()


FACTORIES: dict[str, Callable[[], AudioCodec]] = {"pcmu": pcmu, "pcma": pcma, "opus": _opus,
                                                  "g722": _g722}


def make_codec(key: str) -> AudioCodec:
    try:
        return FACTORIES[key]()
    except KeyError:
        raise ValueError(f"No codec implementation for {key!r}") from None
