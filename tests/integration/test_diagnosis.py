"""Diagnoses of real calls over loopback: one-way audio (the far end's RTP all lost),
silence, clipped audio, a codec mismatch; in the ended event, a load row and a failed
scenario's report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

from softphone.media.ports import Tone
from softphone.scenario.model import load_scenario
from softphone.scenario.runner import run_scenario
from softphone.testing import TestAgent
from softphone.transport.rtp import Impairment
from softphone.ua.events import Ended
from tests.peers import free_port, stop

SOFTPHONE = [sys.executable, "-m", "softphone"]


async def test_rtp_lost_one_way_is_diagnosed_on_the_side_that_hears_nothing() -> None:
    async with TestAgent("caller", codecs=("pcmu",)) as caller, \
            TestAgent("callee", codecs=("pcmu",), impairment=Impairment(loss=1.0)) as callee:
        call, incoming = await caller.connect(callee)
        incoming.play_tone(440)
        call.play_tone(440)
        await incoming.hears_tone(440, seconds=1.5)  # the other way carries sound
        await call.hangup()
        ended = await call.call.ended
    assert ended.diagnosis is not None
    assert ended.diagnosis.startswith("one-way audio: nothing heard from the far end")


async def test_silence_and_clipping_are_diagnosed() -> None:
    async with TestAgent("caller", codecs=("pcma",)) as caller, \
            TestAgent("callee", codecs=("pcma",)) as callee:
        silent, _ = await caller.connect(callee)  # nobody plays anything
        await silent.hears_silence(2.5)
        await silent.hangup()
        loud, loud_incoming = await caller.connect(callee)
        loud_incoming.source.set(Tone(440, level_dbfs=0.0))  # full scale: clipped peaks
        await loud.hears_tone(440, seconds=2.5)
        await loud.hangup()
        diagnoses = [event.diagnosis for event in caller.events if isinstance(event, Ended)]
    assert diagnoses[0] is not None and diagnoses[0].startswith("silence: ")
    assert diagnoses[1] is not None and diagnoses[1].startswith("clipped audio: ")


def test_a_codec_mismatch_is_diagnosed_in_the_load_rows() -> None:
    port = free_port()
    answer = subprocess.Popen(
        [*SOFTPHONE, "answer", "--listen", f"127.0.0.1:{port}", "--null-audio", "--auto-answer",
         "--json", "--codec", "opus"], stdout=subprocess.PIPE, text=True)
    try:
        assert answer.stdout is not None and "listening" in answer.stdout.readline()
        load = subprocess.run(
            [*SOFTPHONE, "load", f"sip:bob@127.0.0.1:{port}", "--calls", "2", "--rate", "10",
             "--duration", "1", "--codec", "pcmu", "--json", "-"],
            capture_output=True, text=True, timeout=60)
    finally:
        stop(answer)
        assert answer.stdout is not None
        answer.stdout.close()
    rows = [json.loads(line) for line in load.stdout.splitlines()][:-1]
    assert len(rows) == 2, load.stderr
    assert all(row["diagnosis"].startswith("codec mismatch: 488") for row in rows), rows


DEAF_SCENARIO = """
name = "nothing comes back"
[[legs]]
name = "caller"
codecs = ["pcmu"]
[[legs]]
name = "callee"
codecs = ["pcmu"]
impair = "loss=100%"
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
leg = "callee"
action = "play"
tone = 440
[[steps]]
leg = "caller"
action = "expect_tone"
hz = 440
within = 2
"""


async def test_a_failed_scenario_carries_its_calls_diagnosis_and_leaves_its_artifacts(
        tmp_path: Path) -> None:
    path = tmp_path / "deaf.toml"
    path.write_text(DEAF_SCENARIO)
    result = await run_scenario(load_scenario(path), artifacts=tmp_path / "kept")
    assert result.outcome == "failed" and "step 5" in result.error
    assert "one-way audio: nothing heard from the far end" in result.diagnosis
    kept = tmp_path / "kept" / "deaf"
    assert sorted(Path(p).name for p in result.attachments) == [
        "callee-1.wav", "caller-1.wav", "ladder.txt", "sip.pcap"]
    ladder = (kept / "ladder.txt").read_text()
    assert ladder.count("INVITE sip:") >= 1 and "SIP/2.0 200 OK" in ladder
    assert "m=audio" in ladder  # whole messages, bodies too
    # Wireshark's dissector reads the capture as SIP: the call's requests, each once
    methods = subprocess.run(["tshark", "-r", str(kept / "sip.pcap"), "-Y", "sip.Method",
                              "-T", "fields", "-e", "sip.Method"],
                             capture_output=True, text=True, timeout=60).stdout.split()
    assert methods == ["INVITE", "ACK", "BYE"]
    sent, rate = soundfile.read(kept / "callee-1.wav", dtype="int16")
    assert rate == 8000 and sent.shape[1] == 2
    assert np.abs(sent[:, 0]).max() > 1000  # the callee sent its tone (left) ...
    heard, _ = soundfile.read(kept / "caller-1.wav", dtype="int16")
    assert np.abs(heard[:, 1]).max() < 100  # ... which the caller never heard (right)


def test_softphone_test_keeps_a_failures_files_beside_the_junit_report(tmp_path: Path) -> None:
    failing, passing = tmp_path / "deaf.toml", tmp_path / "fine.toml"
    failing.write_text(DEAF_SCENARIO)
    passing.write_text(DEAF_SCENARIO.replace('impair = "loss=100%"', ""))
    junit = tmp_path / "results.xml"
    run = subprocess.run([*SOFTPHONE, "test", str(failing), str(passing), "--junit", str(junit)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "one-way audio" in run.stdout and "kept: " in run.stdout
    kept = tmp_path / "results-artifacts"
    assert sorted(p.name for p in kept.iterdir()) == ["deaf"]  # the passing one left nothing
    assert f"[[ATTACHMENT|{(kept / 'deaf' / 'sip.pcap').resolve()}]]" in junit.read_text()
