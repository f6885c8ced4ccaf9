"""Receiver statistics as RFC 3550 computes them: the sequence tracking of appendix A.1 (with
wrap-around), cumulative loss (A.3) and interarrival jitter (A.8)."""

from __future__ import annotations

from dataclasses import dataclass

from softphone.rtp.packet import seq_diff
from softphone.rtp.rtcp import ReportBlock

MAX_DROPOUT = 3000
MAX_MISORDER = 100


@dataclass(slots=True)
class ReceiverStats:
    clock_rate: int
    received: int = 0
    duplicates: int = 0
    base_seq: int | None = None
    max_seq: int = 0
    cycles: int = 0
    jitter: float = 0.0  # in timestamp units, as A.8 keeps it
    _transit: float | None = None
    _expected_prior: int = 0
    _received_prior: int = 0

    def update(self, sequence: int, timestamp: int, arrival: float, timing: bool = True) -> None:
        """Note a packet; ``arrival`` is in seconds on any steady clock. ``timing=False`` for
        packets whose timestamp is not their sampling instant (telephone-events repeat it),
        which count for loss but not for jitter."""
        self.received += 1
        if sequence == (self.max_seq + 1) & 0xFFFF and self.base_seq is not None:
            # the usual packet, the next in sequence: A.1's in-order case, taken first
            if not sequence:
                self.cycles += 1  # wrapped
            self.max_seq = sequence
        elif self.base_seq is None:
            self.base_seq = self.max_seq = sequence
        else:
            delta = seq_diff(sequence, self.max_seq)
            if 0 < delta < MAX_DROPOUT:
                if sequence < self.max_seq:
                    self.cycles += 1  # wrapped
                self.max_seq = sequence
            elif delta == 0 or -MAX_MISORDER < delta < 0:
                if delta == 0:
                    self.duplicates += 1
            # a larger jump is a restart or a very late packet: counted, not tracked
        if not timing:
            return
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            difference = abs(transit - self._transit)
            self.jitter += (difference - self.jitter) / 16
        self._transit = transit

    @property
    def expected(self) -> int:
        if self.base_seq is None:
            return 0
        return self.cycles * 65536 + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - (self.received - self.duplicates))

    @property
    def loss_fraction(self) -> float:
        return self.lost / self.expected if self.expected else 0.0

    @property
    def jitter_ms(self) -> float:
        return 1000.0 * self.jitter / self.clock_rate

    def report_block(self, ssrc: int, last_sr: int = 0, delay: int = 0) -> ReportBlock:
        """An RTCP report block on this source; the loss fraction covers the interval since
        the previous call (A.3)."""
        expected, received = self.expected, self.received - self.duplicates
        expected_interval = expected - self._expected_prior
        lost_interval = expected_interval - (received - self._received_prior)
        self._expected_prior, self._received_prior = expected, received
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        return ReportBlock(ssrc, fraction, self.lost, (self.cycles << 16) | self.max_seq,
                           int(self.jitter), last_sr, delay)
