"""SRTP between our agents on real sockets: audio through encryption, keys only over TLS
unless allowed, what Wireshark sees on the wire, and a tampered packet dropped and counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from softphone.testing import TestAgent
from softphone.transport.tls import TlsSettings
from tests.integration.test_tls import Certificates, certificates  # noqa: F401
from tests.peers import tshark_capture

__all__ = ["certificates"]


async def test_mandatory_srtp_carries_audio_when_keys_in_clear_are_allowed() -> None:
    async with TestAgent("alice", srtp="mandatory", srtp_insecure=True) as alice, \
            TestAgent("bob", srtp="mandatory", srtp_insecure=True) as bob:
        call, incoming = await alice.connect(bob)
        incoming.play_tone(700)
        await call.hears_tone(700, seconds=0.5)
        call.play_tone(500)
        await incoming.hears_tone(500, seconds=0.5)
        assert call.call.media is not None and call.call.media.srtp is not None
        assert call.call.media.srtp.suite.name == "AES_CM_128_HMAC_SHA1_80"
        await call.hangup()


async def test_over_tls_keys_need_no_permission_and_plain_udp_refuses_them(
        certificates: Certificates) -> None:
    server = TlsSettings(cert_file=str(certificates.server), ca_file=str(certificates.ca))
    async with TestAgent("alice", srtp="mandatory",
                         tls=TlsSettings(ca_file=str(certificates.ca))) as alice, \
            TestAgent("bob", srtp="mandatory", tls=server) as bob:
        secure = await alice.call(f"sips:bob@127.0.0.1:{bob.agent.transports['tls'].port}")
        incoming = await bob.next_call()
        await incoming.answer()
        await secure.answered()
        incoming.play_tone(700)
        await secure.hears_tone(700, seconds=0.5)
        await secure.hangup()
        refused = await alice.call(bob.uri)  # sip: over UDP: the keys would be readable
        ended = await refused.ended()
        assert ended.status == 488 and "would travel in clear over UDP" in ended.reason
        assert bob.agent.incoming.empty()


async def test_optional_srtp_meets_a_plain_peer_with_plain_rtp() -> None:
    async with TestAgent("alice", srtp="optional", srtp_insecure=True) as alice, \
            TestAgent("bob") as bob:
        call, incoming = await alice.connect(bob)
        incoming.play_tone(700)
        await call.hears_tone(700, seconds=0.5)
        assert call.call.media is not None and call.call.media.srtp is None
        await call.hangup()


@pytest.mark.peers
async def test_wireshark_sees_srtp_and_no_plain_payload(
        tmp_path: Path) -> None:
    async with TestAgent("alice", codecs=("pcmu",), srtp="mandatory",
                         srtp_insecure=True) as alice, \
            TestAgent("bob", codecs=("pcmu",), srtp="mandatory", srtp_insecure=True) as bob:
        with tshark_capture([], tmp_path, "udp") as capture:
            call, incoming = await alice.connect(bob)
            await asyncio.sleep(1.5)  # silence both ways: plain PCMU would be all 0xFF
            ports = (call.call.rtp.port, incoming.call.rtp.port)
            signalling = f"udp.port == {alice.agent.port} or udp.port == {bob.agent.port}"
            await call.hangup()
    ours = " or ".join(f"udp.port == {port}" for port in ports)
    rows = capture.fields(f"({ours}) and rtp", "srtp.enc_payload", "srtp.auth_tag",
                          "rtp.payload")
    assert len(rows) > 100
    # Wireshark takes the streams for SRTP (from the SDP): an encrypted payload and an
    # 80-bit tag each, never a plain one; silence in plain PCMU would be runs of 0xFF.
    assert all(not plain for _, _, plain in rows)
    assert {len(tag.replace(":", "")) // 2 for _, tag, _ in rows} == {10}
    assert {len(payload.replace(":", "")) // 2 for payload, _, _ in rows} == {160}
    assert not any("ff" * 20 in payload.replace(":", "") for payload, _, _ in rows)
    protos = [row[0] for row in capture.fields(f"({signalling}) and sdp", "sdp.media.proto")]
    assert protos == ["RTP/SAVP", "RTP/SAVP"]


async def test_a_tampered_packet_from_the_peer_is_dropped_and_counted() -> None:
    async with TestAgent("alice", codecs=("pcmu",), srtp="mandatory",
                         srtp_insecure=True) as alice, \
            TestAgent("bob", codecs=("pcmu",), srtp="mandatory", srtp_insecure=True) as bob:
        call, incoming = await alice.connect(bob)
        call.play_tone(500)
        await incoming.hears_tone(500, seconds=0.5)
        sender, receiver = call.call.stream, incoming.call.stream
        assert sender is not None and receiver is not None and receiver.srtp is not None
        genuine = sender.srtp.protect(b"\x80\x00\x00\x01" + b"\x00" * 8 + b"\xff" * 160) \
            if sender.srtp else b""
        tampered = bytearray(genuine)
        tampered[30] ^= 0x40
        for _ in range(5):
            call.call.rtp.send(bytes(tampered), ("127.0.0.1", incoming.call.rtp.port))
            await asyncio.sleep(0.02)
        assert receiver.srtp.rejected >= 5
        await incoming.hears_tone(500, seconds=0.5)  # the call's audio is untouched
        await call.hangup()


def voice_wav(path: Path) -> None:
    from tests.e2e.test_audio import voice_like

    voice_like(path)


@pytest.mark.peers
@pytest.mark.parametrize(("theirs", "ours"), [("srtp-mand", "mandatory"),
                                              ("srtp", "optional")])
async def test_we_call_baresip_with_srtp_and_audio_crosses_both_ways(
        tmp_path: Path, theirs: str, ours: str) -> None:
    """baresip's srtp module: RTP/SAVP (srtp-mand) or keys in RTP/AVP (srtp). It hears our
    voice-like file through the encryption; we hear its 440 Hz tone."""
    from softphone.media.quality import tone_level
    from softphone.media.wav import load_wav
    from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent
    from tests.e2e.test_audio import score
    from tests.peers import baresip

    sent, received = tmp_path / "sent.wav", tmp_path / "received.wav"
    voice_wav(sent)
    with baresip(answermode="auto", dump_audio=True, mediaenc=theirs) as peer:
        config = AgentConfig(listen_port=0, codecs=("pcmu",), srtp=ours, srtp_insecure=True,
                             audio=AudioConfig(play=str(sent), record=str(received)))
        async with UserAgent(config) as alice:
            call = await alice.call(peer.uri, duration=3.5)
            assert await asyncio.wait_for(asyncio.shield(call.answered), 10)
            assert call.media is not None and call.media.srtp is not None
            ended = await asyncio.wait_for(asyncio.shield(call.ended), 10)
        await asyncio.sleep(0.5)
        dumps = sorted(peer.directory.glob("dump-*-dec.wav"))
        assert dumps, peer.log()
        assert score(sent, dumps[-1]) >= 0.95  # baresip decrypted and heard us
    heard, rate = load_wav(received)
    assert tone_level(heard[rate // 2: rate * 2], rate, 440) > 0.8  # we decrypted it
    assert ended.rtp is not None and ended.rtp["packets_received"] > 100


@pytest.mark.peers
async def test_baresip_calls_us_with_srtp_mand_and_we_answer_encrypted(tmp_path: Path) -> None:
    from softphone.media.quality import tone_level
    from softphone.media.wav import load_wav
    from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent
    from tests.peers import baresip

    received = tmp_path / "received.wav"
    with baresip(answermode="auto", mediaenc="srtp-mand") as peer:
        config = AgentConfig(listen_port=0, user="alice", codecs=("pcmu",), srtp="mandatory",
                             srtp_insecure=True, audio=AudioConfig(record=str(received)))
        async with UserAgent(config) as alice:
            peer.command("dial", f"sip:alice@127.0.0.1:{alice.port}")
            incoming = await asyncio.wait_for(alice.incoming.get(), 10)
            offer = incoming.invite
            assert offer is not None and b"RTP/SAVP" in offer.body and b"a=crypto:" in offer.body
            await incoming.answer()
            assert incoming.media is not None and incoming.media.srtp is not None
            await asyncio.sleep(2.0)
            await incoming.hangup()
    heard, rate = load_wav(received)
    assert tone_level(heard[rate // 2: rate * 3 // 2], rate, 440) > 0.8


async def test_a_reinvite_brings_new_keys_and_the_audio_follows_them() -> None:
    async with TestAgent("alice", srtp="mandatory", srtp_insecure=True) as alice, \
            TestAgent("bob", srtp="mandatory", srtp_insecure=True) as bob:
        call, incoming = await alice.connect(bob)
        incoming.play_tone(700)
        await call.hears_tone(700, seconds=0.5)
        before = call.call.media
        await call.call.hold()
        await call.call.resume()
        after = call.call.media
        assert before is not None and after is not None
        assert before.srtp is not None and after.srtp is not None
        assert after.srtp.local != before.srtp.local  # every offer: fresh keys (RFC 4568)
        assert after.srtp.remote != before.srtp.remote
        await call.hears_tone(700, seconds=0.5)
        await call.hangup()
