"""A call's audio: source -> codec -> RTP out, and RTP in -> jitter buffer -> codec -> sink,
both driven by the shared pacing clock, one frame (ptime) per tick."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from softphone.media.clock import MediaClock
from softphone.media.codecs import make_codec
from softphone.media.ports import AudioSink, AudioSource, Discard, Samples
from softphone.media.quality import level_dbfs
from softphone.rtp.dtmf import DtmfReceiver, DtmfSender
from softphone.rtp.jitter import JitterBuffer
from softphone.rtp.packet import RtpError, RtpPacket, build, seq_add, ts_add
from softphone.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
    serialise,
)
from softphone.rtp.stats import ReceiverStats
from softphone.sdp.negotiation import NegotiatedMedia
from softphone.transport.rtp import RtpEndpoint

ADAPT_EVERY = 50  # ticks between jitter-buffer depth adjustments
RTCP_INTERVAL = 5.0  # seconds, randomised by 0.5-1.5 (RFC 3550 6.2)


@dataclass(frozen=True)
class StreamStats:
    packets_sent: int
    packets_received: int
    packets_lost: int
    jitter_ms: float
    late: int
    rtcp_sent: int = 0
    rtcp_received: int = 0
    rtt_ms: float | None = None  # from the peer's report blocks (LSR/DLSR)
    remote_loss: float | None = None  # the loss fraction the peer reports for our stream

    def to_json(self) -> dict[str, float | int | None]:
        return {"packets_sent": self.packets_sent, "packets_received": self.packets_received,
                "packets_lost": self.packets_lost, "jitter_ms": round(self.jitter_ms, 2),
                "late": self.late, "rtcp_sent": self.rtcp_sent,
                "rtcp_received": self.rtcp_received,
                "rtt_ms": round(self.rtt_ms, 2) if self.rtt_ms is not None else None,
                "remote_loss": self.remote_loss}


class MediaStream:
    def __init__(self, rtp: RtpEndpoint, media: NegotiatedMedia, source: AudioSource,
                 sink: AudioSink, clock: MediaClock | None = None,
                 rtcp_interval: float = RTCP_INTERVAL) -> None:
        self.rtp = rtp
        self._agree(media)
        self.source = source
        self.sink = sink
        self.clock = clock or MediaClock.shared()
        self._use_codec(media)
        self.remote = (media.remote_address, media.remote_port)
        self.ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._first = True
        self.packets_sent = 0
        self.muted = False
        self._ticks = 0
        self._running = False
        # telephone-event durations run on its own 8 kHz clock, whatever the voice codec
        self.dtmf = DtmfSender(samples_per_frame=8 * media.ptime)
        self._dtmf_receiver = DtmfReceiver()
        self._dtmf_timestamp = 0
        self.on_dtmf: Callable[[str], None] | None = None
        self.rtcp = RtcpState(rtcp_interval, f"softphone-{secrets.token_hex(6)}",
                              (media.remote_address, media.remote_port + 1))
        self.octets_sent = 0
        self.recovered = 0  # lost frames rebuilt from FEC
        self._last_sent: Samples | None = None    # frames kept for the level meters, which
        self._last_played: Samples | None = None  # are computed only when somebody looks
        self._last_payload: bytes | None = None   # heard but not decoded (a Discard sink)
        self.rtp_timeout: float | None = None
        self.on_inactive: Callable[[float], None] | None = None
        self._last_rtp = time.monotonic()
        self._inactive_reported = False

    def _agree(self, media: NegotiatedMedia) -> None:
        """Take a negotiation's result; the direction is read on every tick, so it is
        looked at here, once."""
        self.media = media
        self.sending = media.direction in ("sendrecv", "sendonly")
        self.receiving = media.direction in ("sendrecv", "recvonly")

    def _use_codec(self, media: NegotiatedMedia) -> None:
        """``rate`` and ``samples_per_frame`` are the audio's; the RTP timestamp advances
        ``clock_per_frame`` a frame, on the codec's RTP clock (they differ for G.722)."""
        self.codec = make_codec(media.codec.key, media.remote_parameters)
        self.rate = media.codec.audio_rate
        self.samples_per_frame = self.rate * media.ptime // 1000
        self.clock_per_frame = media.codec.clock_rate * media.ptime // 1000
        self.stats = ReceiverStats(media.codec.clock_rate)
        self.jitter = JitterBuffer()

    def start(self) -> None:
        if not self._running:
            self.source.prepare(self.rate)
            self._running = True
            self.rtp.handler = self._on_packet
            self.rtp.rtcp_handler = self._on_rtcp
            self.rtcp.schedule(time.monotonic())
            self.clock.add(self)

    def replace_ports(self, source: AudioSource, sink: AudioSink) -> None:
        """Reconnect the stream (to a conference, say); the old ports are closed."""
        old_source, old_sink = self.source, self.sink
        source.prepare(self.rate)
        self.source, self.sink = source, sink
        old_sink.close()
        if old_source is not old_sink:  # type: ignore[comparison-overlap]
            old_source.close()

    def stop(self) -> None:
        if self._running:
            self._running = False
            self.clock.remove(self)
            self._send_rtcp(goodbye=True)
            self.rtp.handler = self.rtp.rtcp_handler = None
            self.sink.close()
            if self.source is not self.sink:  # type: ignore[comparison-overlap]
                self.source.close()  # one port can be both (a sound card, an echo)

    def update(self, media: NegotiatedMedia) -> None:
        """A re-INVITE changed direction (hold), address, or codec."""
        if (media.codec.key, media.ptime, media.remote_fmtp) != (
                self.media.codec.key, self.media.ptime, self.media.remote_fmtp):
            self._use_codec(media)
            self.source.prepare(self.rate)
        self._agree(media)
        self.remote = (media.remote_address, media.remote_port)
        self._last_rtp = time.monotonic()  # a direction change restarts the inactivity clock

    def tick(self, now: float) -> None:
        self._ticks += 1
        if self.sending:
            self._send_frame()
        if self.receiving:
            self._play_frame()
            self._check_activity(now)
        if self._ticks % ADAPT_EVERY == 0:
            self.jitter.adapt(self.stats.jitter_ms, self.media.ptime)
        if now >= self.rtcp.next_report:
            self._send_rtcp()
            self.rtcp.schedule(now)

    @property
    def level_in(self) -> float:
        """dBFS of the last frame we sent (the microphone, say)."""
        return level_dbfs(self._last_sent) if self._last_sent is not None else -96.0

    @property
    def level_out(self) -> float:
        """dBFS of the last frame we played (or, when nothing plays it, received)."""
        if self._last_payload is not None:
            self._last_played, self._last_payload = self.codec.decode(self._last_payload), None
        return level_dbfs(self._last_played) if self._last_played is not None else -96.0

    def send_dtmf(self, digits: str) -> bool:
        """Queue digits as RFC 4733 events; False when the peer did not negotiate them."""
        if self.media.dtmf_payload_type is None:
            return False
        self.dtmf.queue(digits)
        return True

    def _send_frame(self) -> None:
        frame = self.source.read(self.samples_per_frame, self.rate)  # the source runs on
        self._last_sent = frame if not self.muted else None
        event = self.dtmf.next() if self.dtmf.busy and self.media.dtmf_payload_type is not None \
            else None
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
        self._timestamp = ts_add(self._timestamp, self.clock_per_frame)

    def _send(self, payload_type: int, timestamp: int, payload: bytes, marker: bool) -> None:
        self.rtp.send(build(payload_type, self._sequence, timestamp, self.ssrc, payload, marker),
                      self.remote)
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self._sequence = seq_add(self._sequence, 1)

    def _play_frame(self) -> None:
        playing, packet = self.jitter.get()
        if not playing:
            return
        if type(self.sink) is Discard:
            # Nobody listens (a load test's far end, --null-audio): decoding would be the
            # costliest step of the call, so it waits until the level meter asks.
            if packet is not None:
                self._last_payload = packet.payload
            return
        if packet is None:
            frame = self._recover_lost_frame()
        else:
            frame = self.codec.decode(packet.payload)
        self._last_played = frame
        self.sink.write(frame, self.rate)

    def _recover_lost_frame(self) -> Samples:
        """Opus carries the previous frame in its in-band FEC: use it when the next packet is
        already here; otherwise (and for G.711) the codec conceals the gap."""
        following = self.jitter.peek_next()
        recover = getattr(self.codec, "recover", None)
        if following is not None and recover is not None:
            self.recovered += 1
            frame: Samples = recover(following.payload, self.samples_per_frame)
            return frame
        return self.codec.conceal(self.samples_per_frame)

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
        self._last_rtp = now = time.monotonic()
        self._inactive_reported = False
        self.stats.update(packet.sequence, packet.timestamp, now, timing=not is_event)
        if not is_event:
            self.jitter.put(packet)
            return
        digit = self._dtmf_receiver.receive(packet.timestamp, packet.payload)
        if digit is not None and self.on_dtmf is not None:
            self.on_dtmf(digit)

    def _check_activity(self, now: float) -> None:
        """Report, once, when RTP stops arriving although we should be receiving it."""
        if self.rtp_timeout is None or self._inactive_reported:
            return
        silent = now - self._last_rtp
        if silent > self.rtp_timeout:
            self._inactive_reported = True
            if self.on_inactive is not None:
                self.on_inactive(silent)

    def _send_rtcp(self, goodbye: bool = False) -> None:
        """A compound report: SR when we sent since the last one, else RR; SDES; BYE last."""
        blocks = []
        if self.rtcp.remote_ssrc is not None:
            last_sr, delay = self.rtcp.lsr_and_delay(time.monotonic())
            blocks.append(self.stats.report_block(self.rtcp.remote_ssrc, last_sr, delay))
        report: RtcpPacket
        if self.packets_sent > self.rtcp.packets_at_last_report:
            report = SenderReport(self.ssrc, ntp_timestamp(time.time()), self._timestamp,
                                  self.packets_sent, self.octets_sent, blocks)
        else:
            report = ReceiverReport(self.ssrc, blocks)
        self.rtcp.packets_at_last_report = self.packets_sent
        packets: list[RtcpPacket] = [report, SourceDescription(self.ssrc, self.rtcp.cname)]
        if goodbye:
            packets.append(Goodbye([self.ssrc]))
        self.rtp.send_rtcp(serialise(packets), self.rtcp.remote)
        self.rtcp.sent += 1

    def _on_rtcp(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            packets = parse_compound(data)
        except RtcpError:
            return
        self.rtcp.remote = source
        self.rtcp.received += 1
        self.rtcp.absorb(packets, self.ssrc, time.monotonic())

    def snapshot(self) -> StreamStats:
        return StreamStats(self.packets_sent, self.stats.received, self.stats.lost,
                           self.stats.jitter_ms, self.jitter.late, self.rtcp.sent,
                           self.rtcp.received, self.rtcp.rtt_ms, self.rtcp.remote_loss)


@dataclass
class RtcpState:
    """What RTCP of one stream remembers between reports (RFC 3550 6.4)."""

    interval: float
    cname: str
    remote: tuple[str, int]
    next_report: float = 0.0
    packets_at_last_report: int = 0
    remote_ssrc: int | None = None
    sent: int = 0
    received: int = 0
    rtt_ms: float | None = None
    remote_loss: float | None = None
    _last_sr: int = 0  # middle 32 bits of the peer's last SR
    _last_sr_arrival: float | None = None

    def schedule(self, now: float) -> None:
        self.next_report = now + self.interval * random.uniform(0.5, 1.5)

    def lsr_and_delay(self, now: float) -> tuple[int, int]:
        if self._last_sr_arrival is None:
            return 0, 0
        return self._last_sr, int((now - self._last_sr_arrival) * 65536)

    def absorb(self, packets: list[RtcpPacket], our_ssrc: int, now: float) -> None:
        for packet in packets:
            if isinstance(packet, SenderReport):
                self.remote_ssrc = packet.ssrc
                self._last_sr, self._last_sr_arrival = ntp_middle(packet.ntp), now
            elif isinstance(packet, ReceiverReport):
                self.remote_ssrc = self.remote_ssrc or packet.ssrc
            if isinstance(packet, (SenderReport, ReceiverReport)):
                for block in packet.reports:
                    if block.ssrc == our_ssrc:
                        self._note_block(block)

    def _note_block(self, block: ReportBlock) -> None:
        self.remote_loss = block.fraction_lost / 256
        if block.last_sr:
            arrival = ntp_middle(ntp_timestamp(time.time()))
            rtt = (arrival - block.last_sr - block.delay_since_last_sr) & 0xFFFFFFFF
            if rtt < 65536 * 10:  # ignore nonsense from clock jumps
                self.rtt_ms = rtt * 1000 / 65536
