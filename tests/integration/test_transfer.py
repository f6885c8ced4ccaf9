"""Call transfer on real sockets: three of our agents (transferor, transferee, target) with
the audio of the new call checked, blind and attended; and baresip 1.0 as the transferee."""

from __future__ import annotations

import asyncio

import pytest

from softphone.testing import TestAgent
from tests.peers import baresip


async def test_a_blind_transfer_leaves_transferee_and_target_hearing_each_other() -> None:
    async with TestAgent("alice", codecs=("pcmu",)) as alice, \
            TestAgent("bob", codecs=("pcmu",)) as bob, \
            TestAgent("carol", codecs=("pcmu",)) as carol:
        to_bob, from_alice = await alice.connect(bob)
        result_task = asyncio.ensure_future(to_bob.transfer(carol.uri))
        from_bob = await carol.next_call()
        await from_bob.ring()
        await from_bob.answer()
        result = await asyncio.wait_for(result_task, 10)
        assert (result.status, result.final) == (200, True)
        to_carol = await from_alice.transferred()
        await to_carol.answered()
        await from_alice.ended(by="local")  # the transferee ended the old call
        await to_bob.ended(by="remote")
        assert from_bob.call.invite is not None
        assert from_bob.call.invite.headers.get("Referred-By") == "<sip:alice@127.0.0.1>"
        to_carol.play_tone(500)
        from_bob.play_tone(700)
        await from_bob.hears_tone(500, seconds=0.5)
        await to_carol.hears_tone(700, seconds=0.5)
        await to_carol.hangup()


async def test_an_attended_transfer_replaces_the_targets_call() -> None:
    async with TestAgent("alice", codecs=("pcmu",)) as alice, \
            TestAgent("bob", codecs=("pcmu",)) as bob, \
            TestAgent("carol", codecs=("pcmu",)) as carol:
        to_bob, from_alice_at_bob = await alice.connect(bob)
        to_carol, from_alice_at_carol = await alice.connect(carol)
        result = await asyncio.wait_for(to_bob.call.transfer(to=to_carol.call), 10)
        assert result.status == 200
        await from_alice_at_carol.ended(by="remote")  # replaced
        await to_carol.ended(by="remote")
        await to_bob.ended(by="remote")
        bob_to_carol = await from_alice_at_bob.transferred()
        await bob_to_carol.answered()
        replacing = await carol.next_call()
        assert replacing.call.replaces is from_alice_at_carol.call
        bob_to_carol.play_tone(600)
        replacing.play_tone(800)
        await replacing.hears_tone(600, seconds=0.5)
        await bob_to_carol.hears_tone(800, seconds=0.5)
        await replacing.hangup()


async def test_a_declined_transfer_keeps_the_call() -> None:
    async with TestAgent("alice", codecs=("pcmu",)) as alice, \
            TestAgent("bob", codecs=("pcmu",), accept_transfers=False) as bob:
        to_bob, from_alice = await alice.connect(bob)
        result = await asyncio.wait_for(to_bob.transfer("sip:carol@127.0.0.1:9"), 10)
        assert result.status == 603
        from_alice.play_tone(440)
        await to_bob.hears_tone(440, seconds=0.3)
        await to_bob.hangup()


@pytest.mark.peers
async def test_baresip_as_transferee_calls_our_target_and_we_hear_it() -> None:
    with baresip(answermode="auto", source_seconds=15) as peer:
        async with TestAgent("alice", codecs=("pcmu",)) as alice, \
                TestAgent("carol", codecs=("pcmu",)) as carol:
            to_baresip = await alice.call(peer.uri)
            await to_baresip.answered(timeout=10)
            result_task = asyncio.ensure_future(to_baresip.transfer(carol.uri))
            from_baresip = await carol.next_call(timeout=10)
            await from_baresip.answer()
            result = await asyncio.wait_for(result_task, 15)
            assert result.status == 200, result
            await from_baresip.hears_tone(440, seconds=0.5, timeout=10)
            await to_baresip.ended(timeout=10)
            await from_baresip.hangup()


@pytest.mark.peers
async def test_baresip_as_transferor_sends_us_to_our_target() -> None:
    with baresip(answermode="auto", source_seconds=15) as peer:
        async with TestAgent("alice", codecs=("pcmu",)) as alice, \
                TestAgent("carol", codecs=("pcmu",)) as carol:
            assert peer.command("dial", alice.uri).get("ok") is True
            from_baresip = await alice.next_call(timeout=10)
            await from_baresip.answer()
            await from_baresip.hears_tone(440, seconds=0.3)
            assert peer.command("transfer", carol.uri).get("ok") is True  # its REFER
            to_carol = await from_baresip.transferred(timeout=10)
            from_alice = await carol.next_call(timeout=10)
            await from_alice.answer()
            await to_carol.answered()
            ended = await from_baresip.ended(timeout=10)  # baresip ends it on our NOTIFY 200
            assert ended.status == 200 and ended.reason in ("Transferred", "Remote hangup")
            to_carol.play_tone(500)
            from_alice.play_tone(700)
            await from_alice.hears_tone(500, seconds=0.5)
            await to_carol.hears_tone(700, seconds=0.5)
            await to_carol.hangup()


async def test_answer_decline_transfers_refuses_our_refer_with_603() -> None:
    import json
    import subprocess
    import sys

    line = subprocess.Popen([sys.executable, "-m", "softphone", "answer", "--listen",
                             "127.0.0.1:0", "--auto-answer", "--null-audio", "--json",
                             "--decline-transfers", "--max-calls", "1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert line.stdout is not None
        port = json.loads(line.stdout.readline())["port"]
        async with TestAgent("alice", codecs=("pcmu",)) as alice:
            call = await alice.call(f"sip:bob@127.0.0.1:{port}")
            await call.answered()
            result = await asyncio.wait_for(call.transfer("sip:carol@127.0.0.1:9"), 10)
            assert (result.status, result.reason) == (603, "Transfers declined")
            await call.hangup()
        assert line.wait(15) == 0
    finally:
        if line.poll() is None:
            line.kill()
        line.communicate()
