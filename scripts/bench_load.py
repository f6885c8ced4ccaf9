"""Load benchmark: softphone load's engine against a local answering agent (another process).

Prints complete calls per second without media and with media, and how many concurrent
G.711 calls with media are held with zero failures; the baseline, from the same run, is the
signalling benchmark's raw UDP round trip. Aims (issue 6): 1,000 calls/s without media, 300
with media, 500 concurrent G.711 calls with media, no failed call.

    .venv/bin/python scripts/bench_load.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys

from bench_signalling import baseline

from softphone.scenario.load import LoadPlan, run_load
from softphone.ua.agent import AgentConfig, UserAgent


async def answering(no_media: bool) -> tuple[asyncio.subprocess.Process, int]:
    args = ["answer", "--listen", "127.0.0.1:0", "--auto-answer", "--null-audio", "--json",
            "--codec", "pcmu"] + (["--no-media"] if no_media else [])
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "softphone", *args,
                                                   stdout=subprocess.PIPE)
    assert process.stdout is not None
    port = json.loads(await process.stdout.readline())["port"]
    asyncio.ensure_future(process.stdout.read())  # keep its pipe drained
    return process, port


async def phase(label: str, plan_args: dict[str, float | int], media: bool) -> None:
    callee, port = await answering(no_media=not media)
    try:
        config = AgentConfig(listen_port=0, codecs=("pcmu",), media=media,
                             max_unanswered_calls=100_000)
        async with UserAgent(config) as agent:
            plan = LoadPlan(f"sip:bob@127.0.0.1:{port}", int(plan_args["calls"]),
                            float(plan_args["rate"]), int(plan_args["concurrency"]),
                            float(plan_args["duration"]))
            rows, summary = await run_load(agent, plan)
        failed = sum(summary.failed_by_status.values())
        print(f"{label}: {summary.attempted} calls, {summary.answered} answered, {failed} "
              f"failed {summary.failed_by_status or ''}; {summary.calls_per_second:,.0f} "
              f"calls/s; set-up p50 {summary.setup_ms_p50} ms, p99 {summary.setup_ms_p99} ms; "
              f"RTP loss {summary.loss_fraction:.2%}")
    finally:
        callee.terminate()
        await callee.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller runs.")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    rtt = statistics.median(await baseline(2000))
    print(f"baseline raw UDP round trip p50: {rtt * 1e6:.0f} us")
    await phase("no media, flat out", dict(calls=int(2000 * scale), rate=5000,
                                           concurrency=200, duration=0), media=False)
    await phase("with media, 300/s", dict(calls=int(900 * scale), rate=300, concurrency=300,
                                          duration=1), media=True)
    await phase("with media, 500 held", dict(calls=int(500 * scale), rate=100,
                                             concurrency=500, duration=8), media=True)


if __name__ == "__main__":
    from softphone.loop import loop_name, run

    print(f"event loop: {loop_name()} (SOFTPHONE_LOOP=asyncio for the default one)")
    run(main())
