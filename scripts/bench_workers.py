"""Workers benchmark (issue 14): call set-ups per second without media from `softphone load`
with one process and with N (`--workers N`, N = the machine's cores), both against
`softphone answer --workers N`, in one run. Prints both rates and their ratio; the aim is a
ratio of at least 0.8 x N.

    .venv/bin/python scripts/bench_workers.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOFTPHONE = [sys.executable, "-m", "softphone"]


def answering(workers: int, events: Path) -> tuple[subprocess.Popen[str], int]:
    """softphone answer with its JSON events in a file: a pipe nobody drains during the
    load would block it, and measure that."""
    with events.open("w") as output:
        answer = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "127.0.0.1:0",
                                   "--null-audio", "--auto-answer", "--json", "--workers",
                                   str(workers)], stdout=output, stderr=subprocess.DEVNULL,
                                  text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = events.read_text().splitlines()
        if len(lines) >= workers:
            return answer, int(json.loads(lines[0])["port"])
        time.sleep(0.1)
    answer.kill()
    raise RuntimeError("softphone answer did not start")


def setups_per_second(port: int, workers: int, calls: int) -> tuple[float, int]:
    """The rate calls completed at (attempted / seconds), and how many were answered."""
    result = subprocess.run(
        [*SOFTPHONE, "load", f"sip:bob@127.0.0.1:{port}", "--calls", str(calls), "--rate",
         str(calls), "--concurrency", "400", "--duration", "0", "--no-media", "--workers",
         str(workers), "--json", "-"], capture_output=True, text=True, timeout=600)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return summary["attempted"] / summary["seconds"], int(summary["answered"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    options = parser.parse_args()
    cores = os.cpu_count() or 1
    calls = 1000 if options.quick else 5000
    folder = tempfile.TemporaryDirectory(prefix="bench-workers-")
    answer, port = answering(cores, Path(folder.name) / "events.jsonl")
    try:
        one, answered_one = setups_per_second(port, 1, calls)
        many, answered_many = setups_per_second(port, cores, calls)
    finally:
        answer.send_signal(signal.SIGINT)
        answer.communicate(timeout=60)
        folder.cleanup()
    print(f"answer --workers {cores}; {calls} calls without media each run")
    print(f"  load, 1 process:        {one:8.1f} set-ups/s ({answered_one} answered)")
    print(f"  load, {cores} processes:      {many:8.1f} set-ups/s ({answered_many} answered)")
    print(f"  ratio N/1: {many / one:.2f} (aim >= {0.8 * cores:.1f}, 0.8 x {cores})")


if __name__ == "__main__":
    main()
