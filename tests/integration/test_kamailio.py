"""Against Kamailio (tests/peers/kamailio.cfg): a real registrar and record-routing proxy that
challenges REGISTER with 401 and INVITE with 407."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from softphone.sip import SipUri
from softphone.ua.agent import AgentConfig, Credentials, UserAgent
from softphone.ua.events import Event, Registered
from softphone.ua.registration import RegistrationError
from tests.peers import Kamailio, kamailio

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def proxy() -> Iterator[Kamailio]:
    with kamailio() as running:
        yield running


def account(proxy: Kamailio, user: str, password: str | None = None,
            transport: str = "udp", via_proxy: bool = True) -> UserAgent:
    return UserAgent(AgentConfig(
        listen_host="127.0.0.1", listen_port=0, user=user, domain="127.0.0.1",
        transport=transport,
        credentials=Credentials(user, password or Kamailio.USERS[user]),
        outbound_proxy=proxy.uri if via_proxy else None))


@pytest.fixture
async def alice_and_bob(proxy: Kamailio) -> AsyncIterator[tuple[UserAgent, UserAgent]]:
    alice, bob = account(proxy, "alice"), account(proxy, "bob", via_proxy=False)
    async with alice, bob:
        await bob.register(proxy.uri)
        yield alice, bob


async def test_register_and_unregister(proxy: Kamailio) -> None:
    agent = account(proxy, "carol")
    events = []
    agent.add_listener(events.append)
    async with agent:
        registration = await agent.register(proxy.uri, expires=300)
        assert registration.granted_expires == 300
    names = [e.name for e in events]
    assert names == ["listening", "registered", "unregistered"]
    caller = account(proxy, "alice")
    async with caller:  # the binding is gone: the proxy has nobody to route to
        call = await caller.call("sip:carol@127.0.0.1")
        assert (await asyncio.wait_for(call.ended, 10)).status == 404


async def test_wrong_password_fails_fast_with_the_status(proxy: Kamailio) -> None:
    started = time.monotonic()
    async with account(proxy, "alice", password="wrong") as agent:
        with pytest.raises(RegistrationError) as failure:
            await agent.register(proxy.uri)
    assert failure.value.status == 401
    assert time.monotonic() - started < 5


async def test_interval_too_brief_is_retried_with_min_expires(proxy: Kamailio) -> None:
    async with account(proxy, "carol") as agent:
        registration = await agent.register(proxy.uri, expires=3, refresh=False)
        assert registration.granted_expires == 10  # min_expires in kamailio.cfg


async def test_registration_is_refreshed_before_it_expires(proxy: Kamailio) -> None:
    agent = account(proxy, "carol")
    registered: list[Event] = []
    agent.add_listener(lambda e: registered.append(e) if isinstance(e, Registered) else None)
    async with agent:
        await agent.register(proxy.uri, expires=10)
        await asyncio.sleep(6.5)  # refreshed at 10 - 5 seconds
        assert len(registered) >= 2


async def test_call_through_the_proxy_follows_the_route_set(
        alice_and_bob: tuple[UserAgent, UserAgent], proxy: Kamailio) -> None:
    alice, bob = alice_and_bob
    call = await alice.call("sip:bob@127.0.0.1")
    incoming = await asyncio.wait_for(bob.incoming.get(), 10)
    assert incoming.invite is not None and incoming.invite.record_routes  # proxy stays on path
    await incoming.ring()
    await incoming.answer()
    assert await asyncio.wait_for(call.answered, 10)
    assert call.dialog is not None
    first_hop = call.dialog.route_set[0].uri
    assert isinstance(first_hop, SipUri) and first_hop.port == proxy.port
    assert call.dialog.remote_target.port == bob.port
    await incoming.hangup()  # the callee's BYE travels the route set back
    ended = await asyncio.wait_for(call.ended, 10)
    assert (ended.status, ended.by) == (200, "remote")


async def test_unknown_user_is_reported_as_404(alice_and_bob: tuple[UserAgent, UserAgent]) -> None:
    alice, _ = alice_and_bob
    call = await alice.call("sip:nobody@127.0.0.1")
    ended = await asyncio.wait_for(call.ended, 10)
    assert (ended.status, ended.reason) == (404, "Not Found")


async def test_cancel_through_the_proxy(alice_and_bob: tuple[UserAgent, UserAgent]) -> None:
    alice, bob = alice_and_bob
    call = await alice.call("sip:bob@127.0.0.1")
    incoming = await asyncio.wait_for(bob.incoming.get(), 10)
    await incoming.ring()
    await asyncio.sleep(0.2)
    await call.hangup()
    assert (await asyncio.wait_for(call.ended, 10)).status == 487
    assert (await asyncio.wait_for(incoming.ended, 10)).status == 487


async def test_call_over_tcp_through_the_proxy(proxy: Kamailio) -> None:
    alice = account(proxy, "alice", transport="tcp")
    bob = account(proxy, "bob", transport="tcp", via_proxy=False)
    async with alice, bob:
        await bob.register(f"{proxy.uri};transport=tcp")
        call = await alice.call("sip:bob@127.0.0.1")
        incoming = await asyncio.wait_for(bob.incoming.get(), 10)
        await incoming.answer()
        assert await asyncio.wait_for(call.answered, 10)
        await call.hangup()
        assert (await asyncio.wait_for(incoming.ended, 10)).by == "remote"


def test_cli_call_through_proxy_with_credentials(proxy: Kamailio) -> None:
    bob = subprocess.Popen(
        [sys.executable, "-m", "softphone", "answer", "--null-audio", "--listen", "127.0.0.1:0",
         "--registrar", proxy.uri, "--user", "bob", "--password", "bobpw", "--auto-answer",
         "--max-calls", "1", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        assert bob.stdout is not None
        assert '"registered"' in bob.stdout.readline() + bob.stdout.readline()
        alice = subprocess.run(
            [sys.executable, "-m", "softphone", "call", "--null-audio", "sip:bob@127.0.0.1",
             "--proxy", proxy.uri, "--user", "alice", "--password", "alicepw", "--duration", "0.3",
             "--json"], capture_output=True, text=True, timeout=30)
        assert alice.returncode == 0, alice.stdout + alice.stderr
        assert '"answered"' in alice.stdout
        assert bob.wait(15) == 0
    finally:
        if bob.poll() is None:
            bob.kill()
        bob.wait()
        if bob.stdout is not None:
            bob.stdout.close()


def test_load_through_the_proxy_answers_every_challenge(proxy: Kamailio) -> None:
    """softphone load as a SIP server's load test: each call's INVITE gets Kamailio's 407
    and is sent again with alice's credentials; bob, registered, answers them all."""
    bob = subprocess.Popen(
        [sys.executable, "-m", "softphone", "answer", "--null-audio", "--listen", "127.0.0.1:0",
         "--registrar", proxy.uri, "--user", "bob", "--password", "bobpw", "--auto-answer",
         "--json"], stdout=subprocess.PIPE, text=True)
    try:
        assert bob.stdout is not None
        assert '"registered"' in bob.stdout.readline() + bob.stdout.readline()
        load = subprocess.run(
            [sys.executable, "-m", "softphone", "load", "sip:bob@127.0.0.1", "--proxy",
             proxy.uri, "--user", "alice", "--password", "alicepw", "--calls", "20", "--rate",
             "20", "--concurrency", "10", "--duration", "0.5", "--codec", "pcmu", "--json", "-"],
            capture_output=True, text=True, timeout=60)
        assert load.returncode == 0, load.stdout + load.stderr
        records = [json.loads(line) for line in load.stdout.splitlines()]
        summary = records[-1]
        assert summary["attempted"] == summary["answered"] == 20
        assert all(row["packets_received"] > 10 for row in records[:-1])
    finally:
        bob.send_signal(signal.SIGINT)
        bob.wait(15)
        if bob.stdout is not None:
            bob.stdout.close()


def test_ctrl_c_removes_the_registration(proxy: Kamailio) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "softphone", "register", "--registrar", proxy.uri, "--user",
         "carol", "--password", "carolpw", "--listen", "127.0.0.1:0", "--json"],
        stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = [process.stdout.readline(), process.stdout.readline()]
    assert '"registered"' in lines[1]
    process.send_signal(signal.SIGINT)
    assert process.wait(15) == 130
    rest = process.stdout.read()
    process.stdout.close()
    assert '"unregistered"' in rest


async def test_a_forked_call_answered_twice_keeps_one_answer_and_ends_the_other(
        proxy: Kamailio) -> None:
    """Bob is registered from two devices; Kamailio forks the INVITE to both (parallel
    forking) and both answer at once, so two 2xx with different To tags reach Alice. She
    ACKs both, keeps the first and ends the other with BYE (before the core, the second
    2xx was dropped with neither ACK nor BYE, and that phone stayed in the call)."""
    alice = account(proxy, "alice")
    desk, mobile = account(proxy, "bob", via_proxy=False), account(proxy, "bob", via_proxy=False)
    seen: list[tuple[str, bytes]] = []
    alice.add_tracer(lambda direction, data, peer: seen.append((direction, data)))
    async with alice, desk, mobile:
        await desk.register(proxy.uri)
        await mobile.register(proxy.uri)
        call = await alice.call("sip:bob@127.0.0.1")
        rung = [await asyncio.wait_for(phone.incoming.get(), 10) for phone in (desk, mobile)]
        await asyncio.gather(*(incoming.answer() for incoming in rung))
        assert await asyncio.wait_for(asyncio.shield(call.answered), 10)
        await asyncio.sleep(1.5)
        answers = {_to_tag(data) for direction, data in seen if direction == "received"
                   and data.startswith(b"SIP/2.0 200") and b" INVITE\r\n" in data}
        assert len(answers) == 2, "both phones' 2xx reached Alice"
        acked = {_to_tag(data) for direction, data in seen  # (not the 407's ACK: CSeq 1)
                 if direction == "sent" and data.startswith(b"ACK ") and b"CSeq: 2 " in data}
        byes = [data for direction, data in seen
                if direction == "sent" and data.startswith(b"BYE ")]
        assert acked == answers and len(byes) == 1
        assert call.dialog is not None and _to_tag(byes[0]) != call.dialog.remote_tag
        loser = next(incoming for incoming in rung if incoming.local_tag == _to_tag(byes[0]))
        winner = next(incoming for incoming in rung if incoming is not loser)
        assert loser.state == "ended" and loser.ended.result().by == "remote"
        assert winner.state == "answered" and call.state == "answered"
        await call.hangup()
        assert (await asyncio.wait_for(asyncio.shield(winner.ended), 10)).by == "remote"


def _to_tag(message: bytes) -> str:
    to = next(line for line in message.split(b"\r\n") if line.lower().startswith(b"to:"))
    return to.split(b"tag=")[1].split(b";")[0].decode() if b"tag=" in to else ""
