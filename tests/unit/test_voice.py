"""Voice activity as segments and the conversation figures, on a virtual clock: the
detector's 10 ms decisions fed by hand, and real audio (a recorded prompt, silence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from softphone.media.voice import Conversation, Segment, VoiceActivity
from softphone.media.wav import load_wav

PROMPT = Path(__file__).parents[2] / "softphone" / "examples" / "scenarios" / "prompt.wav"


def speak(activity: VoiceActivity, start: float, voiced: list[bool]) -> float:
    """Feed 10 ms decisions from ``start``; returns the time after the last."""
    at = start
    for decision in voiced:
        at += 0.01
        activity.note(decision, at)
    return at


def test_speech_starts_when_most_recent_pieces_are_voiced_and_ends_after_the_hangover() -> None:
    activity = VoiceActivity()
    speak(activity, 0.0, [False] * 20 + [True] * 3)  # 30 ms: a click, not speech yet
    assert not activity.segments
    speak(activity, 0.23, [True] * 50 + [False] * 10 + [True] * 50)  # a short pause inside
    assert activity.speaking and len(activity.segments) == 1
    assert activity.segments[0].start == pytest.approx(0.20)  # its first voiced piece
    speak(activity, 1.33, [False] * 40)
    assert not activity.speaking
    assert activity.segments[0].end == pytest.approx(1.33)  # the last voiced piece
    assert activity.first_start(after=0.5) is None


def test_a_recorded_prompt_is_speech_and_digital_silence_is_not() -> None:
    clock = [0.0]
    activity = VoiceActivity(clock=lambda: clock[0])
    samples, rate = load_wav(PROMPT)
    frame = rate // 50
    for start in range(0, len(samples) - frame, frame):
        clock[0] += 0.02
        activity.write(samples[start:start + frame], rate)
    spoken = clock[0]
    for _ in range(50):
        clock[0] += 0.02
        activity.write(np.zeros(frame, dtype=np.int16), rate)
    assert activity.segments and not activity.speaking
    end = activity.segments[-1].end
    # the detector's own hangover holds a few frames past the last word
    assert activity.segments[0].start < 0.5 and end is not None and end <= spoken + 0.1


def conversation(said: list[tuple[float, float]], heard: list[tuple[float, float | None]],
                 answered_at: float = 0.0) -> Conversation:
    talk = Conversation(answered_at=answered_at)
    talk.said.segments = [Segment(start, end) for start, end in said]
    talk.heard.segments = [Segment(start, end) for start, end in heard]
    return talk


def test_the_figures_of_a_conversation() -> None:
    # they greet at 1.0-2.0; we ask 3.0-4.0; they answer at 4.8 until 7.0, we cut in at 6.5
    talk = conversation(said=[(3.0, 4.0), (6.5, 6.9)], heard=[(1.0, 2.0), (4.8, 7.0)])
    assert talk.response_gaps() == [pytest.approx(0.8)]  # the cut-in got no reply of its own
    assert talk.figures(now=10.0).to_json() == {"first_words": 1.0, "response_latency": 0.8,
                                                "talk_over": 0.4, "dead_air": 3.0}  # 7.0 to now


def test_a_reply_that_comes_after_we_spoke_again_is_not_a_response_to_the_first_words() -> None:
    talk = conversation(said=[(1.0, 2.0), (2.5, 3.0)], heard=[(3.4, 4.0)])
    assert talk.response_gaps() == [pytest.approx(0.4)]


def test_nothing_heard_yet_has_no_first_words_nor_responses() -> None:
    talk = conversation(said=[(0.5, 1.0)], heard=[], answered_at=0.0)
    figures = talk.figures(now=2.0)
    assert figures.first_words is None and figures.response_latency is None
    assert figures.dead_air == 1.0 and figures.talk_over == 0.0


def test_speech_going_on_at_the_answer_is_first_words_at_once() -> None:
    # a greeting whose first voiced piece dates 5 ms before the answer (it passed in a frame
    # played just after it), and early media that spoke on through the answer
    ongoing: list[list[tuple[float, float | None]]] = [[(9.995, None)], [(8.0, 10.5)]]
    for heard in ongoing:
        talk = conversation(said=[], heard=heard, answered_at=10.0)
        assert talk.figures(now=11.0).first_words == 0.0
    ended_before = conversation(said=[], heard=[(8.0, 9.5), (10.7, None)], answered_at=10.0)
    assert ended_before.figures(now=11.0).first_words == pytest.approx(0.7)
