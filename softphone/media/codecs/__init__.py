"""The codec registry the media stream uses: one factory per SDP codec key."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from softphone.media.codecs.g711 import pcma, pcmu

Samples = npt.NDArray[np.int16]


class AudioCodec(Protocol):
    """Encodes and decodes one frame at a time; ``conceal`` makes up a lost frame."""

    def encode(self, frame: Samples) -> bytes: ...

    def decode(self, payload: bytes) -> Samples:
        """The payload's audio; raises (any exception) for a payload it cannot decode."""
        ...

    def conceal(self, samples: int) -> Samples: ...

    def samples(self, payload: bytes) -> int:
        """How many samples the payload decodes to, without decoding it."""
        ...


def _opus(peer: dict[str, str], rates: tuple[int, int] | None = None) -> AudioCodec:
    from softphone.media.codecs.opus import Opus

    return Opus(peer=peer, rate=rates[0], decode_rate=rates[1]) if rates else Opus(peer=peer)


def _g722(peer: dict[str, str], rates: tuple[int, int] | None = None) -> AudioCodec:
    from softphone.media.codecs.g722 import G722

    return G722()


# Each factory is given the peer's format parameters (RFC 4566 fmtp, parsed), which say how
# it wants to receive, and the rates (encoding, decoding) to code the audio at (see
# audio_rate); codecs without fmtp ignore the first, codecs with one audio rate the second.
FACTORIES: dict[str, Callable[[dict[str, str], tuple[int, int] | None], AudioCodec]] = {
    "pcmu": lambda peer, rates: pcmu(), "pcma": lambda peer, rates: pcma(), "opus": _opus,
    "g722": _g722}
# The codecs whose audio rate follows the ports' (the rest code at their SDP audio rate).
FLEXIBLE_RATE = frozenset({"opus"})


# The library each optional codec loads, and the Debian package that brings it.
LIBRARIES = {"opus": ("Opus", "opuslib", "libopus", "libopus0"),
             "g722": ("G.722", "G722", "libg722", "")}
_unavailable: dict[str, str] | None = None


def unavailable_codecs() -> dict[str, str]:
    """Codec key -> a sentence saying it is off and why (its library does not load), found
    once per process. A codec that cannot encode must not be offered: the peer would pick it."""
    global _unavailable
    if _unavailable is None:
        _unavailable = {}
        for key, (name, module, library, package) in LIBRARIES.items():
            try:
                importlib.import_module(module)
            except Exception as error:  # noqa: BLE001  (ctypes/loader errors of every kind)
                fix = f"install the Debian package {package}" if package else \
                    f"reinstall the Python package {module}"
                _unavailable[key] = f"{name} is off: {library} cannot be loaded ({error}); {fix}"
    return _unavailable


def usable_codecs(keys: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """``keys`` without the codecs whose library does not load, and why each was dropped."""
    missing = unavailable_codecs()
    return tuple(k for k in keys if k not in missing), {k: missing[k] for k in keys
                                                       if k in missing}


def audio_rate(key: str, sdp_rate: int, wanted: int) -> int:
    """The rate one direction of a call's audio is coded at: ``sdp_rate`` (the codec's own),
    or for a FLEXIBLE_RATE codec the narrowest it supports that holds ``wanted`` Hz (what the
    source sends, or what the sink keeps)."""
    if key not in FLEXIBLE_RATE:
        return sdp_rate
    from softphone.media.codecs.opus import audio_rate_for

    return min(sdp_rate, audio_rate_for(wanted))


def make_codec(key: str, peer: dict[str, str] | None = None,
               rates: tuple[int, int] | None = None) -> AudioCodec:
    """The codec for ``key``; ``rates`` (encoding, decoding; from audio_rate), when given,
    are what a FLEXIBLE_RATE codec codes its audio at instead of its SDP audio rate."""
    try:
        factory = FACTORIES[key]
    except KeyError:
        raise ValueError(f"No codec implementation for {key!r}") from None
    return factory(peer or {}, rates)
