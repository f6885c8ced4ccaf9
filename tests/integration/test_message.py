"""MESSAGE through real sockets: `softphone message` to `softphone answer` (which shows it as a
`message` event) and to baresip, from baresip (its contact module) to us, and the CLI's exit
codes and refusals."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from softphone.events import MessageReceived
from softphone.ua.agent import AgentConfig, UserAgent
from tests.integration.test_cli import SOFTPHONE
from tests.integration.test_guard import ROOT, answering, finish
from tests.peers import baresip


def send(uri: str, text: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOFTPHONE, "message", uri, text, "--json", *options],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_message_command_reaches_answer_and_says_how_it_went() -> None:
    process, events, port = answering()
    try:
        done = send(f"sip:bob@127.0.0.1:{port}", "the build is green ✓")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.splitlines()[-1])
        assert (result["event"], result["status"]) == ("message_sent", 200)
        assert "message" in events.until("message", 5)
        message = next(e for e in events.seen if e["event"] == "message")
        assert message["text"] == "the build is green ✓"
        assert message["content_type"] == "text/plain" and message["call_id"] is None
    finally:
        finish(process)


def test_a_message_nobody_answers_fails_and_a_long_one_over_udp_is_refused() -> None:
    lost = send("sip:nobody@127.0.0.1:9", "anyone?", "--timeout", "1")
    assert lost.returncode == 1
    assert json.loads(lost.stdout.splitlines()[-1])["status"] == 408
    long = send("sip:bob@127.0.0.1:9", "x" * 1301)
    assert long.returncode == 2 and "needs TCP or TLS" in long.stderr


@pytest.mark.peers
def test_baresip_takes_our_message() -> None:
    """(baresip 1.0 answers 200 and shows nothing we could read back: the 200 is the test.)"""
    with baresip() as peer:
        done = send(peer.uri, "hello baresip")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["status"] == 200


@pytest.mark.peers
async def test_baresip_sends_us_a_message() -> None:
    async with UserAgent(AgentConfig(listen_port=0, user="alice")) as alice:
        arrived: asyncio.Queue[MessageReceived] = asyncio.Queue()
        alice.add_listener(lambda e: arrived.put_nowait(e)
                           if isinstance(e, MessageReceived) else None)
        contact = f'"Alice" <sip:alice@127.0.0.1:{alice.port}>'
        with baresip(config=("module_app contact.so",), contacts=(contact,)) as peer:
            assert peer.command("contact_next").get("ok") is True
            answer = peer.command("message", "hi alice")
            assert answer.get("ok") is True, answer
            message = await asyncio.wait_for(arrived.get(), 10)
        assert message.text == "hi alice" and message.sender.startswith("<sip:bob@")
