"""Media a peer gets wrong or an outsider sends, on live calls over real sockets: the packet
time the peer asked for is the one sent, and corrupt, truncated, foreign or wrong-codec
packets never stop the shared media clock or another call's audio."""

from __future__ import annotations

import asyncio
import socket
import time

import numpy as np

from softphone.media.clock import MediaClock
from softphone.media.codecs.g711 import pcmu
from softphone.rtp.packet import RtpPacket, build, ts_add
from softphone.testing import TestAgent
from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent


def invite(port: int, rtp_port: int, ptime: int) -> bytes:
    body = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:{ptime}\r\n"
            "a=sendrecv\r\n")
    return (f"INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:{sip};branch=z9hG4bKptime1;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1>;tag=raw1\r\n"
            f"To: <sip:bob@127.0.0.1:{port}>\r\nCall-ID: ptime-test@127.0.0.1\r\n"
            "CSeq: 1 INVITE\r\nContact: <sip:raw@127.0.0.1:{sip}>\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def ack_for(ok: bytes, sip_port: int) -> bytes:
    """The ACK to a 200 OK of the INVITE above (its To tag, the dialog's target)."""
    headers = dict(line.split(": ", 1) for line in ok.decode().split("\r\n\r\n")[0]
                   .split("\r\n")[1:])
    contact = headers["Contact"].strip("<>")
    return (f"ACK {contact} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{sip_port};branch=z9hG4bKptimeack;rport\r\n"
            f"Max-Forwards: 70\r\nFrom: {headers['From']}\r\nTo: {headers['To']}\r\n"
            f"Call-ID: {headers['Call-ID']}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
            ).encode()


def ok_for(request: bytes) -> bytes:
    """200 OK to a request: its Via, From, To, Call-ID and CSeq copied."""
    lines = request.decode().split("\r\n\r\n")[0].split("\r\n")[1:]
    kept = [line for line in lines if line.split(":")[0] in ("Via", "From", "To", "Call-ID",
                                                             "CSeq")]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(kept) + "\r\nContent-Length: 0\r\n\r\n"
            ).encode()


async def test_an_answer_to_ptime_40_sends_40_ms_packets_25_times_a_second() -> None:
    loop = asyncio.get_running_loop()
    sip, rtp = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    for sock in (sip, rtp):
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
    config = AgentConfig(listen_port=0, codecs=("pcmu",), audio=AudioConfig(tone=440))
    async with UserAgent(config) as bob:
        data = invite(bob.port, rtp.getsockname()[1], 40).replace(
            b"{sip}", str(sip.getsockname()[1]).encode())
        await loop.sock_sendto(sip, data, ("127.0.0.1", bob.port))
        incoming = await asyncio.wait_for(bob.incoming.get(), 5)
        await incoming.answer()
        while True:  # the 200 OK (after 100 Trying)
            reply = await asyncio.wait_for(loop.sock_recv(sip, 65536), 5)
            if reply.startswith(b"SIP/2.0 200"):
                break
        assert b"a=ptime:40" in reply
        await loop.sock_sendto(sip, ack_for(reply, sip.getsockname()[1]),
                               ("127.0.0.1", bob.port))
        packets: list[RtpPacket] = []
        start = time.monotonic()
        while time.monotonic() - start < 1.0:
            data = await asyncio.wait_for(loop.sock_recv(rtp, 2048), 2)
            packets.append(RtpPacket.parse(data))
        hanging_up = asyncio.ensure_future(incoming.hangup())
        bye = await asyncio.wait_for(loop.sock_recv(sip, 65536), 5)
        await loop.sock_sendto(sip, ok_for(bye), ("127.0.0.1", bob.port))
        await asyncio.wait_for(hanging_up, 5)
    sip.close()
    rtp.close()
    assert {len(p.payload) for p in packets} == {320}  # 40 ms of PCMU each
    steps = {ts_add(b.timestamp, -a.timestamp) for a, b in zip(packets, packets[1:], strict=False)}
    assert steps == {320}
    assert 18 <= len(packets) <= 32  # about 25 a second, not the 50 of 20 ms pacing


async def test_junk_on_one_calls_rtp_port_never_silences_another_call() -> None:
    """Garbage, a truncated header, a codec nobody agreed on and corrupt Opus arrive at the
    answerer's RTP port of the first call, from the caller's own socket and from a stranger;
    both calls keep hearing their tones and the shared clock loses no stream."""
    async with TestAgent("bob", codecs=("opus",)) as bob, \
            TestAgent("alice", codecs=("opus",)) as alice, \
            TestAgent("carol", codecs=("opus",)) as carol:
        calls = [await alice.call(bob.uri), await carol.call(bob.uri)]
        answered = [await bob.next_call(), await bob.next_call()]
        for incoming in answered:
            await incoming.answer()
        for caller, hz in zip(calls, (500, 700), strict=True):
            await caller.answered()
            caller.play_tone(hz)
        await answered[0].hears_tone(500, seconds=0.5)
        target = ("127.0.0.1", answered[0].call.rtp.port)
        stream = answered[0].call.stream
        assert stream is not None
        opus = stream.media.payload_type
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        own = calls[0].call.rtp
        for _ in range(20):
            # corrupt Opus just ahead of the real packets (so it is what gets decoded),
            # garbage, a truncated header and a payload type nobody agreed on
            ahead = (stream.jitter._next or 0) + 2
            junk = [build(opus, ahead & 0xFFFF, 0, 1, b"\xff\xff\xff"),
                    build(opus, (ahead + 1) & 0xFFFF, 0, 1, b"\x0b"), b"\x80",
                    b"garbage that is no RTP at all", build(0, ahead, 0, 1, b"\xff" * 160)]
            for packet in junk:
                own.send(packet, target)  # from the peer's own address: must be contained
                stranger.sendto(packet, target)  # from elsewhere: must be ignored
            await asyncio.sleep(0.02)
        stranger.close()
        assert stream.foreign > 0 and stream.undecodable > 0
        await answered[0].hears_tone(500, seconds=0.5)
        await answered[1].hears_tone(700, seconds=0.5)
        assert MediaClock.shared().failures == 0
        for caller in calls:
            await caller.hangup()


async def test_rtp_injected_from_another_address_mid_call_is_neither_heard_nor_latched() -> None:
    """Symmetric RTP (RFC 4961) latches once, to the peer's first packets: a stranger who
    sends well-formed audio of the call's own codec, payload type and SSRC, timed just ahead
    of the peer's, neither replaces the peer's address nor reaches the ear."""
    async with TestAgent("bob", codecs=("pcmu",)) as bob, \
            TestAgent("alice", codecs=("pcmu",)) as alice:
        call, incoming = await alice.connect(bob)
        call.play_tone(500)
        incoming.play_tone(700)
        await incoming.hears_tone(500, seconds=0.5)
        stream = incoming.call.stream
        assert stream is not None
        latched = stream.remote
        target = ("127.0.0.1", incoming.call.rtp.port)
        ssrc = call.call.stream.ssrc if call.call.stream is not None else 0
        t = np.arange(160) / 8000
        loud = pcmu().encode((np.sin(2 * np.pi * 900 * t) * 20000).astype(np.int16))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            for _ in range(75):  # 1.5 s of a 900 Hz tone
                ahead = (stream.jitter._next or 0) + 1
                stranger.sendto(build(0, ahead & 0xFFFF, (ahead * 160) & 0xFFFFFFFF, ssrc,
                                      loud), target)
                await asyncio.sleep(0.02)
        assert stream.remote == latched and stream.foreign >= 75
        await incoming.hears_tone(500, seconds=1.0)  # still alice's tone, nothing else
        await call.hears_tone(700, seconds=0.5)  # and bob's audio still goes to alice
        await call.hangup()
