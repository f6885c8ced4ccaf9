"""Matching words the way a recogniser writes them, and the monitor handing out what it heard
piece by piece (each sample once) for a recogniser to take."""

from __future__ import annotations

import numpy as np
import pytest

from softphone.media.ports import Monitor
from softphone.media.speech import word_error_rate, words_of


def test_words_are_lower_case_without_punctuation_and_digits_are_spelled() -> None:
    assert words_of("Press 1, for Sales!") == ["press", "one", "for", "sales"]
    assert words_of("Room 42 isn't open.") == ["room", "four", "two", "isn't", "open"]


@pytest.mark.parametrize(("expected", "heard", "rate"), [
    ("press one for sales", "press one for sales", 0.0),
    # the phrase inside longer speech: what comes before and after is free
    ("press one for sales", "welcome press one for sales press two for billing", 0.0),
    ("press one for sales", "press one for cereals", 0.25),  # a substitution
    ("press one for sales", "press one for the sales", 0.25),  # an insertion
    ("press one for sales", "press for sales", 0.25),  # a deletion
    ("press one for sales", "goodbye", 1.0),
    ("press one for sales", "", 1.0),
])
def test_the_word_error_rate_is_that_of_the_best_matching_stretch(expected: str, heard: str,
                                                                  rate: float) -> None:
    assert word_error_rate(words_of(expected), words_of(heard)) == pytest.approx(rate)


def test_nothing_expected_is_always_heard() -> None:
    assert word_error_rate([], ["anything"]) == 0.0


def test_a_monitor_hands_out_each_sample_once_as_far_as_it_keeps() -> None:
    monitor = Monitor(keep_seconds=0.1)  # 800 samples at 8 kHz
    frames = [np.full(160, index, dtype=np.int16) for index in range(10)]
    for frame in frames[:3]:
        monitor.write(frame, 8000)
    taken = monitor.since(0)
    assert taken.tolist() == np.concatenate(frames[:3]).tolist()
    position = monitor.written
    assert len(monitor.since(position)) == 0
    monitor.write(frames[3][:100], 8000)  # a part frame: positions count samples
    assert monitor.since(position).tolist() == [3] * 100
    position = monitor.written
    for frame in frames[4:]:
        monitor.write(frame, 8000)
    # 960 samples came since, the monitor keeps only about its 0.1 s: the oldest are gone
    behind = monitor.since(position)
    assert 800 <= len(behind) < 960 and behind[-1] == 9
