"""softphone test: the example scenarios run (one against baresip), failures are reported,
and the JUnit and JSON reports carry what CI needs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from softphone.bundled import EXAMPLES as EXAMPLES_DIR
from tests.conftest import TESTDATA
from tests.peers import baresip

SOFTPHONE = [sys.executable, "-m", "softphone"]
EXAMPLES = EXAMPLES_DIR / "scenarios"
LOCAL = ["basic_call.toml", "busy.toml", "ivr_digits.toml", "inband_dtmf.toml",
         "prompt_heard.toml", "second_caller_busy.toml", "messages.toml", "transfer.toml",
         "early_media.toml"]


def test_local_examples_pass_with_reports(tmp_path: Path) -> None:
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    result = subprocess.run([*SOFTPHONE, "test", *(str(EXAMPLES / n) for n in LOCAL),
                             "--junit", str(junit), "--report", str(report)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == (str(len(LOCAL)), "0")
    data = json.loads(report.read_text())
    ivr = next(s for s in data["scenarios"] if s["name"] == "IVR greeting and digits")
    assert all(step["ok"] for step in ivr["steps"]) and len(ivr["steps"]) == 11
    assert any("INVITE" in line for line in ivr["sip_trace"])
    assert ivr["calls"] and ivr["calls"][0]["rtp"]["packets_received"] > 0


@pytest.mark.peers
def test_the_baresip_example() -> None:
    with baresip(answermode="auto") as peer:
        result = subprocess.run([*SOFTPHONE, "test", str(EXAMPLES / "baresip_tone.toml")],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "BARESIP_URI": peer.uri})
    assert result.returncode == 0, result.stdout


@pytest.mark.peers
def test_the_pbx_example_registers_two_accounts_and_calls_through_kamailio(
        tmp_path: Path) -> None:
    from tests.peers import kamailio

    report = tmp_path / "report.json"
    with kamailio() as pbx:
        environment = {**os.environ, "PBX": pbx.uri, "ALICE_PASSWORD": "alicepw",
                       "BOB_PASSWORD": "bobpw"}
        result = subprocess.run([*SOFTPHONE, "test", str(EXAMPLES / "pbx_call.toml"),
                                 "--report", str(report)], capture_output=True, text=True,
                                timeout=90, env=environment)
        assert result.returncode == 0, result.stdout
        wrong = subprocess.run([*SOFTPHONE, "test", str(EXAMPLES / "pbx_call.toml")],
                               capture_output=True, text=True, timeout=90,
                               env={**environment, "BOB_PASSWORD": "wrong"})
    data = json.loads(report.read_text())["scenarios"][0]
    trace = "\n".join(data["sip_trace"])
    assert trace.count("REGISTER sip:127.0.0.1") >= 2 and f":{pbx.port} " in trace
    invite = next(line for line in data["sip_trace"] if " INVITE sip:bob@127.0.0.1" in line)
    assert f"udp:127.0.0.1:{pbx.port}" in invite  # sent to the PBX, not to bob directly
    assert wrong.returncode == 1
    said = " ".join(wrong.stdout.split())
    assert "leg bob: " in said and "refused: 401 Unauthorized" in said, said


def test_a_failing_scenario_counts_in_the_exit_code_and_names_the_step(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text((EXAMPLES / "busy.toml").read_text().replace("status = 486\nwithin",
                                                                  "status = 603\nwithin"))
    junit = tmp_path / "junit.xml"
    result = subprocess.run([*SOFTPHONE, "test", str(wrong), str(EXAMPLES / "busy.toml"),
                             "--junit", str(junit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1  # one of two failed
    said = " ".join(result.stdout.split())  # as a terminal would show it, unwrapped
    assert "FAIL busy line" in said and "final status was 486 Busy Here" in said
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and "step 4" in (failure.get("message") or "")


def test_a_broken_scenario_file_is_a_usage_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[[legs]]\nname = "a"\n[[steps]]\nleg = "a"\naction = "dail"\n')
    result = subprocess.run([*SOFTPHONE, "test", str(broken)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "step 1 (line 3): unknown action 'dail'" in result.stderr


def test_expect_similar_fails_when_something_else_is_heard(tmp_path: Path) -> None:
    text = (EXAMPLES / "prompt_heard.toml").read_text()
    wrong = tmp_path / "wrong_prompt.toml"
    wrong.write_text(text.replace('action = "play"\nfile = "prompt.wav"',
                                  'action = "play"\ntone = 440')
                     .replace('file = "prompt.wav"', f'file = "{EXAMPLES / "prompt.wav"}"')
                     .replace("within = 6", "within = 2"))
    result = subprocess.run([*SOFTPHONE, "test", str(wrong)], capture_output=True, text=True,
                            timeout=60)
    said = " ".join(result.stdout.split())
    assert result.returncode == 1 and "expect_similar" in said and "within 2 s" in said


def test_junit_validates_against_jenkins_schema_with_every_outcome(tmp_path: Path) -> None:
    """A pass, a failure and a scenario whose ${VAR} is unset (skipped, naming it): the
    exit code is 1 whatever the number of failures, and the XML is what Jenkins' xunit
    plugin accepts (its junit-10.xsd)."""
    import xmlschema

    wrong = tmp_path / "wrong.toml"
    wrong.write_text((EXAMPLES / "busy.toml").read_text().replace("status = 486\nwithin",
                                                                  "status = 603\nwithin"))
    also_wrong = tmp_path / "also_wrong.toml"
    also_wrong.write_text(wrong.read_text().replace('name = "busy line"', 'name = "again"'))
    needs_env = tmp_path / "needs_env.toml"
    needs_env.write_text((EXAMPLES / "baresip_tone.toml").read_text())
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    environment = {k: v for k, v in os.environ.items() if k != "BARESIP_URI"}
    result = subprocess.run([*SOFTPHONE, "test", str(EXAMPLES / "busy.toml"), str(wrong),
                             str(also_wrong), str(needs_env), "--junit", str(junit),
                             "--report", str(report)],
                            capture_output=True, text=True, timeout=120, env=environment)
    assert result.returncode == 1, result.stdout  # two failed: still 1, never 2 (usage)
    xmlschema.XMLSchema(str(TESTDATA / "junit" / "junit-10.xsd")).validate(str(junit))
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("4", "2", "0", "1")
    assert (suite.get("timestamp") or "").endswith("Z")
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("type") == "expectation"
    skipped = suite.find("testcase/skipped")
    assert skipped is not None
    assert skipped.get("message") == "environment variable BARESIP_URI is not set"
    data = json.loads(report.read_text())
    assert data["timestamp"].endswith("Z") and data["skipped"] == 1 and data["failed"] == 2
    assert [s["outcome"] for s in data["scenarios"]] == ["passed", "failed", "failed",
                                                         "skipped"]


def test_ctrl_c_still_writes_the_reports(tmp_path: Path) -> None:
    long = tmp_path / "long.toml"
    long.write_text('name = "long wait"\ntimeout = 60\n[[legs]]\nname = "a"\n'
                    '[[steps]]\nleg = "a"\naction = "wait"\nseconds = 30\nwithin = 40\n')
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    runner = subprocess.Popen([*SOFTPHONE, "test", str(long), str(EXAMPLES / "busy.toml"),
                               "--junit", str(junit), "--report", str(report)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    runner.send_signal(signal.SIGINT)
    assert runner.wait(20) == 130
    runner.communicate()
    outcomes = [s["outcome"] for s in json.loads(report.read_text())["scenarios"]]
    assert outcomes == ["error", "skipped"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("errors"), suite.get("skipped")) == ("1", "1")


def test_a_message_other_than_the_expected_one_fails_naming_both(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text((EXAMPLES / "messages.toml").read_text().replace(
        'action = "expect_message"\ntext = "are you there?"',
        'action = "expect_message"\ntext = "hello?"'))
    result = subprocess.run([*SOFTPHONE, "test", str(wrong)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    said = " ".join(result.stdout.split())
    assert "message 'hello?' expected, got 'are you there?'" in said
