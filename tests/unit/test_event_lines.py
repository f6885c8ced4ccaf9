"""The human event lines: the direct markup translation says what Rich's rendering says;
the JSON lines carry the fields and datetime's timestamps."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from rich.markup import render

from softphone.cli.common import describe, render_line
from softphone.events import Ended, Event, Listening, MediaTimeout, MessageReceived, utc_timestamp

EVENTS: list[Event] = [
    Listening(transport="udp", host="127.0.0.1", port=5060),
    Ended(call_id="c", status=486, reason="Busy Here", by="remote", duration=0.0),
    Ended(call_id="c", status=200, reason="OK", by="local", duration=2.5),
    MediaTimeout(call_id="c", seconds=5.0),
    MessageReceived(sender="sip:eve@[::1]", text="[bold]not a style[/bold] \\ [red] x",
                    content_type="text/plain", call_id=None),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event.name)
def test_plain_lines_match_rich(event: Event) -> None:
    markup = describe(event)
    assert render_line(markup, colour=False) == render(markup).plain


def test_colour_lines_carry_ansi_styles_and_close_them() -> None:
    line = render_line(describe(EVENTS[1]), colour=True)
    assert line == "\x1b[31mended\x1b[39m: 486 Busy Here (by remote, 0.0s)"
    assert render_line("[bold]message[/bold] x", colour=True) == "\x1b[1mmessage\x1b[22m x"


def datetime_stamp(when: float) -> str:
    """The format's definition: datetime's ISO 8601 with milliseconds, in UTC."""
    moment = datetime.fromtimestamp(when, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_timestamps_say_what_datetime_would_round_every_edge_of_a_second() -> None:
    shuffle = random.Random(14)
    moments = [shuffle.uniform(-1e9, 4e9) for _ in range(5000)]
    for second in (0, 1_796_000_000, -86_400, 1_796_000_059):
        moments += [second + fraction for fraction in
                    (0.0, 0.0004, 0.0005, 0.0009999, 0.999, 0.9994999, 0.9995, 0.9999994,
                     0.9999995, 0.99999951, 0.9999996, -0.0000004, -0.0000006, -0.5)]
    for when in moments:
        assert utc_timestamp(when) == datetime_stamp(when), when


def test_json_lines_carry_every_field_but_at_with_the_timestamp_for_at() -> None:
    ended = Ended(call_id="c", status=200, reason="OK", by="local", duration=2.5,
                  rtp={"loss": 0.0}, at=1_796_000_000.25)
    assert ended.to_json() == {
        "event": "ended", "timestamp": "2026-11-30T00:53:20.250Z", "call_id": "c",
        "status": 200, "reason": "OK", "by": "local", "duration": 2.5, "rtp": {"loss": 0.0},
        "diagnosis": None}
    listening = Listening(transport="udp", host="::1", port=5060, at=0.0)
    assert list(listening.to_json()) == ["event", "timestamp", "transport", "host", "port"]
