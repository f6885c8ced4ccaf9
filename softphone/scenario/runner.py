"""Running a scenario: one user agent per leg on loopback, steps in order, each bounded by
its ``within``, the whole bounded by the scenario's ``timeout``. The result keeps each step's
outcome and timing, the SIP trace and the RTP figures of every call, for the reports."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from softphone.media.ports import DtmfTones, Monitor, Silence, Switch, Tone
from softphone.media.quality import detect_dtmf, similarity
from softphone.media.wav import WavSink, WavSource, load_wav, resample
from softphone.scenario.model import Leg, Scenario, Step
from softphone.sip.errors import SipError
from softphone.sip.transaction import Peer
from softphone.testing import EventLog, is_silence, is_speech, is_tone, until_heard
from softphone.ua.agent import AgentConfig, UserAgent
from softphone.ua.call import Call
from softphone.ua.events import Dtmf, Ended, Event, Ringing


class StepFailed(Exception):
    """A step's expectation was not met; the message says what was seen instead."""


@dataclass
class StepResult:
    number: int
    line: int
    description: str
    ok: bool
    seconds: float
    message: str = ""


@dataclass
class ScenarioResult:
    name: str
    path: str
    ok: bool = True
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    error: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    sip_trace: list[str] = field(default_factory=list)


class LegRuntime:
    """One leg while the scenario runs: its agent, its current call, what it saw."""

    def __init__(self, leg: Leg, trace: Callable[[str, bytes, Peer], None]) -> None:
        self.leg = leg
        self.source = Switch()
        self.monitor = Monitor()
        host, _, port = leg.listen.rpartition(":")
        self.agent = UserAgent(AgentConfig(
            listen_host=host, listen_port=int(port), user=leg.user or leg.name,
            codecs=leg.codecs, dtmf_method=leg.dtmf_method,
            port_factory=lambda call: (self.source, self.monitor)))
        self.agent.add_tracer(trace)
        self.call: Call | None = None
        self.digits_taken = 0
        self.log = EventLog(self.agent)

    @property
    def events(self) -> list[Event]:
        return self.log.events

    @property
    def uri(self) -> str:
        return f"sip:{self.leg.user or self.leg.name}@{self.agent.host}:{self.agent.port}"

    def current_call(self) -> Call:
        if self.call is None:
            raise StepFailed(f"{self.leg.name} has no call")
        return self.call

    async def wait_event(self, found: Callable[[Event], bool]) -> Event:
        return await self.log.wait_for(found)


async def run_scenario(scenario: Scenario) -> ScenarioResult:
    result = ScenarioResult(scenario.name, str(scenario.path))
    started = time.monotonic()

    def trace(direction: str, data: bytes, peer: Peer) -> None:
        first_line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        result.sip_trace.append(f"{time.monotonic() - started:8.3f} {direction:8} {peer} "
                                f"{first_line}")

    legs = {leg.name: LegRuntime(leg, trace) for leg in scenario.legs}
    try:
        for runtime in legs.values():
            await runtime.agent.start()
        async with asyncio.timeout(scenario.timeout):
            for step in scenario.steps:
                outcome = await _run_step(step, legs)
                result.steps.append(outcome)
                if not outcome.ok:
                    result.ok, result.error = False, f"step {step.number}: {outcome.message}"
                    break
    except TimeoutError:
        result.ok = False
        result.error = f"the scenario ran past its timeout of {scenario.timeout:g} s"
    finally:
        for runtime in legs.values():
            await runtime.agent.close()
        result.calls = [event.to_json() for runtime in legs.values() for event in runtime.events
                        if isinstance(event, Ended)]
        result.seconds = round(time.monotonic() - started, 3)
    return result


async def _run_step(step: Step, legs: dict[str, LegRuntime]) -> StepResult:
    started = time.monotonic()
    try:
        await asyncio.wait_for(ACTIONS[step.action](step, legs), step.within)
        ok, message = True, ""
    except TimeoutError:
        ok, message = False, f"{step.describe()} did not happen within {step.within:g} s"
    except (StepFailed, SipError, OSError, ValueError) as failure:
        ok, message = False, f"{step.describe()}: {failure}"
    return StepResult(step.number, step.line, step.describe(), ok,
                      round(time.monotonic() - started, 3), message)


# --- the actions ---------------------------------------------------------------------------

async def _call(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    target = os.path.expandvars(str(step.args["to"]))  # "${PBX_URI}" from the environment
    uri = legs[target].uri if target in legs else target
    runtime.call, runtime.digits_taken = await runtime.agent.call(uri), 0
    if "expect_status" in step.args:
        await _expect_status(Step(step.number, step.line, "expect_status", step.leg, step.within,
                                  {"status": step.args["expect_status"]}), legs)


async def _wait_call(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    runtime.call, runtime.digits_taken = await runtime.agent.incoming.get(), 0


async def _ring(step: Step, legs: dict[str, LegRuntime]) -> None:
    await legs[str(step.leg)].current_call().ring()


async def _answer(step: Step, legs: dict[str, LegRuntime]) -> None:
    await legs[str(step.leg)].current_call().answer()


async def _reject(step: Step, legs: dict[str, LegRuntime]) -> None:
    await legs[str(step.leg)].current_call().reject(int(step.args.get("status", 486)))


async def _hangup(step: Step, legs: dict[str, LegRuntime]) -> None:
    await legs[str(step.leg)].current_call().hangup()


async def _expect_ringing(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    call = runtime.current_call()
    await runtime.wait_event(lambda e: isinstance(e, Ringing) and e.call_id == call.call_id)


async def _expect_answered(step: Step, legs: dict[str, LegRuntime]) -> None:
    call = legs[str(step.leg)].current_call()
    if not await call.answered:
        ended = call.ended.result()
        raise StepFailed(f"not answered: {ended.status} {ended.reason}")


async def _expect_status(step: Step, legs: dict[str, LegRuntime]) -> None:
    call = legs[str(step.leg)].current_call()
    wanted = int(step.args["status"])
    if wanted == 200:
        await _expect_answered(step, legs)
        return
    ended = await call.ended
    if call.answered_at is not None or ended.status != wanted:
        seen = "200 (answered)" if call.answered_at is not None else \
            f"{ended.status} {ended.reason}"
        raise StepFailed(f"final status was {seen}")


async def _expect_hangup(step: Step, legs: dict[str, LegRuntime]) -> None:
    ended = await legs[str(step.leg)].current_call().ended
    if ended.by != "remote":
        raise StepFailed(f"the call ended by {ended.by}: {ended.status} {ended.reason}")


async def _play(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    if "file" in step.args:
        runtime.source.set(WavSource(step.args["file"]))
    else:
        runtime.source.set(Tone(float(step.args["tone"])))


async def _stop_audio(step: Step, legs: dict[str, LegRuntime]) -> None:
    legs[str(step.leg)].source.set(Silence())


async def _record(step: Step, legs: dict[str, LegRuntime]) -> None:
    legs[str(step.leg)].monitor.recording = WavSink(step.args["file"])


async def _send_dtmf(step: Step, legs: dict[str, LegRuntime]) -> None:
    await legs[str(step.leg)].current_call().send_dtmf(str(step.args["digits"]))


async def _expect_dtmf(step: Step, legs: dict[str, LegRuntime]) -> None:
    """The next digits this leg's call receives are ``digits`` (digits that came before the
    step count, those an earlier expect_dtmf took do not)."""
    runtime = legs[str(step.leg)]
    call = runtime.current_call()
    wanted = str(step.args["digits"]).upper()
    while True:
        received = "".join(e.digit for e in runtime.events
                           if isinstance(e, Dtmf) and e.call_id == call.call_id)
        heard = received[runtime.digits_taken : runtime.digits_taken + len(wanted)]
        if not wanted.startswith(heard):
            raise StepFailed(f"heard {heard!r}")
        if heard == wanted:
            runtime.digits_taken += len(wanted)
            return
        await runtime.log.next_change()


async def _play_dtmf(step: Step, legs: dict[str, LegRuntime]) -> None:
    legs[str(step.leg)].source.set(DtmfTones(str(step.args["digits"])))


async def _expect_inband_dtmf(step: Step, legs: dict[str, LegRuntime]) -> None:
    wanted = str(step.args["digits"]).upper()
    await _hear(step, legs, lambda w, rate: wanted in detect_dtmf(w, rate),
                float(step.args.get("seconds", 0.15 * len(wanted) + 1.0)))


async def _hear(step: Step, legs: dict[str, LegRuntime],
                holds: Callable[[Any, int], bool], seconds: float) -> None:
    await until_heard(legs[str(step.leg)].monitor, holds, seconds)


async def _expect_tone(step: Step, legs: dict[str, LegRuntime]) -> None:
    hz, floor = float(step.args["hz"]), -float(step.args.get("level", 40))
    await _hear(step, legs, is_tone(hz, floor), float(step.args.get("seconds", 1.0)))


async def _expect_silence(step: Step, legs: dict[str, LegRuntime]) -> None:
    await _hear(step, legs, is_silence, float(step.args.get("seconds", 1.0)))


async def _expect_speech(step: Step, legs: dict[str, LegRuntime]) -> None:
    await _hear(step, legs, is_speech, float(step.args.get("seconds", 1.0)))


async def _expect_similar(step: Step, legs: dict[str, LegRuntime]) -> None:
    """What the leg heard lately contains the reference WAV (aligned, normalised
    correlation at least ``threshold``)."""
    reference, rate = load_wav(step.args["file"])
    threshold = float(step.args.get("threshold", 0.8))
    monitor = legs[str(step.leg)].monitor
    monitor.keep_seconds = max(monitor.keep_seconds, 2 * len(reference) / rate)
    converted: dict[int, Any] = {}

    def holds(window: Any, heard_rate: int) -> bool:
        if heard_rate not in converted:
            converted[heard_rate] = resample(reference, rate, heard_rate)
        return similarity(converted[heard_rate], window).score >= threshold

    await _hear(step, legs, holds, len(reference) / rate + 0.5)


async def _wait(step: Step, legs: dict[str, LegRuntime]) -> None:
    await asyncio.sleep(float(step.args["seconds"]))


ACTIONS: dict[str, Callable[[Step, dict[str, LegRuntime]], Any]] = {
    "call": _call, "wait_call": _wait_call, "ring": _ring, "answer": _answer,
    "reject": _reject, "hangup": _hangup, "expect_ringing": _expect_ringing,
    "expect_answered": _expect_answered, "expect_status": _expect_status,
    "expect_hangup": _expect_hangup, "play": _play, "stop_audio": _stop_audio,
    "record": _record, "send_dtmf": _send_dtmf, "expect_dtmf": _expect_dtmf,
    "expect_tone": _expect_tone, "expect_silence": _expect_silence,
    "expect_speech": _expect_speech, "wait": _wait, "play_dtmf": _play_dtmf,
    "expect_inband_dtmf": _expect_inband_dtmf, "expect_similar": _expect_similar,
}
