"""DTMF as RFC 4733 telephone-events, sans-IO.

Sender: one event per digit; every packet of an event carries the event's start timestamp and
a growing duration, the first with the marker bit, the last three with the E bit (the end is
sent three times in case of loss); a silent gap follows before the next digit.
Receiver: a digit is reported once, when the first packet of its event (a new timestamp)
arrives, however many of the event's packets arrive, lost or repeated.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Literal

DIGITS = "0123456789*#ABCD"
END_REPEATS = 3


def event_code(digit: str) -> int:
    index = DIGITS.find(digit.upper())
    if index < 0 or len(digit) != 1:
        raise ValueError(f"Not a DTMF digit: {digit!r} (use 0-9, *, #, A-D)")
    return index


@dataclass(frozen=True)
class EventPayload:
    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> EventPayload | None:
        if len(payload) < 4:
            return None
        event, flags, duration = struct.unpack("!BBH", payload[:4])
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F),
                           self.duration & 0xFFFF)


@dataclass(frozen=True)
class DtmfPacket:
    """What the stream sends this tick instead of a voice frame."""

    payload: bytes
    marker: bool  # the first packet of an event


class DtmfSender:
    """Yields one packet (or a gap) per frame for the digits queued."""

    __slots__ = ("tone_ms", "gap_ms", "volume", "step", "tone_frames", "gap_frames", "_queue",
                 "_event", "_frame", "busy")

    def __init__(self, samples_per_frame: int, tone_ms: int = 100, gap_ms: int = 60,
                 volume: int = 10) -> None:
        self.tone_ms, self.gap_ms = tone_ms, gap_ms
        self.resize(samples_per_frame)
        self.volume = volume
        self._queue: deque[int] = deque()
        self._event: int | None = None
        self._frame = 0
        # Digits queued or one still being sent: read by the media stream on every tick,
        # so kept up to date here rather than worked out there.
        self.busy = False

    def resize(self, samples_per_frame: int) -> None:
        """Frames of another length (a new ptime); the 8 kHz event clock stays."""
        self.step = samples_per_frame
        frame_ms = max(1, samples_per_frame // 8)
        self.tone_frames = max(1, self.tone_ms // frame_ms)
        self.gap_frames = max(1, self.gap_ms // frame_ms)

    def queue(self, digits: str) -> None:
        self._queue.extend(event_code(d) for d in digits)
        self.busy = self._event is not None or bool(self._queue)

    def next(self) -> DtmfPacket | None | Literal[False]:
        """A packet to send; False for a silent gap frame; None when idle (send voice)."""
        if self._event is None:
            if not self._queue:
                return None
            self._event, self._frame = self._queue.popleft(), 0
        self._frame += 1
        tone_end = self.tone_frames + END_REPEATS - 1
        if self._frame <= tone_end:
            ending = self._frame >= self.tone_frames
            duration = self.step * min(self._frame, self.tone_frames)
            payload = EventPayload(self._event, ending, self.volume, duration)
            return DtmfPacket(bytes(payload), marker=self._frame == 1)
        if self._frame >= tone_end + self.gap_frames:
            self._event = None
            self.busy = bool(self._queue)
        return False


class DtmfReceiver:
    """Turns telephone-event packets into digits, each exactly once."""

    def __init__(self) -> None:
        self._seen: deque[int] = deque(maxlen=16)  # timestamps of recent events

    def receive(self, timestamp: int, payload: bytes) -> str | None:
        event = EventPayload.parse(payload)
        if event is None or event.event >= len(DIGITS) or timestamp in self._seen:
            return None
        self._seen.append(timestamp)
        return DIGITS[event.event]
