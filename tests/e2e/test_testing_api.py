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


async def test_digits_statuses_and_audio_expectations(sip_agents, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """receives_dtmf takes the next digits (a wrong one fails at once), final_status knows an
    answer from a failure, and in-band DTMF and a played recording are recognised."""
    from softphone.media.ports import Tone
    from softphone.media.wav import WavSink

    alice: TestAgent = await sip_agents("alice")
    bob: TestAgent = await sip_agents("bob")
    call = await alice.call(bob.uri)
    incoming = await bob.next_call()
    await incoming.answer()
    await call.final_status(200)
    with pytest.raises(ExpectationFailed, match=r"final status was 200 \(answered\), not 486"):
        await call.final_status(486)
    await call.send_dtmf("12")
    await incoming.receives_dtmf("1")
    await incoming.receives_dtmf("2")  # the 1 was taken by the step before
    await call.send_dtmf("9")
    with pytest.raises(ExpectationFailed, match="DTMF '3' expected, heard '9'"):
        await incoming.receives_dtmf("3", timeout=3)
    incoming.play_dtmf_tones("47")
    await call.hears_dtmf_tones("47")
    prompt = tmp_path / "prompt.wav"
    sink = WavSink(prompt)
    sink.write(Tone(523).read(8000, 8000) // 2 + Tone(784).read(8000, 8000) // 2, 8000)
    sink.close()
    other = tmp_path / "other.wav"
    sink = WavSink(other)
    sink.write(Tone(440).read(8000, 8000), 8000)
    sink.close()
    incoming.play(prompt)
    await call.hears_recording(prompt, timeout=5)
    with pytest.raises(ExpectationFailed, match="other.wav heard"):
        await call.hears_recording(other, timeout=1.5)  # it was never played
    await call.hangup()
    await incoming.ended(by="remote")
