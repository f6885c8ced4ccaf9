"""When each side of a call speaks: voice activity of what a call sends and what it hears, as
timed segments, and the conversation figures call tests of voice agents ask for (time to the
first words, response latency, barge-in, talk-over, dead air).

Voice activity comes from WebRTC's detector (PyPI's ``webrtcvad-wheels``: Google's GMM VAD,
built for real-time audio, microseconds per frame). Its frame decisions are smoothed into
segments: speech starts when most of the last few frames are voiced and ends after a stretch
of unvoiced ones, the end dated at the last voiced frame. Frames are timed when they pass
(sent: read from the source; heard: played out of the jitter buffer), on ``time.monotonic``
or a given clock, so a latency is what a caller would perceive.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt
import soxr
import webrtcvad

Samples = npt.NDArray[np.int16]

VAD_RATES = (8000, 16000, 32000, 48000)
PIECE_SECONDS = 0.01  # frames are judged in 10 ms pieces, a length the detector takes
ONSET_PIECES, ONSET_WINDOW = 5, 8  # 50 of the last 80 ms voiced: speech starts
HANGOVER_SECONDS = 0.3  # this long unvoiced: speech ended (a pause between words is shorter)
AGGRESSIVENESS = 2  # 0-3: how readily the detector calls a frame non-speech


@dataclass
class Segment:
    """One stretch of speech: ``start`` and ``end`` in the clock's seconds, ``end`` None
    while it goes on."""

    start: float
    end: float | None = None

    def overlap(self, other: Segment, now: float) -> float:
        """Seconds both segments spoke at once."""
        end = min(self.end if self.end is not None else now,
                  other.end if other.end is not None else now)
        return max(0.0, end - max(self.start, other.start))


@dataclass
class VoiceActivity:
    """An audio sink (or tap) that keeps the speech segments of what passes through it."""

    clock: Callable[[], float] = time.monotonic
    segments: list[Segment] = field(default_factory=list)
    _vad: webrtcvad.Vad = field(default_factory=lambda: webrtcvad.Vad(AGGRESSIVENESS))
    _recent: deque[bool] = field(default_factory=lambda: deque(maxlen=ONSET_WINDOW))
    _last_voiced: float | None = None

    @property
    def speaking(self) -> bool:
        return bool(self.segments) and self.segments[-1].end is None

    def write(self, frame: Samples, rate: int) -> None:
        """Judge a frame that passes now (its last sample is now)."""
        if rate not in VAD_RATES:
            frame, rate = soxr.resample(frame, rate, 16000), 16000
        piece = int(rate * PIECE_SECONDS)
        now = self.clock()
        count = len(frame) // piece
        for index in range(count):
            chunk = frame[index * piece:(index + 1) * piece]
            voiced = self._vad.is_speech(chunk.tobytes(), rate)
            self.note(voiced, now - (count - index - 1) * PIECE_SECONDS)

    def note(self, voiced: bool, at: float) -> None:
        """One 10 ms decision of the detector, for the piece ending at ``at``."""
        self._recent.append(voiced)
        if voiced:
            self._last_voiced = at
        if not self.speaking and sum(self._recent) >= ONSET_PIECES:
            start = at - PIECE_SECONDS * len(self._recent)
            for earlier in self._recent:  # the segment starts at its first voiced piece
                if earlier:
                    break
                start += PIECE_SECONDS
            self.segments.append(Segment(start))
        elif (self.speaking and self._last_voiced is not None
              and at - self._last_voiced >= HANGOVER_SECONDS):
            self.segments[-1].end = self._last_voiced
            self._recent.clear()

    def close(self) -> None:
        if self.speaking and self._last_voiced is not None:
            self.segments[-1].end = self._last_voiced

    def first_start(self, after: float) -> float | None:
        """When speech first started at or after ``after``."""
        return next((s.start for s in self.segments if s.start >= after), None)

    def first_heard(self, since: float) -> float | None:
        """When speech was first going on at or after ``since``: a segment under way then
        counts from ``since``. Why: a segment is dated from its first voiced 10 ms piece, so
        speech that starts within a frame of ``since`` can date a few milliseconds before it
        (a frame is timed when it passes, its pieces before that)."""
        return next((max(s.start, since) for s in self.segments
                     if s.end is None or s.end >= since), None)


@dataclass(frozen=True)
class ConversationFigures:
    """A conversation in numbers for reports and load rows, in seconds to the millisecond:
    ``first_words`` from the answer to the far end's first speech (0 when it was already
    speaking, as early media may), ``response_latency`` the median of its turns after ours
    (from the end of ours), ``talk_over`` both speaking at once, ``dead_air`` the longest
    silence since the answer; None when it did not happen."""

    first_words: float | None
    response_latency: float | None
    talk_over: float
    dead_air: float

    def to_json(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass
class Conversation:
    """Both directions of a call: ``said`` (what it sends) and ``heard`` (what it hears),
    and when it was answered (the start of the figures), on the segments' clock."""

    said: VoiceActivity = field(default_factory=VoiceActivity)
    heard: VoiceActivity = field(default_factory=VoiceActivity)
    answered_at: float | None = None

    def talk_over(self, now: float) -> float:
        """Seconds both sides spoke at once."""
        return sum(ours.overlap(theirs, now) for ours in self.said.segments
                   for theirs in self.heard.segments)

    def longest_silence(self, since: float, now: float) -> float:
        """The longest stretch since ``since`` when neither side spoke (dead air)."""
        spoken = sorted(self.said.segments + self.heard.segments, key=lambda s: s.start)
        longest, quiet_from = 0.0, since
        for segment in spoken:
            longest = max(longest, segment.start - quiet_from)
            quiet_from = max(quiet_from, segment.end if segment.end is not None else now)
        return max(longest, now - quiet_from)

    def figures(self, now: float) -> ConversationFigures:
        """The conversation in numbers so far."""
        since = self.answered_at if self.answered_at is not None else now
        first = self.heard.first_heard(since)
        gaps = self.response_gaps()
        return ConversationFigures(
            first_words=_ms(first - since) if first is not None else None,
            response_latency=_ms(float(np.median(gaps))) if gaps else None,
            talk_over=_ms(self.talk_over(now)), dead_air=_ms(self.longest_silence(since, now)))

    def response_gaps(self) -> list[float]:
        """For each of their segments that starts after one of ours ended (and before we spoke
        again): the time from the end of ours to its start."""
        gaps: list[float] = []
        for ours in self.said.segments:
            if ours.end is None:
                continue
            reply = self.heard.first_start(ours.end)
            again = self.said.first_start(ours.end)
            if reply is not None and (again is None or reply <= again):
                gaps.append(reply - ours.end)
        return gaps


def _ms(seconds: float) -> float:
    return round(seconds, 3)
