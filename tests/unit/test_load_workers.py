"""Splitting a load over worker processes and merging what they report (issue 14)."""

from __future__ import annotations

import asyncio
import json
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


def test_answer_workers_output_passes_on_in_chunks_less_the_summaries(
        capsys: pytest.CaptureFixture[str]) -> None:
    """What an answer worker prints reaches the parent's output whole and in order, however
    its chunks cut the lines; its summary line (even split across chunks) is kept back."""
    first = AnswerSummary(received=2, answered=1, ended_by_status=Counter({200: 1, 486: 1}))
    lines = ['{"event": "incoming", "call_id": "a"}\n', "ringing (180)\n",
             json.dumps(first.to_json()) + "\n", '{"event": "ended", "call_id": "a"}\n',
             "a last line without its end"]
    data = "".join(lines).encode()

    async def relay(cuts: list[int]) -> list[AnswerSummary]:
        reader = asyncio.StreamReader()
        summaries: list[AnswerSummary] = []
        relaying = asyncio.ensure_future(answer_workers._relay(reader, summaries))
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            reader.feed_data(data[start:end])
            await asyncio.sleep(0)  # the relay reads this piece on its own
            assert not reader._buffer  # type: ignore[attr-defined]
        reader.feed_eof()
        await relaying
        return summaries

    summary_at = data.index(b'{"event": "summary"')
    for cuts in ([], [5, 40, summary_at + 7, summary_at + 30], list(range(1, len(data)))):
        summaries = asyncio.run(relay(cuts))
        assert capsys.readouterr().out == "".join(lines[:2] + lines[3:])
        assert [(s.received, s.answered, s.ended_by_status) for s in summaries] == [
            (2, 1, Counter({200: 1, 486: 1}))]
