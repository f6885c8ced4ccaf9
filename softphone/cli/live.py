"""Running a command interactively: the live view on screen, keys acting on the current call.

Keys: h hang up, 0-9 * # send DTMF, m mute, p hold/resume, q quit (hanging up first); for a
ringing incoming call: a answer, r reject (486), d decline (603)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from rich.console import Console
from rich.live import Live

from softphone.cli.keys import keys
from softphone.cli.view import CallView
from softphone.rtp.dtmf import DIGITS
from softphone.sip.errors import SipError
from softphone.ua.agent import UserAgent
from softphone.ua.call import Call
from softphone.ua.events import Event

T = TypeVar("T")
REFRESH = 0.125


class LiveSession:
    def __init__(self, agent: UserAgent, console: Console | None = None) -> None:
        self.agent = agent
        self.console = console or Console()
        self.view = CallView()
        self.quit = asyncio.Event()
        agent.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        call_id = getattr(event, "call_id", None)
        for call in self.agent.calls:
            if call.call_id == call_id:
                self.view.watch(call)
        self.view.on_event(event)

    def current(self) -> Call | None:
        live = [call for call in self.view.calls if not call.is_over]
        return live[-1] if live else None

    def key(self, char: str) -> None:
        call = self.current()
        if char == "q":
            if call is not None:
                self.agent.spawn(call.hangup())
            self.quit.set()
            return
        if call is None:
            return
        ringing_here = call.direction == "incoming" and call.state in ("incoming", "ringing")
        if ringing_here:
            choice = char.lower()
            if choice == "a":
                self.agent.spawn(call.answer())
            elif choice in ("r", "d"):
                self.agent.spawn(call.reject(486 if choice == "r" else 603))
            return
        if char == "h":
            self.agent.spawn(call.hangup())
        elif char.upper() in DIGITS and call.state == "answered":
            self.agent.spawn(self._guarded(call.send_dtmf(char)))
        elif char == "m" and call.stream is not None:
            call.stream.muted = self.view.muted = not call.stream.muted
        elif char == "p" and call.state == "answered":
            held = call.media is not None and call.media.direction != "sendrecv"
            self.agent.spawn(self._guarded(call.resume() if held else call.hold()))

    async def _guarded(self, action: Awaitable[object]) -> None:
        try:
            await action
        except SipError as error:
            self.view.log.append(f"{error}")

    async def run(self, work: Awaitable[T], stop: asyncio.Event) -> T | None:
        """``work``'s result, or None when stopped by Ctrl-C or q."""
        done = asyncio.Event()
        work_task = asyncio.ensure_future(work)
        work_task.add_done_callback(lambda _: done.set())
        waiters = [asyncio.ensure_future(e.wait()) for e in (done, stop, self.quit)]
        with keys(self.key), Live(self.view.render(), console=self.console,
                                  refresh_per_second=8) as live:
            while not any(w.done() for w in waiters):
                live.update(self.view.render())
                await asyncio.wait(waiters, timeout=REFRESH, return_when=asyncio.FIRST_COMPLETED)
            live.update(self.view.render())
        for waiter in waiters:
            waiter.cancel()
        if work_task.done():
            return work_task.result()
        work_task.cancel()
        return None
