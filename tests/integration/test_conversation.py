"""Conversation timing on real calls, against a local "voice agent" made of a softphone test
call (it greets after a set time, replies a set time after the caller's words end, and goes
quiet when talked over, or not): each timing assertion passing and failing, from Python and
from a scenario file with its figures in the report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from softphone.scenario.model import load_scenario
from softphone.scenario.runner import run_scenario
from softphone.testing import ExpectationFailed, TestAgent, TestCall

GREETING = "Hello, this is the billing assistant."
REPLY = ("Your balance is twelve dollars and fifty cents, due on Monday the fourth. "
         "You can pay by card or by bank transfer.")


async def voice_agent(call: TestCall, greet_after: float, reply_after: float,
                      yields: bool) -> None:
    """Greet ``greet_after`` seconds after the answer; ``reply_after`` seconds after each of
    the caller's utterances ends, reply; when the caller talks over us, go quiet if
    ``yields``."""
    said, heard = call.conversation.said, call.conversation.heard
    await asyncio.sleep(greet_after)
    await call.say(GREETING)
    answered = 0
    while True:
        if yields and said.speaking and heard.speaking and heard.segments[-1].start > \
                said.segments[-1].start:
            call.quiet()
        finished = [segment for segment in heard.segments if segment.end is not None]
        if len(finished) > answered:
            answered = len(finished)
            await asyncio.sleep(reply_after)
            await call.say(REPLY)
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def agent_call(greet_after: float = 0.2, reply_after: float = 0.3,
                     yields: bool = True) -> AsyncIterator[TestCall]:
    """A caller's answered call to a voice agent."""
    async with TestAgent("caller", codecs=("pcmu",)) as caller, \
            TestAgent("agent", codecs=("pcmu",)) as agent:
        call, incoming = await caller.connect(agent)
        behaviour = asyncio.ensure_future(voice_agent(incoming, greet_after, reply_after,
                                                      yields))
        try:
            yield call
        finally:
            behaviour.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await behaviour
            await call.hangup()


async def test_first_words_in_time_pass_and_late_ones_fail() -> None:
    async with agent_call(greet_after=0.2) as call:
        first = await call.hears_first_words(within=2.0)
        assert 0.2 <= first < 2.0
    async with agent_call(greet_after=2.5) as call:
        with pytest.raises(ExpectationFailed, match=r"after the answer \(allowed 1 s\)"):
            await call.hears_first_words(within=1.0)


async def _ask(call: TestCall) -> None:
    await call.hears_first_words(within=3.0)
    await call.hears_silence(0.5)  # the greeting is over
    await call.say("I would like to pay my bill.")


async def test_a_prompt_response_passes_and_a_slow_one_fails() -> None:
    async with agent_call(reply_after=0.3) as call:
        await _ask(call)
        latency = await call.responds_within(2.5)
        assert 0.3 < latency < 2.5  # its delay, its end-of-words detection, synthesis
    async with agent_call(reply_after=3.0) as call:
        await _ask(call)
        with pytest.raises(ExpectationFailed, match=r"(no response|a response after [0-9.]+ s)"
                                                    r" to our words \(allowed 1.5 s\)"):
            await call.responds_within(1.5)


async def _interrupt(call: TestCall) -> None:
    await _ask(call)
    await call.hears_speech(0.5)  # its reply is under way
    await call.say("Stop, please.")


async def test_an_agent_that_yields_to_barge_in_passes_and_one_that_talks_on_fails() -> None:
    async with agent_call(yields=True) as call:
        await _interrupt(call)
        went_on = await call.stops_when_interrupted(within=1.0)
        assert went_on < 1.0
        assert 0 < call.conversation_figures().talk_over < 1.0
        with pytest.raises(ExpectationFailed, match="talk-over"):
            call.talk_over_at_most(0.0)
    async with agent_call(yields=False) as call:
        await _interrupt(call)
        with pytest.raises(ExpectationFailed, match=r"went on [0-9.]+ s after we talked over"):
            await call.stops_when_interrupted(within=1.0)


async def test_dead_air_counts_the_longest_silence_since_the_answer() -> None:
    async with agent_call(greet_after=1.5) as call:
        await call.hears_first_words(within=3.0)
        call.dead_air_at_most(3.0)
        with pytest.raises(ExpectationFailed, match=r"s of dead air \(allowed 1 s\)"):
            call.dead_air_at_most(1.0)


SCENARIO = """
name = "voice agent timing"
[[legs]]
name = "caller"
codecs = ["pcmu"]
[[legs]]
name = "agent"
codecs = ["pcmu"]
[[steps]]
leg = "caller"
action = "call"
to = "agent"
[[steps]]
leg = "agent"
action = "wait_call"
[[steps]]
leg = "agent"
action = "answer"
[[steps]]
leg = "agent"
action = "say"
text = "Hello, how can I help?"
[[steps]]
leg = "caller"
action = "expect_first_words"
seconds = 3
[[steps]]
leg = "caller"
action = "expect_silence"
seconds = 0.5
[[steps]]
leg = "caller"
action = "say"
text = "I would like to pay my bill."
[[steps]]
leg = "agent"
action = "expect_words"
text = "pay my bill"
[[steps]]
leg = "agent"
action = "say"
text = "Your balance is twelve dollars."
[[steps]]
leg = "caller"
action = "expect_response"
seconds = {response}
[[steps]]
leg = "caller"
action = "expect_max_talk_over"
seconds = 0.5
"""


async def test_a_scenario_asserts_timing_and_reports_the_figures(tmp_path: Path) -> None:
    passing, failing = tmp_path / "pass.toml", tmp_path / "fail.toml"
    passing.write_text(SCENARIO.format(response=10))
    failing.write_text(SCENARIO.format(response=0.1))
    ok, late = [await run_scenario(load_scenario(path)) for path in (passing, failing)]
    assert ok.ok, ok.error
    first_words, response = ok.steps[4].measured, ok.steps[9].measured
    assert first_words is not None and 0 < first_words < 3
    assert response is not None and 0.3 < response < 10  # recognition, then speech
    callers, agents = ok.calls  # the report's calls in the order of the legs
    assert callers["conversation"]["response_latency"] == pytest.approx(response, abs=0.01)
    assert callers["conversation"]["first_words"] == pytest.approx(first_words, abs=0.01)
    assert agents["conversation"]["first_words"] is not None  # the caller's question
    assert late.outcome == "failed" and "step 10" in late.error
    assert "allowed 0.1 s" in late.error


BARGE_IN_SCENARIO = """
name = "barge-in"
[[legs]]
name = "caller"
codecs = ["pcmu"]
[[legs]]
name = "agent"
codecs = ["pcmu"]
[[steps]]
leg = "caller"
action = "call"
to = "agent"
[[steps]]
leg = "agent"
action = "wait_call"
[[steps]]
leg = "agent"
action = "answer"
[[steps]]
leg = "agent"
action = "say"
text = "{reply}"
[[steps]]
leg = "caller"
action = "expect_speech"
seconds = 0.5
[[steps]]
leg = "caller"
action = "say"
text = "Stop, please."
[[steps]]
leg = "agent"
action = "expect_speech"
seconds = 0.2
[[steps]]
leg = "agent"
{reaction}
[[steps]]
leg = "caller"
action = "expect_barge_in"
seconds = 1
"""


async def test_a_scenario_asserts_barge_in_both_ways(tmp_path: Path) -> None:
    yields, talks_on = tmp_path / "yields.toml", tmp_path / "talks_on.toml"
    yields.write_text(BARGE_IN_SCENARIO.format(reply=REPLY, reaction='action = "stop_audio"'))
    talks_on.write_text(BARGE_IN_SCENARIO.format(reply=REPLY,
                                                 reaction='action = "wait"\nseconds = 0.1'))
    stopped, went_on = [await run_scenario(load_scenario(path)) for path in (yields, talks_on)]
    assert stopped.ok, stopped.error
    assert stopped.steps[-1].measured is not None and stopped.steps[-1].measured < 1
    assert went_on.outcome == "failed" and "step 9" in went_on.error
    assert "after we talked over it (allowed 1 s)" in went_on.error
