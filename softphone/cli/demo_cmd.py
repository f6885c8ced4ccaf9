"""``softphone demo``: the embedded default. Two agents on loopback, one calls the other, a
live view shows the call while it runs, and a summary closes it. No server, no sound card."""

from __future__ import annotations

import asyncio
import time

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from softphone.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, run, until_stopped
from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent
from softphone.ua.call import Call
from softphone.ua.events import Event


def _view(call: Call, log: list[str]) -> Table:
    table = Table(title="softphone demo: loopback call", show_header=False, min_width=60)
    table.add_column("what", style="bold")
    table.add_column("value")
    talking = time.monotonic() - call.answered_at if call.answered_at else 0.0
    table.add_row("peer", str(call.remote_uri))
    table.add_row("state", call.state)
    table.add_row("timer", f"{talking:5.1f} s")
    table.add_row("codec", call.codec or "-")
    if call.stream is not None:
        stats = call.stream.snapshot()
        table.add_row("RTP", f"sent {stats.packets_sent}, received {stats.packets_received}, "
                             f"lost {stats.packets_lost}, jitter {stats.jitter_ms:.1f} ms")
        table.add_row("RTCP", f"sent {stats.rtcp_sent}, received {stats.rtcp_received}"
                              + (f", RTT {stats.rtt_ms:.1f} ms" if stats.rtt_ms is not None
                                 else ""))
    table.add_row("events", "  ".join(log[-4:]))
    return table


@click.command("demo")
@click.option("--seconds", type=click.FloatRange(0.5, 600), default=5.0, show_default=True,
              help="How long the call stays up.")
def demo_command(seconds: float) -> None:
    """Call a local echo agent with a 440 Hz tone, show the call live, then a summary.

    \b
    Example:
      softphone demo --seconds 3
    """
    console = Console()

    async def main(stop: asyncio.Event) -> int:
        callee_config = AgentConfig(listen_host="127.0.0.1", listen_port=0, rtcp_interval=1.0,
                                    audio=AudioConfig(echo=True))
        caller_config = AgentConfig(listen_host="127.0.0.1", listen_port=0, rtcp_interval=1.0,
                                    audio=AudioConfig(tone=440))
        log: list[str] = []

        def note(event: Event) -> None:
            log.append(event.name)

        async with UserAgent(callee_config) as callee, UserAgent(caller_config) as caller:
            caller.add_listener(note)
            answering = asyncio.ensure_future(_answer_one(callee))
            call = await caller.call(f"sip:echo@127.0.0.1:{callee.port}", duration=seconds)
            with Live(_view(call, log), console=console, refresh_per_second=8,
                      transient=False) as live:
                async def refresh() -> bool:
                    while not call.is_over:
                        live.update(_view(call, log))
                        await asyncio.sleep(0.125)
                    live.update(_view(call, log))
                    return True

                done = await until_stopped(refresh(), stop)
            answering.cancel()
            if done is None:
                await call.hangup()
                return EXIT_INTERRUPTED
            ended = await call.ended
        rtp = ended.rtp or {}
        console.print(f"summary: {'answered' if call.answered_at else 'not answered'}, "
                      f"codec {call.codec or '-'}, ended {ended.status} {ended.reason} "
                      f"after {ended.duration:.1f} s; RTP sent {rtp.get('packets_sent', 0)}, "
                      f"received {rtp.get('packets_received', 0)}, "
                      f"lost {rtp.get('packets_lost', 0)}, jitter {rtp.get('jitter_ms', 0)} ms")
        return EXIT_OK if call.answered_at else EXIT_FAILED

    raise SystemExit(run(main))


async def _answer_one(agent: UserAgent) -> None:
    call = await agent.incoming.get()
    await call.ring()
    await asyncio.sleep(0.5)
    await call.answer()
    await call.ended
