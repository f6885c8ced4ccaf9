"""One pacing clock for every media stream of the process (DESIGN.md rule 2).

Streams tick at their own packet time (20 ms for most, 30 or 40 ms when the peer asks for
it), grouped by period: each group's ticks fall on absolute deadlines ``start + n * period``
of the loop's monotonic clock, so lateness never accumulates the way repeated
``sleep(0.02)`` drifts, and one timer serves every stream, however many calls there are.
A new group starts on an existing group's next deadline, so periods that divide each other
share their wake-ups.

A stream whose tick raises is taken off the clock and told (``failed``); the clock and every
other stream go on: one call's broken file or device must not silence the process.

Deadlines and lateness are on ``time.monotonic()``, not ``loop.time()``: uvloop's loop time
counts whole milliseconds, too coarse to pace 20 ms frames or to measure how late they are.
The clock keeps a smoothed lateness and says when it is ``behind`` (the process has more
streams than CPU); streams then spend less on each frame (Opus complexity) until it has
caught up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

PERIOD = 0.020
MAX_CATCH_UP = 5  # ticks; beyond that (a stalled loop) the group re-anchors instead
# The selector rounds its timeout up to a whole millisecond, so a timer wakes 0-1 ms late;
# asking half a millisecond early centres the error on the deadline.
EARLY = 0.0005
# Mean lateness (smoothed over ~20 ticks) above which the clock is behind, and below which it
# has caught up again; apart, so that the streams do not flap between the two.
BEHIND_AFTER = 0.004
CAUGHT_UP_BELOW = 0.0015
SMOOTHING = 0.05

log = logging.getLogger("softphone.media")


class Ticking(Protocol):
    def tick(self, now: float) -> None:
        """``now``: time.monotonic() at the start of the tick, read once for every stream."""
        ...

    def failed(self, error: Exception) -> None:
        """``tick`` raised ``error``; the clock has already let go of this stream."""
        ...


@dataclass
class _Group:
    """The streams that tick every ``period`` seconds, and their next deadline."""

    period: float
    next: float
    streams: set[Ticking] = field(default_factory=set)


class MediaClock:
    _instances: dict[asyncio.AbstractEventLoop, MediaClock] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float = PERIOD) -> None:
        self.loop = loop
        self.period = period  # the period of streams added without one
        self.lateness: list[float] = []  # seconds each tick ran after (<0: before) its deadline
        self.failures = 0  # streams taken off because their tick raised
        self.mean_lateness = 0.0  # seconds, smoothed over the last ~20 ticks
        self.behind = False  # the ticks run late: streams should spend less per frame
        self._groups: dict[int, _Group] = {}  # by period in microseconds
        self._group_of: dict[Ticking, _Group] = {}
        self._handle: asyncio.TimerHandle | None = None

    @classmethod
    def shared(cls) -> MediaClock:
        loop = asyncio.get_running_loop()
        clock = cls._instances.get(loop)
        if clock is None or clock.loop.is_closed():
            cls._instances = {k: v for k, v in cls._instances.items() if not k.is_closed()}
            clock = cls._instances[loop] = cls(loop)
        return clock

    @property
    def streams(self) -> set[Ticking]:
        return set(self._group_of)

    def add(self, stream: Ticking, period: float | None = None) -> None:
        """Tick ``stream`` every ``period`` seconds (default: the clock's) from now on."""
        period = period or self.period
        self.remove(stream)
        key = round(period * 1_000_000)
        group = self._groups.get(key)
        if group is None:
            upcoming = [g.next for g in self._groups.values()]
            start = min(upcoming) if upcoming else time.monotonic() + period
            group = self._groups[key] = _Group(period, start)
        group.streams.add(stream)
        self._group_of[stream] = group
        self._arm()

    def remove(self, stream: Ticking) -> None:
        group = self._group_of.pop(stream, None)
        if group is None:
            return
        group.streams.discard(stream)
        if not group.streams:
            del self._groups[round(group.period * 1_000_000)]
            self._arm()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._groups:
            deadline = min(group.next for group in self._groups.values())
            delay = max(0.0, deadline - EARLY - time.monotonic())
            self._handle = self.loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._handle = None
        now = time.monotonic()
        for group in list(self._groups.values()):
            if group.next > now + EARLY:
                continue
            self.note_lateness(now - group.next)
            self._tick_all(list(group.streams), now)
            group.next += group.period
            if now - group.next > MAX_CATCH_UP * group.period:
                group.next = now + group.period
        self._arm()  # also replaces a timer a failed stream's removal may have set

    def note_lateness(self, late: float) -> None:
        """Record one tick's lateness and update ``behind``."""
        if len(self.lateness) < 100_000:
            self.lateness.append(late)
        self.mean_lateness += SMOOTHING * (late - self.mean_lateness)
        if self.behind and self.mean_lateness < CAUGHT_UP_BELOW:
            self.behind = False
            log.info("media clock caught up (mean lateness %.1f ms)", self.mean_lateness * 1e3)
        elif not self.behind and self.mean_lateness > BEHIND_AFTER:
            self.behind = True
            log.info("media clock behind (mean lateness %.1f ms): streams code more cheaply",
                     self.mean_lateness * 1e3)

    def _tick_all(self, streams: list[Ticking], now: float) -> None:
        """Tick each stream once. One ``try`` around the lot rather than one per stream (a
        call less per packet): a stream that raises is let go and the rest of the iteration
        goes on from the one after it."""
        pending = iter(streams)
        while True:
            stream: Ticking | None = None
            try:
                for stream in pending:
                    stream.tick(now)
                return
            except Exception as error:  # noqa: BLE001  (contained: the clock must go on)
                assert stream is not None
                self._let_go(stream, error)

    def _let_go(self, stream: Ticking, error: Exception) -> None:
        self.failures += 1
        log.warning("a media stream failed and was stopped: %r", error)
        self.remove(stream)
        stream.failed(error)
