"""Running a scenario: one test agent (softphone.testing) per leg on loopback, steps in
order, each bounded by its ``within``, the whole bounded by the scenario's ``timeout``. The
result keeps each step's outcome and timing, the SIP trace and the RTP figures of every call,
for the reports. Each action is a thin translation to the TestAgent/TestCall API, so the
scenario files and Python tests expect things the same way."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from softphone.events import TransferProgress
from softphone.media.speech import DEFAULT_MAX_WER, DEFAULT_VOICE, SpeechError
from softphone.scenario.artifacts import Artifacts, SipRecord
from softphone.scenario.model import Leg, Scenario, Step
from softphone.sip import parse_sip_uri
from softphone.sip.errors import SipError
from softphone.sip.transaction import Peer
from softphone.testing import ExpectationFailed, TestAgent, TestCall, WordsNotHeard
from softphone.ua.agent import Credentials
from softphone.ua.events import Ended, utc_timestamp
from softphone.ua.registration import RegistrationError


class LegFailed(Exception):
    """A leg could not be made ready (its account refused): the scenario cannot run."""


class StepFailed(Exception):
    """A step's expectation was not met; the message says what was seen instead."""


@dataclass
class StepResult:
    """One step as it ran. ``kind`` is "" when it passed, "failure" when what it expected
    did not happen (JUnit's failure), "error" when something broke instead (an error)."""

    number: int
    line: int
    description: str
    ok: bool
    seconds: float
    message: str = ""
    kind: str = ""
    heard: str = ""  # what an expect_words step recognised, passing or not
    measured: float | None = None  # what a timing step measured (a response's latency, s)


@dataclass
class ScenarioResult:
    """One scenario as it ran. ``outcome`` is passed, failed (an expectation not met),
    error (something broke: a socket, a file) or skipped (an environment variable it needs
    is not set); ``error`` says why in one line; ``timestamp`` is when it started (UTC)."""

    name: str
    path: str
    ok: bool = True
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    error: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    sip_trace: list[str] = field(default_factory=list)
    outcome: str = "passed"
    timestamp: str = field(default_factory=lambda: utc_timestamp())
    diagnosis: str = ""  # a failed scenario's calls: what went wrong with them, one line
    attachments: list[str] = field(default_factory=list)  # a failed run's files (artifacts)

    def end(self, outcome: str, why: str) -> None:
        self.outcome, self.error = outcome, why
        self.ok = outcome in ("passed", "skipped")

    def diagnose(self) -> None:
        """A failed run's diagnosis: its calls' own (Ended.diagnosis), each said once."""
        if self.outcome in ("failed", "error"):
            found = [str(c["diagnosis"]) for c in self.calls if c.get("diagnosis")]
            self.diagnosis = "; ".join(dict.fromkeys(found))


_VARIABLE_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def missing_variables(scenario: Scenario) -> list[str]:
    """The environment variables the scenario's steps and legs' accounts name
    (``${PBX_URI}``) that are unset."""
    missing: list[str] = []
    values = [value for step in scenario.steps for value in step.args.values()]
    values += [value for leg in scenario.legs
               for value in (leg.registrar, leg.password, leg.proxy, leg.domain)]
    for value in values:
        for match in _VARIABLE_RE.finditer(value if isinstance(value, str) else ""):
            name = match.group(1) or match.group(2)
            if name not in os.environ and name not in missing:
                missing.append(name)
    return missing


class LegRuntime:
    """One leg while the scenario runs: its test agent and its current call."""

    def __init__(self, leg: Leg, trace: Callable[[LegRuntime, str, bytes, Peer], None],
                 recordings: Path | None = None) -> None:
        host, _, port = leg.listen.rpartition(":")
        self.leg = leg
        self.registrar = os.path.expandvars(leg.registrar) if leg.registrar else None
        self.tester = TestAgent(leg.user or leg.name, leg.codecs, listen_host=host,
                                listen_port=int(port), dtmf_method=leg.dtmf_method,
                                recordings=recordings, **self._account())
        self.tester.agent.add_tracer(
            lambda direction, data, peer: trace(self, direction, data, peer))
        self.call: TestCall | None = None
        self.transfer: asyncio.Future[TransferProgress] | None = None  # a transfer step's

    def _account(self) -> dict[str, Any]:
        """AgentConfig settings of a leg with an account: credentials, the outbound proxy
        (the registrar unless told), the domain of its address of record, the transport."""
        leg = self.leg
        settings: dict[str, Any] = {"transport": leg.transport, "impairment": leg.impair}
        if self.registrar is None:
            return settings
        registrar = parse_sip_uri(self.registrar)
        proxy = os.path.expandvars(leg.proxy) if leg.proxy else self.registrar
        settings |= {"outbound_proxy": proxy,
                     "domain": os.path.expandvars(leg.domain) if leg.domain else registrar.host}
        if leg.password is not None:
            settings["credentials"] = Credentials(leg.user or leg.name,
                                                  os.path.expandvars(leg.password))
        return settings

    async def start(self) -> None:
        """Listen; with an account, register (and subscribe to voicemail with mwi)."""
        agent = self.tester.agent
        await agent.start()
        if self.registrar is None:
            return
        try:
            await agent.register(self.registrar)
            if self.leg.mwi:
                await agent.subscribe_mwi()
        except RegistrationError as error:
            raise LegFailed(f"leg {self.leg.name}: {self.registrar} refused: {error}") from None

    @property
    def address(self) -> str:
        """Where other legs call this one: its address of record when it has an account
        (through the PBX), else its own address."""
        if self.registrar is not None:
            return str(self.tester.agent.address_of_record)
        return self.tester.uri

    def current_call(self) -> TestCall:
        if self.call is None:
            raise StepFailed(f"{self.tester.agent.config.user} has no call")
        return self.call


async def run_scenario(scenario: Scenario, artifacts: Path | None = None) -> ScenarioResult:
    """Run the scenario; with ``artifacts``, a failure leaves its SIP ladder, a capture and
    every call's two-way recording in a directory there (``ScenarioResult.attachments``)."""
    result = ScenarioResult(scenario.name, str(scenario.path))
    missing = missing_variables(scenario)
    if missing:
        result.end("skipped", "environment variable " + ", ".join(missing)
                   + (" is" if len(missing) == 1 else " are") + " not set")
        return result
    started = time.monotonic()
    kept = Artifacts(artifacts, scenario.path.stem) if artifacts else None

    def trace(runtime: LegRuntime, direction: str, data: bytes, peer: Peer) -> None:
        at = time.monotonic() - started
        first_line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        result.sip_trace.append(f"{at:8.3f} {direction:8} {peer} {first_line}")
        if kept is not None:
            agent = runtime.tester.agent
            kept.note(SipRecord(at, runtime.leg.name, direction, (agent.host, agent.port),
                                peer, data))

    recordings = kept.directory if kept is not None else None
    legs = {leg.name: LegRuntime(leg, trace, recordings) for leg in scenario.legs}
    try:
        for runtime in legs.values():
            await runtime.start()
        async with asyncio.timeout(scenario.timeout):
            for group in _groups(scenario.steps):
                outcomes = await asyncio.gather(*(_run_step(step, legs) for step in group))
                result.steps.extend(outcomes)
                failed = next((o for o in outcomes if not o.ok), None)
                if failed is not None:
                    result.end("failed" if failed.kind == "failure" else "error",
                               f"step {failed.number}: {failed.message}")
                    break
    except TimeoutError:
        result.end("failed", f"the scenario ran past its timeout of {scenario.timeout:g} s")
    except (SipError, OSError, LegFailed) as broken:  # a leg could not start (port, account)
        result.end("error", str(broken))
    finally:
        for runtime in legs.values():
            await runtime.tester.agent.close()
        result.calls = [_call_figures(runtime.tester, event) for runtime in legs.values()
                        for event in runtime.tester.events if isinstance(event, Ended)]
        result.diagnose()
        if kept is not None:
            if result.outcome in ("failed", "error"):
                result.attachments = kept.keep()
            else:
                kept.discard()
        result.seconds = round(time.monotonic() - started, 3)
    return result


def _call_figures(tester: TestAgent, ended: Ended) -> dict[str, Any]:
    """A call for the report: its end (status, RTP figures) and its conversation timing."""
    conversation = tester.conversation_of(ended.call_id)
    return ended.to_json() | {"conversation": conversation.figures(time.monotonic()).to_json()}


def _groups(steps: tuple[Step, ...]) -> list[list[Step]]:
    """The steps in the order they run: a run of neighbours marked ``parallel`` together,
    every other step alone."""
    groups: list[list[Step]] = []
    for step in steps:
        if step.parallel and groups and groups[-1][-1].parallel:
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


async def _run_step(step: Step, legs: dict[str, LegRuntime]) -> StepResult:
    started = time.monotonic()
    kind, message, heard, measured = "", "", "", None
    try:
        outcome = await asyncio.wait_for(HANDLERS[step.action](step, legs), step.within)
        heard = outcome if isinstance(outcome, str) else ""
        measured = round(outcome, 3) if isinstance(outcome, float) else None
    except TimeoutError:
        kind, message = "failure", f"{step.describe()} did not happen within {step.within:g} s"
    except (StepFailed, ExpectationFailed) as failure:
        kind, message = "failure", f"{step.describe()}: {failure}"
        heard = failure.heard if isinstance(failure, WordsNotHeard) else ""
    except (SipError, OSError, ValueError, SpeechError) as broken:
        kind, message = "error", f"{step.describe()}: {broken}"
    return StepResult(step.number, step.line, step.describe(), not kind,
                      round(time.monotonic() - started, 3), message, kind, heard, measured)


# --- the actions: each is given its step and every leg ------------------------------------

# A handler may return what the step heard (expect_words: the transcript) for the report.
Handler = Callable[[Step, dict[str, LegRuntime]], Awaitable[object]]


def _on_call(act: Callable[[TestCall, Step], Awaitable[object] | None]) -> Handler:
    """A handler for an action on the step's leg's current call."""
    async def handler(step: Step, legs: dict[str, LegRuntime]) -> object:
        done = act(legs[str(step.leg)].current_call(), step)
        return await done if done is not None else None
    return handler


async def _call(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    runtime.call = await runtime.tester.call(_target(step, legs))
    if "expect_status" in step.args:
        await runtime.call.final_status(int(step.args["expect_status"]), step.within)


async def _wait_call(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    runtime.call = await runtime.tester.next_call(step.within)


def _target(step: Step, legs: dict[str, LegRuntime]) -> str:
    """A step's ``to``: a leg's address (its AOR when it has an account), or a URI
    (``${VAR}`` from the environment)."""
    target = os.path.expandvars(str(step.args["to"]))
    return legs[target].address if target in legs else target


async def _message(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    if "to" in step.args:
        await runtime.tester.message(_target(step, legs), str(step.args["text"]))
    else:
        await runtime.current_call().message(str(step.args["text"]))


async def _expect_message(step: Step, legs: dict[str, LegRuntime]) -> None:
    await legs[str(step.leg)].tester.receives_message(str(step.args["text"]), step.within)


async def _transfer(step: Step, legs: dict[str, LegRuntime]) -> None:
    """Blind transfer of the leg's peer to a leg or URI: the REFER goes out and the
    scenario goes on (the target's leg may have to answer); expect_transfer waits."""
    runtime = legs[str(step.leg)]
    runtime.transfer = asyncio.ensure_future(
        runtime.current_call().transfer(_target(step, legs)))


async def _expect_transfer(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    if runtime.transfer is None:
        raise StepFailed("no transfer was started (a transfer step comes first)")
    try:
        result = await asyncio.wait_for(asyncio.shield(runtime.transfer), step.within)
    except TimeoutError:
        raise StepFailed(f"the transfer did not end within {step.within:g} s") from None
    wanted = int(step.args.get("status", 200))
    if result.status != wanted:
        raise StepFailed(f"transfer ended with {result.status} {result.reason}, not {wanted}")


async def _expect_transferred(step: Step, legs: dict[str, LegRuntime]) -> None:
    runtime = legs[str(step.leg)]
    runtime.call = await runtime.current_call().transferred(step.within)


async def _expect_mwi(step: Step, legs: dict[str, LegRuntime]) -> None:
    await legs[str(step.leg)].tester.receives_mwi(step.args.get("new"),
                                                  step.args.get("waiting"), step.within)


def _play(call: TestCall, step: Step) -> None:
    if "file" in step.args:
        call.play(step.args["file"])
    else:
        call.play_tone(float(step.args["tone"]))


def _seconds(step: Step, default: float = 1.0) -> float:
    return float(step.args.get("seconds", default))


HANDLERS: dict[str, Handler] = {
    "call": _call,
    "wait_call": _wait_call,
    "ring": _on_call(lambda call, step: call.ring()),
    "answer": _on_call(lambda call, step: call.answer()),
    "early_media": _on_call(lambda call, step: call.progress_with_media()),
    "reject": _on_call(lambda call, step: call.reject(int(step.args.get("status", 486)))),
    "hangup": _on_call(lambda call, step: call.hangup()),
    "expect_ringing": _on_call(lambda call, step: call.ringing(step.within)),
    "expect_answered": _on_call(lambda call, step: call.answered(step.within)),
    "expect_early_media": _on_call(lambda call, step: call.early_media(step.within)),
    "expect_status": _on_call(
        lambda call, step: call.final_status(int(step.args["status"]), step.within)),
    "expect_hangup": _on_call(lambda call, step: call.ended(step.within, by="remote")),
    "play": _on_call(_play),
    "stop_audio": _on_call(lambda call, step: call.quiet()),
    "record": _on_call(lambda call, step: call.record(step.args["file"])),
    "send_dtmf": _on_call(lambda call, step: call.send_dtmf(str(step.args["digits"]))),
    "expect_dtmf": _on_call(
        lambda call, step: call.receives_dtmf(str(step.args["digits"]), step.within)),
    "play_dtmf": _on_call(lambda call, step: call.play_dtmf_tones(str(step.args["digits"]))),
    "expect_inband_dtmf": _on_call(lambda call, step: call.hears_dtmf_tones(
        str(step.args["digits"]), step.args.get("seconds"), step.within)),
    "expect_tone": _on_call(lambda call, step: call.hears_tone(
        float(step.args["hz"]), _seconds(step), step.within,
        -float(step.args.get("level", 40)))),
    "expect_silence": _on_call(
        lambda call, step: call.hears_silence(_seconds(step), step.within)),
    "expect_speech": _on_call(
        lambda call, step: call.hears_speech(_seconds(step), step.within)),
    "expect_similar": _on_call(lambda call, step: call.hears_recording(
        step.args["file"], float(step.args.get("threshold", 0.8)), step.within)),
    "say": _on_call(lambda call, step: call.say(str(step.args["text"]),
                                                str(step.args.get("voice", DEFAULT_VOICE)))),
    "expect_words": _on_call(lambda call, step: call.hears_words(
        str(step.args["text"]), step.within, float(step.args.get("max_wer", DEFAULT_MAX_WER)))),
    "expect_quality": _on_call(
        lambda call, step: call.quality_at_least(float(step.args["min_mos"]), step.within)),
    "expect_first_words": _on_call(
        lambda call, step: call.hears_first_words(_seconds(step), step.within)),
    "expect_response": _on_call(
        lambda call, step: call.responds_within(_seconds(step), step.within)),
    "expect_barge_in": _on_call(
        lambda call, step: call.stops_when_interrupted(_seconds(step), step.within)),
    "expect_max_dead_air": _on_call(lambda call, step: call.dead_air_at_most(_seconds(step))),
    "expect_max_talk_over": _on_call(
        lambda call, step: call.talk_over_at_most(_seconds(step))),
    "message": _message,
    "transfer": _transfer,
    "hold": _on_call(lambda call, step: call.call.hold()),
    "resume": _on_call(lambda call, step: call.call.resume()),
    "expect_hold": _on_call(lambda call, step: call.held(True, step.within)),
    "expect_resume": _on_call(lambda call, step: call.held(False, step.within)),
    "expect_mwi": _expect_mwi,
    "expect_transfer": _expect_transfer,
    "expect_transferred": _expect_transferred,
    "expect_message": _expect_message,
    "wait": lambda step, legs: asyncio.sleep(_seconds(step)),
}
