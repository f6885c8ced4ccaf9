"""The human event lines: the direct markup translation says what Rich's rendering says."""

from __future__ import annotations

import pytest
from rich.markup import render

from softphone.cli.common import describe, render_line
from softphone.events import Ended, Event, Listening, MediaTimeout, MessageReceived

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
