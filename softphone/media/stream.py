"""A call's audio: source -> codec -> RTP out, and RTP in -> jitter buffer -> codec -> sink,
both driven by the shared pacing clock, one frame (ptime) per tick."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from softphone.media.clock import MediaClock
from softphone.media.codecs import make_codec
from softphone.media.ports import AudioSink, AudioSource
from softphone.rtp.jitter import JitterBuffer
from softphone.rtp.packet import RtpError, RtpPacket, seq_add, ts_add
from softphone.rtp.stats import ReceiverStats
from softphone.sdp.negotiation import NegotiatedMedia
from softphone.transport.rtp import RtpEndpoint

ADAPT_EVERY = 50  # ticks between jitter-buffer depth adjustments


@dataclass(frozen=True)
class StreamStats:
    packets_sent: int
    packets_received: int
    packets_lost: int
    jitter_ms: float
    late: int

    def to_json(self) -> dict[str, float | int]:
        return {"packets_sent": self.packets_sent, "packets_received": self.packets_received,
                "packets_lost": self.packets_lost, "jitter_ms": round(self.jitter_ms, 2),
                "late": self.late}


class MediaStream:
    def __init__(self, rtp: RtpEndpoint, media: NegotiatedMedia, source: AudioSource,
                 sink: AudioSink, clock: MediaClock | None = None) -> None:
        self.rtp = rtp
        self.media = media
        self.source = source
        self.sink = sink
        self.clock = clock or MediaClock.shared()
        self.codec = make_codec(media.codec.key)
        self.rate = media.codec.clock_rate
        self.samples_per_frame = self.rate * media.ptime // 1000
        self.remote = (media.remote_address, media.remote_port)
        self.ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._first = True
        self.packets_sent = 0
        self.stats = ReceiverStats(self.rate)
        self.jitter = JitterBuffer()
        self.muted = False
        self._ticks = 0
        self._running = False

    @property
    def sending(self) -> bool:
        return self.media.direction in ("sendrecv", "sendonly")

    @property
    def receiving(self) -> bool:
        return self.media.direction in ("sendrecv", "recvonly")

    def start(self) -> None:
        if not self._running:
            self.source.prepare(self.rate)
            self._running = True
            self.rtp.handler = self._on_packet
            self.clock.add(self)

    def stop(self) -> None:
        if self._running:
            self._running = False
            self.clock.remove(self)
            self.rtp.handler = None
            self.sink.close()

    def update(self, media: NegotiatedMedia) -> None:
        """A re-INVITE changed direction (hold) or address."""
        self.media = media
        self.remote = (media.remote_address, media.remote_port)

    def tick(self) -> None:
        self._ticks += 1
        if self.sending:
            self._send_frame()
        if self.receiving:
            self._play_frame()
        if self._ticks % ADAPT_EVERY == 0:
            self.jitter.adapt(self.stats.jitter_ms, self.media.ptime)

    def _send_frame(self) -> None:
        frame = self.source.read(self.samples_per_frame, self.rate)
        if self.muted:
            frame = frame * 0
        packet = RtpPacket(payload_type=self.media.payload_type, sequence=self._sequence,
                           timestamp=self._timestamp, ssrc=self.ssrc,
                           payload=self.codec.encode(frame), marker=self._first)
        self.rtp.send(bytes(packet), self.remote)
        self._first = False
        self.packets_sent += 1
        self._sequence = seq_add(self._sequence, 1)
        self._timestamp = ts_add(self._timestamp, self.samples_per_frame)

    def _play_frame(self) -> None:
        playing, packet = self.jitter.get()
        if not playing:
            return
        if packet is None:
            frame = self.codec.conceal(self.samples_per_frame)
        else:
            frame = self.codec.decode(packet.payload)
        self.sink.write(frame, self.rate)

    def _on_packet(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        if packet.payload_type != self.media.payload_type:
            return  # telephone-event and comfort noise are handled elsewhere
        if source != self.remote:
            self.remote = source  # symmetric RTP (RFC 4961): answer where it comes from
        self.stats.update(packet.sequence, packet.timestamp, time.monotonic())
        self.jitter.put(packet)

    def snapshot(self) -> StreamStats:
        return StreamStats(self.packets_sent, self.stats.received, self.stats.lost,
                           self.stats.jitter_ms, self.jitter.late)
