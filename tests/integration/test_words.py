"""Words on real calls: prompts spoken by Flite on one side, recognised by PocketSphinx on the
other after G.711 and Opus, passing and failing, from Python and from scenario files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softphone.media.speech import SpeechError
from softphone.scenario.model import ScenarioError, load_scenario
from softphone.scenario.report import write_json, write_junit
from softphone.scenario.runner import run_scenario
from softphone.testing import TestAgent, WordsNotHeard

PROMPT = "Welcome to the support line. Press one for sales. Press two for billing."


@pytest.mark.parametrize("codec", ["pcmu", "opus"])
async def test_a_prompt_is_recognised_and_a_phrase_not_said_fails_with_what_was_heard(
        codec: str) -> None:
    async with TestAgent("caller", codecs=(codec,)) as caller, \
            TestAgent("ivr", codecs=(codec,)) as ivr:
        call, incoming = await caller.connect(ivr)
        await incoming.say(PROMPT)
        with pytest.raises(WordsNotHeard) as failure:  # every word must be heard
            await call.hears_words("press three for support", timeout=10, max_wer=0)
        assert "press two for billing" in failure.value.heard
        assert "press two for billing" in str(failure.value)
        # the next expectation hears only what came after the last one
        await incoming.say("Please hold while we connect you.")
        heard = await call.hears_words("please hold while we connect you", timeout=10)
        assert "connect" in heard and "billing" not in heard
        await call.hangup()


async def test_an_unknown_voice_is_an_error_naming_the_voices() -> None:
    async with TestAgent("caller") as caller, TestAgent("ivr") as ivr:
        _, incoming = await caller.connect(ivr)
        with pytest.raises(SpeechError, match="unknown voice 'hal'.*rms"):
            await incoming.say("hello", voice="hal")


IVR_SCENARIO = """
name = "ivr words"
[[legs]]
name = "caller"
codecs = ["pcmu"]
[[legs]]
name = "ivr"
codecs = ["pcmu"]
[[steps]]
leg = "caller"
action = "call"
to = "ivr"
[[steps]]
leg = "ivr"
action = "wait_call"
[[steps]]
leg = "ivr"
action = "answer"
[[steps]]
leg = "ivr"
action = "say"
text = "Press one for sales. Press two for billing."
voice = "awb"
[[steps]]
leg = "caller"
action = "expect_words"
text = "{expected}"
max_wer = 0
within = 10
"""


async def test_a_scenario_says_and_expects_words_with_the_transcript_in_its_reports(
        tmp_path: Path) -> None:
    passing, failing = tmp_path / "pass.toml", tmp_path / "fail.toml"
    passing.write_text(IVR_SCENARIO.format(expected="press two for billing"))
    failing.write_text(IVR_SCENARIO.format(expected="press nine for the operator"))
    results = [await run_scenario(load_scenario(path)) for path in (passing, failing)]
    assert results[0].ok, results[0].error
    assert "press two for billing" in results[0].steps[-1].heard
    assert results[1].outcome == "failed"
    assert "press nine for the operator" in results[1].error
    assert "press two for billing" in results[1].steps[-1].heard
    write_json(results, tmp_path / "report.json")
    write_junit(results, tmp_path / "report.xml")
    steps = [scenario["steps"][-1] for scenario in
             json.loads((tmp_path / "report.json").read_text())["scenarios"]]
    assert all("press two for billing" in step["heard"] for step in steps)
    failed_case = (tmp_path / "report.xml").read_text().split("<testcase")[2]
    assert "[heard: '" in failed_case and "press two for billing" in failed_case


def test_a_scenario_with_an_unknown_voice_is_refused_when_read(tmp_path: Path) -> None:
    path = tmp_path / "voice.toml"
    path.write_text(IVR_SCENARIO.format(expected="x").replace('"awb"', '"hal"'))
    with pytest.raises(ScenarioError, match="voice"):
        load_scenario(path)
