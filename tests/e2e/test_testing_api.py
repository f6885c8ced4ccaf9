"""The Python API for call tests, through the pytest plugin's fixtures (sip_agents)."""

from __future__ import annotations

import pytest

from softphone.testing import ExpectationFailed, TestAgent


async def test_an_ivr_flow_with_awaitable_steps(sip_agents) -> None:  # type: ignore[no-untyped-def]
    alice: TestAgent = await sip_agents("alice")
    ivr: TestAgent = await sip_agents("ivr")
    call = await alice.call(ivr.uri)
    incoming = await ivr.next_call()
    await incoming.ring()
    await call.ringing()
    await incoming.answer()
    await call.answered()
    incoming.play_tone(440)
    await call.hears_tone(440, seconds=0.5)
    incoming.quiet()
    await call.hears_silence(seconds=0.5)
    await call.send_dtmf("12#")
    await incoming.receives_dtmf("12#")
    await call.hangup()
    ended = await incoming.ended(by="remote")
    assert ended.rtp is not None and ended.rtp["packets_received"] > 0


async def test_failed_expectations_say_what_happened(sip_agents) -> None:  # type: ignore[no-untyped-def]
    alice: TestAgent = await sip_agents("alice")
    bob: TestAgent = await sip_agents("bob")
    call = await alice.call(bob.uri)
    incoming = await bob.next_call()
    await incoming.reject(486)
    with pytest.raises(ExpectationFailed, match="not answered: 486 Busy Here"):
        await call.answered()
    with pytest.raises(ExpectationFailed, match="ended with 486 Busy Here, not 200"):
        await call.ended(status=200)
    with pytest.raises(ExpectationFailed, match="no call arrived within 0.2 s"):
        await bob.next_call(timeout=0.2)
    second = await alice.call(bob.uri)
    answering = await bob.next_call()
    await answering.answer()
    await second.answered()
    with pytest.raises(ExpectationFailed, match="a 1000 Hz tone for 0.5 s did not happen"):
        await second.hears_tone(1000, seconds=0.5, timeout=1.0)
    await second.hangup()
