"""Memory benchmark (issue 14): what one held call costs, on each side, with media flowing,
and what a finished call leaves behind for the 32 s its transactions absorb retransmissions.

Two agents in this process (the caller and an auto-answering callee, silence out, nothing
played, as in a load test) hold N calls; Python's allocations (tracemalloc) and the resident
set grow by what the calls hold. The baseline, from the same run, is the same two agents
with no call. Printed: KB per call per side, and the ratio to the aim of 40 KB.

Finished calls: two user-agent cores on the in-memory network (core/network.py) place,
answer and hang up N calls, and the clock stops before the RFC 3261 timers (32 s) let the
finished transactions go; printed, per finished call per side, the bytes still allocated and
the objects the cyclic collector tracks (it walks each of them in its collections), against
the same two cores before the calls (the header parsers' caches, bounded at 4,096 values
each, are counted while they fill). An answering agent at 800 calls/s holds some 25,000
finished calls at any moment.

    .venv/bin/python scripts/bench_memory.py [--calls N] [--codec pcmu|opus]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import tracemalloc

from softphone.core.network import VirtualNetwork
from softphone.loop import run
from softphone.ua.agent import AgentConfig, UserAgent
from softphone.ua.call import Call

AIM_KB = 40.0


def resident_kb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() // 1024


def settled_bytes() -> tuple[int, int]:
    """(Python bytes allocated, resident KB) once the garbage is collected."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0], resident_kb()


async def answer_all(callee: UserAgent) -> None:
    while True:
        call = await callee.incoming.get()
        await call.answer()


async def hold_calls(count: int, codec: str) -> tuple[float, float]:
    config = AgentConfig(listen_port=0, codecs=(codec,), rtcp_interval=5.0,
                         rtp_ports=(20000, 40000))
    caller, callee = UserAgent(config), UserAgent(config)
    async with caller, callee:
        answering = asyncio.ensure_future(answer_all(callee))
        await asyncio.sleep(0.2)
        tracemalloc.start()
        python_before, rss_before = settled_bytes()
        calls: list[Call] = []
        for start in range(0, count, 50):  # in batches, as a load's concurrency would
            batch = [await caller.call(f"sip:bob@127.0.0.1:{callee.port}")
                     for _ in range(min(50, count - start))]
            await asyncio.gather(*(asyncio.shield(c.answered) for c in batch))
            calls += batch
        await asyncio.sleep(1.0)  # media flowing, jitter buffers and RTCP under way
        python_after, rss_after = settled_bytes()
        tracemalloc.stop()
        assert all(call.stream is not None for call in calls), "a call has no media"
        answering.cancel()
    sides = 2 * count
    return (python_after - python_before) / 1024 / sides, (rss_after - rss_before) / sides


def finished_calls(count: int) -> tuple[float, float]:
    """(KB, objects the collector tracks) a finished call leaves on each side until the
    transactions' timers expire."""
    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    tracemalloc.start()
    gc.collect()
    bytes_before, tracked_before = tracemalloc.get_traced_memory()[0], len(gc.get_objects())
    for answered in range(count):
        handle = alice.call(bob.uri)
        net.run(until=lambda known=answered: len(bob.incoming()) > known)
        bob.answer(bob.incoming()[-1])
        net.run(seconds=0.1)
        alice.core.hangup(handle, net.now)
        net.run(seconds=0.1)
    assert not alice.core.calls and not bob.core.calls, "a call did not end"
    assert bob.core.layer.server, "the finished transactions were let go before measuring"
    bob.events.clear()
    alice.events.clear()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - bytes_before
    tracked = len(gc.get_objects()) - tracked_before
    tracemalloc.stop()
    return grown / 1024 / (2 * count), tracked / (2 * count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--codec", default="pcmu")
    options = parser.parse_args()
    python_kb, rss_kb = run(hold_calls(options.calls, options.codec))
    print(f"{options.calls} held {options.codec} calls with media, per call per side: "
          f"{python_kb:.1f} KB of Python objects ({python_kb / AIM_KB:.2f} x the aim of "
          f"{AIM_KB:.0f} KB), {rss_kb:.1f} KB resident ({rss_kb / AIM_KB:.2f} x; the resident set "
          "also holds what the allocator keeps, codec state and NumPy buffers)")
    finished_kb, tracked = finished_calls(options.calls)
    print(f"{options.calls} finished calls, per call per side, until their transactions' "
          f"timers let them go: {finished_kb:.1f} KB, {tracked:.1f} objects the cyclic "
          "collector tracks")


if __name__ == "__main__":
    main()
