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


def _opus(peer: dict[str, str]) -> AudioCodec:
    from softphone.media.codecs.opus import Opus

    return Opus(peer=peer)


def _g722(peer: dict[str, str]) -> AudioCodec:
    from softphone.media.codecs.g722 import G722

    return G722()


# Each factory is given the peer's format parameters (RFC 4566 fmtp, parsed), which say how
# it wants to receive; codecs without any ignore them.
FACTORIES: dict[str, Callable[[dict[str, str]], AudioCodec]] = {
    "pcmu": lambda peer: pcmu(), "pcma": lambda peer: pcma(), "opus": _opus, "g722": _g722}


def make_codec(key: str, peer: dict[str, str] | None = None) -> AudioCodec:
    try:
        factory = FACTORIES[key]
    except KeyError:
        raise ValueError(f"No codec implementation for {key!r}") from None
    return factory(peer or {})
