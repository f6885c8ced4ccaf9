"""A media stream driven by hand (no sockets, no timer): packet sizes that differ from our
frame, the negotiated packet time on the way out, payloads the codec refuses, sources that
are not the peer's, and the pacing clock that outlives a failing stream."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from softphone.media.clock import MediaClock
from softphone.media.codecs import make_codec
from softphone.media.ports import Discard, Echo, Recorder, Silence, Switch, Tone
from softphone.media.quality import dominant_frequency, level_dbfs
from softphone.media.stream import (
    ADAPT_EVERY,
    LOW_COMPLEXITY,
    NORMAL_COMPLEXITY,
    MediaStream,
)
from softphone.rtp.packet import RtpPacket, build, ts_add
from softphone.sdp.negotiation import CODECS, NegotiatedMedia
from softphone.transport.rtp import RtpEndpoint

PEER = ("127.0.0.1", 4000)


class Wire(RtpEndpoint):
    """An endpoint whose sends are kept instead of going out."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.sendto = self.keep

    def keep(self, data: bytes, destination: tuple[str, int]) -> None:
        self.sent.append(data)

    def send_rtcp(self, data: bytes, destination: tuple[str, int]) -> None:
        pass


async def make_stream(codec: str = "pcmu", ptime: int = 20, sink: object = None,
                      pt: int = 0) -> MediaStream:
    media = NegotiatedMedia(CODECS[codec], pt, *PEER, None, "sendrecv", ptime,
                            remote_rtcp_port=PEER[1] + 1)
    stream = MediaStream(Wire(), media, Tone(1000), sink or Recorder(),  # type: ignore[arg-type]
                         clock=MediaClock(asyncio.get_running_loop()))
    stream.source.prepare(stream.rate)
    return stream


def ramp_packets(samples_each: int, count: int) -> tuple[list[bytes], np.ndarray]:
    """PCMU packets of a slow ramp, and the audio they decode to, in order."""
    codec = make_codec("pcmu")
    audio = (np.arange(samples_each * count) * 7 % 16000 - 8000).astype(np.int16)
    packets, decoded = [], []
    for n in range(count):
        payload = codec.encode(audio[n * samples_each:(n + 1) * samples_each])
        packets.append(build(0, 100 + n, 1000 + n * samples_each, 7, payload))
        decoded.append(make_codec("pcmu").decode(payload))
    return packets, np.concatenate(decoded)


@pytest.mark.parametrize("peer_samples", [80, 160, 240, 320])  # 10, 20, 30, 40 ms packets
async def test_playout_keeps_the_audio_whatever_size_the_peers_packets_are(
        peer_samples: int) -> None:
    stream = await make_stream()
    packets, decoded = ramp_packets(peer_samples, 24)
    for packet in packets:
        stream._on_packet(packet, PEER)
    for _ in range(24 * peer_samples // 160):
        stream.tick(0.0)
    sink = stream.sink
    assert isinstance(sink, Recorder)
    assert {len(frame) for frame in sink.frames} == {160}  # our 20 ms frames, always
    played = sink.samples
    assert len(played) >= len(decoded) - 4 * peer_samples  # all but what fills the buffer
    assert np.array_equal(played, decoded[: len(played)])  # in order, nothing lost or doubled


async def test_a_listener_nobody_hears_counts_packets_off_by_their_length() -> None:
    """40 ms packets against 20 ms ticks: the buffer neither grows nor runs dry."""
    stream = await make_stream(sink=Discard())
    packets, _ = ramp_packets(320, 50)
    for index, packet in enumerate(packets):
        stream._on_packet(packet, PEER)
        stream.tick(0.0)
        stream.tick(0.0)
        assert stream.jitter.size <= 4, index
    assert stream.jitter.late == 0


@pytest.mark.parametrize("csrcs", [(), (0x1234, 0x5678)])
async def test_the_meter_of_discarded_audio_reads_the_last_payload_heard(
        csrcs: tuple[int, ...]) -> None:
    """Nothing is decoded for a Discard sink until a meter asks; then the last packet's
    payload is, wherever in the datagram it starts (after CSRCs, say), and only it."""
    stream = await make_stream(sink=Discard())
    codec, quiet = make_codec("pcmu"), np.full(160, 100, dtype=np.int16)
    loud = (np.sin(np.arange(160) * 2 * np.pi / 16) * 16000).astype(np.int16)
    payloads = [codec.encode(frame) for frame in (quiet, loud)]
    for number, payload in enumerate(payloads):
        packet = RtpPacket(0, 100 + number, 1000 + 160 * number, 7, payload, csrc=csrcs)
        stream._on_packet(bytes(packet), PEER)
    assert stream.jitter.size == 0  # discarded: nothing buffered
    assert abs(stream.level_out - level_dbfs(loud)) < 0.5
    assert np.array_equal(stream._last_played, make_codec("pcmu").decode(payloads[1]))


@pytest.mark.parametrize(("codec", "ptime", "payload"), [
    ("pcmu", 30, 240), ("pcmu", 40, 320), ("opus", 10, None), ("opus", 60, None)])
async def test_frames_sent_hold_the_negotiated_packet_time(codec: str, ptime: int,
                                                           payload: int | None) -> None:
    stream = await make_stream(codec, ptime, pt=0 if codec == "pcmu" else 111)
    for _ in range(3):
        stream.tick(0.0)
    assert isinstance(stream.rtp, Wire)
    packets = [RtpPacket.parse(data) for data in stream.rtp.sent]
    clock_step = CODECS[codec].clock_rate * ptime // 1000
    steps = [ts_add(b.timestamp, -a.timestamp) for a, b in zip(packets, packets[1:], strict=False)]
    assert steps == [clock_step, clock_step]
    if payload is not None:
        assert {len(p.payload) for p in packets} == {payload}
    else:
        decoder = make_codec("opus")
        assert {len(decoder.decode(p.payload)) for p in packets} == {48 * ptime}


async def test_a_payload_the_codec_refuses_is_concealed_and_counted() -> None:
    stream = await make_stream("opus", pt=111)
    good = make_codec("opus").encode(np.zeros(960, dtype=np.int16))
    for sequence, payload in enumerate([good, good, b"\xff\xff\xff", good, b"\x00", good]):
        stream._on_packet(build(111, sequence, sequence * 960, 9, payload), PEER)
    for _ in range(6):
        stream.tick(0.0)
    assert stream.undecodable >= 1
    sink = stream.sink
    assert isinstance(sink, Recorder) and {len(f) for f in sink.frames} == {960}


async def test_packets_from_another_source_never_replace_the_peers() -> None:
    stream = await make_stream()
    packets, decoded = ramp_packets(160, 6)
    stream._on_packet(packets[0], PEER)
    stranger = build(0, 101, 1160, 99, b"\x00" * 160)  # the next sequence, loud, elsewhere
    stream._on_packet(stranger, ("127.0.0.1", 6666))
    for packet in packets[1:]:
        stream._on_packet(packet, PEER)
    for _ in range(6):
        stream.tick(0.0)
    assert stream.foreign == 1 and stream.remote == PEER
    sink = stream.sink
    assert isinstance(sink, Recorder)
    assert np.array_equal(sink.samples, decoded[: len(sink.samples)])


class Ticker:
    def __init__(self, explode: bool = False) -> None:
        self.ticks = 0
        self.explode = explode
        self.failures: list[Exception] = []

    def tick(self, now: float) -> None:
        self.ticks += 1
        if self.explode and self.ticks == 3:
            raise OSError(28, "No space left on device")

    def failed(self, error: Exception) -> None:
        self.failures.append(error)


async def test_the_clock_outlives_a_stream_that_raises() -> None:
    clock = MediaClock(asyncio.get_running_loop())
    healthy, broken, slow = Ticker(), Ticker(explode=True), Ticker()
    clock.add(healthy, 0.02)
    clock.add(broken, 0.02)
    clock.add(slow, 0.04)
    await asyncio.sleep(0.5)
    clock.remove(healthy)
    clock.remove(slow)
    assert broken.ticks == 3 and len(broken.failures) == 1 and clock.failures == 1
    assert healthy.ticks >= 15  # about 25 in half a second, on a busy machine fewer
    assert 1.6 <= healthy.ticks / slow.ticks <= 2.5  # the 40 ms stream ticks half as often
    assert broken not in clock.streams


async def test_every_other_stream_ticks_on_the_tick_one_of_them_raises() -> None:
    """The clock's one ``try`` around a whole group goes on after the stream that raised:
    the streams iterated after it that tick are not skipped (they would fall a tick behind)."""
    clock = MediaClock(asyncio.get_running_loop())
    healthy = [Ticker() for _ in range(20)]
    broken = [Ticker(explode=True) for _ in range(3)]
    for ticker in healthy + broken:
        clock.add(ticker, 0.02)
    await asyncio.sleep(0.2)
    for ticker in healthy:
        clock.remove(ticker)
    assert [len(b.failures) for b in broken] == [1, 1, 1] and clock.failures == 3
    assert len({ticker.ticks for ticker in healthy}) == 1  # every one ticked every time
    assert healthy[0].ticks >= 4


@pytest.mark.parametrize(("source", "sink", "send_rate", "rate"), [
    (Silence(), Discard(), 8000, 48000),  # a load test's call: nothing worth a wide band
    (Tone(440), Recorder(), 8000, 48000),  # a tone sent narrow; what is heard, full band
    (Tone(7000), Recorder(), 24000, 48000),
])
async def test_opus_codes_each_direction_at_the_rate_its_port_needs(
        source: object, sink: object, send_rate: int, rate: int) -> None:
    media = NegotiatedMedia(CODECS["opus"], 111, *PEER, None, "sendrecv", 20)
    stream = MediaStream(Wire(), media, source, sink,  # type: ignore[arg-type]
                         clock=MediaClock(asyncio.get_running_loop()))
    assert (stream.send_rate, stream.rate) == (send_rate, rate)
    assert (stream.send_samples, stream.samples_per_frame) == (send_rate // 50, rate // 50)
    assert stream.clock_per_frame == 960  # the RTP clock stays at 48 kHz
    pcmu = await make_stream("pcmu")
    assert (pcmu.send_rate, pcmu.rate) == (8000, 8000)  # one-rate codecs keep theirs


def test_opus_packets_coded_narrow_are_heard_whole_at_any_rate() -> None:
    """An 8 kHz encoder's packets decode at 48 kHz to the same tone, as long as it lasts
    (the RTP timestamps and packet durations do not depend on the coding rate)."""
    encoder, decoder = make_codec("opus", rates=(8000, 8000)), make_codec("opus")
    tone = Tone(440)
    payloads = [encoder.encode(tone.read(160, 8000)) for _ in range(50)]
    assert all(decoder.samples(p) == 960 for p in payloads)
    heard = np.concatenate([decoder.decode(p) for p in payloads])
    assert len(heard) == 50 * 960
    assert abs(dominant_frequency(heard[9600:], 48000) - 440) < 5
    assert abs(level_dbfs(heard[9600:]) - (-10 - 3.01)) < 1.5


async def test_opus_complexity_drops_while_the_clock_is_behind_and_comes_back() -> None:
    stream = await make_stream("opus", pt=111)
    clock = stream.clock
    for _ in range(60):
        clock.note_lateness(0.010)  # 10 ms late, tick after tick: the process is overloaded
    assert clock.behind
    for tick in range(ADAPT_EVERY):
        stream.tick(tick * 0.02)
    assert stream.codec.complexity == LOW_COMPLEXITY  # type: ignore[attr-defined]
    for _ in range(20):
        clock.note_lateness(0.003)  # better, but not yet caught up: no flapping
    assert clock.behind
    for _ in range(60):
        clock.note_lateness(0.0)
    assert not clock.behind
    for tick in range(ADAPT_EVERY):
        stream.tick(1 + tick * 0.02)
    assert stream.codec.complexity == NORMAL_COMPLEXITY  # type: ignore[attr-defined]


async def test_a_silent_call_moved_into_a_conference_codes_full_band_again() -> None:
    media = NegotiatedMedia(CODECS["opus"], 111, *PEER, None, "sendrecv", 20)
    stream = MediaStream(Wire(), media, Silence(), Discard(),
                         clock=MediaClock(asyncio.get_running_loop()))
    assert stream.send_rate == 8000
    mixed = Recorder()  # ports that do not say their rate, as the mixer's legs do not
    stream.replace_ports(Tone(440), mixed)
    assert (stream.send_rate, stream.rate) == (8000, 48000)
    stream.replace_ports(Echo(), mixed)
    assert (stream.send_rate, stream.send_samples) == (48000, 960)
    assert stream.codec.rate == 48000  # type: ignore[attr-defined]


async def test_a_source_cycle_coded_once_sends_what_reading_and_coding_each_frame_would(
        ) -> None:
    """A tone's cycle, its payloads coded once (G.711), against the same tone read and coded
    frame by frame (behind a Switch, which offers no cycle): the same packets through
    muting, digits, and a re-INVITE to A-law at 40 ms in the middle of the tone's second
    (the source is caught up and its new cycle taken where the old one got to)."""
    def media(codec: str, payload_type: int, ptime: int) -> NegotiatedMedia:
        return NegotiatedMedia(CODECS[codec], payload_type, *PEER, 101, "sendrecv", ptime)

    clock = MediaClock(asyncio.get_running_loop())
    cycled, read = (MediaStream(Wire(), media("pcmu", 0, 20), source, Discard(), clock=clock)
                    for source in (Tone(443), Switch(Tone(443))))
    for stream in (cycled, read):
        stream.start()
        for tick in range(140):
            stream.muted = 40 <= tick < 43
            if tick == 60:
                stream.send_dtmf("1#")
            if tick == 77:
                stream.update(media("pcma", 8, 40))
            stream.tick(0.0)
    assert cycled._payloads is not None and read._payloads is None  # A-law's cycle, taken anew
    for stream in (cycled, read):
        stream.stop()
    sent = [[packet[1:2] + packet[12:] for packet in stream.rtp.sent]  # type: ignore[attr-defined]
            for stream in (cycled, read)]
    assert len(sent[0]) > 100 and sent[0] == sent[1]


@pytest.mark.parametrize("secure", [False, True])
async def test_a_running_stream_gets_rtp_straight_from_the_socket_and_stun_still_answers(
        secure: bool) -> None:
    """Two streams over real sockets: on IPv4 the transport hands each datagram to the
    stream's handler with no call between, and a STUN binding asked on the same socket while
    RTP (or SRTP) flows still gets its answer (the stream gives it back to the endpoint)."""
    from softphone.sdp.crypto import SUITES
    from softphone.sdp.negotiation import SrtpKeys
    from softphone.transport.rtp import RtpEndpoint
    from tests.peers.stun_server import StunServer

    loop = asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(StunServer, local_addr=("127.0.0.1", 0))
    ends = [RtpEndpoint(), RtpEndpoint()]
    for end in ends:
        await end.open("127.0.0.1")
    suite = SUITES["AES_CM_128_HMAC_SHA1_80"]
    ours, theirs = bytes(range(30)), bytes(range(30, 60))
    keys = [SrtpKeys(suite, ours, theirs), SrtpKeys(suite, theirs, ours)] if secure else \
        [None, None]
    clock = MediaClock(loop)
    streams = [MediaStream(end, NegotiatedMedia(CODECS["pcmu"], 0, "127.0.0.1",
                                                other.port, None, "sendrecv", srtp=key),
                           Tone(440), Discard(), clock=clock)
               for end, other, key in zip(ends, ends[::-1], keys, strict=True)]
    for stream in streams:
        stream.start()
    await asyncio.sleep(0.2)
    direct = [end.datagram_received == stream._on_packet
              for end, stream in zip(ends, streams, strict=True)]
    mapped = await ends[0].stun.mapped_address(server.get_extra_info("sockname"), 1)
    await asyncio.sleep(0.1)
    for stream in streams:
        stream.stop()
    for end in ends:
        end.close()
    server.close()
    assert mapped == ("127.0.0.1", ends[0].port) and direct == [True, True]
    assert all(stream.stats.received >= 10 and stream.foreign == 0 for stream in streams)


async def test_chores_come_round_on_their_own_time_not_every_tick() -> None:
    """RTCP at its randomised interval (0.5-1.5 x), the jitter buffer adapted once every
    ADAPT_EVERY packet times, over 20 s of 20 ms ticks."""
    media = NegotiatedMedia(CODECS["pcmu"], 0, *PEER, None, "sendrecv", 20,
                            remote_rtcp_port=PEER[1] + 1)
    stream = MediaStream(Wire(), media, Tone(440), Discard(),
                         clock=MediaClock(asyncio.get_running_loop()), rtcp_interval=1.0)
    adapted: list[float] = []
    stream.jitter.adapt = lambda jitter_ms, ptime: adapted.append(now)  # type: ignore[method-assign]
    stream.rtcp.next_report = 0.5
    for tick in range(1000):
        now = tick * 0.02
        stream.tick(now)
    assert 20 / 1.5 <= stream.rtcp.sent <= 20 / 0.5 + 1
    gaps = np.diff(adapted)
    assert len(adapted) == 20 and np.allclose(gaps, ADAPT_EVERY * 0.02)
