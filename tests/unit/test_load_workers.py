"""Splitting a load over worker processes and merging what they report (issue 14)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections import Counter

import pytest

from softphone.cli import answer_workers
from softphone.cli.answer_summary import AnswerSummary
from softphone.scenario.load import CallRow, LoadPlan, summarise
from softphone.scenario.workers import WorkerResult, merge, split_plan, split_ports, worker_count


def test_the_plan_is_shared_out_without_losing_a_call() -> None:
    plan = LoadPlan("sip:bob@127.0.0.1", calls=10, rate=30.0, concurrency=7, duration=1.0)
    shares = split_plan(plan, 3)
    assert [s.calls for s in shares] == [4, 3, 3]
    assert all(s.rate == 10.0 and s.concurrency == 3 for s in shares)
    assert len(split_plan(plan, 64)) == 10  # never more workers than calls


def test_port_slices_are_disjoint_even_aligned_pairs() -> None:
    slices = split_ports(16385, 16400, 3)
    assert slices == [(16386, 16389), (16390, 16393), (16394, 16397)]
    with pytest.raises(ValueError, match="too few"):
        split_ports(20000, 20003, 3)


def test_worker_count_reads_auto_and_numbers() -> None:
    assert worker_count("auto") >= 1 and worker_count("3") == 3
    with pytest.raises(ValueError):
        worker_count("0")


def row(index: int, status: int = 200) -> CallRow:
    answered = status == 200
    return CallRow(index, f"c{index}", status, "OK" if answered else "Busy Here",
                   10.0 + index if answered else None, 1.0, 50, 50, 0, 1.0, 4.3)


def test_merged_rows_interleave_and_sum_up_as_one_run() -> None:
    first = [row(0), row(1), row(2, 486)]
    second = [row(0), row(1)]
    results = [WorkerResult(0, first, summarise(first, 3.0, 2.0)),
               WorkerResult(1, second, summarise(second, 4.0, 1.5))]
    rows, summary = merge(results, 2, media=True)
    assert [r.index for r in rows] == [0, 1, 2, 3, 4]
    assert (summary.attempted, summary.answered, summary.failed_by_status) == (5, 4, {486: 1})
    assert summary.seconds == 4.0 and summary.mos_mean == 4.3
    interrupted, _ = merge([WorkerResult(0, None, None), results[1]], 2, media=True)
    assert len(interrupted) == 2


def test_an_answer_worker_writes_whole_lines_of_at_most_pipe_buf_bytes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers share the parent's output: each write(2) must be whole lines, at most
    PIPE_BUF bytes unless one line is longer (the kernel keeps such writes apart); what is
    written is held until a flush, and nothing is lost or reordered, also when the output
    takes less than a write offers."""
    lines = [json.dumps({"event": "incoming", "call_id": f"{n}-é" * (n % 7 + 1)}) + "\n"
             for n in range(400)] + ["x" * 9000 + "\n", "a last line without its end"]
    for most in (None, 1000):  # everything a write offers; a pipe taking 1,000 bytes a time
        writes: list[bytes] = []

        def write(fd: int, data: bytes, most: int | None = most,
                  writes: list[bytes] = writes) -> int:
            writes.append(bytes(data[:most]))
            return len(writes[-1])

        monkeypatch.setattr(answer_workers.os, "write", write)
        output = answer_workers.WholeLines(1)
        for line in lines:
            output.write(line)
        assert writes == [] and not output.isatty()
        output.flush()
        assert b"".join(writes).decode() == "".join(lines)
        if most is None:
            assert all(data.endswith(b"\n") for data in writes[:-1])
            assert all(len(data) <= select.PIPE_BUF or data.count(b"\n") == 1
                       for data in writes[:-1])


def test_an_answer_worker_hands_its_summary_over_its_pipe() -> None:
    summary = AnswerSummary(received=2, answered=1, ended_by_status=Counter({200: 1, 486: 1}))
    read_end, write_end = os.pipe()
    answer_workers.hand_over_summary(summary, write_end)
    handed = answer_workers._read_summary(read_end)
    assert handed is not None and (handed.received, handed.answered,
                                   handed.ended_by_status) == (2, 1, {200: 1, 486: 1})
    read_end, write_end = os.pipe()
    os.close(write_end)  # a worker that ended before it had a summary
    assert answer_workers._read_summary(read_end) is None


def test_answer_workers_lines_never_mix_on_a_shared_pipe() -> None:
    """Two processes writing through WholeLines to one pipe, read slowly (the pipe fills and
    writers block mid-way): every line arrives whole."""
    script = ("import sys, json; from softphone.cli.answer_workers import WholeLines\n"
              "out = WholeLines(1)\n"
              "for n in range(3000):\n"
              "    out.write(json.dumps({'worker': sys.argv[1], 'n': n, 'pad': 'x' * 300}) "
              "+ '\\n')\n"
              "    if n % 400 == 0: out.flush()\n"
              "out.flush()\n")
    read_end, write_end = os.pipe()
    writers = [subprocess.Popen([sys.executable, "-c", script, name], stdout=write_end)
               for name in ("a", "b")]
    os.close(write_end)
    received = b""
    with open(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(2048):
            received += chunk
            time.sleep(0.0005)
    for writer in writers:
        assert writer.wait(timeout=30) == 0
    lines = [json.loads(line) for line in received.decode().splitlines()]
    assert Counter(line["worker"] for line in lines) == {"a": 3000, "b": 3000}
    for name in ("a", "b"):
        assert [line["n"] for line in lines if line["worker"] == name] == list(range(3000))
