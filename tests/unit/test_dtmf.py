"""RFC 4733 telephone-events: what the sender emits, and digits received exactly once."""

from __future__ import annotations

import pytest

from softphone.rtp.dtmf import DtmfPacket, DtmfReceiver, DtmfSender, EventPayload, event_code


def test_payload_layout_round_trips() -> None:
    payload = EventPayload(event=11, end=True, volume=10, duration=800)
    assert bytes(payload) == bytes([11, 0x80 | 10, 0x03, 0x20])
    assert EventPayload.parse(bytes(payload)) == payload


def test_one_digit_is_a_marked_start_growing_durations_and_three_ends() -> None:
    sender = DtmfSender(samples_per_frame=160, tone_ms=100, gap_ms=60)
    sender.queue("5")
    frames = []
    while sender.busy:
        frames.append(sender.next())
    packets = [f for f in frames if isinstance(f, DtmfPacket)]
    events = [EventPayload.parse(p.payload) for p in packets]
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [e.duration for e in events if e] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events if e] == [False] * 4 + [True] * 3
    assert all(e is not None and e.event == 5 for e in events)
    assert frames[len(packets):] == [False] * (len(frames) - len(packets))  # the gap
    assert sender.next() is None


def test_receiver_reports_each_event_once_despite_loss_and_repeats() -> None:
    receiver = DtmfReceiver()
    got = []
    for timestamp, digit in ((1000, 1), (1000, 1), (1800, 2), (1800, 2), (2600, 10)):
        payload = bytes(EventPayload(digit, False, 10, 160))
        got.append(receiver.receive(timestamp, payload))
    assert [g for g in got if g] == ["1", "2", "*"]
    assert receiver.receive(3400, b"\x01") is None  # truncated payload


@pytest.mark.parametrize("bad", ["x", "", "12", "E"])
def test_only_dtmf_digits_are_accepted(bad: str) -> None:
    with pytest.raises(ValueError):
        event_code(bad)
