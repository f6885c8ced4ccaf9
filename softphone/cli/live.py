"""Running a command interactively: the live view on screen, keys acting on the current call.

Keys: h hang up, 0-9 * # send DTMF, m mute, p hold/resume, t transfer (asks for the target:
Enter sends, Escape gives up), q quit (hanging up first); for a ringing incoming call: a
answer, r reject (486), d decline (603). Several calls at once: a second call rings beside
the first (the call-waiting tone plays in the one being talked on); answering it holds the
others; Tab switches to the next call (holding the one left, resuming the one chosen); j joins
every answered call into a local conference. Keys act on the chosen call (marked ▶). On q or
Ctrl-C the calls are hung up while the view still shows them, so its last frame says how they
ended."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.live import Live

from softphone.cli.keys import keys
from softphone.cli.view import CallView
from softphone.media.ports import CallWaiting
from softphone.rtp.dtmf import DIGITS
from softphone.sip.errors import SipError
from softphone.ua.agent import UserAgent
from softphone.ua.call import Call
from softphone.ua.conference import Conference
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
        self.selected: Call | None = None  # the call keys act on (None: the newest)
        self.conference: Conference | None = None  # made by j
        self._beeping: dict[Call, CallWaiting] = {}  # calls hearing the call-waiting tone
        agent.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        call_id = getattr(event, "call_id", None)
        for call in self.agent.calls:
            if call.call_id == call_id:
                self.view.watch(call)
        self.view.on_event(event)
        self._call_waiting()

    def live_calls(self) -> list[Call]:
        return [call for call in self.view.calls if not call.is_over]

    def current(self) -> Call | None:
        live = self.live_calls()
        if self.selected in live:
            return self.selected
        return live[-1] if live else None

    def ringing(self) -> Call | None:
        """The newest incoming call still ringing: a, r and d are for it."""
        return next((call for call in reversed(self.live_calls())
                     if call.direction == "incoming" and call.state in ("incoming", "ringing")),
                    None)

    def key(self, char: str) -> None:
        if self.transfer_target is not None:
            self._type_target(char)
            return
        if char == "q":
            self.quit.set()  # run() hangs up, keeping the view on screen meanwhile
            return
        ringing = self.ringing()
        if ringing is not None and char.lower() in ("a", "r", "d"):
            choice = char.lower()
            if choice == "a":
                self.agent.spawn(self._guarded(self._answer(ringing)))
            else:
                self.agent.spawn(ringing.reject(486 if choice == "r" else 603))
            return
        call = self.current()
        if call is None:
            return
        if char == "\t":
            self.agent.spawn(self._guarded(self._switch()))
        elif char == "j":
            self.agent.spawn(self._guarded(self._join()))
        elif call.state != "answered":
            if char == "h":
                self.agent.spawn(call.hangup())
        elif char == "h":
            self.agent.spawn(call.hangup())
        elif char.upper() in DIGITS and call.state == "answered":
            self.agent.spawn(self._guarded(call.send_dtmf(char)))
        elif char == "m" and call.stream is not None:
            call.stream.muted = not call.stream.muted
        elif char == "p" and call.state == "answered":
            action = self._resume(call) if self._held_by_us(call) else self._hold(call)
            self.agent.spawn(self._guarded(action))
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

    # --- several calls: answer beside, switch, join -------------------------------------------

    def _held_by_us(self, call: Call) -> bool:
        return call.media is not None and call.media.direction in ("sendonly", "inactive")

    async def _hold(self, call: Call) -> None:
        """Hold, and send the held peer nothing of our microphone."""
        if call.stream is not None:
            call.stream.muted = True
        await call.hold()

    async def _resume(self, call: Call) -> None:
        await call.resume()
        if call.stream is not None:
            call.stream.muted = False

    def _talking(self, besides: Call | None = None) -> list[Call]:
        """Answered calls we are not holding, outside the conference (what a new active
        call puts on hold)."""
        joined = self.conference.legs if self.conference is not None else {}
        return [call for call in self.live_calls() if call is not besides
                and call.state == "answered" and not self._held_by_us(call)
                and call not in joined]

    async def _answer(self, call: Call) -> None:
        """Answer ``call``; the calls being talked on go on hold first."""
        for other in self._talking(besides=call):
            await self._hold(other)
        self.selected = call
        await call.answer()

    async def _switch(self) -> None:
        """Tab: the next call becomes the chosen one; between answered calls, the one left
        is held and the one chosen resumed (a phone's swap)."""
        live = self.live_calls()
        current = self.current()
        if len(live) < 2 or current is None:
            return
        chosen = live[(live.index(current) + 1) % len(live)]
        self.selected = chosen
        if chosen.state == "answered" and self._held_by_us(chosen):
            for other in self._talking(besides=chosen):
                await self._hold(other)
            await self._resume(chosen)

    async def _join(self) -> None:
        """j: every answered call into one local conference (held ones resumed)."""
        answered = [call for call in self.live_calls() if call.state == "answered"]
        if len(answered) < 2:
            self.view.log.append("a conference needs two answered calls")
            return
        if self.conference is None:
            self.conference = self.agent.conference()
        for call in answered:
            if self._held_by_us(call):
                await self._resume(call)
            if call not in self.conference.legs:
                await self.conference.add(call)
        self.view.conference = {call.call_id for call in self.conference.legs}
        self.view.log.append(f"conference: {len(self.conference.legs)} calls")

    def _call_waiting(self) -> None:
        """While a call rings beside one we talk on, that one hears the call-waiting tone."""
        beep = self.ringing() is not None
        for call in self.live_calls():
            stream = call.stream
            wanted = beep and call.state == "answered" and not self._held_by_us(call)
            if wanted and call not in self._beeping and stream is not None:
                self._beeping[call] = CallWaiting(stream.sink)
                stream.sink = self._beeping[call]
        for call, tone in list(self._beeping.items()):
            if not beep or call.is_over or self._held_by_us(call):
                if call.stream is not None and call.stream.sink is tone:
                    call.stream.sink = tone.inner
                del self._beeping[call]

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
            self.view.selected = self.current()
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
