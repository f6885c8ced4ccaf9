"""What ``softphone answer`` served, told when it stops: as SIPp's uas tells its counts.

The tally listens to the agent's events; at exit it is printed as one line (or, with --json,
a ``summary`` event). ``answer --workers`` has each worker hand its tally over as JSON (on a
pipe, the hidden ``--summary-fd``) and the parent prints them merged, as one process's would.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from softphone.events import Answered, Ended, Event, Incoming, Listening, utc_timestamp


@dataclass
class AnswerSummary:
    """Calls that arrived (``received``), were answered, and how they all ended (final SIP
    status, ``ended_by_status``); the RTP packets the answered calls received and lost, and
    the sum and count of their MOS estimates (their mean is ``mos_mean``)."""

    received: int = 0
    answered: int = 0
    ended_by_status: Counter[int] = field(default_factory=Counter)
    packets_received: int = 0
    packets_lost: int = 0
    mos_sum: float = 0.0
    mos_count: int = 0
    listened: bool = False  # the agent got as far as listening (else there is nothing to tell)

    def __call__(self, event: Event) -> None:
        """The agent's listener: count what each event says."""
        if isinstance(event, Listening):
            self.listened = True
        elif isinstance(event, Incoming):
            self.received += 1
        elif isinstance(event, Answered):
            self.answered += 1
        elif isinstance(event, Ended):
            self.ended_by_status[event.status] += 1
            rtp = event.rtp or {}
            self.packets_received += int(rtp.get("packets_received") or 0)
            self.packets_lost += int(rtp.get("packets_lost") or 0)
            mos = rtp.get("mos")
            if isinstance(mos, int | float):
                self.mos_sum += mos
                self.mos_count += 1

    @property
    def mos_mean(self) -> float | None:
        return round(self.mos_sum / self.mos_count, 2) if self.mos_count else None

    def merged(self, other: AnswerSummary) -> AnswerSummary:
        return AnswerSummary(
            self.received + other.received, self.answered + other.answered,
            self.ended_by_status + other.ended_by_status,
            self.packets_received + other.packets_received,
            self.packets_lost + other.packets_lost, self.mos_sum + other.mos_sum,
            self.mos_count + other.mos_count, self.listened or other.listened)

    def to_json(self) -> dict[str, Any]:
        return {"event": "summary", "timestamp": utc_timestamp(), "received": self.received,
                "answered": self.answered,
                "ended_by_status": {str(k): v for k, v in sorted(self.ended_by_status.items())},
                "packets_received": self.packets_received, "packets_lost": self.packets_lost,
                "mos_mean": self.mos_mean, "mos_sum": round(self.mos_sum, 3),
                "mos_count": self.mos_count}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnswerSummary:
        return cls(int(data["received"]), int(data["answered"]),
                   Counter({int(k): int(v) for k, v in data["ended_by_status"].items()}),
                   int(data["packets_received"]), int(data["packets_lost"]),
                   float(data["mos_sum"]), int(data["mos_count"]), listened=True)

    def line(self) -> str:
        """One human line: ``answered 9 of 10 calls; ended: 200 x 9, 486 x 1; ...``."""
        ended = ", ".join(f"{status} x {count}"
                          for status, count in sorted(self.ended_by_status.items())) or "none"
        text = f"answered {self.answered} of {self.received} calls; ended: {ended}"
        if self.packets_received or self.packets_lost:
            total = self.packets_received + self.packets_lost
            text += (f"; RTP received {self.packets_received}, lost "
                     f"{self.packets_lost / total:.2%}")
        if self.mos_mean is not None:
            text += f"; MOS (mean) {self.mos_mean:.2f}"
        return text

    def print(self, as_json: bool) -> None:
        print(self.to_json_line() if as_json else self.line(), flush=True)

    def to_json_line(self) -> str:
        return json.dumps(self.to_json())


def summary_of(text: str) -> AnswerSummary | None:
    """The summary a worker handed over, or None (nothing, or not a summary)."""
    try:
        data = json.loads(text)
        return AnswerSummary.from_json(data) if data.get("event") == "summary" else None
    except (ValueError, KeyError, TypeError, AttributeError):  # not JSON, or not an object
        return None
