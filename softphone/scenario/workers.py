"""Load from every core of the machine: one process per share of the plan (issue 14).

One asyncio process saturates one core. ``softphone load --workers N`` splits the plan into N
shares (calls, rate and concurrency divided, each share its own slice of the RTP port range
and its own SIP port), runs each in a process of its own (spawned: the parent's event loop is
never forked), and merges the rows into one summary computed as one process's would be. A
worker reports its progress on a queue and its rows and summary on another; one that dies
without a result is reported by index and exit code, never hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.context import SpawnProcess
from typing import Any

from softphone.loop import run as run_loop
from softphone.scenario.load import (
    CallRow,
    LoadPlan,
    LoadProgress,
    LoadSummary,
    run_load,
    summarise,
)
from softphone.ua.agent import AgentConfig, UserAgent

PROGRESS_EVERY = 0.2  # seconds between a worker's progress reports


def worker_count(value: str) -> int:
    """``auto`` (every core) or a number of processes; ValueError otherwise."""
    if value == "auto":
        return os.cpu_count() or 1
    count = int(value)
    if count < 1:
        raise ValueError("at least one worker")
    return count


def split_plan(plan: LoadPlan, workers: int) -> list[LoadPlan]:
    """The shares: calls spread as evenly as they go, rate and concurrency divided (each
    share at least one call at a time); never more shares than calls."""
    shares = min(workers, plan.calls)
    plans = []
    for index in range(shares):
        calls = plan.calls // shares + (1 if index < plan.calls % shares else 0)
        plans.append(replace(plan, calls=calls, rate=plan.rate / shares,
                             concurrency=max(1, math.ceil(plan.concurrency / shares))))
    return plans


def split_ports(low: int, high: int, shares: int) -> list[tuple[int, int]]:
    """Disjoint slices of an RTP port range, each starting on an even port and holding at
    least one RTP/RTCP pair. ValueError when the range is too small for that many."""
    first = low + (low % 2)
    pairs = (high - first + 1) // 2
    if pairs < shares:
        raise ValueError(f"the RTP port range {low}-{high} holds {pairs} port pairs: too few "
                         f"for {shares} workers")
    each = pairs // shares
    return [(first + 2 * each * i, first + 2 * each * (i + 1) - 1) for i in range(shares)]


@dataclass(frozen=True)
class WorkerResult:
    index: int
    rows: list[CallRow] | None  # None: the worker was interrupted before it finished
    summary: LoadSummary | None


def load_worker(index: int, config: AgentConfig, plan: LoadPlan, progress: Any,
                results: Any) -> None:
    """A worker process: its share of the load on its own agent and event loop; SIGINT and
    SIGTERM stop it cleanly (its calls hung up), reported as an interrupted result."""
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        last = 0.0

        def report(state: LoadProgress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY or state.finished == plan.calls:
                last = now
                progress.put((index, state.finished, state.answered, state.failed,
                              state.active))

        async with UserAgent(config) as agent:
            work = asyncio.ensure_future(run_load(agent, plan, report))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not work.done():
                work.cancel()
        rows, summary = work.result() if work.done() and not work.cancelled() else (None, None)
        results.put(WorkerResult(index, rows, summary))

    run_loop(main())


class Workers:
    """The parent's side: start the processes, gather progress and results, stop them."""

    def __init__(self, configs: list[AgentConfig], plans: list[LoadPlan]) -> None:
        context = multiprocessing.get_context("spawn")
        self.progress = context.Queue()
        self.results = context.Queue()
        self.processes: list[SpawnProcess] = [
            context.Process(target=load_worker, args=(index, config, plan, self.progress,
                                                      self.results), daemon=True)
            for index, (config, plan) in enumerate(zip(configs, plans, strict=True))]
        self._states: dict[int, tuple[int, int, int, int]] = {}
        self.collected: dict[int, WorkerResult] = {}

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def totals(self) -> LoadProgress:
        """The workers' progress added up."""
        total = LoadProgress()
        for finished, answered, failed, active in self._states.values():
            total.finished += finished
            total.answered += answered
            total.failed += failed
            total.active += active
        return total

    async def gather(self, on_progress: Callable[[LoadProgress], None]) -> bool:
        """Until every worker has given its result or died without one (then True)."""
        while len(self.collected) < len(self.processes):
            self._drain(on_progress)
            if all(not p.is_alive() for p in self.processes):
                self._drain(on_progress)
                break
            await asyncio.sleep(0.05)
        return True

    def _drain(self, on_progress: Callable[[LoadProgress], None]) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                index, *state = self.progress.get_nowait()
                self._states[index] = (state[0], state[1], state[2], state[3])
        on_progress(self.totals())
        with contextlib.suppress(queue.Empty):
            while True:
                result = self.results.get_nowait()
                self.collected[result.index] = result

    def crashed(self) -> list[str]:
        """One line per worker that ended without a result."""
        return [f"load worker {index} ended without a result (exit code "
                f"{process.exitcode})" for index, process in enumerate(self.processes)
                if index not in self.collected]

    async def stop(self, within: float) -> None:
        """Ask every worker to stop (SIGINT: they hang up their calls), then make sure."""
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGINT)
        deadline = time.monotonic() + within
        while any(p.is_alive() for p in self.processes) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join()


def merge(results: list[WorkerResult], workers: int, media: bool) -> tuple[list[CallRow],
                                                                            LoadSummary]:
    """All workers' rows as one run's: re-indexed in the order they were placed (share w's
    call i went out at about the moment of call i*N + w), summarised over the longest."""
    rows: list[CallRow] = []
    for result in results:
        for row in result.rows or []:
            rows.append(replace(row, index=row.index * workers + result.index))
    rows.sort(key=lambda row: row.index)
    summaries = [r.summary for r in results if r.summary is not None]
    seconds = max((s.seconds for s in summaries), default=0.0)
    starting = max((s.starting_seconds for s in summaries), default=0.0)
    return rows, summarise(rows, seconds, starting, media=media)
