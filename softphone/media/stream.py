"""A call's audio: source -> codec -> RTP out, and RTP in -> jitter buffer -> codec -> sink,
both driven by the shared pacing clock, one frame of the negotiated ptime per tick.

Packets the peer sends may hold more or less audio than our frame (it may ignore our
a=ptime): playout takes whole packets from the jitter buffer until a frame's worth is there
and keeps the rest for the next tick, so audio plays at its own speed whatever the sizes.
A payload the codec cannot decode is counted and concealed like a lost one; a source or sink
that raises stops the stream and is reported through ``on_failure``."""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from softphone.media.clock import MediaClock
from softphone.media.codecs import audio_rate, make_codec
from softphone.media.codecs.opus import DEFAULT_COMPLEXITY
from softphone.media.diagnosis import HeardAudio
from softphone.media.mos import estimate_mos
from softphone.media.ports import (
    AudioSink,
    AudioSource,
    Discard,
    FrameCycle,
    Samples,
    content_rate,
)
from softphone.media.quality import level_dbfs
from softphone.media.srtp import SrtpContext
from softphone.rtp.dtmf import DtmfReceiver, DtmfSender
from softphone.rtp.jitter import JitterBuffer
from softphone.rtp.packet import RTP_HEADER, RtpError, RtpPacket
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

log = logging.getLogger("softphone.media")
ADAPT_EVERY = 50  # packet times between jitter-buffer depth and codec complexity adjustments
NORMAL_COMPLEXITY, LOW_COMPLEXITY = DEFAULT_COMPLEXITY, 1  # Opus encoder complexity (0-10)
# The hot path's helpers, looked up once: a packet is sent and one received fifty times a
# second for every call.
_pack_header, _unpack_header, _HEADER_SIZE = RTP_HEADER.pack, RTP_HEADER.unpack_from, \
    RTP_HEADER.size
_monotonic = time.monotonic
SILENT_AFTER = 0.25  # seconds without RTP before the speaker meter shows silence
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
    mos: float | None = None  # E-model estimate of what we heard (media/mos.py); None: nothing

    def to_json(self) -> dict[str, float | int | None]:
        return {"packets_sent": self.packets_sent, "packets_received": self.packets_received,
                "packets_lost": self.packets_lost, "jitter_ms": round(self.jitter_ms, 2),
                "late": self.late, "rtcp_sent": self.rtcp_sent,
                "rtcp_received": self.rtcp_received,
                "rtt_ms": round(self.rtt_ms, 2) if self.rtt_ms is not None else None,
                "remote_loss": self.remote_loss, "mos": self.mos}


class MediaStream:
    """One call's audio in both directions over one RTP endpoint (see the module's text)."""

    # Slots, not a __dict__: a stream has more attributes than CPython shares a dict's keys
    # for (30), so each stream carried its own 1.5 KB hash table, probed on every attribute a
    # tick reads. Slots are fixed offsets in one compact object, read by the fastest attribute
    # access there is; measured, 8-15% less CPU per G.711 stream-second (bench_media).
    __slots__ = (
        # read or written for every packet
        "rtp", "remote", "ssrc", "_sequence", "_timestamp", "clock_per_frame", "_first",
        "_voice_type", "_event_type", "_transmitting", "_discarding", "receiving", "sending",
        "source", "send_samples", "send_rate", "codec", "muted", "_last_sent", "dtmf",
        "_sending_digits", "_cycle", "_frames", "_payloads", "_cycle_at", "_loop_from",
        "packets_sent", "octets_sent", "_chores_at", "srtp", "stats", "_latched", "last_rtp",
        "_last_heard", "_last_heard_at", "foreign",
        # playing what arrives, and the chores of every second or so
        "_playing", "_sink", "_metered", "jitter", "rtcp", "_adapt_at", "heard", "rate",
        "samples_per_frame", "_pending", "_pending_samples", "_packet_samples", "_last_played",
        "undecodable", "recovered",
        # the rest of the stream's state and its owner's hooks
        "media", "clock", "_listen_only", "_running", "_dtmf_receiver", "_dtmf_timestamp",
        "on_dtmf", "on_failure", "failure")

    def __init__(self, rtp: RtpEndpoint, media: NegotiatedMedia, source: AudioSource,
                 sink: AudioSink, clock: MediaClock | None = None,
                 rtcp_interval: float = RTCP_INTERVAL) -> None:
        self.rtp = rtp
        self.media = media
        self._listen_only = False
        # a source's FrameCycle (see _take_cycle); a tick reads its frames, their payloads
        # coded once, the index of the next and where the cycle loops back to, each kept
        # here: a cycle is shared, a stream's own objects are what a tick finds out of cache
        self._cycle: FrameCycle | None = None
        self._payloads: Sequence[bytes] | None = None
        self._frames: Sequence[Samples] = ()
        self._cycle_at = self._loop_from = 0
        self.srtp = SrtpContext(media.srtp) if media.srtp is not None else None
        self._metered = False  # a Discard sink's level is watched: decode what arrives
        self._sink = sink
        self._agree(media)
        self.source = source
        self.clock = clock or MediaClock.shared()
        self._use_codec(media)
        self.remote = _peer(media.remote_address, media.remote_port)
        self.ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._first = True  # the first voice packet has the marker bit (RFC 3551 4.1)
        self.packets_sent = 0
        self.muted = False
        self._chores_at = self._adapt_at = 0.0  # see _chores
        self._running = False
        # telephone-event durations run on its own 8 kHz clock, whatever the voice codec
        self.dtmf = DtmfSender(samples_per_frame=8 * media.ptime)
        self._sending_digits = False  # dtmf.busy, as of its last change (a tick reads it)
        self._dtmf_receiver = DtmfReceiver()
        self._dtmf_timestamp = 0
        self.on_dtmf: Callable[[str], None] | None = None
        self.rtcp = RtcpState(rtcp_interval, f"softphone-{secrets.token_hex(6)}",
                              _rtcp_destination(media))
        self.octets_sent = 0
        self.recovered = 0  # lost frames rebuilt from FEC
        self._last_sent: Samples | None = None    # frames kept for the level meters, which
        self._last_played: Samples | None = None  # are computed only when somebody looks
        # heard but not decoded (a Discard sink): the datagram and where its payload starts
        self._last_heard: bytes | None = None
        self._last_heard_at = 0
        self.on_failure: Callable[[Exception], None] | None = None
        self.failure: Exception | None = None
        self.undecodable = 0  # received payloads the codec refused (concealed instead)
        self.foreign = 0  # packets from another source than the one latched to
        self._latched = False  # the peer's source is known (its first packet's)
        self.last_rtp = time.monotonic()  # when RTP last arrived (the call checks it comes)
        self._pending: list[Samples] = []  # decoded audio beyond the last frame played
        self._pending_samples = 0

    def _agree(self, media: NegotiatedMedia) -> None:
        """Take a negotiation's result; the direction is read on every tick, so it is
        looked at here, once. New SRTP keys (a new offer brings them) start new contexts."""
        if media.srtp != self.media.srtp:
            self.srtp = SrtpContext(media.srtp) if media.srtp is not None else None
        self.media = media
        self._voice_type, self._event_type = media.payload_type, media.dtmf_payload_type
        self.sending = media.direction in ("sendrecv", "sendonly")
        self.receiving = media.direction in ("sendrecv", "recvonly")
        self._decide()

    # What a tick does is decided when what it depends on changes, not on every tick: the
    # direction, early media, the sink and its meter each set the flags the tick reads.

    def _decide(self) -> None:
        """Set the flags a tick reads. Transmitting: the direction sends and this is not
        early media. Discarding: nobody listens (a load test's far end, --null-audio) and no
        meter watches, and decoding would be the costliest step of the call, so what
        arrives is only counted (RTP statistics) and the last payload waits undecoded until
        a meter asks. Playing: the direction receives and the audio is not discarded."""
        self._transmitting = self.sending and not self._listen_only
        self._discarding = type(self._sink) is Discard and not self._metered
        self._playing = self.receiving and not self._discarding

    @property
    def listen_only(self) -> bool:
        """Early media heard before the answer: nothing is sent yet."""
        return self._listen_only

    @listen_only.setter
    def listen_only(self, value: bool) -> None:
        self._listen_only = value
        self._decide()

    @property
    def sink(self) -> AudioSink:
        """Where the audio heard goes; a Discard sink nobody meters gets nothing decoded."""
        return self._sink

    @sink.setter
    def sink(self, sink: AudioSink) -> None:
        self._sink = sink
        self._decide()

    def _use_codec(self, media: NegotiatedMedia) -> None:
        """``rate`` and ``samples_per_frame`` are the audio's as heard, ``send_rate`` and
        ``send_samples`` as sent (a codec such as Opus codes each direction at the rate its
        port needs, see media/codecs audio_rate); the RTP timestamp advances
        ``clock_per_frame`` a frame, on the codec's RTP clock (they differ for G.722)."""
        self._make_codec(media)
        self.clock_per_frame = media.codec.clock_rate * media.ptime // 1000
        self.stats = ReceiverStats(media.codec.clock_rate)
        self.jitter = JitterBuffer()
        self.heard = HeardAudio()  # its peak and clipping, for the call's diagnosis
        self._packet_samples = self.samples_per_frame  # the peer's packets, as last seen
        self._pending, self._pending_samples = [], 0

    def _rates(self, media: NegotiatedMedia) -> tuple[int, int]:
        """(sending, hearing) rates for the codec and the ports the stream has now."""
        key, sdp_rate = media.codec.key, media.codec.audio_rate
        return (audio_rate(key, sdp_rate, content_rate(self.source)),
                audio_rate(key, sdp_rate, content_rate(self.sink)))

    def _make_codec(self, media: NegotiatedMedia) -> None:
        self.send_rate, self.rate = self._rates(media)
        self.codec = make_codec(media.codec.key, media.remote_parameters,
                                (self.send_rate, self.rate))
        self.samples_per_frame = self.rate * media.ptime // 1000
        self.send_samples = self.send_rate * media.ptime // 1000

    def start(self) -> None:
        if not self._running:
            self.source.prepare(self.send_rate)
            self._take_cycle()
            self._running = True
            self.rtp.handler = self._on_packet
            self.rtp.rtcp_handler = self._on_rtcp
            self.rtcp.schedule(time.monotonic())
            self._chores_at = 0.0  # the first tick works out when they are next due
            if self._transmitting:  # at once: they open a NAT's mappings
                self._send_frame()
                self._send_rtcp()
            self.clock.add(self, self.media.ptime / 1000)
            log.info("media: %s, %d ms packets, %s, RTP to %s:%d from port %d",
                     self.media.description, self.media.ptime, self.media.direction,
                     *self.remote, self.rtp.port)

    def replace_ports(self, source: AudioSource, sink: AudioSink) -> None:
        """Reconnect the stream (to a conference, say); the old ports are closed."""
        old_source, old_sink = self.source, self.sink
        self._cycle = self._payloads = None  # the old source's: it is closed below
        self.source, self.sink = source, sink
        if self._rates(self.media) != (self.send_rate, self.rate):  # silence -> a conference
            self._make_codec(self.media)
            self._pending, self._pending_samples = [], 0
            self._packet_samples = self.samples_per_frame
        source.prepare(self.send_rate)
        self._take_cycle()
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

    def failed(self, error: Exception) -> None:
        """The clock took us off because a tick raised (our source or sink: a lost device, a
        full disk). Stop quietly, closing what can still be closed, and report it once."""
        self.failure = error
        if self._running:
            self._running = False
            self.rtp.handler = self.rtp.rtcp_handler = None
            for port in (self.sink, self.source):
                with contextlib.suppress(Exception):
                    port.close()
        if self.on_failure is not None:
            self.on_failure(error)

    def update(self, media: NegotiatedMedia) -> None:
        """A re-INVITE changed direction (hold), address, codec or packet time."""
        if (media.codec.key, media.ptime, media.remote_fmtp) != (
                self.media.codec.key, self.media.ptime, self.media.remote_fmtp):
            self._use_codec(media)
            self.source.prepare(self.send_rate)
            self._take_cycle()
            self.dtmf.resize(8 * media.ptime)
            if self._running:
                self.clock.add(self, media.ptime / 1000)
        moved = (media.remote_address, media.remote_port) != (self.media.remote_address,
                                                             self.media.remote_port)
        self._agree(media)
        if moved:  # the peer's new SDP names another address: latch to it afresh
            self._latched = False
            self.remote = _peer(media.remote_address, media.remote_port)
            self.rtcp.remote = _rtcp_destination(media)
        self.last_rtp = time.monotonic()  # a direction change restarts the inactivity clock

    def tick(self, now: float) -> None:
        if self._transmitting:
            self._send_frame()
        if self._playing:
            self._play_frame()
        if now >= self._chores_at:
            self._chores(now)

    def _chores(self, now: float) -> None:
        """What a stream does now and then, not every tick: adapt the jitter buffer's depth
        and the codec's complexity every ADAPT_EVERY packet times, send RTCP when its
        randomised interval is up; then note when the next of them is due."""
        if now >= self._adapt_at:
            self._adapt_at = now + ADAPT_EVERY * self.media.ptime / 1000
            self.jitter.adapt(self.stats.jitter_ms, self.media.ptime)
            self._adapt_complexity()
        if now >= self.rtcp.next_report:
            self._send_rtcp()
            self.rtcp.schedule(now)
        self._chores_at = min(self._adapt_at, self.rtcp.next_report)

    def _adapt_complexity(self) -> None:
        """While the shared clock is behind, code at low complexity (Opus: about half the
        encoding cost, a little quality); back to the usual once it has caught up."""
        set_complexity = getattr(self.codec, "set_complexity", None)
        if set_complexity is not None:
            set_complexity(LOW_COMPLEXITY if self.clock.behind
                           else NORMAL_COMPLEXITY)

    @property
    def level_in(self) -> float:
        """dBFS of the last frame we sent (the microphone, say)."""
        return level_dbfs(self._last_sent) if self._last_sent is not None else -96.0

    @property
    def level_out(self) -> float:
        """dBFS of the last frame we played (or, when nothing plays it, received); silent
        while the peer holds us (nothing arrives, nothing plays)."""
        if not self.receiving or time.monotonic() - self.last_rtp > SILENT_AFTER:
            return -96.0  # nothing arrives (on hold, a peer gone quiet): say so
        if self._last_heard is not None:
            heard, self._last_heard = self._last_heard, None
            self._last_played = self._decode(heard[self._last_heard_at:])
            self._start_metering()
        return level_dbfs(self._last_played) if self._last_played is not None else -96.0

    def send_dtmf(self, digits: str) -> bool:
        """Queue digits as RFC 4733 events; False when the peer did not negotiate them."""
        if self.media.dtmf_payload_type is None:
            return False
        self.dtmf.queue(digits)
        self._sending_digits = self.dtmf.busy
        return True

    def _take_cycle(self) -> None:
        """Take the source's FrameCycle when it has one (a tone, a file, silence) and the
        codec codes each frame without state between them (G.711): the cycle's payloads are
        coded once, for every call playing the same audio, and each tick sends the next in
        turn without reading or coding anything (about half a G.711 tick's work). Any other
        source or codec is read and coded frame by frame."""
        self._leave_cycle()
        offer = getattr(self.source, "cycle", None)
        encode_cycle = getattr(self.codec, "encode_cycle", None)
        if offer is None or encode_cycle is None:
            return
        cycle: FrameCycle | None = offer(self.send_samples, self.send_rate)
        if cycle is not None:
            self._cycle, self._payloads = cycle, encode_cycle(cycle.frames)
            self._frames, self._cycle_at, self._loop_from = (cycle.frames, cycle.start,
                                                             cycle.loop_from)

    def _leave_cycle(self) -> None:
        """Bring the source to where its cycle got to, so reading it goes on from there."""
        if self._cycle is not None:
            self._cycle.catch_up(self.source, self._cycle_at)
            self._cycle = self._payloads = None

    def _send_frame(self) -> None:
        """This tick's packet: a voice frame or, while digits are being sent, a
        telephone-event (the voice's clock and the source run on under it)."""
        timestamp = self._timestamp
        self._timestamp = (timestamp + self.clock_per_frame) & 0xFFFFFFFF
        payloads, payload = self._payloads, None
        if payloads is None:
            frame = self.source.read(self.send_samples, self.send_rate)
        else:  # the frame and its payload the source's cycle has next
            index = self._cycle_at  # and the one after it: FrameCycle.after, inlined (a tick)
            self._cycle_at = index + 1 if index + 1 < len(payloads) else self._loop_from
            frame, payload = self._frames[index], payloads[index]
        if self.muted:
            self._last_sent = payload = None
            frame = frame * 0
        else:
            self._last_sent = frame
        if self._sending_digits and self._event_type is not None:
            self._send_event(timestamp)
            return
        self._send(self._voice_type, timestamp,
                   self.codec.encode(frame) if payload is None else payload, self._first)
        self._first = False

    def _send_event(self, timestamp: int) -> None:
        """A telephone-event packet in place of the voice frame, or nothing (the gap after a
        digit); every packet of one event carries the event's first timestamp."""
        event = self.dtmf.next()
        self._sending_digits = self.dtmf.busy
        if event is None or event is False:
            return
        assert self.media.dtmf_payload_type is not None
        if event.marker:
            self._dtmf_timestamp = timestamp
        self._send(self.media.dtmf_payload_type, self._dtmf_timestamp, event.payload,
                   event.marker)

    def _send(self, payload_type: int, timestamp: int, payload: bytes, marker: bool) -> None:
        """Every packet leaves here: its header packed in place (``build`` and ``seq_add``
        without their calls, fifty times a second for every call) and handed straight to the
        endpoint's current ``sendto``."""
        packet = _pack_header(0x80, (0x80 if marker else 0) | payload_type, self._sequence,
                              timestamp, self.ssrc) + payload
        self.rtp.sendto(self.srtp.protect(packet) if self.srtp is not None else packet,
                        self.remote)
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self._sequence = (self._sequence + 1) & 0xFFFF

    def _play_frame(self) -> None:
        """One frame to the sink, from as many packets as it takes (usually exactly one)."""
        need = self.samples_per_frame
        while self._pending_samples < need:
            playing, packet = self.jitter.get()
            if not playing:
                return  # still filling: the audio held back waits for the next tick
            decoded = self._recover_lost_frame() if packet is None else \
                self._decode(packet.payload)
            self._packet_samples = len(decoded) or self._packet_samples
            if not self._pending and len(decoded) == need:
                self._last_played = decoded  # the usual case: one packet, one frame
                self.heard.add(decoded)
                self.sink.write(decoded, self.rate)
                return
            self._pending.append(decoded)
            self._pending_samples += len(decoded)
        joined = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        frame, rest = joined[:need], joined[need:]
        self._pending = [rest] if len(rest) else []
        self._pending_samples = len(rest)
        self._last_played = frame
        self.heard.add(frame)
        self.sink.write(frame, self.rate)

    def _start_metering(self) -> None:
        """Somebody watches the level of audio nobody plays (a live view of --null-audio):
        from now on it is decoded like played audio. One lone packet is a poor measure (a
        decoder without history, SILK above all, starts several dB off); the first reading
        is that, the next ones are right."""
        if not self._metered:
            self._metered = True
            self._decide()
            self._pending, self._pending_samples = [], 0

    def _decode(self, payload: bytes) -> Samples:
        """The payload's audio; one the codec refuses (garbage, a truncated or corrupt
        packet) is concealed like a lost packet, and counted."""
        try:
            return self.codec.decode(payload)
        except Exception:  # noqa: BLE001  (peer's junk: any decoder error is contained)
            self.undecodable += 1
            return self.codec.conceal(self._packet_samples)

    def _recover_lost_frame(self) -> Samples:
        """Opus carries the previous frame in its in-band FEC: use it when the next packet is
        already here; otherwise (and for G.711) the codec conceals the gap."""
        following = self.jitter.peek_next()
        recover = getattr(self.codec, "recover", None)
        if following is not None and recover is not None:
            try:
                frame: Samples = recover(following.payload, self._packet_samples)
            except Exception:  # noqa: BLE001  (a corrupt next packet: conceal instead)
                return self.codec.conceal(self._packet_samples)
            self.recovered += 1
            return frame
        return self.codec.conceal(self._packet_samples)

    def _on_packet(self, data: bytes, source: tuple[str, int]) -> None:
        """Every datagram that reaches the RTP socket while the stream runs, straight from
        the transport (see RtpEndpoint)."""
        if self.srtp is not None:
            plain = self._unprotect(data, source)
            if plain is None:
                return
            data = plain
        if len(data) >= _HEADER_SIZE and data[0] == 0x80:  # the usual packet, read in place
            _, second, sequence, timestamp, ssrc = _unpack_header(data)
            payload_type, payload_at = second & 0x7F, _HEADER_SIZE
        else:  # CSRCs, an extension, padding, or not RTP at all
            try:
                packet = RtpPacket.parse(data)
            except RtpError:
                self.rtp.not_rtp(data, source)  # a STUN answer to the endpoint, or junk
                return
            payload_type, sequence, timestamp, ssrc = (packet.payload_type, packet.sequence,
                                                       packet.timestamp, packet.ssrc)
            data, payload_at = packet.payload, 0
            second = payload_type | (0x80 if packet.marker else 0)
        is_event = payload_type == self._event_type
        if payload_type != self._voice_type and not is_event:
            return  # comfort noise, or a codec we did not agree on
        if source != self.remote:
            if self._latched:
                self.foreign += 1  # not the peer's: injected or stray, never played
                return
            # symmetric RTP (RFC 4961): answer where it comes from
            self.remote = _peer(*source)
        self._latched = True
        self.last_rtp = now = _monotonic()
        self.stats.update(sequence, timestamp, now, not is_event)
        if is_event:
            digit = self._dtmf_receiver.receive(timestamp, data[payload_at:])
            if digit is not None and self.on_dtmf is not None:
                self.on_dtmf(digit)
        elif self._discarding:
            # nobody plays it: no jitter buffer, no decoding, not even a copy of the payload
            self._last_heard, self._last_heard_at = data, payload_at
        else:
            self.jitter.put(RtpPacket(payload_type, sequence, timestamp, ssrc,
                                      data[payload_at:], second > 0x7F))

    def _unprotect(self, data: bytes, source: tuple[str, int]) -> bytes | None:
        """SRTP's plain packet; None for what is not the peer's (counted, not worth a
        decryption), tampered, replayed, or not RTP at all (a STUN answer: the endpoint's)."""
        if data and data[0] < 2:
            self.rtp.not_rtp(data, source)
            return None
        if source != self.remote and self._latched:
            self.foreign += 1
            return None
        assert self.srtp is not None
        return self.srtp.unprotect(data)  # None: tampered, replayed or not for us (counted)

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
        if self.rtcp.remote is not None:
            compound = serialise(packets)
            if self.srtp is not None:
                compound = self.srtp.protect_rtcp(compound)
            self.rtp.send_rtcp(compound, self.rtcp.remote)
            self.rtcp.sent += 1

    def _on_rtcp(self, data: bytes, source: tuple[str, int]) -> None:
        if self.srtp is not None:
            plain = self.srtp.unprotect_rtcp(data)
            if plain is None:
                return
            data = plain
        try:
            packets = parse_compound(data)
        except RtcpError:
            return
        if self._latched and source[0] != self.remote[0]:
            self.foreign += 1  # RTCP comes from the peer's host, or is not the peer's
            return
        self.rtcp.remote = source
        self.rtcp.received += 1
        self.rtcp.absorb(packets, self.ssrc, time.monotonic())

    def snapshot(self) -> StreamStats:
        mos = estimate_mos(self.media.codec.key, self.stats.received, self.stats.lost,
                           self.stats.jitter_ms, self.rtcp.rtt_ms, self.media.ptime)
        return StreamStats(self.packets_sent, self.stats.received, self.stats.lost,
                           self.stats.jitter_ms, self.jitter.late, self.rtcp.sent,
                           self.rtcp.received, self.rtcp.rtt_ms, self.rtcp.remote_loss, mos)


@dataclass(slots=True)
class RtcpState:
    """What RTCP of one stream remembers between reports (RFC 3550 6.4)."""

    interval: float
    cname: str
    remote: tuple[str, int] | None  # None: the peer offered no port for RTCP
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


def _peer(host: str, port: int) -> tuple[str, int]:
    """Where a stream sends, and whose packets it takes: every packet's source is compared
    with it, so its host is the process's one string for that address (interned), which
    stays in cache, rather than each call's own copy."""
    return sys.intern(host), port


def _rtcp_destination(media: NegotiatedMedia) -> tuple[str, int] | None:
    port = media.remote_rtcp_port
    return (media.remote_address, port) if port is not None else None
