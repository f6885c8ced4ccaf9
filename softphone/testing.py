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

Signalling without sockets or sleeping: ``VirtualNetwork`` runs user-agent cores on a
virtual clock over an in-memory network (messages can be lost, delayed, duplicated), for
tests of call flows and races that must not depend on timing::

    net = VirtualNetwork()
    alice, bob = net.agent("alice"), net.agent("bob")
    call = alice.call(bob.uri)
    net.run(until=lambda: bool(bob.incoming()))
    bob.answer(bob.incoming()[0])
    net.run(seconds=10)          # ten virtual seconds, in milliseconds of real time
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from softphone.core.network import VirtualAgent, VirtualNetwork, is_request, is_response
from softphone.media.ports import (
    AudioSink,
    AudioSource,
    BothWays,
    DtmfTones,
    Monitor,
    Silence,
    Switch,
    Tone,
)
from softphone.media.quality import detect_dtmf, level_dbfs, similarity, tone_level
from softphone.media.speech import (
    DEFAULT_MAX_WER,
    DEFAULT_VOICE,
    Transcriber,
    synthesize,
    word_error_rate,
    words_of,
)
from softphone.media.stream import StreamStats
from softphone.media.voice import HANGOVER_SECONDS, Conversation, ConversationFigures, Segment
from softphone.media.wav import WavSink, WavSource, load_wav, resample
from softphone.sip.uri import format_host
from softphone.ua.agent import AgentConfig, UserAgent
from softphone.ua.call import Call
from softphone.ua.events import (
    Answered,
    Dtmf,
    EarlyMedia,
    Ended,
    Event,
    Hold,
    MessageReceived,
    Mwi,
    Ringing,
    TransferProgress,
)

E = TypeVar("E", bound=Event)

Window = npt.NDArray[np.int16]
POLL = 0.05
TONE_SHARE, SILENCE_DBFS, SPEECH_DBFS = 0.5, -50.0, -40.0
QUALITY_PACKETS = 50  # a second of 20 ms packets before a MOS means anything


class ExpectationFailed(AssertionError):
    """What a test waited for did not happen; the message says what did."""


class WordsNotHeard(ExpectationFailed):
    """hears_words did not recognise its phrase; ``heard`` is the transcript it got."""

    def __init__(self, message: str, heard: str) -> None:
        super().__init__(message)
        self.heard = heard


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


def has_dtmf(digits: str) -> Callable[[Window, int], bool]:
    wanted = digits.upper()
    return lambda w, rate: wanted in detect_dtmf(w, rate)


def is_like(reference: Window, reference_rate: int,
            threshold: float) -> Callable[[Window, int], bool]:
    """Whether a window contains ``reference`` (aligned, normalised correlation)."""
    converted: dict[int, Window] = {}

    def holds(window: Window, rate: int) -> bool:
        if rate not in converted:
            converted[rate] = resample(reference, reference_rate, rate)
        return similarity(converted[rate], window).score >= threshold

    return holds


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
        self._digits_taken = 0  # received digits that receives_dtmf has matched already
        self._words_taken = 0  # monitor position up to which hears_words matched already

    @property
    def conversation(self) -> Conversation:
        """When each side of the call spoke: the call's own voice activity (the agent runs
        with ``voice_timing``), an empty one while no media has started."""
        return self.agent.conversation_of(self.call.call_id)

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

    async def early_media(self, timeout: float = 5.0) -> EarlyMedia:
        """Media before the answer started on this call (a 183 with SDP, sent or received):
        what this call's monitor hears from now on is the network's ringback or
        announcement. Fails when the call is answered or ends first."""
        call_id = self.call.call_id
        found = await self._within(timeout, "early media", self.agent.wait_event(
            lambda e: (isinstance(e, EarlyMedia | Answered | Ended)) and e.call_id == call_id))
        if not isinstance(found, EarlyMedia):
            raise ExpectationFailed(f"no early media: the call was {self.call.state} first")
        return found

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

    async def final_status(self, status: int, timeout: float = 5.0) -> None:
        """The call's final status is ``status``: 200 for an answer, else the failure it
        ended with (an answer when a failure was wanted fails at once)."""
        answered = await self._within(timeout, f"a final status ({status})",
                                      asyncio.shield(self.call.answered))
        if answered:
            if status != 200:
                raise ExpectationFailed(f"final status was 200 (answered), not {status}")
            return
        ended = self.call.ended.result()
        if ended.status != status:
            raise ExpectationFailed(f"final status was {ended.status} {ended.reason}, "
                                    f"not {status}")

    def digits_received(self) -> str:
        call_id = self.call.call_id
        return "".join(e.digit for e in self.agent.events
                       if isinstance(e, Dtmf) and e.call_id == call_id)

    async def receives_dtmf(self, digits: str, timeout: float = 5.0) -> None:
        """The next digits the call receives are ``digits``: those an earlier receives_dtmf
        matched do not count again, and a wrong digit fails at once."""
        wanted = digits.upper()

        def pending() -> str:
            return self.digits_received()[self._digits_taken:]

        async def wait() -> None:
            while True:
                heard = pending()[: len(wanted)]
                if not wanted.startswith(heard):
                    raise ExpectationFailed(f"DTMF {digits!r} expected, heard {heard!r}")
                if heard == wanted:
                    self._digits_taken += len(wanted)
                    return
                await self.agent.next_change()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise ExpectationFailed(f"DTMF {digits!r} not received within {timeout:g} s "
                                    f"(heard {pending()!r})") from None

    async def hears_tone(self, hz: float, seconds: float = 1.0, timeout: float = 5.0,
                         floor_dbfs: float = -40.0) -> None:
        await self._within(timeout, f"a {hz:g} Hz tone for {seconds:g} s",
                           until_heard(self.monitor, is_tone(hz, floor_dbfs), seconds))

    async def hears_dtmf_tones(self, digits: str, seconds: float | None = None,
                               timeout: float = 5.0) -> None:
        """In-band DTMF: ``digits`` heard as tone pairs within the last ``seconds``."""
        window = seconds if seconds is not None else 0.15 * len(digits) + 1.0
        await self._within(timeout, f"DTMF tones {digits!r}",
                           until_heard(self.monitor, has_dtmf(digits), window))

    async def hears_recording(self, wav: str | Path, threshold: float = 0.8,
                              timeout: float = 10.0) -> None:
        """What the call heard lately contains the WAV file intact (a prompt, say)."""
        reference, rate = load_wav(wav)
        length = len(reference) / rate
        self.monitor.keep_seconds = max(self.monitor.keep_seconds, 2 * length)
        await self._within(timeout, f"{Path(wav).name} heard (similarity >= {threshold:g})",
                           until_heard(self.monitor, is_like(reference, rate, threshold),
                                       length + 0.5))

    async def hears_silence(self, seconds: float = 1.0, timeout: float = 5.0) -> None:
        await self._within(timeout, f"{seconds:g} s of silence",
                           until_heard(self.monitor, is_silence, seconds))

    async def hears_speech(self, seconds: float = 1.0, timeout: float = 5.0) -> None:
        await self._within(timeout, f"{seconds:g} s of speech energy",
                           until_heard(self.monitor, is_speech, seconds))

    async def hears_words(self, phrase: str, timeout: float = 10.0,
                          max_wer: float = DEFAULT_MAX_WER) -> str:
        """The far end says ``phrase``: recognised offline from what the call heard since the
        last words matched (or the call began, as far as the monitor keeps), a word error rate
        of at most ``max_wer`` allowed. Returns the transcript; a failure quotes it."""
        expected = words_of(phrase)
        transcriber = await Transcriber.start()
        # the last part of the timeout lets the recogniser finish what it was given
        listening = timeout - min(2.0, timeout / 4)
        try:
            heard = await self._listen(transcriber, expected, max_wer, listening)
            if heard is None:
                heard = await transcriber.finish(timeout - listening)
        finally:
            await transcriber.close()
        error = word_error_rate(expected, words_of(heard))
        if error > max_wer:
            raise WordsNotHeard(f"words {phrase!r} not heard within {timeout:g} s "
                                f"(heard {heard!r}, word error rate {error:.0%})", heard)
        return heard

    async def _listen(self, transcriber: Transcriber, expected: list[str], max_wer: float,
                      seconds: float) -> str | None:
        """Feed the recogniser until its hypothesis holds the words (returned) or
        ``seconds`` pass (None)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            heard = self.monitor.since(self._words_taken)
            self._words_taken = self.monitor.written
            transcriber.feed(heard, self.monitor.rate)
            if expected and word_error_rate(expected, words_of(transcriber.text)) <= max_wer:
                return transcriber.text
            await transcriber.changed(min(POLL * 2, max(0.0, deadline - loop.time())))
        return None

    async def quality_at_least(self, min_mos: float, timeout: float = 5.0) -> float:
        """What the call heard so far scores at least ``min_mos`` (the E-model of ITU-T G.107
        from its loss, jitter and delay, as the ended event's ``mos``), judged once a second
        of packets has arrived; returns the score."""
        async def scored() -> StreamStats:
            while True:
                stream = self.call.stream
                if stream is not None:
                    stats = stream.snapshot()
                    if stats.packets_received >= QUALITY_PACKETS and stats.mos is not None:
                        return stats
                await asyncio.sleep(POLL)

        stats: StreamStats = await self._within(  # type: ignore[assignment]
            timeout, "a second of RTP to judge", scored())
        mos = float(stats.mos or 0.0)
        if mos < min_mos:
            lost = stats.packets_lost / max(1, stats.packets_lost + stats.packets_received)
            raise ExpectationFailed(f"MOS {mos:.2f} is below {min_mos:g} (loss {lost:.0%}, "
                                    f"jitter {stats.jitter_ms:.0f} ms)")
        return mos

    # --- conversation timing (voice activity of both directions) ---------------------------

    def conversation_figures(self) -> ConversationFigures:
        """first_words, response_latency, talk_over, dead_air so far (seconds)."""
        return self.conversation.figures(time.monotonic())

    async def _until(self, found: Callable[[], float | None], timeout: float,
                     what: str) -> float:
        """Poll ``found`` until it gives a figure, or fail after ``timeout`` seconds."""
        async def poll() -> float:
            while (figure := found()) is None:
                await asyncio.sleep(POLL / 2)
            return figure
        return float(await self._within(timeout, what, poll()))  # type: ignore[arg-type]

    async def hears_first_words(self, within: float, timeout: float = 10.0) -> float:
        """The far end starts speaking within ``within`` seconds of the answer (a voice
        agent's greeting); returns that time."""
        await self.answered(timeout)
        answered_at = self.conversation.answered_at or time.monotonic()
        loop_deadline = answered_at + within

        def first() -> float | None:
            start = self.conversation.heard.first_heard(answered_at)
            if start is not None:
                return start - answered_at
            return -1.0 if time.monotonic() > loop_deadline else None

        gap = await self._until(first, timeout, "first words")
        if gap < 0 or gap > within:
            said = "no speech" if gap < 0 else f"the first words {gap:.2f} s"
            raise ExpectationFailed(f"{said} after the answer (allowed {within:g} s)")
        return gap

    async def responds_within(self, seconds: float, timeout: float = 10.0) -> float:
        """Once we stop speaking, the far end starts within ``seconds`` (a voice agent's
        response latency, from the end of our words as sent to the start of theirs as heard);
        returns the latency. Waits for our current words to end first."""
        said, heard = self.conversation.said, self.conversation.heard

        def latency() -> float | None:
            ours = said.segments[-1] if said.segments else None
            if ours is None or ours.end is None:
                return None  # we have not spoken, or still speak
            reply = heard.first_start(ours.end)
            if reply is not None:
                return reply - ours.end
            waited = time.monotonic() - ours.end
            return -waited if waited > seconds else None

        gap = await self._until(latency, timeout, "our words ending and a response")
        if gap < 0 or gap > seconds:
            said_what = "no response" if gap < 0 else f"a response after {gap:.2f} s"
            raise ExpectationFailed(f"{said_what} to our words (allowed {seconds:g} s)")
        return gap

    async def stops_when_interrupted(self, within: float, timeout: float = 10.0) -> float:
        """When we talk over the far end, it stops within ``within`` seconds (barge-in);
        returns how long it went on. Waits for us to start speaking while it speaks."""
        said, heard = self.conversation.said, self.conversation.heard

        def interrupted() -> tuple[Segment, Segment] | None:
            for ours in reversed(said.segments):
                for theirs in heard.segments:
                    if theirs.start < ours.start and (theirs.end is None
                                                      or theirs.end > ours.start):
                        return ours, theirs
            return None

        def went_on() -> float | None:
            found = interrupted()
            if found is None:
                return None
            ours, theirs = found
            if theirs.end is not None:
                return theirs.end - ours.start
            if time.monotonic() - ours.start > within + HANGOVER_SECONDS:
                return time.monotonic() - ours.start
            return None

        going = await self._until(went_on, timeout, "our words over theirs")
        if going > within:
            raise ExpectationFailed(f"the far end went on {going:.2f} s after we talked over "
                                    f"it (allowed {within:g} s)")
        return going

    def dead_air_at_most(self, seconds: float) -> None:
        """Since the answer, neither side was silent longer than ``seconds`` (checked now)."""
        longest = self.conversation_figures().dead_air
        if longest > seconds:
            raise ExpectationFailed(f"{longest:.2f} s of dead air (allowed {seconds:g} s)")

    def talk_over_at_most(self, seconds: float) -> None:
        """Both sides spoke at once for at most ``seconds`` in all (checked now)."""
        both = self.conversation_figures().talk_over
        if both > seconds:
            raise ExpectationFailed(f"{both:.2f} s of talk-over (allowed {seconds:g} s)")

    async def say(self, text: str, voice: str = DEFAULT_VOICE) -> None:
        """Speak ``text`` into the call (synthesised offline by Flite, at the call's rate);
        returns once it starts playing."""
        self.source.set(WavSource(await synthesize(text, voice)))

    def play(self, wav: str | Path) -> None:
        self.source.set(WavSource(wav))

    def play_tone(self, hz: float) -> None:
        self.source.set(Tone(hz))

    def play_dtmf_tones(self, digits: str) -> None:
        """Send digits as audio, for systems that listen for tones instead of events."""
        self.source.set(DtmfTones(digits))

    def quiet(self) -> None:
        self.source.set(Silence())

    def record(self, wav: str | Path) -> None:
        self.monitor.recording = WavSink(wav)

    async def send_dtmf(self, digits: str) -> None:
        await self.call.send_dtmf(digits)

    async def message(self, text: str) -> None:
        """Send ``text`` in a MESSAGE inside the call; the peer must take it (2xx)."""
        result = await self.call.message(text)
        if not 200 <= result.status < 300:
            raise ExpectationFailed(f"MESSAGE refused: {result.status} {result.reason}")

    async def answer(self) -> None:
        await self.call.answer()

    async def transfer(self, target: str | TestCall) -> TransferProgress:
        """Transfer our peer, blind to a URI or attended to the peer of another TestCall
        (see Call.transfer); returns the transfer's last word."""
        return await self.call.transfer(target.call if isinstance(target, TestCall) else target)

    async def transferred(self, timeout: float = 5.0) -> TestCall:
        """The call our peer's REFER made us place (we are the transferee)."""
        new = await self._within(timeout, "a transfer", asyncio.shield(self.call.transferred))
        assert isinstance(new, Call)
        return TestCall(self.agent, new)

    async def held(self, held: bool = True, timeout: float = 5.0) -> None:
        """The peer put this call on hold (``held``), or took it off hold."""
        call_id = self.call.call_id
        await self._within(timeout, "hold" if held else "resume", self.agent.wait_event(
            lambda e: isinstance(e, Hold) and e.call_id == call_id and e.by == "remote"
            and e.held == held))

    async def progress_with_media(self) -> None:
        """Send 183 with our SDP and play this call's audio before answering (early media)."""
        await self.call.early_media(self.source)

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
                 listen_host: str = "127.0.0.1", listen_port: int = 0,
                 recordings: Path | None = None, **config: object) -> None:
        """``recordings``: a directory where every call is recorded both ways, as
        ``<user>-<n>.wav`` (stereo: left sent, right heard)."""
        self.recordings = recordings
        self._ports: dict[str, tuple[Switch, Monitor]] = {}
        self._calls: dict[str, Call] = {}  # the calls that had media, for their conversation
        config.setdefault("voice_timing", True)
        self.agent = UserAgent(AgentConfig(listen_host=listen_host, listen_port=listen_port,
                                           user=user, codecs=codecs,
                                           port_factory=self._make_ports,
                                           **config))  # type: ignore[arg-type]
        self.log = EventLog(self.agent)
        # how many events of each kind (messages, voicemail summaries) the receives_*
        # expectations have taken already: each looks only at what came after
        self._taken: Counter[type[Event]] = Counter()

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
            source, monitor = Switch(), Monitor()
            self._calls[call.call_id] = call
            if self.recordings is not None:
                number = len(self._ports) + 1
                both = BothWays(WavSink(self.recordings / f"{self.agent.config.user}-{number}.wav",
                                        channels=2))
                source.taps.append(both.sending_side())
                monitor.taps.append(both)
            self._ports[call.call_id] = (source, monitor)
        return self._ports[call.call_id]

    def conversation_of(self, call_id: str) -> Conversation:
        """When each side of a call spoke (Call.conversation: voice activity of what it sent
        and heard); an empty one for a call that had no media."""
        call = self._calls.get(call_id)
        if call is None or call.conversation is None:
            return Conversation(answered_at=call.answered_at if call else None)
        return call.conversation

    @property
    def uri(self) -> str:
        return f"sip:{self.agent.config.user}@{format_host(self.agent.host)}:{self.agent.port}"

    async def call(self, uri: str) -> TestCall:
        return TestCall(self, await self.agent.call(uri))

    async def next_call(self, timeout: float = 5.0) -> TestCall:
        try:
            call = await asyncio.wait_for(self.agent.incoming.get(), timeout)
        except TimeoutError:
            raise ExpectationFailed(f"no call arrived within {timeout:g} s") from None
        return TestCall(self, call)

    async def connect(self, callee: TestAgent, uri: str | None = None) -> tuple[TestCall, TestCall]:
        """Call ``callee`` (at ``uri``, else its own address) and have it answer: both
        ends, once the call is answered, for tests whose subject is what comes after."""
        call = await self.call(uri or callee.uri)
        incoming = await callee.next_call()
        await incoming.answer()
        await call.answered()
        return call, incoming

    async def message(self, uri: str, text: str) -> None:
        """Send ``text`` to ``uri`` in a MESSAGE outside any call; it must be taken (2xx)."""
        result = await self.agent.message(uri, text)
        if not 200 <= result.status < 300:
            raise ExpectationFailed(f"MESSAGE to {uri} refused: {result.status} "
                                    f"{result.reason}")

    async def _next_untaken(self, kind: type[E]) -> E:
        """The first event of ``kind`` no expectation has taken yet, waiting for it."""
        while True:
            arrived = [e for e in self.log.events if isinstance(e, kind)]
            taken = self._taken[kind]
            if len(arrived) > taken:
                self._taken[kind] = taken + 1
                return arrived[taken]
            await self.log.next_change()

    async def receives_message(self, text: str, timeout: float = 5.0) -> MessageReceived:
        """The next MESSAGE this agent has not matched yet carries ``text`` (in a call or
        not); a different one fails at once."""
        async def wait() -> MessageReceived:
            message = await self._next_untaken(MessageReceived)
            if message.text != text:
                raise ExpectationFailed(f"message {text!r} expected, got "
                                        f"{message.text!r} from {message.sender}")
            return message
        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise ExpectationFailed(f"no message {text!r} within {timeout:g} s") from None

    async def receives_mwi(self, new: int | None = None, waiting: bool | None = None,
                           timeout: float = 5.0) -> Mwi:
        """A voicemail summary (``mwi`` event) this agent has not matched yet that says
        ``new`` messages and/or ``waiting``; summaries that say otherwise are passed over
        (a mailbox reports every change), so the wait ends at the first that matches."""
        async def wait() -> Mwi:
            while True:
                summary = await self._next_untaken(Mwi)
                if (new is None or summary.new == new) and \
                        (waiting is None or summary.waiting == waiting):
                    return summary
        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            wanted = ", ".join(f"{k} {v}" for k, v in (("new", new), ("waiting", waiting))
                               if v is not None) or "any"
            raise ExpectationFailed(f"no voicemail summary ({wanted}) within "
                                    f"{timeout:g} s") from None

    async def __aenter__(self) -> TestAgent:
        await self.agent.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.agent.close()


__all__ = ["ExpectationFailed", "TestAgent", "TestCall", "VirtualAgent", "VirtualNetwork",
           "is_request", "is_response"]
