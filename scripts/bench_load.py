"""Load benchmark: softphone load's engine against `softphone answer --auto-answer` (another
process), as a user would run them.

Prints calls per second placed without media and with media, and the most concurrent G.711
calls with media held with zero failures (stepping up until one fails); with each, the CPU
both processes used. The baseline, from the same run, is the signalling benchmark's: a raw
UDP request/response on one event loop, given as round trips per second, and each rate as a
ratio of it. Aims (issue 6): 1,000 calls/s without media, 300 with media, 500 concurrent
G.711 calls with media, no failed call.

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

import numpy as np
from bench_signalling import baseline

from softphone.media.wav import WavSink
from softphone.scenario.load import LoadPlan, LoadSummary, run_load
from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent

HELD_STEPS = (250, 500, 750, 1000)
HELD_RATE, HELD_TOGETHER = 100, 4.0  # calls/s while ramping up; seconds all are up at once
HELD_DELIVERY = 0.95  # packets received per call-second of holding, as a share of 50


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


async def phase(label: str, plan_args: dict[str, float | int], media: bool,
                baseline_rate: float, play: str | None = None) -> tuple[LoadSummary, float]:
    callee, port = await answering(no_media=not media)
    try:
        config = AgentConfig(listen_port=0, codecs=("pcmu",), media=media,
                             max_unanswered_calls=100_000, audio=AudioConfig(play=play))
        async with UserAgent(config) as agent:
            plan = LoadPlan(f"sip:bob@127.0.0.1:{port}", int(plan_args["calls"]),
                            float(plan_args["rate"]), int(plan_args["concurrency"]),
                            float(plan_args["duration"]))
            own_cpu = time.process_time()
            rows, summary = await run_load(agent, plan)
            own_cpu = time.process_time() - own_cpu
        far_cpu, far_peak = cpu_seconds(callee.pid), peak_memory_mib(callee.pid)
        held_seconds = sum(row.held_s for row in rows)
        delivered = sum(row.packets_received for row in rows) / (50 * held_seconds) \
            if media and held_seconds else 1.0
        failed = sum(summary.failed_by_status.values())
        print(f"{label}: {summary.attempted} calls, {summary.answered} answered, {failed} "
              f"failed {summary.failed_by_status or ''}; placed {summary.start_rate:,.0f} "
              f"calls/s (completed {summary.calls_per_second:,.0f}/s); set-up p50 "
              f"{summary.setup_ms_p50} ms, p99 {summary.setup_ms_p99} ms; RTP loss "
              f"{summary.loss_fraction:.2%}, {delivered:.1%} of real-time packets; CPU "
              f"{own_cpu:.1f} s caller side, {far_cpu:.1f} s "
              f"answering side over {summary.seconds:.1f} s (its peak memory {far_peak:.0f} "
              f"MiB); placed rate = "
              f"{summary.start_rate / baseline_rate:.3f} x baseline")
        for reason, count in summary.failure_reasons.items():
            print(f"    {count} x {reason}")
        return summary, delivered
    finally:
        callee.terminate()
        await callee.wait()


def prompt_file() -> str:
    """Three seconds of a 16 kHz chord: each call resamples and encodes it (load --play)."""
    path = Path(tempfile.mkdtemp()) / "prompt.wav"
    sink = WavSink(path)
    t = np.arange(48000) / 16000
    sink.write((4000 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 660 * t)))
               .astype(np.int16), 16000)
    sink.close()
    return str(path)


def peak_memory_mib(pid: int) -> float:
    """A running process's peak resident set (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
    print(f"baseline: raw UDP round trip p50 {rtt * 1e6:.0f} us, {1 / rtt:,.0f} round trips/s")
    await phase("no media, flat out", dict(calls=int(2000 * scale), rate=5000,
                                           concurrency=200, duration=0), False, 1 / rtt)
    await phase("with media, 300/s", dict(calls=int(1200 * scale), rate=300, concurrency=600,
                                          duration=1), True, 1 / rtt)
    await phase("with media playing a WAV file, 300/s", dict(
        calls=int(1200 * scale), rate=300, concurrency=600, duration=1), True, 1 / rtt,
        play=prompt_file())
    held = 0
    for concurrent in HELD_STEPS:
        calls = int(concurrent * scale)
        # each call is held until the last one has been up for HELD_TOGETHER seconds
        summary, delivered = await phase(f"with media, {calls} held", dict(
            calls=calls, rate=HELD_RATE, concurrency=calls,
            duration=calls / HELD_RATE + HELD_TOGETHER), True, 1 / rtt)
        if summary.answered < summary.attempted or delivered < HELD_DELIVERY:
            break
        held = calls
    print(f"held with zero failures and >= {HELD_DELIVERY:.0%} of real-time packets: {held} "
          f"concurrent G.711 calls with media (aim 500)")

if __name__ == "__main__":
    from softphone.loop import loop_name, run

    print(f"event loop: {loop_name()} (SOFTPHONE_LOOP=asyncio for the default one)")
    run(main())
