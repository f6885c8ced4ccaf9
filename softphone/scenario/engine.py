"""The call engine as a service on a pipe: requests in, one JSON line per result out.

``softphone engine`` reads requests as JSON lines on stdin and answers each with one JSON line
on stdout, carrying its ``id``. It is how a program that cannot run an asyncio loop of its own
drives softphone: Locust's workers (``softphone.locust``) are gevent processes whose
monkey-patched sockets, selectors and threads an asyncio engine must not share, so each Locust
worker starts one engine process and its greenlets wait on the pipe, cooperatively. Every
request runs as a task of its own, concurrently, on one agent.

Requests::

    {"id": 1, "op": "call", "uri": "sip:bob@pbx", "duration": 2.0}
    {"id": 2, "op": "scenario", "path": "checks/ivr.toml"}

A call's answer is the load row (``softphone load --json``) plus ``response_ms``, the time
from the INVITE to its final response; a scenario's is its outcome, seconds, why it failed
and each step's result. A request that cannot be understood is answered with ``error``. End
of input hangs up every call and ends the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from softphone.scenario.load import place_call
from softphone.scenario.model import ScenarioError, load_scenario
from softphone.scenario.runner import ScenarioResult, run_scenario
from softphone.ua.agent import UserAgent

log = logging.getLogger("softphone.engine")

Reply = Callable[[dict[str, Any]], None]


class BadRequest(ValueError):
    """A request line that is not a request this engine serves; the message says why."""


class Engine:
    """Serves requests on one agent: ``default_uri`` and ``duration`` fill what a call
    request leaves out."""

    def __init__(self, agent: UserAgent, default_uri: str | None, duration: float,
                 reply: Reply) -> None:
        self.agent = agent
        self.default_uri = default_uri
        self.duration = duration
        self.reply = reply
        self.tasks: set[asyncio.Task[None]] = set()
        self.served = 0

    def submit(self, line: str) -> None:
        """Start serving one request line; a bad one is answered with ``error`` at once."""
        request_id: object = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise BadRequest("a request is a JSON object")
            request_id = request.get("id")
            work = self._work(request)
        except (ValueError, BadRequest) as error:
            self.reply({"id": request_id, "error": f"bad request: {error}"})
            return
        task = asyncio.ensure_future(self._answer(request_id, work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _work(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        if op == "call":
            uri = request.get("uri") or self.default_uri
            if not isinstance(uri, str):
                raise BadRequest("a call needs a uri (none given, and no --target)")
            duration = request.get("duration", self.duration)
            if not isinstance(duration, int | float) or duration < 0:
                raise BadRequest(f"duration must be a number of seconds >= 0, not {duration!r}")
            return self._call(uri, float(duration))
        if op == "scenario":
            path = request.get("path")
            if not isinstance(path, str):
                raise BadRequest("a scenario needs a path")
            return self._scenario(Path(path))
        raise BadRequest(f"unknown op {op!r}: call or scenario")

    async def _answer(self, request_id: object, work: Any) -> None:
        try:
            result = await work
        except Exception as error:  # one request's failure is its answer, never the engine's
            log.exception("request %s failed", request_id)
            result = {"error": f"{type(error).__name__}: {error}"}
        self.served += 1
        self.reply({"id": request_id, **result})

    async def _call(self, uri: str, duration: float) -> dict[str, Any]:
        row, response_ms = await place_call(self.agent, uri, duration, self.served)
        return {**row.to_json(), "response_ms": round(response_ms, 2)}

    async def _scenario(self, path: Path) -> dict[str, Any]:
        try:
            scenario = load_scenario(path)
        except (ScenarioError, OSError) as error:
            return {"scenario": str(path), "outcome": "error", "why": str(error),
                    "seconds": 0.0, "steps": []}
        return scenario_answer(await run_scenario(scenario))

    async def drain(self) -> None:
        """Wait for what is still running (the agent's close hangs its calls up)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def scenario_answer(result: ScenarioResult) -> dict[str, Any]:
    """What a scenario request answers: the outcome and each step, without the SIP trace."""
    return {"scenario": result.name, "outcome": result.outcome, "why": result.error,
            "seconds": result.seconds,
            "steps": [{"number": step.number, "description": step.description,
                       "ok": step.ok, "seconds": step.seconds, "message": step.message}
                      for step in result.steps]}


async def serve(engine: Engine, lines: asyncio.StreamReader, stop: asyncio.Event) -> None:
    """Serve request lines until end of input, then let what runs finish; ``stop`` (SIGTERM,
    Ctrl-C) hangs up what is running at once instead."""
    reading = asyncio.ensure_future(_read_all(engine, lines))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    reading.cancel()
    stopping.cancel()
    await engine.agent.close()
    await engine.drain()


async def _read_all(engine: Engine, lines: asyncio.StreamReader) -> None:
    while line := await lines.readline():
        if line.strip():
            engine.submit(line.decode("utf-8", "replace"))
    await engine.drain()
