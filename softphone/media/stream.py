"""A call's audio: source -> codec -> RTP out, and RTP in -> jitter buffer -> codec -> sink,
both driven by the shared pacing clock, one frame (ptime) per tick."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from softphone.media.clock import MediaClock
from softphone.media.codecs import make_codec
from softphone.media.ports import AudioSink, AudioSource
from softphone.rtp.dtmf import DtmfReceiver, DtmfSender
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
        # telephone-event durations run on its own 8 kHz clock, whatever the voice codec
        self.dtmf = DtmfSender(samples_per_frame=8 * media.ptime)
        self._dtmf_receiver = DtmfReceiver()
        self._dtmf_timestamp = 0
        self.on_dtmf: Callable[[str], None] | None = None

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
            if self.source is not self.sink:  # type: ignore[comparison-overlap]
                self.source.close()  # one port can be both (a sound card, an echo)

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

    def send_dtmf(self, digits: str) -> bool:
        """Queue digits as RFC 4733 events; False when the peer did not negotiate them."""
        if self.media.dtmf_payload_type is None:
            return False
        self.dtmf.queue(digits)
        return True

    def _send_frame(self) -> None:
        frame = self.source.read(self.samples_per_frame, self.rate)  # the source runs on
        event = self.dtmf.next() if self.media.dtmf_payload_type is not None else None
        if event is None:
            if self.muted:
                frame = frame * 0
            self._send(self.media.payload_type, self._timestamp, self.codec.encode(frame),
                       self._first)
            self._first = False
        elif event is not False:
            assert self.media.dtmf_payload_type is not None
            if event.marker:
                self._dtmf_timestamp = self._timestamp
            self._send(self.media.dtmf_payload_type, self._dtmf_timestamp, event.payload,
                       event.marker)
        self._timestamp = ts_add(self._timestamp, self.samples_per_frame)

    def _send(self, payload_type: int, timestamp: int, payload: bytes, marker: bool) -> None:
        packet = RtpPacket(payload_type=payload_type, sequence=self._sequence,
                           timestamp=timestamp, ssrc=self.ssrc, payload=payload, marker=marker)
        self.rtp.send(bytes(packet), self.remote)
        self.packets_sent += 1
        self._sequence = seq_add(self._sequence, 1)

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
        is_event = packet.payload_type == self.media.dtmf_payload_type
        if packet.payload_type != self.media.payload_type and not is_event:
            return  # comfort noise, or a codec we did not agree on
        if source != self.remote:
            self.remote = source  # symmetric RTP (RFC 4961): answer where it comes from
        self.stats.update(packet.sequence, packet.timestamp, time.monotonic(),
                          timing=not is_event)
        if not is_event:
            self.jitter.put(packet)
            return
        digit = self._dtmf_receiver.receive(packet.timestamp, packet.payload)
        if digit is not None and self.on_dtmf is not None:
            self.on_dtmf(digit)

    def snapshot(self) -> StreamStats:
        return StreamStats(self.packets_sent, self.stats.received, self.stats.lost,
                           self.stats.jitter_ms, self.jitter.late)
