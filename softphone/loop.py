"""The event loop the commands run on: uvloop when installed (the ``fast`` extra; it moves
several times more datagrams per second than the default loop), asyncio's own otherwise or when
SOFTPHONE_LOOP=asyncio asks for it. The cyclic garbage collector is tuned for the engine
before the loop starts (see ``tune_gc``)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine
from typing import TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("SOFTPHONE_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    return "uvloop" if loop_factory() is not None else "asyncio"


# CPython collects generation 0 every 700 allocations, hundreds of times a second under load,
# each walking every young object; the engine's objects mostly die by reference counting (a
# call's messages, transactions, events), so collecting less often loses little and saves
# CPU (answer + load, interleaved runs: 343 and 293 -> 386 and 379 set-ups/s). Not too
# seldom: generation 1 then holds up to 10 x 10,000 objects, and its collections stall the
# media clock in proportion (with 50,000 and 20 the pacing p99 at 250 G.711 streams went
# from ~1 ms to 40-60 ms).
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    """Move what start-up built (modules, codecs tables, the CLI) out of the collector's way
    for good (``gc.freeze``), and collect young objects less often. SOFTPHONE_GC=default
    leaves CPython's settings, to compare."""
    if os.environ.get("SOFTPHONE_GC", "").lower() == "default":
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(main: Coroutine[object, object, T]) -> T:
    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
