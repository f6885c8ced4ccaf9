"""The engine made comfortable for automated call tests (and the pytest plugin's fixtures).

    async with TestAgent("alice") as alice, TestAgent("ivr") as ivr:
        call = await alice.call(ivr.uri)
        incoming = await ivr.next_call()
        await incoming.answer()
        await call.answered()
        incoming.play_tone(440)
        await call.hears_tone(440, seconds=1)
        await call.send_dtmf("12#")
        await incoming.receives_dtmf("12#")
        await call.hangup()
        await incoming.ended(by="remote")

Every wait takes a timeout and raises ExpectationFailed saying what happened instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from softphone.media.ports import AudioSink, AudioSource, Monitor, Silence, Switch, Tone
from softphone.media.quality import level_dbfs, tone_level
from softphone.media.wav import WavSink, WavSource
from softphone.ua.agent import AgentConfig, UserAgent
from softphone.ua.call import Call
from softphone.ua.events import Dtmf, Ended, Event, Ringing

Window = npt.NDArray[np.int16]
POLL = 0.05
TONE_SHARE, SILENCE_DBFS, SPEECH_DBFS = 0.5, -50.0, -40.0


class ExpectationFailed(AssertionError):
    """What a test waited for did not happen; the message says what did."""


async def until_heard(monitor: Monitor, holds: Callable[[Window, int], bool],
                      seconds: float) -> None:
    """Return once the last ``seconds`` of what ``monitor`` heard satisfy ``holds``."""
    while True:
        window = monitor.last(seconds)
        if len(window) >= int(seconds * monitor.rate) * 0.95 and holds(window, monitor.rate):
            return
        await asyncio.sleep(POLL)


def is_tone(hz: float, floor_dbfs: float = -40.0) -> Callable[[Window, int], bool]:
    return lambda w, rate: tone_level(w, rate, hz) > TONE_SHARE and level_dbfs(w) > floor_dbfs


def is_silence(window: Window, rate: int) -> bool:
    return level_dbfs(window) < SILENCE_DBFS


def is_speech(window: Window, rate: int) -> bool:
    return level_dbfs(window) > SPEECH_DBFS


class EventLog:
    """Every event an agent emits, kept in order, with ways to wait for more."""

    def __init__(self, agent: UserAgent) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        agent.add_listener(self._note)

    def _note(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def next_change(self) -> None:
        """Until the next event arrives."""
        self._changed.clear()
        await self._changed.wait()

    async def wait_for(self, found: Callable[[Event], bool]) -> Event:
        """The first event, past or future, that ``found`` accepts."""
        seen = 0
        while True:
            for event in self.events[seen:]:
                if found(event):
                    return event
            seen = len(self.events)
            await self.next_change()


class TestCall:
    """One call of a TestAgent, with its own audio source and monitor."""

    __test__ = False  # not a pytest test class

    def __init__(self, agent: TestAgent, call: Call) -> None:
        self.agent = agent
        self.call = call
        self.source, self.monitor = agent.ports_of(call)

    async def _within(self, timeout: float, what: str, waiting: object) -> object:
        try:
            return await asyncio.wait_for(waiting, timeout)  # type: ignore[arg-type]
        except TimeoutError:
            raise ExpectationFailed(f"{what} did not happen within {timeout:g} s "
                                    f"(the call is {self.call.state})") from None

    async def ringing(self, timeout: float = 5.0) -> None:
        call_id = self.call.call_id
        await self._within(timeout, "ringing", self.agent.wait_event(
            lambda e: isinstance(e, Ringing) and e.call_id == call_id))

    async def answered(self, timeout: float = 5.0) -> None:
        if not await self._within(timeout, "answer", asyncio.shield(self.call.answered)):
            ended = self.call.ended.result()
            raise ExpectationFailed(f"not answered: {ended.status} {ended.reason}")

    async def ended(self, timeout: float = 5.0, by: str | None = None,
                    status: int | None = None) -> Ended:
        ended = await self._within(timeout, "the end of the call",
                                   asyncio.shield(self.call.ended))
        assert isinstance(ended, Ended)
        if by is not None and ended.by != by:
            raise ExpectationFailed(f"ended by {ended.by}, not {by}: {ended.status} "
                                    f"{ended.reason}")
        if status is not None and ended.status != status:
            raise ExpectationFailed(f"ended with {ended.status} {ended.reason}, not {status}")
        return ended

    async def receives_dtmf(self, digits: str, timeout: float = 5.0) -> None:
        call_id = self.call.call_id

        def heard() -> str:
            return "".join(e.digit for e in self.agent.events
                           if isinstance(e, Dtmf) and e.call_id == call_id)

        async def wait() -> None:
            while digits.upper() not in heard():
                await self.agent.next_change()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise ExpectationFailed(f"DTMF {digits!r} not received within {timeout:g} s "
                                    f"(heard {heard()!r})") from None

    async def hears_tone(self, hz: float, seconds: float = 1.0, timeout: float = 5.0) -> None:
        await self._within(timeout, f"a {hz:g} Hz tone for {seconds:g} s",
                           until_heard(self.monitor, is_tone(hz), seconds))

    async def hears_silence(self, seconds: float = 1.0, timeout: float = 5.0) -> None:
        await self._within(timeout, f"{seconds:g} s of silence",
                           until_heard(self.monitor, is_silence, seconds))

    async def hears_speech(self, seconds: float = 1.0, timeout: float = 5.0) -> None:
        await self._within(timeout, f"{seconds:g} s of speech energy",
                           until_heard(self.monitor, is_speech, seconds))

    def play(self, wav: str | Path) -> None:
        self.source.set(WavSource(wav))

    def play_tone(self, hz: float) -> None:
        self.source.set(Tone(hz))

    def quiet(self) -> None:
        self.source.set(Silence())

    def record(self, wav: str | Path) -> None:
        self.monitor.recording = WavSink(wav)

    async def send_dtmf(self, digits: str) -> None:
        await self.call.send_dtmf(digits)

    async def answer(self) -> None:
        await self.call.answer()

    async def ring(self) -> None:
        await self.call.ring()

    async def reject(self, status: int = 486) -> None:
        await self.call.reject(status)

    async def hangup(self) -> None:
        await self.call.hangup()


class TestAgent:
    """A UserAgent on loopback whose calls are TestCalls."""

    __test__ = False

    def __init__(self, user: str = "test", codecs: tuple[str, ...] = ("pcmu", "pcma", "opus"),
                 **config: object) -> None:
        self._ports: dict[str, tuple[Switch, Monitor]] = {}
        self.agent = UserAgent(AgentConfig(listen_host="127.0.0.1", listen_port=0, user=user,
                                           codecs=codecs, port_factory=self._make_ports,
                                           **config))  # type: ignore[arg-type]
        self.log = EventLog(self.agent)

    @property
    def events(self) -> list[Event]:
        return self.log.events

    async def wait_event(self, found: Callable[[Event], bool]) -> Event:
        return await self.log.wait_for(found)

    async def next_change(self) -> None:
        await self.log.next_change()

    def _make_ports(self, call: Call) -> tuple[AudioSource, AudioSink]:
        return self.ports_of(call)

    def ports_of(self, call: Call) -> tuple[Switch, Monitor]:
        if call.call_id not in self._ports:
            self._ports[call.call_id] = (Switch(), Monitor())
        return self._ports[call.call_id]

    @property
    def uri(self) -> str:
        return f"sip:{self.agent.config.user}@127.0.0.1:{self.agent.port}"

    async def call(self, uri: str) -> TestCall:
        return TestCall(self, await self.agent.call(uri))

    async def next_call(self, timeout: float = 5.0) -> TestCall:
        try:
            call = await asyncio.wait_for(self.agent.incoming.get(), timeout)
        except TimeoutError:
            raise ExpectationFailed(f"no call arrived within {timeout:g} s") from None
        return TestCall(self, call)

    async def __aenter__(self) -> TestAgent:
        await self.agent.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.agent.close()
