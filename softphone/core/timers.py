"""Every user-agent timer in one heap: ringing timeouts, answer-after, RTP inactivity checks,
registration refreshes, glare retries, unanswered-call limits.

Each owner (a call, a registration) names its timers; arming a name again moves it,
cancelling forgets it. Entries that stopped matching their owner's current deadline are
skipped when they surface (lazy invalidation), so neither arming nor cancelling searches
the heap: an agent with thousands of calls pays O(log n) per timer.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable


class TimerSet:
    """Named deadlines of many owners; ``due(now)`` pops the ones that have passed."""

    def __init__(self) -> None:
        self._deadlines: dict[tuple[Hashable, str], float] = {}
        self._heap: list[tuple[float, int, Hashable, str]] = []
        self._sequence = itertools.count()

    def arm(self, owner: Hashable, name: str, when: float) -> None:
        self._deadlines[(owner, name)] = when
        heapq.heappush(self._heap, (when, next(self._sequence), owner, name))

    def cancel(self, owner: Hashable, name: str) -> None:
        self._deadlines.pop((owner, name), None)

    def cancel_all(self, owner: Hashable, names: tuple[str, ...]) -> None:
        for name in names:
            self._deadlines.pop((owner, name), None)

    def armed(self, owner: Hashable, name: str) -> float | None:
        return self._deadlines.get((owner, name))

    def next_deadline(self) -> float | None:
        while self._heap:
            when, _, owner, name = self._heap[0]
            if self._deadlines.get((owner, name)) == when:
                return when
            heapq.heappop(self._heap)
        return None

    def due(self, now: float) -> list[tuple[Hashable, str]]:
        """Owner and name of every timer whose deadline has passed, earliest first; each is
        disarmed as it is returned."""
        fired: list[tuple[Hashable, str]] = []
        while (when := self.next_deadline()) is not None and when <= now:
            _, _, owner, name = heapq.heappop(self._heap)
            del self._deadlines[(owner, name)]
            fired.append((owner, name))
        return fired

    def __len__(self) -> int:
        return len(self._deadlines)
