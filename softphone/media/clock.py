"""One pacing clock for every media stream of the process (DESIGN.md rule 2).

Ticks fall on absolute deadlines ``start + n * period`` of the loop's monotonic clock, so
lateness never accumulates the way repeated ``sleep(0.02)`` drifts; one timer serves all
streams, however many calls there are."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

PERIOD = 0.020
MAX_CATCH_UP = 5  # ticks; beyond that (a stalled loop) the clock re-anchors instead
# The selector rounds its timeout up to a whole millisecond, so a timer wakes 0-1 ms late;
# asking half a millisecond early centres the error on the deadline.
EARLY = 0.0005


class Ticking(Protocol):
    def tick(self, now: float) -> None:
        """``now``: time.monotonic() at the start of the tick, read once for every stream."""
        ...


class MediaClock:
    _instances: dict[asyncio.AbstractEventLoop, MediaClock] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float = PERIOD) -> None:
        self.loop = loop
        self.period = period
        self.streams: set[Ticking] = set()
        self.lateness: list[float] = []  # seconds each tick ran after (<0: before) its deadline
        self._handle: asyncio.TimerHandle | None = None
        self._next = 0.0

    @classmethod
    def shared(cls) -> MediaClock:
        loop = asyncio.get_running_loop()
        clock = cls._instances.get(loop)
        if clock is None or clock.loop.is_closed():
            cls._instances = {k: v for k, v in cls._instances.items() if not k.is_closed()}
            clock = cls._instances[loop] = cls(loop)
        return clock

    def add(self, stream: Ticking) -> None:
        self.streams.add(stream)
        if self._handle is None:
            self._next = self.loop.time() + self.period
            self._handle = self.loop.call_at(self._next - EARLY, self._tick)

    def remove(self, stream: Ticking) -> None:
        self.streams.discard(stream)
        if not self.streams and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now = self.loop.time()
        if len(self.lateness) < 100_000:
            self.lateness.append(now - self._next)
        monotonic = time.monotonic()
        for stream in list(self.streams):
            stream.tick(monotonic)
        self._next += self.period
        if now - self._next > MAX_CATCH_UP * self.period:
            self._next = now + self.period
        self._handle = self.loop.call_at(self._next - EARLY, self._tick) if self.streams \
            else None
