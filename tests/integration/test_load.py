"""softphone load against a local answering agent: counts, rows, failures by status."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SOFTPHONE = [sys.executable, "-m", "softphone"]


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[str]:
    extra = getattr(request, "param", ["--auto-answer"])
    callee = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "127.0.0.1:0", "--null-audio",
                               "--json", *extra], stdout=subprocess.PIPE, text=True)
    assert callee.stdout is not None
    port = json.loads(callee.stdout.readline())["port"]
    try:
        yield f"sip:bob@127.0.0.1:{port}"
    finally:
        callee.terminate()
        callee.wait()
        callee.stdout.close()


def test_every_call_answered_with_rows_and_summary(target: str, tmp_path: Path) -> None:
    rows_csv, rows_json = tmp_path / "calls.csv", tmp_path / "calls.jsonl"
    result = subprocess.run(
        [*SOFTPHONE, "load", target, "--calls", "30", "--rate", "30", "--concurrency", "15",
         "--duration", "0.5", "--codec", "pcmu", "--csv", str(rows_csv), "--json",
         str(rows_json)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in rows_json.read_text().splitlines()]
    calls, summary = records[:-1], records[-1]
    assert len(calls) == 30 and summary["event"] == "summary"
    assert summary["attempted"] == summary["answered"] == 30
    assert summary["setup_ms_p50"] is not None and summary["loss_fraction"] == 0.0
    assert all(c["packets_received"] > 10 for c in calls)  # media flowed on every call
    assert all(c["mos"] >= 4.0 for c in calls) and summary["mos_mean"] >= 4.0
    with rows_csv.open() as handle:
        rows = list(csv.DictReader(handle))
        assert len(rows) == 30 and all(float(row["mos"]) >= 4.0 for row in rows)
    assert "load result" in result.stdout and "MOS (mean, E-model)" in result.stdout


@pytest.mark.parametrize("target", [["--reject", "486"]], indirect=True)
def test_failures_are_counted_by_status_and_exit_1(target: str) -> None:
    result = subprocess.run(
        [*SOFTPHONE, "load", target, "--calls", "10", "--rate", "20", "--no-media",
         "--json", "-"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["answered"] == 0 and summary["failed_by_status"] == {"486": 10}
    assert summary["failure_reasons"] == {"486 Busy Here": 10}
    assert summary["start_rate"] > 0


def test_a_rate_the_settings_cannot_reach_is_warned_and_no_media_says_so(target: str) -> None:
    result = subprocess.run(
        [*SOFTPHONE, "load", target, "--calls", "6", "--rate", "50", "--concurrency", "2",
         "--duration", "0.2", "--no-media"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.startswith("softphone: warning: --rate 50 calls/s cannot be reached: "
                                    "--concurrency 2 with calls held 0.2 s allows about 8 ")
    assert "no media" in result.stdout and "RTP loss" not in result.stdout
    quiet = subprocess.run(
        [*SOFTPHONE, "load", target, "--calls", "2", "--rate", "50", "--concurrency", "2",
         "--duration", "0.2", "--no-media"], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr
