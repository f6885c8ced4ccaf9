"""Locust users that place SIP calls with media (``pip install softphone[locust]``).

Locust spreads simulated users over processes and machines (``--master``/``--worker``) and
gives its web UI, ramp shapes, statistics and CSV; softphone gives the calls. A locustfile::

    from locust import constant
    from softphone.locust import SipUser

    class Caller(SipUser):
        wait_time = constant(1)
        duration = 2.0                       # seconds each answered call is held

    $ locust -f locustfile.py --host sip:bob@pbx.example.com \\
          --sip-options "--user alice --password secret --codec pcmu"

Why a process beside each Locust process: Locust monkey-patches sockets, selectors and
threads for gevent, and an asyncio engine run inside such a process would either block every
greenlet while it waits for packets or use gevent's sockets from another thread. So each
Locust process starts one ``softphone engine`` (the same engine as ``softphone load``, with
uvloop where installed) on first use; its users send requests down its stdin and wait for the
answer line cooperatively, and the calls of all of them share one agent.

What Locust records, per call: request type ``INVITE``, name the final status ("200 OK",
"486 Busy Here"), response time from the INVITE to that final response, a failure for
anything but 2xx. Per answered call with media, type ``RTP``: "MOS x100" (E-model, a failure
when no RTP arrived at all), "loss per mille" and "jitter ms", the figure as the response
time. With ``scenario`` set, each iteration runs that scenario file instead: type
``SCENARIO`` named after it and one ``STEP`` per step, failures saying why. The target is
the class's ``target``, else Locust's ``--host``; a scenario reads it as ``${LOCUST_HOST}``.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import gevent
from gevent import subprocess as gevent_subprocess
from gevent.event import AsyncResult
from gevent.lock import Semaphore
from locust import User, events, task
from locust.env import Environment

ENGINE_CLOSE_SECONDS = 5.0


class CallFailed(Exception):
    """The call got a final response other than 2xx (the message is the status line)."""


class NoAudio(Exception):
    """The call was answered with media but not one RTP packet arrived."""


class ScenarioFailed(Exception):
    """A scenario (or one of its steps) did not pass; the message says why."""


class EngineGone(Exception):
    """The engine process is not running (it failed to start or exited); says how."""


class EngineProcess:
    """One ``softphone engine`` child and the greenlets waiting on its answers."""

    def __init__(self, options: list[str], host: str | None) -> None:
        command = [sys.executable, "-m", "softphone", "engine", *options]
        environment = {"LOCUST_HOST": host} if host else {}
        self.process = gevent_subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, **environment})
        self.command = shlex.join(command)
        self.waiting: dict[int, AsyncResult] = {}
        self.ids = itertools.count(1)
        self.writing = Semaphore()
        self.gone: str | None = None
        ready = self._line()
        if ready is None or ready.get("event") != "ready":
            self.gone = f"{self.command} did not start (exit status {self.process.wait()})"
            raise EngineGone(self.gone)
        self.reader = gevent.spawn(self._read)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait (cooperatively) for its answer."""
        if self.gone is not None:
            raise EngineGone(self.gone)
        request_id = next(self.ids)
        answer = AsyncResult()
        self.waiting[request_id] = answer
        try:
            with self.writing:
                self.process.stdin.write(json.dumps({**request, "id": request_id}).encode()
                                         + b"\n")
                self.process.stdin.flush()
            result: dict[str, Any] = answer.get()
            return result
        except BrokenPipeError:
            raise EngineGone(f"{self.command} exited") from None
        finally:
            self.waiting.pop(request_id, None)

    def _line(self) -> dict[str, Any] | None:
        raw = self.process.stdout.readline()
        if not raw:
            return None
        answer: dict[str, Any] = json.loads(raw)
        return answer

    def _read(self) -> None:
        while (answer := self._line()) is not None:
            waiting = self.waiting.get(answer.get("id", -1))
            if waiting is not None:
                waiting.set(answer)
        self.gone = f"{self.command} exited with status {self.process.wait()}"
        for waiting in list(self.waiting.values()):
            waiting.set_exception(EngineGone(self.gone))

    def close(self) -> None:
        """Hang up everything it carries (SIGTERM) and wait for it to end."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=ENGINE_CLOSE_SECONDS)
            except gevent_subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=ENGINE_CLOSE_SECONDS)


_engines: dict[tuple[str, ...], EngineProcess] = {}
_starting = Semaphore()  # users spawned together start one engine, not one each


def engine_for(options: list[str], host: str | None) -> EngineProcess:
    """This process's engine for these options, started on first use."""
    key = (*options, host or "")
    with _starting:
        engine = _engines.get(key)
        if engine is None or engine.gone is not None:
            engine = _engines[key] = EngineProcess(options, host)
    return engine


def close_engines(**_: Any) -> None:
    """Stop every engine of this process (the test stopped, or Locust is quitting)."""
    while _engines:
        _engines.popitem()[1].close()


def _add_options(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--sip-options", type=str, default="", env_var="LOCUST_SIP_OPTIONS",
        include_in_web_ui=True,
        help="softphone load options for every SipUser's calls, e.g. "
             "\"--user alice --password secret --proxy sip:pbx --codec pcmu\"")


def _listen(hook: Any, listener: Callable[..., None]) -> None:
    """Locust's EventHook.add_listener is untyped; the hook comes in as Any."""
    hook.add_listener(listener)


_listen(events.init_command_line_parser, _add_options)
_listen(events.test_stop, close_engines)
_listen(events.quitting, close_engines)


class SipUser(User):
    """A simulated caller: each task iteration places one call to ``target`` (else Locust's
    ``--host``) and holds it ``duration`` seconds, or runs the ``scenario`` file. ``options``
    are ``softphone load`` options (account, codec, media, network) added after Locust's
    ``--sip-options``."""

    abstract = True
    target: ClassVar[str | None] = None
    duration: ClassVar[float] = 2.0
    scenario: ClassVar[str | None] = None
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        parsed = environment.parsed_options
        self.engine_options = [*shlex.split(getattr(parsed, "sip_options", "") or ""),
                               *self.options]

    @property
    def engine(self) -> EngineProcess:
        return engine_for(self.engine_options, self.host)

    @task
    def place_call(self) -> None:
        """The default task: a call, or the scenario when one is set."""
        if self.scenario is not None:
            self.run_scenario(self.scenario)
        else:
            self.call()

    def call(self, uri: str | None = None, duration: float | None = None) -> dict[str, Any]:
        """Place one call and record it (and its media figures); returns the engine's row."""
        uri = uri or self.target or self.host
        if not uri:
            raise ValueError("SipUser needs a target or Locust's --host (a SIP URI)")
        answer = self._ask({"op": "call", "uri": uri,
                            "duration": self.duration if duration is None else duration})
        if "error" in answer:
            self._record("INVITE", "engine error", 0.0, EngineGone(answer["error"]))
            return answer
        status, reason = answer["status"], answer["reason"]
        answered = answer["setup_ms"] is not None
        name = "200 OK" if answered else f"{status} {reason}"
        self._record("INVITE", name, answer["response_ms"],
                     None if answered else CallFailed(name))
        if answered and (answer["packets_sent"] or answer["packets_received"]):
            self._record_media(answer)
        return answer

    def run_scenario(self, path: str) -> dict[str, Any]:
        """Run one scenario file in the engine and record it and each of its steps."""
        answer = self._ask({"op": "scenario", "path": path})
        if "error" in answer:
            self._record("SCENARIO", path, 0.0, EngineGone(answer["error"]))
            return answer
        name = answer["scenario"]
        for step in answer["steps"]:
            self._record("STEP", f"{name}: {step['description']}", step["seconds"] * 1000,
                         None if step["ok"] else ScenarioFailed(step["message"]))
        passed = answer["outcome"] in ("passed", "skipped")
        self._record("SCENARIO", name, answer["seconds"] * 1000,
                     None if passed else ScenarioFailed(f"{answer['outcome']}: "
                                                        f"{answer['why']}"))
        return answer

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.engine.ask(request)
        except EngineGone as gone:
            return {"error": str(gone)}

    def _record_media(self, row: dict[str, Any]) -> None:
        received, lost = row["packets_received"], row["packets_lost"]
        mos = row["mos"] or 0.0
        self._record("RTP", "MOS x100", round(mos * 100, 1),
                     None if received else NoAudio("no RTP received"))
        self._record("RTP", "loss per mille",
                     1000 * lost / (received + lost) if received + lost else 0.0, None)
        self._record("RTP", "jitter ms", row["jitter_ms"], None)

    def _record(self, kind: str, name: str, milliseconds: float,
                exception: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=kind, name=name, response_time=milliseconds, response_length=0,
            exception=exception, context={})
