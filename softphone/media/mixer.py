"""The conference mixer: each participant hears everybody but itself (an N-1 mix).

Every participant's call gets a ``Leg`` as both its source and its sink. What a leg is
written (what that participant said, decoded) is kept as its latest frame; what a leg is read
(what we send to that participant) is the sum of every other leg's latest frame. The mix runs
at one internal rate; legs at another rate are converted (the common codec chosen by the
conference normally makes that unnecessary). Vector sums in numpy, clipped once.
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from softphone.media.wav import resample

Samples = npt.NDArray[np.int16]
MIX_RATE = 48000
FRESH_FOR = 0.04  # seconds: two ticks


class Leg:
    """One participant's port into the mixer."""

    def __init__(self, mixer: Mixer, name: str) -> None:
        self.mixer = mixer
        self.name = name
        self.latest = np.zeros(0, dtype=np.int32)  # at MIX_RATE
        self.written_at = -1.0

    @property
    def fresh(self) -> bool:
        """Whether the latest frame is this tick's (a participant whose audio stopped must not
        have its last frame repeated into everybody's ears)."""
        return time.monotonic() - self.written_at < FRESH_FOR

    # sink side: what this participant says
    def write(self, frame: Samples, rate: int) -> None:
        self.latest = resample(frame, rate, MIX_RATE).astype(np.int32)
        self.written_at = time.monotonic()

    # source side: what this participant hears
    def prepare(self, rate: int) -> None:
        pass

    def read(self, samples: int, rate: int) -> Samples:
        wanted = samples * MIX_RATE // rate
        mix = self.mixer.mix_without(self, wanted)
        return resample(mix, MIX_RATE, rate) if rate != MIX_RATE else mix

    def close(self) -> None:
        self.mixer.remove(self)


class Mixer:
    def __init__(self) -> None:
        self.legs: list[Leg] = []

    def add(self, name: str) -> Leg:
        leg = Leg(self, name)
        self.legs.append(leg)
        return leg

    def remove(self, leg: Leg) -> None:
        if leg in self.legs:
            self.legs.remove(leg)

    def mix_without(self, excluded: Leg, samples: int) -> Samples:
        total = np.zeros(samples, dtype=np.int32)
        for leg in self.legs:
            if leg is excluded or not leg.fresh:
                continue
            frame = leg.latest[:samples]
            total[: len(frame)] += frame
        clipped: Samples = np.clip(total, -32768, 32767).astype(np.int16)
        return clipped
