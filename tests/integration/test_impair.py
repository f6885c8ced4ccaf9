"""--impair and a scenario leg's impair: seeded loss on the RTP a side sends, seen by the
other side's statistics; a bad spec is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from softphone.scenario.model import load_scenario
from softphone.scenario.runner import run_scenario
from tests.peers import free_port, stop

SOFTPHONE = [sys.executable, "-m", "softphone"]


def test_an_impaired_answerer_is_heard_with_losses_by_the_load() -> None:
    port = free_port()
    answer = subprocess.Popen(
        [*SOFTPHONE, "answer", "--listen", f"127.0.0.1:{port}", "--null-audio", "--auto-answer",
         "--json", "--impair", "loss=25%,jitter=10ms,seed=4"], stdout=subprocess.PIPE, text=True)
    try:
        assert answer.stdout is not None and "listening" in answer.stdout.readline()
        load = subprocess.run(
            [*SOFTPHONE, "load", f"sip:bob@127.0.0.1:{port}", "--calls", "3", "--rate", "10",
             "--duration", "1.5", "--codec", "pcmu", "--json", "-"],
            capture_output=True, text=True, timeout=60)
    finally:
        stop(answer)
        assert answer.stdout is not None
        answer.stdout.close()
    rows = [json.loads(line) for line in load.stdout.splitlines()][:-1]
    assert len(rows) == 3 and all(r["status"] == 200 for r in rows), load.stderr
    for row in rows:  # about a quarter lost (seeded), and the MOS says so
        lost = row["packets_lost"] / (row["packets_lost"] + row["packets_received"])
        assert 0.1 < lost < 0.45, row
        assert row["mos"] < 3.8


def test_a_bad_impairment_is_one_line_and_exit_2() -> None:
    result = subprocess.run([*SOFTPHONE, "call", "sip:bob@127.0.0.1:5", "--null-audio",
                             "--impair", "loss=5"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--impair" in result.stderr and "loss='5': expected a percentage" in result.stderr


async def test_a_scenario_leg_sends_through_its_impairment(tmp_path: Path) -> None:
    path = tmp_path / "lossy.toml"
    path.write_text("""
name = "lossy caller"
[[legs]]
name = "caller"
codecs = ["pcmu"]
impair = "loss=30%,seed=2"
[[legs]]
name = "callee"
codecs = ["pcmu"]
[[steps]]
leg = "caller"
action = "call"
to = "callee"
[[steps]]
leg = "callee"
action = "wait_call"
[[steps]]
leg = "callee"
action = "answer"
[[steps]]
action = "wait"
seconds = 1.5
[[steps]]
leg = "caller"
action = "hangup"
""")
    result = await run_scenario(load_scenario(path))
    assert result.ok, result.error
    by_direction = sorted(result.calls, key=lambda call: call["rtp"]["packets_lost"])
    heard_clean, heard_lossy = by_direction[0]["rtp"], by_direction[-1]["rtp"]
    assert heard_clean["packets_lost"] == 0  # what the callee sent arrived whole
    lost = heard_lossy["packets_lost"]
    assert 0.15 < lost / (lost + heard_lossy["packets_received"]) < 0.45


QUALITY_SCENARIO = """
name = "quality"
[[legs]]
name = "caller"
codecs = ["pcmu"]
[[legs]]
name = "callee"
codecs = ["pcmu"]
impair = "{impair}"
[[steps]]
leg = "caller"
action = "call"
to = "callee"
[[steps]]
leg = "callee"
action = "wait_call"
[[steps]]
leg = "callee"
action = "answer"
[[steps]]
leg = "caller"
action = "expect_quality"
min_mos = 3.8
"""


async def test_expect_quality_passes_a_clean_call_and_fails_a_lossy_one(tmp_path: Path) -> None:
    clean, lossy = tmp_path / "clean.toml", tmp_path / "lossy.toml"
    clean.write_text(QUALITY_SCENARIO.format(impair="seed=1"))
    lossy.write_text(QUALITY_SCENARIO.format(impair="loss=20%,seed=3"))
    passed = await run_scenario(load_scenario(clean))
    assert passed.ok, passed.error
    assert passed.steps[-1].measured is not None and passed.steps[-1].measured >= 4.0
    failed = await run_scenario(load_scenario(lossy))
    assert failed.outcome == "failed"
    assert "is below 3.8 (loss" in failed.error
