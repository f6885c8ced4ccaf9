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


# Generation 0 collections per 1,000 allocations (CPython's default, 700) run hundreds of
# times a second under load and each walks every young object; the engine's objects are
# mostly freed by reference counting (a call's messages, transactions, events), so collecting
# far less often loses nothing and saves ~10% of a loaded agent's CPU (scripts/bench_load.py).
GC_THRESHOLDS = (50_000, 20, 20)


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
