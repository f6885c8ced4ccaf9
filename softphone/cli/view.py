"""The live call view (rich): state, timer, codec, RTP figures, MOS estimate, levels, DTMF.

One renderer serves ``call``, ``answer`` and ``demo``. It reads the engine's public objects
and events only, and is redrawn a few times a second by rich's Live, in place. The timer runs
from the answer to the end of the call and then stands still; the meters show silence when
nothing arrives (on hold, say) rather than the last level heard.
"""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from softphone.media.quality import stream_quality
from softphone.ua.call import Call
from softphone.ua.events import (
    Answered,
    Dtmf,
    DtmfSent,
    EarlyMedia,
    Ended,
    Event,
    Hold,
    MessageReceived,
    Mwi,
    TransferProgress,
    TransferRequested,
)

STATE_NAMES = {"incoming": "incoming call", "calling": "calling", "ringing": "ringing",
               "answered": "talking", "ending": "hanging up", "ended": "ended"}
KEYS_TALKING = "h hang up  0-9*# DTMF  m mute  p hold/resume  t transfer  q quit"
KEYS_INCOMING = "a answer  r reject (486)  d decline (603)  q quit"
KEYS_ENDED = "q quit"
KEYS_SEVERAL = "Tab switch  j join  h hang up  p hold/resume  m mute  t transfer  q quit"
LOG_LINES = 50


def meter(dbfs: float, width: int = 20) -> Text:
    """A level bar from -60 to 0 dBFS."""
    filled = int(round(width * max(0.0, min(1.0, (dbfs + 60) / 60))))
    bar = Text("█" * filled, style="green" if dbfs < -6 else "red")
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {dbfs:5.1f} dBFS" if dbfs > -96 else "  silent")
    return bar


def call_timer(call: Call, now: float | None = None) -> str:
    """Minutes and seconds talked: from the answer to the end (or to now while it lasts)."""
    if call.answered_at is None:
        return "--:--"
    until = call.ended_at if call.ended_at is not None else (now or time.monotonic())
    return time.strftime("%M:%S", time.gmtime(max(0.0, until - call.answered_at)))


class CallView:
    def __init__(self, title: str = "softphone") -> None:
        self.title = title
        self.calls: list[Call] = []
        self.digits_in: dict[str, str] = {}
        self.digits_out: dict[str, str] = {}
        self.held: dict[str, bool] = {}
        self.log: list[str] = []
        self.prompt: str | None = None  # the transfer target being typed (live view's t)
        self.selected: Call | None = None  # the call keys act on, marked in its title
        self.conference: set[str] = set()  # Call-IDs joined into the local conference

    def watch(self, call: Call) -> None:
        if call not in self.calls:
            self.calls.append(call)

    def on_event(self, event: Event) -> None:
        if isinstance(event, Dtmf):
            self.digits_in[event.call_id] = self.digits_in.get(event.call_id, "") + event.digit
        elif isinstance(event, DtmfSent):
            self.digits_out[event.call_id] = self.digits_out.get(event.call_id, "") + \
                event.digits
        elif isinstance(event, Hold):
            self.held[event.call_id] = event.held
            self.log.append(f"{'on hold' if event.held else 'resumed'} (by {event.by})")
        elif isinstance(event, Answered):
            self.log.append(f"answered by {event.peer} ({event.codec or 'no media'})")
        elif isinstance(event, Ended):
            self.log.append(f"ended: {event.status} {event.reason} (by {event.by})")
        elif isinstance(event, MessageReceived):
            self.log.append(f"message from {event.sender}: {event.text[:200]}")
        elif isinstance(event, Mwi):
            self.log.append(f"voicemail: {'messages waiting' if event.waiting else 'none new'}"
                            f" ({event.new} new, {event.old} old)")
        elif isinstance(event, EarlyMedia):
            self.log.append(f"early media ({event.codec or 'awaiting the answer'})")
        elif isinstance(event, TransferRequested):
            self.log.append(f"transferred by the peer to {event.target}")
        elif isinstance(event, TransferProgress) and not event.final:
            self.log.append(f"transfer: {event.status} {event.reason}")
        if len(self.log) > LOG_LINES:
            del self.log[:-LOG_LINES]

    def render(self) -> RenderableType:
        panels: list[RenderableType] = [self._call_panel(call) for call in self._shown()]
        if not panels:
            panels.append(Panel("waiting for calls ...", title=self.title))
        if self.log:
            panels.append(Text("\n".join(self.log[-3:]), style="dim"))
        if self.prompt is not None:
            panels.append(Text(f"transfer to (Enter sends, Esc cancels): {self.prompt}_",
                               style="bold"))
        return Group(*panels)

    def _shown(self) -> list[Call]:
        """At most three calls: those still up first, then the latest that ended."""
        live = [call for call in self.calls if not call.is_over][-3:]
        ended = [call for call in self.calls if call.is_over][-(3 - len(live)):] \
            if len(live) < 3 else []
        return [call for call in self.calls if call in live or call in ended]

    def _state(self, call: Call) -> str:
        state = STATE_NAMES.get(call.state, call.state)
        if call.state == "answered" and (self.held.get(call.call_id) or (
                call.media is not None and call.media.direction != "sendrecv")):
            state = "on hold"
        return state

    def _call_panel(self, call: Call) -> Panel:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        state = self._state(call)
        table.add_row("peer", str(call.remote_uri))
        muted = call.stream is not None and call.stream.muted and not call.is_over
        table.add_row("state", state + ("  (muted)" if muted else "")
                      + ("  (conference)" if call.call_id in self.conference else ""))
        table.add_row("timer", call_timer(call))
        table.add_row("codec", call.codec or "-")
        stream = call.stream
        if stream is not None:
            stats = stream.snapshot()
            loss, mos = stream_quality(stream.media.codec.encoding, stats.packets_received,
                                       stats.packets_lost, stats.jitter_ms, stats.rtt_ms)
            table.add_row("packets", f"sent {stats.packets_sent}  received "
                                     f"{stats.packets_received}  lost {loss:.1%}")
            table.add_row("jitter", f"{stats.jitter_ms:.1f} ms" + (
                f"   RTT {stats.rtt_ms:.1f} ms" if stats.rtt_ms is not None else ""))
            table.add_row("MOS", f"{mos:.2f}")
            live = not call.is_over
            table.add_row("mic", meter(stream.level_in if live else -96.0))
            table.add_row("speaker", meter(stream.level_out if live else -96.0))
        if self.digits_in.get(call.call_id):
            table.add_row("DTMF in", self.digits_in[call.call_id])
        if self.digits_out.get(call.call_id):
            table.add_row("DTMF out", self.digits_out[call.call_id])
        if call.is_over:
            keys = KEYS_ENDED
        elif call.state in ("incoming", "ringing") and call.direction == "incoming":
            keys = KEYS_INCOMING
        else:
            keys = KEYS_TALKING
        several = len([c for c in self.calls if not c.is_over]) > 1
        if several and keys == KEYS_TALKING:
            keys = KEYS_SEVERAL
        mark = "▶ " if several and call is self.selected and not call.is_over else ""
        return Panel(table, title=f"{mark}{self.title}: {state}", subtitle=keys)
