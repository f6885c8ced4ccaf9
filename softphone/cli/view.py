"""The live call view (rich): state, timer, codec, RTP figures, MOS estimate, levels, DTMF.

It reads the engine's public objects and events only. Redrawn a few times a second by
rich's Live, in place, without flicker; used when stdout is a terminal and --json is off.
"""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from softphone.media.quality import stream_quality
from softphone.ua.call import Call
from softphone.ua.events import Dtmf, Ended, Event, Hold

STATE_NAMES = {"incoming": "incoming call", "calling": "calling", "ringing": "ringing",
               "answered": "talking", "ending": "hanging up", "ended": "ended"}
KEYS_TALKING = "h hang up  0-9*# DTMF  m mute  p hold/resume  q quit"
KEYS_INCOMING = "a answer  r reject (486)  d decline (603)  q quit"


def meter(dbfs: float, width: int = 20) -> Text:
    """A level bar from -60 to 0 dBFS."""
    filled = int(round(width * max(0.0, min(1.0, (dbfs + 60) / 60))))
    bar = Text("█" * filled, style="green" if dbfs < -6 else "red")
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {dbfs:5.1f} dBFS" if dbfs > -96 else "  silent")
    return bar


class CallView:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.digits: dict[str, str] = {}
        self.held: dict[str, bool] = {}
        self.log: list[str] = []
        self.muted = False

    def watch(self, call: Call) -> None:
        if call not in self.calls:
            self.calls.append(call)

    def on_event(self, event: Event) -> None:
        if isinstance(event, Dtmf):
            self.digits[event.call_id] = self.digits.get(event.call_id, "") + event.digit
        elif isinstance(event, Hold):
            self.held[event.call_id] = event.held
        elif isinstance(event, Ended):
            self.log.append(f"ended: {event.status} {event.reason} (by {event.by})")
        if len(self.log) > 50:
            del self.log[:-50]

    def render(self) -> RenderableType:
        panels: list[RenderableType] = [self._call_panel(call) for call in self.calls[-3:]]
        if not panels:
            panels.append(Panel("waiting for calls ...", title="softphone"))
        if self.log:
            panels.append(Text("\n".join(self.log[-3:]), style="dim"))
        return Group(*panels)

    def _call_panel(self, call: Call) -> Panel:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        state = STATE_NAMES.get(call.state, call.state)
        if self.held.get(call.call_id) or (call.media and call.media.direction != "sendrecv"
                                           and call.state == "answered"):
            state = "on hold"
        table.add_row("peer", str(call.remote_uri))
        table.add_row("state", state + ("  (muted)" if self.muted else ""))
        started = call.answered_at
        table.add_row("timer", time.strftime("%M:%S", time.gmtime(
            time.monotonic() - started)) if started else "--:--")
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
            table.add_row("mic", meter(stream.level_in))
            table.add_row("speaker", meter(stream.level_out))
        if self.digits.get(call.call_id):
            table.add_row("DTMF in", self.digits[call.call_id])
        keys = KEYS_INCOMING if call.state in ("incoming", "ringing") and \
            call.direction == "incoming" else KEYS_TALKING
        return Panel(table, title=f"softphone: {state}", subtitle=keys)
