"""What we put on the wire, judged by Wireshark's dissectors (tshark), not by our own parser."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent
from tests.peers import free_port, tshark_capture

pytestmark = pytest.mark.peers
# Wireshark's expert severities: warn is 0x600000, error 0x800000.
PROBLEMS = "_ws.malformed or _ws.expert.severity >= 0x600000"


async def test_a_call_dissects_cleanly_as_sip_and_sdp(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    with tshark_capture(ports, tmp_path) as capture:
        alice = UserAgent(AgentConfig(listen_host="127.0.0.1", listen_port=ports[0]))
        bob = UserAgent(AgentConfig(listen_host="127.0.0.1", listen_port=ports[1]))
        async with alice, bob:
            call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
            incoming = await asyncio.wait_for(bob.incoming.get(), 5)
            await incoming.ring()
            await incoming.answer()
            assert await asyncio.wait_for(call.answered, 5)
            await alice.options(f"sip:127.0.0.1:{bob.port}")
            await call.hangup()
    seen = [row[0] or row[1] for row in capture.fields("sip", "sip.Method", "sip.Status-Code")]
    # the 180 is reliable (both sides support 100rel): its PRACK and that PRACK's 200 follow
    assert seen == ["INVITE", "100", "180", "PRACK", "200", "200", "ACK", "OPTIONS", "200",
                    "BYE", "200"]
    rseq, rack = capture.fields("sip", "sip.RSeq", "sip.RAck")[2:4]
    assert rack[1].split()[0] == rseq[0]
    media = capture.fields("sdp", "sdp.media")
    assert [row[0].split()[0] for row in media] == ["audio", "audio"]
    assert capture.count(PROBLEMS) == 0


async def test_early_media_and_a_transfer_dissect_cleanly(tmp_path: Path) -> None:
    """183 with SDP, REFER with Referred-By, NOTIFY with message/sipfrag bodies, and the
    INVITE to the target: all as Wireshark reads them, none malformed."""
    from softphone.testing import TestAgent

    ports = [free_port(), free_port(), free_port()]
    with tshark_capture(ports, tmp_path) as capture:
        async with TestAgent("alice", listen_port=ports[0]) as alice, \
                TestAgent("bob", listen_port=ports[1]) as bob, \
                TestAgent("carol", listen_port=ports[2]) as carol:
            call = await alice.call(bob.uri)
            incoming = await bob.next_call()
            await incoming.progress_with_media()
            await call.early_media()
            await incoming.answer()
            await call.answered()
            transfer = asyncio.ensure_future(call.transfer(carol.uri))
            target = await carol.next_call()
            await target.answer()
            assert (await asyncio.wait_for(transfer, 10)).status == 200
            await target.hangup()
    methods = [row[0] for row in capture.fields("sip", "sip.Method") if row[0]]
    assert {"PRACK", "REFER", "NOTIFY"} <= set(methods)
    assert capture.count("sip.Status-Code == 183 and sdp") >= 1
    assert capture.count("sip.Method == \"REFER\" and sip.Refer-To") == 1
    frags = capture.fields("sipfrag", "sipfrag.line")
    assert any("200 OK" in row[0] for row in frags), frags
    assert capture.count(PROBLEMS) == 0


async def test_rtp_and_rtcp_dissect_cleanly_and_report_round_trip(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    config = dict(listen_host="127.0.0.1", codecs=("pcmu",), rtcp_interval=0.4,
                  audio=AudioConfig(tone=440))
    alice = UserAgent(AgentConfig(listen_port=ports[0], **config))  # type: ignore[arg-type]
    bob = UserAgent(AgentConfig(listen_port=ports[1], **config))  # type: ignore[arg-type]
    async with alice, bob:
        with tshark_capture([], tmp_path, "udp") as capture:
            call = await alice.call(f"sip:bob@127.0.0.1:{bob.port}")
            incoming = await asyncio.wait_for(bob.incoming.get(), 5)
            await incoming.answer()
            assert await asyncio.wait_for(call.answered, 5)
            ours = " or ".join(f"udp.port == {port + offset}" for port in (
                call.rtp.port, incoming.rtp.port) for offset in (0, 1))
            await asyncio.sleep(2.5)
            await call.hangup()
            ended = await asyncio.wait_for(call.ended, 5)
    assert ended.rtp is not None
    assert ended.rtp["rtcp_sent"] >= 3 and ended.rtp["rtcp_received"] >= 3
    rtt = ended.rtp["rtt_ms"]
    assert rtt is not None and 0 <= rtt < 50  # loopback
    # only this call's RTP/RTCP ports: anything else on loopback is none of this test's business
    assert capture.count(f"({ours}) and rtcp.pt == 200") >= 4  # sender reports, both ways
    assert capture.count(f"({ours}) and rtcp.pt == 203") == 2  # a BYE from each side
    assert capture.count(f"({ours}) and rtcp.sdes.type == 1") >= 4  # CNAME in every compound
    assert capture.count(f"({ours}) and rtp.p_type == 0") > 200
    assert capture.count(f"({ours}) and ({PROBLEMS})") == 0
