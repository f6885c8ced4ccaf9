"""SIPp benchmark (issue 14): call set-ups per second that `softphone answer` sustains without
media, driven by SIPp's built-in `uac` scenario (INVITE, 100/180/200, ACK, BYE), against the
baseline of the same SIPp `uac` driving SIPp's own `uas`, in one run. Sustained: SIPp offers
rising rates (4 s of calls each) and the figure is the highest one every call of which
succeeded at >= 95% of the offered rate; offering far more than an answerer takes only
measures its losses and retransmissions.

Prints calls per second and the ratios: softphone answer in one process (one SIPp socket:
aim >= 800 set-ups/s per process), `answer --workers auto` (SIPp with a socket per call, so
SO_REUSEPORT spreads the calls over the workers; aim >= 0.3 of SIPp's uas). SIPp itself runs
on the same cores, as it would for a user testing on one machine. Needs `sipp` (Debian:
sip-tester, installed by scripts/setup --test).

    .venv/bin/python scripts/bench_sipp.py [--runs N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

SOFTPHONE = [sys.executable, "-m", "softphone"]
SIPP_LIMIT = 300  # calls in progress at once
# Offered rates, each at most ~12% above the one before from 1,000/s on: a sustained figure is
# a step of this ladder, and a coarse step (3,000 then 4,000 once) moved the ratio to SIPp by
# a third when SIPp's own uac topped out between two steps.
RATES = [200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1600, 1800,
         2000, 2250, 2500, 2800, 3200, 3600, 4000, 4500, 5000, 5600, 6300, 7100, 8000, 9000,
         10000]
BASELINE_FROM = 1000  # SIPp's uas keeps up with lower rates: its search starts here
SECONDS_PER_STEP = 4


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


def sipp_uac(port: int, rate: int, folder: Path, socket_per_call: bool) -> tuple[float, int]:
    """Offer ``rate`` calls/s to 127.0.0.1:port for a few seconds; (successful calls per
    second, failed calls)."""
    calls = rate * SECONDS_PER_STEP
    stats = folder / f"uac-{port}.csv"
    transport = ["-t", "un", "-max_socket", "2000"] if socket_per_call else ["-t", "u1"]
    subprocess.run(["sipp", "-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p",
                    str(free_port()), *transport, "-r", str(rate), "-l", str(SIPP_LIMIT),
                    "-m", str(calls), "-d", "0", "-nostdin", "-trace_stat", "-stf",
                    str(stats)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=600, check=False)
    with stats.open() as handle:
        last = list(csv.DictReader(handle, delimiter=";"))[-1]
    # SIPp's own clock, from its first call to its last statistics: not its start-up (a
    # thousand sockets for -t un take a while), which would read as a rate not kept up with
    seconds = _epoch(last["CurrentTime"]) - _epoch(last["StartTime"])
    return int(last["SuccessfulCall(C)"]) / seconds, int(last["FailedCall(C)"])


def _epoch(stamp: str) -> float:
    """SIPp writes a time as date, time of day and seconds since the epoch, tab-separated."""
    return float(stamp.split()[-1])


def with_answerer(command: list[str], settle: float, listening: int = 0
                  ) -> subprocess.Popen[bytes]:
    """Start the answerer; wait ``settle`` seconds, or, with ``listening``, until that many
    `listening` events have come on its --json output (every worker bound: SO_REUSEPORT
    spreads the sources anew each time one joins, so a call begun before the last joined
    could lose its ACK or BYE to another worker), then drain the rest in big reads."""
    if not listening:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(settle)
        return process
    process = subprocess.Popen([*command, "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    deadline, seen = time.monotonic() + 120, 0
    while seen < listening and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            sys.exit(f"bench_sipp: the answerer ended before listening: {command}")
        seen += json.loads(line).get("event") == "listening"
    threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
    return process


def _drain(stream: IO[bytes]) -> None:
    while os.read(stream.fileno(), 1 << 16):
        pass


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def sustained(command: list[str], port: int, folder: Path, socket_per_call: bool,
              settle: float = 2.0, listening: int = 0, lowest: int = RATES[0]
              ) -> tuple[float, str]:
    """The highest offered rate the answerer ``command`` keeps up with, without a failure,
    and what ended the search (a shared VM's hiccup can fail one step early)."""
    answerer = with_answerer(command, settle, listening)
    best, ended = 0.0, "every rate kept"
    try:
        for rate in [step for step in RATES if step >= lowest]:
            achieved, failed = sipp_uac(port, rate, folder, socket_per_call)
            if failed or achieved < 0.95 * rate:
                ended = f"at {rate}/s: {failed} failed, {achieved:.0f}/s completed"
                break
            best = achieved
    finally:
        stop(answerer)
    return best, ended


def softphone_answer(port: int, workers: str) -> list[str]:
    return [*SOFTPHONE, "answer", "--listen", f"127.0.0.1:{port}", "--null-audio",
            "--auto-answer", "--no-media", "--workers", workers]


def one_run(folder: Path) -> tuple[float, float, float]:
    """SIPp's uas, softphone in one process, and with workers: each sustained rate, printed
    as it comes."""
    port = free_port()
    baseline, ended = sustained(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port),
                                 "-nostdin"], port, folder, socket_per_call=True, settle=1.0,
                                lowest=BASELINE_FROM)
    print(f"SIPp uac -> SIPp uas              : {baseline:6.0f} set-ups/s sustained "
          f"(ended {ended})")
    baseline = max(baseline, 1.0)  # SIPp failed its first step: the ratios still print
    port = free_port()
    one, ended = sustained(softphone_answer(port, "1"), port, folder, socket_per_call=False,
                           listening=1)
    print(f"SIPp uac -> softphone answer      : {one:6.0f} set-ups/s  "
          f"({one / baseline:.2f} x SIPp; {one / 800:.2f} x the aim of 800 per process; "
          f"ended {ended})")
    port = free_port()
    spread, ended = sustained(softphone_answer(port, "auto"), port, folder,
                              socket_per_call=True, listening=os.cpu_count() or 1)
    print(f"SIPp uac -> answer --workers auto : {spread:6.0f} set-ups/s  "
          f"({spread / baseline:.2f} x SIPp; aim >= 0.3; ended {ended})")
    return baseline, one, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the three measurements; the medians come last")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("bench_sipp: needs sipp (Debian: apt-get install sip-tester)")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-sipp-") as name:
        for number in range(1, args.runs + 1):
            if args.runs > 1:
                print(f"--- run {number} of {args.runs}")
            runs.append(one_run(Path(name)))
    if len(runs) > 1:
        one = statistics.median(run[1] for run in runs)
        print(f"medians of {len(runs)} runs: softphone answer {one:.0f} set-ups/s "
              f"({one / 800:.2f} x the aim of 800); answer --workers auto / SIPp uas "
              f"{statistics.median(run[2] / run[0] for run in runs):.2f} (aim >= 0.3)")


if __name__ == "__main__":
    main()
