"""Session timers on real sockets, with a short interval: refreshes by UPDATE between our
agents, by re-INVITE toward baresip (which allows no UPDATE and knows no timers), the call
and its audio going on through them; the CLI's --session-expires."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from softphone.core.session_timer import SessionTimerSettings
from softphone.testing import TestAgent
from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent
from tests.integration.test_cli import SOFTPHONE
from tests.integration.test_guard import ROOT, answering, finish
from tests.peers import baresip

SHORT = SessionTimerSettings(interval=4, min_se=2)


def tracing(agent: UserAgent) -> list[bytes]:
    sent: list[bytes] = []
    agent.add_tracer(lambda direction, data, peer: sent.append(data)
                     if direction == "sent" else None)
    return sent


async def test_our_agents_refresh_with_update_and_the_audio_goes_on() -> None:
    async with TestAgent("alice", session_timer=SHORT) as alice, \
            TestAgent("bob", session_timer=SHORT) as bob:
        sent = tracing(alice.agent)
        call, incoming = await alice.connect(bob)
        incoming.play_tone(700)
        await asyncio.sleep(5.0)  # past two refreshes
        assert sum(data.startswith(b"UPDATE") for data in sent) >= 2
        assert call.call.state == "answered"
        await call.hears_tone(700, seconds=0.5)
        await call.hangup()


@pytest.mark.peers
async def test_baresip_is_refreshed_by_reinvite_and_stays_in_the_call() -> None:
    config = AgentConfig(listen_port=0, user="alice", codecs=("pcmu",),
                         session_timer=SHORT, audio=AudioConfig(tone=500))
    async with UserAgent(config) as alice:
        sent = tracing(alice)
        with baresip(answermode="auto", source_seconds=10) as peer:
            assert peer.command("dial", f"sip:alice@127.0.0.1:{alice.port}").get("ok")
            incoming = await asyncio.wait_for(alice.incoming.get(), 10)
            await incoming.answer()
            await asyncio.sleep(5.0)
            refreshes = [d for d in sent if d.startswith(b"INVITE")]
            assert len(refreshes) >= 2 and not any(d.startswith(b"UPDATE") for d in sent)
            assert b"Session-Expires: 4;refresher=uac" in refreshes[0]
            assert incoming.state == "answered"
            assert incoming.stream is not None and incoming.stream.stats.received > 150
            peer.command("hangup")
            ended = await asyncio.wait_for(asyncio.shield(incoming.ended), 10)
            assert ended.by == "remote"


def test_the_cli_proposes_the_interval_it_is_given() -> None:
    process, _, port = answering("--session-expires", "2")  # (its Min-SE: 2 s as well)
    try:
        done = subprocess.run([*SOFTPHONE, "--log-sip", "-", "call", f"sip:bob@127.0.0.1:{port}",
                               "--null-audio", "--duration", "3.5", "--session-expires", "2"],
                              capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert "Session-Expires: 2\n" in done.stderr.replace("\r", "")
        assert done.stderr.count("UPDATE sip:") >= 2  # refreshed each second
    finally:
        finish(process)
