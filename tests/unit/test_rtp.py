"""RTP packets, RFC 3550 receiver statistics and the jitter buffer."""

from __future__ import annotations

import pytest

from softphone.rtp.jitter import JitterBuffer
from softphone.rtp.packet import RtpError, RtpPacket, seq_add, seq_diff, ts_add
from softphone.rtp.stats import ReceiverStats


def test_round_trip_with_every_optional_part() -> None:
    packet = RtpPacket(payload_type=96, sequence=65535, timestamp=2**32 - 1, ssrc=0xDEADBEEF,
                       payload=b"abc", marker=True, csrc=(1, 2), extension_profile=0xBEDE,
                       extension=b"\x10\x01\x00\x00", padding=4)
    data = bytes(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 2 and data[1] == 0x80 | 96
    assert RtpPacket.parse(data) == packet


def test_known_bytes_parse() -> None:
    # RFC 7714 section 16's RTP header: 8040f17b 8041f8d3 5501a0b2, then the payload
    data = bytes.fromhex("8040f17b8041f8d35501a0b2") + b"Gallia est omnis divisa"
    packet = RtpPacket.parse(data)
    assert (packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc) == (
        0x40, 0xF17B, 0x8041F8D3, 0x5501A0B2)
    assert packet.payload == b"Gallia est omnis divisa" and bytes(packet) == data


@pytest.mark.parametrize(("data", "message"), [
    (b"\x80\x00", "shorter"), (bytes.fromhex("400000000000000000000000"), "version"),
    (bytes.fromhex("820000000000000000000000") + b"\0\0\0\0", "CSRC"),
    (bytes.fromhex("900000000000000000000000") + b"\0\0", "extension header"),
    (bytes.fromhex("900000000000000000000000") + b"\0\0\0\x02\0\0\0\0", "truncated extension"),
    (bytes.fromhex("a00000000000000000000000") + b"\x00", "padding"),
    (bytes.fromhex("a00000000000000000000000") + b"\x09", "padding"),
])
def test_specific_errors(data: bytes, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        RtpPacket.parse(data)


def test_counter_arithmetic_wraps() -> None:
    assert seq_add(65535, 1) == 0 and seq_diff(0, 65535) == 1 and seq_diff(65535, 0) == -1
    assert ts_add(2**32 - 10, 20) == 10


def test_loss_counts_across_the_sequence_wrap_and_ignores_duplicates() -> None:
    stats = ReceiverStats(clock_rate=8000)
    for n, sequence in enumerate([65530, 65531, 65533, 65534, 65535, 0, 1, 1, 3]):
        stats.update(sequence, n * 160, n * 0.02)
    assert stats.expected == 10 and stats.duplicates == 1
    assert stats.lost == 2  # 65532 and 2


@pytest.mark.parametrize("first", [0, 1, 2, 65535])
def test_the_first_packet_starts_the_count_whatever_its_sequence_number(first: int) -> None:
    """Sequence 1 is what the in-order case looks for after the initial max_seq 0: the
    first packet must still be taken for the first (A.1's init_seq), not as the next."""
    stats = ReceiverStats(clock_rate=8000)
    for n in range(3):
        stats.update((first + n) & 0xFFFF, n * 160, n * 0.02)
    assert (stats.base_seq, stats.expected, stats.lost) == (first, 3, 0)


def test_jitter_follows_rfc3550_a8() -> None:
    steady = ReceiverStats(clock_rate=8000)
    for n in range(100):
        steady.update(n, n * 160, n * 0.02)
    assert steady.jitter_ms < 0.001
    shaky = ReceiverStats(clock_rate=8000)
    for n in range(400):
        shaky.update(n, n * 160, n * 0.02 + (0.01 if n % 2 else 0.0))
    assert 8.0 < shaky.jitter_ms < 10.5  # |D| is 10 ms every packet; J converges toward it


def packet(sequence: int) -> RtpPacket:
    return RtpPacket(payload_type=0, sequence=sequence, timestamp=sequence * 160, ssrc=1,
                     payload=bytes([sequence % 256]))


def test_jitter_buffer_reorders_conceals_and_drops_late_and_duplicates() -> None:
    buffer = JitterBuffer(depth=3)
    for sequence in (11, 10, 13, 13):  # 10 arrives second, 12 never, 13 twice
        buffer.put(packet(sequence))
    assert buffer.duplicates == 1
    played = []
    for _ in range(4):
        playing, item = buffer.get()
        assert playing
        played.append(item.sequence if item else None)
    assert played == [10, 11, None, 13]
    buffer.put(packet(12))  # its slot has passed
    assert buffer.late == 1


def test_jitter_buffer_waits_until_primed_and_refills_after_running_dry() -> None:
    buffer = JitterBuffer(depth=2)
    buffer.put(packet(1))
    assert buffer.get() == (False, None)
    buffer.put(packet(2))
    assert buffer.get()[0] and buffer.get()[0]
    assert buffer.get() == (True, None)  # dry: a loss, then it waits again
    buffer.put(packet(4))
    assert buffer.get() == (False, None)


def test_jitter_buffer_depth_adapts_within_bounds() -> None:
    buffer = JitterBuffer(min_depth=2, max_depth=10)
    buffer.adapt(jitter_ms=0.0, ptime_ms=20)
    assert buffer.depth == 2
    buffer.adapt(jitter_ms=30.0, ptime_ms=20)
    assert buffer.depth == 6
    buffer.adapt(jitter_ms=1000.0, ptime_ms=20)
    assert buffer.depth == 10


def test_port_range_binds_even_odd_pairs_and_steps_over_taken_ports() -> None:
    from softphone.transport.rtp import PortRange

    # below both the agents' default range and the kernel's ephemeral ports: nobody else's
    ports = PortRange(12001, 12010)  # an odd start: pairs begin at 12002
    taken = [ports.bind_pair("127.0.0.1") for _ in range(4)]
    numbers = [(rtp.getsockname()[1], rtcp.getsockname()[1]) for rtp, rtcp in taken]
    assert all(rtp % 2 == 0 and rtcp == rtp + 1 for rtp, rtcp in numbers)
    assert len(set(numbers)) == 4 and all(12002 <= rtp <= 12009 for rtp, _ in numbers)
    with pytest.raises(OSError, match="no free RTP/RTCP port pair in 12002-12009"):
        ports.bind_pair("127.0.0.1")  # all four pairs are in use
    for sock in taken[0]:
        sock.close()
    rtp, rtcp = ports.bind_pair("127.0.0.1")
    assert (rtp.getsockname()[1], rtcp.getsockname()[1]) == numbers[0]
    for sock in [rtp, rtcp, *(s for pair in taken[1:] for s in pair)]:
        sock.close()
    with pytest.raises(ValueError, match="no even/odd pair"):
        PortRange(12001, 12002)


def test_port_range_finds_a_pair_past_a_long_run_of_taken_ones() -> None:
    """Another process allocating from the same range leaves a long block of taken pairs;
    starting inside it must not exhaust the tries."""
    from softphone.transport.rtp import PORT_PAIR_ATTEMPTS, PortRange

    first, last = 12100, 12100 + 2 * (PORT_PAIR_ATTEMPTS + 200) - 1
    other, ours = PortRange(first, last), PortRange(first, last)
    start = other._cursor
    taken = [other.bind_pair("127.0.0.1") for _ in range(PORT_PAIR_ATTEMPTS + 50)]
    try:
        ours._cursor = start  # at the beginning of the other's block
        rtp, rtcp = ours.bind_pair("127.0.0.1")
        assert rtp.getsockname()[1] % 2 == 0 and rtcp.getsockname()[1] == rtp.getsockname()[1] + 1
        rtp.close()
        rtcp.close()
    finally:
        for pair in taken:
            for sock in pair:
                sock.close()


async def test_g722_timestamps_advance_on_its_8000_clock_while_frames_hold_320_samples() -> None:
    """RFC 3551 4.5.2: G.722 samples at 16 kHz but its RTP clock runs at 8 kHz."""
    import asyncio

    from softphone.media.clock import MediaClock
    from softphone.media.ports import Discard, Tone
    from softphone.media.stream import MediaStream
    from softphone.sdp.negotiation import CODECS, NegotiatedMedia
    from softphone.transport.rtp import RtpEndpoint

    sent: list[bytes] = []

    wire = RtpEndpoint()
    wire.sendto = lambda data, destination: sent.append(data)
    media = NegotiatedMedia(CODECS["g722"], 9, "127.0.0.1", 4000, None, "sendrecv")
    stream = MediaStream(wire, media, Tone(1000), Discard(),
                         clock=MediaClock(asyncio.get_running_loop()))
    stream.source.prepare(stream.rate)
    for _ in range(3):
        stream.tick(0.0)
    packets = [RtpPacket.parse(data) for data in sent]
    assert [p.payload_type for p in packets] == [9, 9, 9]
    assert {len(p.payload) for p in packets} == {160} and stream.samples_per_frame == 320
    steps = [ts_add(later.timestamp, -earlier.timestamp)
             for earlier, later in zip(packets, packets[1:], strict=False)]
    assert steps == [160, 160]


async def test_an_endpoint_sends_straight_out_while_open_through_its_impairment_and_not_after(
        ) -> None:
    """``sendto`` is rebound as the endpoint opens, is impaired, and closes."""
    import asyncio

    from softphone.transport.rtp import Impairment, RtpEndpoint

    heard: list[bytes] = []
    listener, plain, lossy = RtpEndpoint(), RtpEndpoint(), RtpEndpoint(Impairment(loss=1.0))
    plain.sendto(b"before", ("127.0.0.1", 9))  # no socket yet: dropped, no error
    for endpoint in (listener, plain, lossy):
        await endpoint.open("127.0.0.1")
    listener.handler = lambda data, source: heard.append(data)
    destination = ("127.0.0.1", listener.port)
    plain.sendto(b"straight", destination)
    lossy.sendto(b"lost", destination)  # 100% loss: the impairment drops it
    await asyncio.sleep(0.1)
    plain.close()
    plain.sendto(b"after", destination)  # closed: dropped, no error
    await asyncio.sleep(0.1)
    for endpoint in (listener, lossy):
        endpoint.close()
    assert heard == [b"straight"]
