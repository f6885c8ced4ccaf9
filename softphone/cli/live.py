"""Running a command interactively: the live view on screen, keys acting on the current call.

Keys: h hang up, 0-9 * # send DTMF, m mute, p hold/resume, t transfer (asks for the target:
Enter sends, Escape gives up), q quit (hanging up first); for a ringing incoming call: a
answer, r reject (486), d decline (603). On q or Ctrl-C the calls
are hung up while the view still shows them, so its last frame says how they ended."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.live import Live

from softphone.cli.keys import keys
from softphone.cli.view import CallView
from softphone.rtp.dtmf import DIGITS
from softphone.sip.errors import SipError
from softphone.ua.agent import UserAgent
from softphone.ua.call import Call
from softphone.ua.events import Ended, Event

T = TypeVar("T")
REFRESH = 0.125


class LiveSession:
    def __init__(self, agent: UserAgent, console: Console | None = None,
                 title: str = "softphone") -> None:
        self.agent = agent
        self.console = console or Console()
        self.view = CallView(title)
        self.quit = asyncio.Event()
        self.transfer_target: str | None = None  # being typed after t; None: not asked
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
        if self.transfer_target is not None:
            self._type_target(char)
            return
        if char == "q":
            self.quit.set()  # run() hangs up, keeping the view on screen meanwhile
            return
        call = self.current()
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
        elif char == "t" and call.state == "answered":
            self.transfer_target = self.view.prompt = ""

    def _type_target(self, char: str) -> None:
        """The transfer's target, typed a key at a time: Enter sends the REFER, Escape
        gives up, Backspace takes back; ``user@host`` is taken as a sip: URI."""
        typed = self.transfer_target or ""
        call = self.current()
        if char in ("\r", "\n"):
            self.transfer_target = self.view.prompt = None
            target = typed.strip()
            if target and call is not None and call.state == "answered":
                uri = target if ":" in target.split("@")[0] else f"sip:{target}"
                self.view.log.append(f"transferring to {uri} ...")
                self.agent.spawn(self._guarded(self._transfer(call, uri)))
        elif char == "\x1b":
            self.transfer_target = self.view.prompt = None
        elif char in ("\x7f", "\b"):
            self.transfer_target = self.view.prompt = typed[:-1]
        elif char.isprintable():
            self.transfer_target = self.view.prompt = typed + char

    async def _transfer(self, call: Call, target: str) -> None:
        result = await call.transfer(target)
        self.view.log.append(f"transfer: {result.status} {result.reason}")

    async def _guarded(self, action: Awaitable[object]) -> None:
        try:
            await action
        except (SipError, ValueError) as error:
            self.view.log.append(f"{error}")

    async def run(self, work: Awaitable[T], stop: asyncio.Event) -> T | None:
        """``work``'s result, or None when stopped by Ctrl-C or q (after hanging up)."""
        work_task = asyncio.ensure_future(work)
        stopped = asyncio.ensure_future(stop.wait())
        quitting = asyncio.ensure_future(self.quit.wait())
        with keys(self.key), Live(self.view.render(), console=self.console,
                                  refresh_per_second=8) as live:
            await self._refresh_until(live, [work_task, stopped, quitting])
            stopped.cancel()
            quitting.cancel()
            interrupted = not work_task.done()
            if interrupted:
                work_task.cancel()  # no new calls; those up are hung up on screen
                await self._refresh_until(live, [asyncio.ensure_future(self._hang_up_all())])
            live.update(self.view.render())
        return None if interrupted else work_task.result()

    async def _refresh_until(self, live: Live, waiters: Sequence[asyncio.Future[Any]]) -> None:
        """Redraw until the first of ``waiters`` is done."""
        while not any(waiter.done() for waiter in waiters):
            live.update(self.view.render())
            await asyncio.wait(waiters, timeout=REFRESH, return_when=asyncio.FIRST_COMPLETED)

    async def _hang_up_all(self) -> None:
        """Every call still up, hung up at once, waiting at most the agent's close bound."""
        hangups = [asyncio.ensure_future(call.hangup()) for call in self.view.calls
                   if not call.is_over]
        if hangups:
            await asyncio.wait(hangups, timeout=self.agent.config.close_timeout)
        for call in self.view.calls:
            call.abandon("No answer to our hang-up")


async def through_transfers(call: Call, session: LiveSession | None) -> Ended:
    """The end of the call, or, when its peer transferred us (REFER), of the call that
    followed: the command lives as long as the conversation does."""
    ended = await asyncio.shield(call.ended)
    while call.transferred.done():
        call = call.transferred.result()
        if session is not None:
            session.view.watch(call)
        ended = await asyncio.shield(call.ended)
    return ended
