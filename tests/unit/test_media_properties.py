"""Property tests for what reaches us from the network besides SIP: RTP, RTCP, STUN answers
and SDP bodies, arbitrary or mutated from real ones. Whatever arrives, the parsers raise only
their own errors, a running stream neither raises nor stops ticking, and an offer is
answered or refused with an SdpError (a 488), never with anything else."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Iterator

import numpy as np
import pytest
from aioice import stun
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softphone.media.clock import MediaClock
from softphone.media.ports import Discard, Recorder, Tone
from softphone.media.srtp import SrtpContext
from softphone.media.stream import MediaStream
from softphone.rtp.packet import RtpError, RtpPacket
from softphone.rtp.rtcp import RtcpError, parse_compound
from softphone.sdp.crypto import SUITES
from softphone.sdp.model import SdpError, SessionDescription
from softphone.sdp.negotiation import (
    CODECS,
    NegotiatedMedia,
    SrtpKeys,
    answer_offer,
    make_offer,
    read_answer,
)
from softphone.transport.rtp import RtpEndpoint
from softphone.transport.stun import StunClient, is_stun
from tests.conftest import TESTDATA

PEER = ("127.0.0.1", 4000)
INTERESTING = b"\x00\x01\x02\x7f\x80\x81\xc8\xc9\xca\xcb\xff\r\n :=/"


def mutate(data: bytes, seed: int, mutations: int, interesting: bytes = INTERESTING) -> bytes:
    """``data`` with ``mutations`` bytes replaced, deleted or inserted, from ``seed``."""
    mutated, rng = bytearray(data), random.Random(seed)
    for _ in range(mutations):
        position = rng.randrange(len(mutated) or 1)
        action = rng.randrange(4)
        if action == 0 and mutated:
            mutated[position] = rng.choice(interesting)
        elif action == 1 and mutated:
            del mutated[position]
        elif action == 2:
            mutated.insert(position, rng.choice(interesting))
        else:
            mutated[position:position] = bytes([rng.randrange(256)])
    return bytes(mutated)


# --- STUN answers (on the SIP socket and every call's RTP socket) ---------------------------

def _binding_answer() -> bytes:
    return bytes(stun.Message(message_method=stun.Method.BINDING,
                              message_class=stun.Class.RESPONSE,
                              attributes={"XOR-MAPPED-ADDRESS": ("192.0.2.1", 5060),
                                          "MAPPED-ADDRESS": ("192.0.2.1", 5060),
                                          "SOFTWARE": "test", "PRIORITY": 1}))


@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
@settings(max_examples=500, deadline=None)
def test_a_mutated_stun_answer_is_dropped_quietly(seed: int, mutations: int) -> None:
    """aioice parses STUN; a truncated attribute made it raise struct.error, which went up
    through the socket's callback (a traceback in the log for one datagram from anyone)."""
    client = StunClient(lambda data, addr: None)
    data = mutate(_binding_answer(), seed, mutations)
    if is_stun(data):
        client.received(data, PEER)


@given(st.binary(max_size=64))
@settings(max_examples=300, deadline=None)
def test_any_stun_looking_datagram_is_dropped_quietly(body: bytes) -> None:
    client = StunClient(lambda data, addr: None)
    client.received(struct.pack("!HHI", 0x0101, len(body), stun.COOKIE) + bytes(12) + body,
                    PEER)


# --- RTP and RTCP ---------------------------------------------------------------------------

@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_raise_only_rtp_error(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        return
    bytes(packet)


def _compound() -> bytes:
    """A compound report as a peer sends it: SR with a report block, SDES, BYE."""
    sender = struct.pack("!BBHIQIII", 0x81, 200, 12, 7, 1 << 32, 160, 50, 8000)
    block = struct.pack("!IIIIII", 9, 0x01000002, 100, 3, 0x12345678, 65536)
    cname = b"\x01\x05peer1\x00\x00"
    sdes = struct.pack("!BBHI", 0x81, 202, (4 + len(cname)) // 4, 7) + cname
    goodbye = struct.pack("!BBHI", 0x81, 203, 2, 7) + b"\x03bye"
    return sender + block + sdes + goodbye


@given(st.one_of(st.binary(max_size=200),
                 st.builds(mutate, st.just(_compound()), st.integers(0, 2**32 - 1),
                           st.integers(1, 8))))
@settings(max_examples=500, deadline=None)
def test_arbitrary_rtcp_raises_only_rtcp_error(data: bytes) -> None:
    try:
        parse_compound(data)
    except RtcpError:
        pass


class Wire(RtpEndpoint):
    """An endpoint that keeps nothing: the stream's packets go nowhere."""

    def __init__(self) -> None:
        super().__init__()
        self.sendto = lambda data, destination: None

    def send_rtcp(self, data: bytes, destination: tuple[str, int]) -> None:
        pass


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The clock's loop: the streams are ticked by hand, so it never runs."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _stream(codec: str, sink: Discard | Recorder, loop: asyncio.AbstractEventLoop
            ) -> MediaStream:
    payload_type = {"pcmu": 0, "g722": 9, "opus": 111}[codec]
    media = NegotiatedMedia(CODECS[codec], payload_type, *PEER, 101, "sendrecv",
                            remote_rtcp_port=PEER[1] + 1)
    return MediaStream(Wire(), media, Tone(440), sink, clock=MediaClock(loop))


def _datagrams() -> st.SearchStrategy[bytes]:
    """RTP headers of every shape (version, padding, extension, CSRC count, marker, a
    payload type we agreed or not) before any payload, and raw bytes."""
    header = st.builds(
        lambda first, second, sequence, payload: struct.pack(
            "!BBHII", first, second, sequence, sequence * 160, 7) + payload,
        st.integers(0, 255), st.sampled_from([0, 9, 101, 111, 0x80, 0x80 | 101, 13, 127]),
        st.integers(0, 65535), st.binary(max_size=200))
    return st.one_of(header, st.binary(max_size=64))


@pytest.mark.parametrize(("codec", "playing"), [("pcmu", False), ("pcmu", True),
                                                 ("g722", True), ("opus", True)])
@given(datagrams=st.lists(_datagrams(), min_size=1, max_size=30),
       rtcp=st.lists(st.builds(mutate, st.just(_compound()), st.integers(0, 2**32 - 1),
                               st.integers(0, 6)), max_size=3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_stream_takes_any_datagram_and_goes_on_ticking(
        loop: asyncio.AbstractEventLoop, codec: str, playing: bool, datagrams: list[bytes],
        rtcp: list[bytes]) -> None:
    """Junk from the peer's address, interleaved with ticks: counted, concealed or dropped;
    the stream never raises, and plays a whole frame every tick it plays."""
    stream = _stream(codec, Recorder() if playing else Discard(), loop)
    stream.source.prepare(stream.send_rate)
    for number, data in enumerate(datagrams):
        stream._on_packet(data, PEER)
        if number < len(rtcp):
            stream._on_rtcp(rtcp[number], (PEER[0], PEER[1] + 1))
        stream.tick(float(number) * 0.02)
    _ = (stream.snapshot(), stream.level_out)
    if isinstance(stream.sink, Recorder):
        frames = {len(frame) for frame in stream.sink.frames}
        assert frames <= {stream.samples_per_frame}
        assert all(np.asarray(frame).dtype == np.int16 for frame in stream.sink.frames)


def _srtp_pair(suite_name: str) -> tuple[SrtpContext, SrtpKeys]:
    """The peer's SRTP context, and our keys that read it (and it ours)."""
    suite = SUITES[suite_name]
    theirs, ours = (bytes(range(offset, offset + suite.material_length))
                    for offset in (0, 100))
    return SrtpContext(SrtpKeys(suite, theirs, ours)), SrtpKeys(suite, ours, theirs)


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"])
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**32 - 1), st.integers(0, 6)),
                min_size=1, max_size=30))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_an_srtp_stream_takes_tampered_and_foreign_packets_and_goes_on(
        loop: asyncio.AbstractEventLoop, suite: str,
        arrivals: list[tuple[int, int, int]]) -> None:
    """The peer's SRTP and SRTCP, some mutated (or raw junk): what fails authentication is
    counted as rejected and never heard; what the peer sent unharmed is."""
    peer, keys = _srtp_pair(suite)
    media = NegotiatedMedia(CODECS["pcmu"], 0, *PEER, 101, "sendrecv",
                            remote_rtcp_port=PEER[1] + 1, srtp=keys)
    stream = MediaStream(Wire(), media, Tone(440), Recorder(), clock=MediaClock(loop))
    stream.source.prepare(stream.send_rate)
    intact = 0
    for number, (kind, seed, mutations) in enumerate(arrivals):
        header = struct.pack("!BBHII", 0x80, 0, 1000 + number, 160 * number, 7)
        packet = peer.protect(header + bytes(160))
        report = peer.protect_rtcp(_compound())
        if kind == 2:
            packet = random.Random(seed).randbytes(seed % 64)
        else:
            packet = mutate(packet, seed, mutations)
            report = mutate(report, seed, mutations)
        intact += kind != 2 and mutations == 0
        stream._on_packet(packet, PEER)
        stream._on_rtcp(report, (PEER[0], PEER[1] + 1))
        stream.tick(number * 0.02)
    assert stream.srtp is not None
    assert stream.stats.received >= intact  # unharmed packets all got through


# --- SDP offers and answers -----------------------------------------------------------------

_OFFERS = [p.read_bytes() for p in sorted((TESTDATA / "rfc4317").glob("*-offer*.sdp"))] + [
    bytes(make_offer(["opus", "g722", "pcmu", "pcma"], "192.0.2.1", 40000, 1, 1, srtp=mode))
    for mode in ("off", "optional", "mandatory")]
_ANSWERS = [p.read_bytes() for p in sorted((TESTDATA / "rfc4317").glob("*-answer*.sdp"))]
_OUR_OFFER = make_offer(["opus", "g722", "pcmu", "pcma"], "192.0.2.1", 40000, 1, 1,
                        srtp="optional")


@given(st.integers(0, len(_OFFERS) - 1), st.integers(0, 2**32 - 1), st.integers(1, 8),
       st.sampled_from(["off", "optional", "mandatory"]))
@settings(max_examples=800, deadline=None)
def test_a_mutated_offer_is_answered_or_refused_with_sdp_error(
        index: int, seed: int, mutations: int, mode: str) -> None:
    try:
        offer = SessionDescription.parse(mutate(_OFFERS[index], seed, mutations))
        answer, agreed = answer_offer(offer, ["opus", "g722", "pcmu", "pcma"], "192.0.2.2",
                                      40000, 2, 1, srtp=mode)
    except SdpError:
        return
    assert SessionDescription.parse(bytes(answer)) == answer  # what we send is well formed
    assert 0 <= agreed.remote_port <= 65535 and agreed.ptime > 0


@given(st.integers(0, len(_ANSWERS) - 1), st.integers(0, 2**32 - 1), st.integers(1, 8))
@settings(max_examples=500, deadline=None)
def test_a_mutated_answer_is_read_or_refused_with_sdp_error(
        index: int, seed: int, mutations: int) -> None:
    try:
        answer = SessionDescription.parse(mutate(_ANSWERS[index], seed, mutations))
        agreed = read_answer(answer, ["opus", "g722", "pcmu", "pcma"], _OUR_OFFER)
    except SdpError:
        return
    assert 0 <= agreed.remote_port <= 65535 and agreed.ptime > 0
