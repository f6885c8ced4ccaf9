"""Message waiting indication against Kamailio's presence server (presence + presence_mwi,
Debian kamailio-presence-modules): our SUBSCRIBE for message-summary is accepted, a voicemail
system's PUBLISH reaches us as Kamailio's NOTIFY, and the summary becomes an mwi event; and
the register command's --mwi through the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from softphone.events import Mwi
from softphone.sip import Request, parse_sip_uri
from softphone.ua.agent import AgentConfig, UserAgent
from tests.peers import kamailio_presence

pytestmark = pytest.mark.peers
SUMMARY = b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@127.0.0.1\r\n" \
          b"Voice-Message: 3/1 (1/0)\r\n"


async def publish(voicemail: UserAgent, port: int, body: bytes) -> int:
    """What a voicemail system does when a message is left: PUBLISH the summary."""
    uri = parse_sip_uri(f"sip:alice@127.0.0.1:{port}")
    request = voicemail.new_request("PUBLISH", uri)
    for name, value in (("Event", "message-summary"), ("Expires", "3600"),
                        ("Content-Type", "application/simple-message-summary")):
        request.headers.add(name, value)
    response, _ = await voicemail.send_request(
        Request(request.method, request.uri, request.headers, body), await voicemail.targets(uri))
    return response.status


async def next_mwi(events: asyncio.Queue[object], new: int) -> Mwi:
    while True:
        event = await asyncio.wait_for(events.get(), 10)
        if isinstance(event, Mwi) and event.new == new:
            return event


async def test_kamailio_notifies_our_subscription_of_a_voicemail_publish() -> None:
    with kamailio_presence() as server:
        alice = UserAgent(AgentConfig(listen_port=0, user="alice", domain="127.0.0.1"))
        voicemail = UserAgent(AgentConfig(listen_port=0, user="voicemail", domain="127.0.0.1"))
        async with alice, voicemail:
            events = alice.subscribe()
            subscription = await alice.subscribe_mwi(f"sip:alice@127.0.0.1:{server.port}")
            assert subscription.status in (200, 202)
            assert await publish(voicemail, server.port, SUMMARY) == 200
            mwi = await next_mwi(events, 3)
            assert (mwi.waiting, mwi.new, mwi.old, mwi.urgent_new) == (True, 3, 1, 1)
            emptied = b"Messages-Waiting: no\r\nVoice-Message: 0/4\r\n"
            assert await publish(voicemail, server.port, emptied) == 200
            mwi = await next_mwi(events, 0)
            assert (mwi.waiting, mwi.old) == (False, 4)
            await subscription.unsubscribe()


def test_register_mwi_prints_the_mailbox_as_json_events() -> None:
    """softphone register --mwi: registered, subscribed, and a voicemail PUBLISH shows up
    as an mwi line; Ctrl-C unsubscribes and unregisters."""
    with kamailio_presence() as server:
        command = subprocess.Popen(
            [sys.executable, "-m", "softphone", "register", "--registrar", server.uri,
             "--user", "alice", "--password", "unused", "--mwi", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert command.stdout is not None
            events = [json.loads(command.stdout.readline()) for _ in range(2)]
            assert [e["event"] for e in events] == ["listening", "registered"]

            async def leave_a_message() -> int:
                async with UserAgent(AgentConfig(listen_port=0, user="voicemail")) as vm:
                    await asyncio.sleep(0.5)  # the subscription is made after the 200
                    return await publish(vm, server.port, SUMMARY)

            assert asyncio.run(leave_a_message()) == 200
            mwi = {}
            while mwi.get("new") != 3:
                mwi = json.loads(command.stdout.readline())
            assert mwi["event"] == "mwi" and mwi["waiting"] is True and mwi["old"] == 1
            command.send_signal(signal.SIGINT)
            assert command.wait(15) == 130
        finally:
            if command.poll() is None:
                command.kill()
            command.communicate(timeout=15)
        log = server.log.read_text(errors="replace")
        assert "message-summary" in log


def test_a_scenario_leg_with_mwi_expects_the_published_summary(tmp_path: Path) -> None:
    scenario = tmp_path / "voicemail.toml"
    scenario.write_text('name = "voicemail"\n[[legs]]\nname = "alice"\n'
                        'registrar = "${PBX}"\nmwi = true\n'
                        '[[steps]]\nleg = "alice"\naction = "expect_mwi"\nnew = 3\n'
                        'waiting = true\nwithin = 15\n')
    with kamailio_presence() as server:
        run = subprocess.Popen([sys.executable, "-m", "softphone", "test", str(scenario)],
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PBX": server.uri})

        async def leave_a_message() -> int:
            async with UserAgent(AgentConfig(listen_port=0, user="voicemail")) as vm:
                await asyncio.sleep(2.0)  # the leg registers and subscribes meanwhile
                return await publish(vm, server.port, SUMMARY)

        assert asyncio.run(leave_a_message()) == 200
        output, _ = run.communicate(timeout=30)
    assert run.returncode == 0, output
