"""The one-line diagnosis of a call from its facts: each kind of trouble, and nothing said
when nothing went wrong."""

from __future__ import annotations

import numpy as np
import pytest

from softphone.media.diagnosis import CallFacts, HeardAudio, diagnose

GOOD_RTP: dict[str, float | int | None] = {
    "packets_sent": 250, "packets_received": 250, "packets_lost": 0, "late": 0,
    "jitter_ms": 1.0, "remote_loss": 0.0, "mos": 4.4}


def heard(peak: int, frames: int = 200, clipped_share: float = 0.0) -> HeardAudio:
    audio = HeardAudio()
    for _ in range(frames):
        frame = np.full(160, peak // 2, dtype=np.int16)
        frame[0] = peak
        frame[1: 1 + int(160 * clipped_share)] = 32767
        audio.add(frame)
    return audio


def answered(audio: HeardAudio | None = None, talked: float = 5.0,
             direction: str = "sendrecv", **rtp: float) -> CallFacts:
    """An answered call of ``talked`` seconds: good RTP but for ``rtp``, loud audio but for
    ``audio``."""
    return CallFacts(200, "OK", "local", True, talked, direction, {**GOOD_RTP, **rtp},
                     audio or heard(8000))


def test_a_good_call_has_no_diagnosis() -> None:
    assert diagnose(answered()) is None


@pytest.mark.parametrize(("facts", "says"), [
    (CallFacts(407, "Proxy Authentication Required", "remote", False, had_credentials=True),
     "authentication failed: 407"),
    (CallFacts(401, "Unauthorized", "remote", False), "authentication required: 401"),
    (CallFacts(488, "Not Acceptable Here", "remote", False), "codec mismatch: 488"),
    (CallFacts(408, "Request Timeout", "local", False), "timeout: Request Timeout"),
    (CallFacts(486, "Busy Here", "remote", False), "refused: 486 Busy Here"),
    (CallFacts(503, "Network is unreachable", "error", False),
     "local failure: Network is unreachable"),
    (CallFacts(500, "Media failed: no device", "error", True, 3.0),
     "local failure after the answer: Media failed"),
])
def test_unanswered_and_failed_calls_say_why(facts: CallFacts, says: str) -> None:
    assert says in (diagnose(facts) or "")


def test_a_cancelled_call_is_not_a_fault() -> None:
    assert diagnose(CallFacts(487, "Request Terminated", "local", False)) is None


@pytest.mark.parametrize(("facts", "says"), [
    (answered(packets_sent=0, packets_received=0), "no RTP at all"),
    (answered(packets_received=0), "one-way audio: nothing heard from the far end"),
    (answered(packets_sent=0), "one-way audio: we sent nothing"),
    (answered(remote_loss=1.0), "one-way audio: the far end hears nothing of ours"),
    (answered(audio=heard(40)), "silence: 250 RTP packets arrived"),
    (answered(audio=heard(20000, clipped_share=0.05)), "clipped audio: 5% of samples"),
    (answered(packets_lost=50, packets_received=200), "packet loss: 20%"),
    (answered(late=25), "late media: 10% of packets"),
    (answered(mos=2.7), "poor quality: MOS 2.7"),
])
def test_media_trouble_is_named(facts: CallFacts, says: str) -> None:
    assert says in (diagnose(facts) or "")


@pytest.mark.parametrize("facts", [
    answered(packets_received=0, direction="sendonly"),  # on hold: silence by design
    answered(packets_received=0, talked=0.3),  # over before RTP could flow
    answered(audio=heard(40, frames=20)),  # too little heard to call it silence
    CallFacts(200, "OK", "remote", True, 5.0, rtp=None),  # no media negotiated
])
def test_what_is_by_design_or_too_short_to_judge_says_nothing(facts: CallFacts) -> None:
    assert diagnose(facts) is None
