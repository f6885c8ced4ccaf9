"""Load generation: many calls from one agent, at a rate, with a bound on concurrency.

Each call is placed, held for ``duration`` seconds once answered, and hung up; the result of
each is a row (status, set-up latency, RTP figures) and the rows add up to a summary."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from softphone.events import Ended
from softphone.sip.errors import SipError
from softphone.ua.agent import UserAgent
from softphone.ua.call import Call

FAILURE_REASONS_KEPT = 5


@dataclass(frozen=True)
class LoadPlan:
    uri: str
    calls: int
    rate: float  # new calls per second
    concurrency: int
    duration: float  # seconds each answered call is held

    def reachable_rate(self, setup_seconds: float = 0.05) -> float:
        """The most calls per second the concurrency bound lets start once it is reached:
        each slot serves a call for its set-up plus its duration."""
        return self.concurrency / (self.duration + setup_seconds)

    def rate_warning(self) -> str | None:
        """Why the asked rate cannot be reached with these settings, or None."""
        if self.calls <= self.concurrency or self.rate <= self.reachable_rate():
            return None
        needed = int(self.rate * (self.duration + 0.05)) + 1
        return (f"--rate {self.rate:g} calls/s cannot be reached: --concurrency "
                f"{self.concurrency} with calls held {self.duration:g} s allows about "
                f"{self.reachable_rate():.0f} calls/s; raise --concurrency to {needed} or "
                "shorten --duration")


@dataclass(frozen=True)
class CallRow:
    index: int
    call_id: str
    status: int
    reason: str
    setup_ms: float | None  # INVITE sent -> answered; None when not answered
    held_s: float
    packets_sent: int
    packets_received: int
    packets_lost: int
    jitter_ms: float
    mos: float | None = None  # E-model estimate of what the call heard (None: nothing)
    diagnosis: str | None = None  # what went wrong, in one line (Ended.diagnosis)
    # load --voice-timing: the far end's first words after the answer, its response to what
    # we played, both speaking at once, the longest silence (seconds; None: not measured)
    first_words: float | None = None
    response_latency: float | None = None
    talk_over: float | None = None
    dead_air: float | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class LoadProgress:
    started: int = 0
    active: int = 0
    answered: int = 0
    failed: int = 0
    finished: int = 0


@dataclass(frozen=True)
class LoadSummary:
    attempted: int
    answered: int
    failed_by_status: dict[int, int]
    setup_ms_p50: float | None
    setup_ms_p95: float | None
    setup_ms_p99: float | None
    loss_fraction: float
    jitter_ms_mean: float
    seconds: float
    mos_mean: float | None = None  # over the answered calls that heard audio
    starting_seconds: float = 0.0  # from the first call placed to the last
    # "503 no free RTP/RTCP port pair": the commonest failures, most frequent first
    failure_reasons: dict[str, int] = field(default_factory=dict)
    media: bool = True  # False: signalling only, so there are no RTP figures to give

    @property
    def calls_per_second(self) -> float:
        """Calls completed per second over the whole run, holding time and tail included."""
        return self.attempted / self.seconds if self.seconds else 0.0

    @property
    def start_rate(self) -> float:
        """Calls placed per second: whether the generator and the far end kept up with the
        requested rate (the concurrency bound makes it wait when calls do not end in time)."""
        if self.attempted < 2 or not self.starting_seconds:
            return self.calls_per_second
        return (self.attempted - 1) / self.starting_seconds

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["failed_by_status"] = {str(k): v for k, v in self.failed_by_status.items()}
        data["calls_per_second"] = round(self.calls_per_second, 1)
        data["start_rate"] = round(self.start_rate, 1)
        return data


async def run_load(agent: UserAgent, plan: LoadPlan,
                   on_progress: Callable[[LoadProgress], None] | None = None
                   ) -> tuple[list[CallRow], LoadSummary]:
    progress = LoadProgress()
    slots = asyncio.Semaphore(plan.concurrency)
    rows: list[CallRow] = []
    start = time.monotonic()

    async def one(index: int) -> None:
        try:
            rows.append(await _place(agent, plan, index, progress, on_progress))
        finally:
            slots.release()

    tasks = []
    last_start = start
    for index in range(plan.calls):
        await _wait_until(start + index / plan.rate)
        await slots.acquire()
        last_start = time.monotonic()
        tasks.append(asyncio.ensure_future(one(index)))
    await asyncio.gather(*tasks)
    rows.sort(key=lambda row: row.index)
    return rows, summarise(rows, time.monotonic() - start, last_start - start,
                           media=agent.config.media)


async def _wait_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _place(agent: UserAgent, plan: LoadPlan, index: int, progress: LoadProgress,
                 on_progress: Callable[[LoadProgress], None] | None) -> CallRow:
    def report() -> None:
        if on_progress is not None:
            on_progress(progress)

    progress.started += 1
    progress.active += 1
    report()
    row, _ = await place_call(agent, plan.uri, plan.duration, index)
    progress.active -= 1
    progress.finished += 1
    if row.setup_ms is not None:
        progress.answered += 1
    else:
        progress.failed += 1
    report()
    return row


async def place_call(agent: UserAgent, uri: str, duration: float,
                     index: int) -> tuple[CallRow, float]:
    """Place one call, hold it ``duration`` s once answered, and wait for its end: its row,
    and the milliseconds from the INVITE to its final response (or to the local failure,
    a 503 row, when it could not even be placed)."""
    started = time.monotonic()
    try:
        call = await agent.call(uri, duration=duration)
        answered = await asyncio.shield(call.answered)
        response_ms = (time.monotonic() - started) * 1000
        ended = await asyncio.shield(call.ended)
    except SipError as error:
        return (CallRow(index, "", 503, str(error), None, 0.0, 0, 0, 0, 0.0,
                        diagnosis=f"local failure: {error}"),
                (time.monotonic() - started) * 1000)
    return call_row(index, call, ended, response_ms if answered else None), response_ms


def call_row(index: int, call: Call, ended: Ended, setup_ms: float | None) -> CallRow:
    """The row of a call that has ended; ``setup_ms`` None when it was never answered."""
    rtp = ended.rtp or {}
    row = CallRow(index, call.call_id, ended.status if setup_ms is None else 200,
                  ended.reason, setup_ms, ended.duration, int(rtp.get("packets_sent") or 0),
                  int(rtp.get("packets_received") or 0), int(rtp.get("packets_lost") or 0),
                  float(rtp.get("jitter_ms") or 0.0), _mos(rtp.get("mos")), ended.diagnosis)
    if call.conversation is not None and call.ended_at is not None:
        figures = call.conversation.figures(call.ended_at)
        row = replace(row, first_words=figures.first_words,
                      response_latency=figures.response_latency,
                      talk_over=figures.talk_over, dead_air=figures.dead_air)
    return row


def _mos(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def summarise(rows: list[CallRow], seconds: float, starting_seconds: float = 0.0,
              media: bool = True) -> LoadSummary:
    setups = np.array([r.setup_ms for r in rows if r.setup_ms is not None])
    answered = [r for r in rows if r.setup_ms is not None]
    failed = Counter(r.status for r in rows if r.setup_ms is None)
    reasons = Counter(f"{r.status} {r.reason}" for r in rows if r.setup_ms is None)
    received = sum(r.packets_received for r in answered)
    lost = sum(r.packets_lost for r in answered)
    scores = [r.mos for r in answered if r.mos is not None]

    def percentile(q: float) -> float | None:
        return round(float(np.percentile(setups, q)), 2) if len(setups) else None

    return LoadSummary(
        attempted=len(rows), answered=len(answered), failed_by_status=dict(failed),
        setup_ms_p50=percentile(50), setup_ms_p95=percentile(95), setup_ms_p99=percentile(99),
        loss_fraction=round(lost / (received + lost), 4) if received + lost else 0.0,
        jitter_ms_mean=round(float(np.mean([r.jitter_ms for r in answered])), 2)
        if answered else 0.0,
        seconds=round(seconds, 2), starting_seconds=round(starting_seconds, 3),
        mos_mean=round(float(np.mean(scores)), 2) if scores else None,
        failure_reasons=dict(reasons.most_common(FAILURE_REASONS_KEPT)), media=media)
