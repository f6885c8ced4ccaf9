"""A jitter buffer: packets in by sequence number, frames out at the playout clock.

It holds a target delay in frames that follows measured jitter (between ``min_depth`` and
``max_depth``); reordered packets fall into place, duplicates and packets later than their
playout slot are dropped, and a missing frame is reported as None so the decoder conceals it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from softphone.rtp.packet import RtpPacket, seq_add, seq_diff


@dataclass
class JitterBuffer:
    min_depth: int = 2
    max_depth: int = 15
    depth: int = 3
    late: int = 0
    duplicates: int = 0
    _packets: dict[int, RtpPacket] = field(default_factory=dict)
    _next: int | None = None
    _primed: bool = False

    def put(self, packet: RtpPacket) -> None:
        if self._next is not None and seq_diff(packet.sequence, self._next) < 0:
            if self._primed:
                self.late += 1  # its playout slot has passed
                return
            self._next = packet.sequence  # still filling: an earlier packet moves the start
        if packet.sequence in self._packets:
            self.duplicates += 1
            return
        if len(self._packets) >= 4 * self.max_depth:  # a stream that jumped: start over
            self._packets.clear()
            self._next, self._primed = None, False
        self._packets[packet.sequence] = packet
        if self._next is None:
            self._next = packet.sequence

    def adapt(self, jitter_ms: float, ptime_ms: int) -> None:
        """Aim for about three times the measured jitter, in whole frames."""
        wanted = int(3 * jitter_ms / ptime_ms) + self.min_depth
        self.depth = max(self.min_depth, min(self.max_depth, wanted))

    def get(self) -> tuple[bool, RtpPacket | None]:
        """One playout slot: (playing, packet). Not playing while it fills up; a packet of
        None while playing is a loss to conceal."""
        if self._next is None:
            return False, None
        if not self._primed:
            if len(self._packets) < self.depth:
                return False, None
            self._primed = True
        packet = self._packets.pop(self._next, None)
        self._next = seq_add(self._next, 1)
        if packet is None and not self._packets:
            self._primed = False  # ran dry: refill to the target depth before playing again
        return True, packet

    def peek_next(self) -> RtpPacket | None:
        """The packet due after the one just taken, if it has arrived (for Opus FEC)."""
        return self._packets.get(self._next) if self._next is not None else None

    @property
    def size(self) -> int:
        return len(self._packets)
