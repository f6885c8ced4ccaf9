"""softphone load against a local answering agent: counts, rows, failures by status."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers import free_port, stop

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


def test_two_workers_share_the_calls_and_report_one_summary(target: str,
                                                            tmp_path: Path) -> None:
    rows_json = tmp_path / "calls.jsonl"
    result = subprocess.run(
        [*SOFTPHONE, "load", target, "--calls", "24", "--rate", "24", "--concurrency", "12",
         "--duration", "0.5", "--codec", "pcmu", "--workers", "2", "--rtp-ports",
         "31000-31199", "--json", str(rows_json)], capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in rows_json.read_text().splitlines()]
    calls, summary = records[:-1], records[-1]
    assert sorted(c["index"] for c in calls) == list(range(24))
    assert len({c["call_id"] for c in calls}) == 24
    assert summary["attempted"] == summary["answered"] == 24
    assert all(c["packets_received"] > 10 for c in calls)
    assert "load x2" in result.stdout and "load result" in result.stdout


def test_a_worker_that_dies_is_reported_and_fails_the_run(target: str) -> None:
    """One worker killed mid-run: the others' calls are summarised, the dead one is named
    with its exit code, and the run exits 1."""
    import os
    import signal
    import time

    load = subprocess.Popen(
        [*SOFTPHONE, "load", target, "--calls", "20", "--rate", "10", "--concurrency", "10",
         "--duration", "1", "--no-media", "--workers", "2", "--json", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        children: list[int] = []
        while len(children) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            listed = subprocess.run(["pgrep", "-P", str(load.pid), "-f", "spawn_main"],
                                    capture_output=True, text=True).stdout.split()
            children = [int(pid) for pid in listed]
        assert len(children) >= 2, children
        time.sleep(1.0)
        os.kill(children[0], signal.SIGKILL)
        output, errors = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
            load.communicate()
    assert load.returncode == 1
    assert "ended without a result (exit code -9)" in errors
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["event"] == "summary" and 0 < summary["attempted"] < 20


def test_ctrl_c_stops_every_worker_and_leaves_no_process_behind(target: str) -> None:
    import signal
    import time

    load = subprocess.Popen(
        [*SOFTPHONE, "load", target, "--calls", "400", "--rate", "20", "--duration", "5",
         "--no-media", "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        time.sleep(3.0)
        workers = subprocess.run(["pgrep", "-P", str(load.pid), "-f", "spawn_main"],
                                 capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        load.send_signal(signal.SIGINT)
        load.communicate(timeout=30)
    finally:
        if load.poll() is None:
            load.kill()
            load.communicate()
    assert load.returncode == 130
    left = [pid for pid in workers if subprocess.run(["kill", "-0", pid],
                                                      capture_output=True).returncode == 0]
    assert left == []


def test_answer_workers_share_one_port_and_answer_a_worker_load() -> None:
    """answer --workers 2: two processes on one SIP port (SO_REUSEPORT), every call of a
    two-worker load answered; Ctrl-C stops both."""
    import signal
    import time

    answer = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "127.0.0.1:0", "--null-audio",
                               "--auto-answer", "--json", "--workers", "2"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert answer.stdout is not None
        listening = [json.loads(answer.stdout.readline()) for _ in range(2)]
        assert [e["event"] for e in listening] == ["listening", "listening"]
        port = listening[0]["port"]
        assert listening[1]["port"] == port
        sockets = subprocess.run(["ss", "-lunpH", f"sport = :{port}"], capture_output=True,
                                 text=True).stdout
        assert len(set(re.findall(r"pid=(\d+)", sockets))) == 2, sockets
        load = subprocess.run(
            [*SOFTPHONE, "load", f"sip:bob@127.0.0.1:{port}", "--calls", "40", "--rate", "40",
             "--no-media", "--workers", "2", "--json", "-"], capture_output=True, text=True,
            timeout=120)
        assert load.returncode == 0, load.stdout + load.stderr
        summary = json.loads(load.stdout.strip().splitlines()[-1])
        assert summary["attempted"] == summary["answered"] == 40
        time.sleep(0.5)
        answer.send_signal(signal.SIGINT)
        output, _ = answer.communicate(timeout=30)
    finally:
        if answer.poll() is None:
            answer.kill()
            answer.communicate()
    assert answer.returncode == 130
    events = [json.loads(line) for line in output.splitlines()]
    assert sum(e["event"] == "incoming" for e in events) == 40
    summaries = [e for e in events if e["event"] == "summary"]
    assert len(summaries) == 1 and events[-1] is summaries[0]  # the workers' two, merged
    assert summaries[0]["received"] == summaries[0]["answered"] == 40
    assert summaries[0]["ended_by_status"] == {"200": 40}


@pytest.mark.parametrize("as_json", [True, False])
def test_answer_tells_what_it_served_when_it_stops(as_json: bool) -> None:
    """As SIPp's uas counts its calls: received, answered, how each ended, the RTP."""
    port = free_port()
    answer = subprocess.Popen([*SOFTPHONE, "answer", "--listen", f"127.0.0.1:{port}",
                               "--null-audio", "--auto-answer", "--max-calls", "5", "--codec",
                               "pcmu", "--max-active", "2", *(["--json"] if as_json else [])],
                              stdout=subprocess.PIPE, text=True)
    assert answer.stdout is not None
    assert "listening" in answer.stdout.readline()
    load = subprocess.run(
        [*SOFTPHONE, "load", f"sip:bob@127.0.0.1:{port}", "--calls", "5", "--rate", "20",
         "--concurrency", "3", "--duration", "0.5", "--codec", "pcmu"],
        capture_output=True, text=True, timeout=60)
    output, _ = answer.communicate(timeout=30)
    assert answer.returncode == 0, load.stdout + load.stderr
    last = output.strip().splitlines()[-1]
    if as_json:
        summary = json.loads(last)
        assert summary["event"] == "summary" and summary["received"] == 5
        answered = summary["answered"]
        assert 2 <= answered < 5  # two lines: the third caller at once got 486
        assert summary["ended_by_status"] == {"200": answered, "486": 5 - answered}
        assert summary["packets_received"] > 10 * answered and summary["mos_mean"] >= 4.0
    else:
        assert re.fullmatch(r"answered \d of 5 calls; ended: 200 x \d, 486 x \d; RTP "
                            r"received \d+, lost 0\.00%; MOS \(mean\) 4\.\d\d", last), last


def test_load_voice_timing_gives_each_call_its_conversation_figures() -> None:
    prompt = str(Path(__file__).parents[2] / "softphone" / "examples" / "scenarios"
                 / "prompt.wav")
    port = free_port()
    answer = subprocess.Popen(
        [*SOFTPHONE, "answer", "--listen", f"127.0.0.1:{port}", "--auto-answer", "--json",
         "--play", prompt, "--null-audio"], stdout=subprocess.PIPE, text=True)
    try:
        assert answer.stdout is not None and "listening" in answer.stdout.readline()
        runs = [subprocess.run(
            [*SOFTPHONE, "load", f"sip:bob@127.0.0.1:{port}", "--calls", "2", "--rate", "5",
             "--duration", "2.5", "--codec", "pcmu", "--play", prompt, "--json", "-", *extra],
            capture_output=True, text=True, timeout=60) for extra in (["--voice-timing"], [])]
    finally:
        stop(answer)
        assert answer.stdout is not None
        answer.stdout.close()
    timed, untimed = ([json.loads(line) for line in run.stdout.splitlines()][:-1]
                      for run in runs)
    assert len(timed) == 2, runs[0].stderr
    for row in timed:  # the answerer speaks from its answer on, over our own prompt
        assert row["first_words"] is not None and 0 <= row["first_words"] < 1.0, json.dumps(row)
        assert row["talk_over"] > 0.3 and row["dead_air"] < 2.0, row
    assert all(row["first_words"] is None and row["talk_over"] is None for row in untimed)
