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
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_signalling import baseline

from softphone.scenario.load import LoadPlan, run_load
from softphone.ua.agent import AgentConfig, UserAgent


async def answering(no_media: bool) -> tuple[asyncio.subprocess.Process, int]:
    """softphone answer in its own process. Its JSON events go to a file, not a pipe: a pipe
    that this busy process drains late would block the answering side and measure that."""
    args = ["answer", "--listen", "127.0.0.1:0", "--auto-answer", "--null-audio", "--json",
            "--codec", "pcmu"] + (["--no-media"] if no_media else [])
    path = Path(tempfile.mkdtemp()) / "events.jsonl"
    with path.open("ab") as events:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "softphone", *args, stdout=events)
    while b"\n" not in path.read_bytes():
        await asyncio.sleep(0.05)
    port = json.loads(path.read_bytes().split(b"\n")[0])["port"]
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
            own_cpu = time.process_time()
            rows, summary = await run_load(agent, plan)
            own_cpu = time.process_time() - own_cpu
        far_cpu = cpu_seconds(callee.pid)
        failed = sum(summary.failed_by_status.values())
        print(f"{label}: {summary.attempted} calls, {summary.answered} answered, {failed} "
              f"failed {summary.failed_by_status or ''}; placed {summary.start_rate:,.0f} "
              f"calls/s (completed {summary.calls_per_second:,.0f}/s); set-up p50 "
              f"{summary.setup_ms_p50} ms, p99 {summary.setup_ms_p99} ms; RTP loss "
              f"{summary.loss_fraction:.2%}; CPU {own_cpu:.1f} s caller side, {far_cpu:.1f} s "
              f"answering side over {summary.seconds:.1f} s")
        for reason, count in summary.failure_reasons.items():
            print(f"    {count} x {reason}")
    finally:
        callee.terminate()
        await callee.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller runs.")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    rtt = statistics.median(await baseline(2000))
    print(f"baseline raw UDP round trip p50: {rtt * 1e6:.0f} us")
    await phase("no media, flat out", dict(calls=int(2000 * scale), rate=5000,
                                           concurrency=200, duration=0), media=False)
    await phase("with media, 300/s", dict(calls=int(1200 * scale), rate=300, concurrency=600,
                                          duration=1), media=True)
    await phase("with media, 500 held", dict(calls=int(500 * scale), rate=100,
                                             concurrency=500, duration=8), media=True)


if __name__ == "__main__":
    from softphone.loop import loop_name, run

    print(f"event loop: {loop_name()} (SOFTPHONE_LOOP=asyncio for the default one)")
    run(main())
