"""``softphone demo``: the embedded default. Two agents on loopback, one calls the other, the
live view ``call`` and ``answer`` use shows the call while it runs (its keys work too), and a
summary closes it. No server, no sound card."""

from __future__ import annotations

import asyncio
import time

import click
from rich.console import Console

from softphone.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    audio_config,
    run,
)
from softphone.cli.live import LiveSession
from softphone.media.quality import stream_quality
from softphone.ua.agent import AgentConfig, AudioConfig, UserAgent
from softphone.ua.call import Call
from softphone.ua.events import Dtmf, Ended, Event


@click.command("demo")
@click.option("--seconds", type=click.FloatRange(1.5, 600), default=5.0, show_default=True,
              help="How long the call stays up.")
@click.option("--sound-card", is_flag=True,
              help="Talk through the sound card (microphone to the echo, echo to speaker).")
def demo_command(seconds: float, sound_card: bool) -> None:
    """Call a local echo agent with a 440 Hz tone, show the call live, then a summary.

    \b
    Example:
      softphone demo --seconds 3
    """
    console = Console()

    async def main(stop: asyncio.Event) -> int:
        callee_config = AgentConfig(listen_host="127.0.0.1", listen_port=0, rtcp_interval=1.0,
                                    audio=AudioConfig(echo=True))
        audio = audio_config(None, None, None) if sound_card else AudioConfig(tone=440)
        caller_config = AgentConfig(listen_host="127.0.0.1", listen_port=0, rtcp_interval=1.0,
                                    audio=audio)
        async with UserAgent(callee_config) as callee, UserAgent(caller_config) as caller:
            answering = asyncio.ensure_future(_answer_one(callee))
            session = LiveSession(caller, console, title="softphone demo")
            call = await caller.call(f"sip:echo@127.0.0.1:{callee.port}", duration=seconds)
            session.view.watch(call)
            round_trip = asyncio.ensure_future(_dtmf_round_trip(caller, call))
            ended = await session.run(asyncio.shield(call.ended), stop)
            answering.cancel()
            if ended is None:
                round_trip.cancel()
                return EXIT_INTERRUPTED
            dtmf_ms = round_trip.result() if round_trip.done() else None
        console.line()  # rich leaves the last frame of a live view without its line end
        console.print(_summary(call, ended, dtmf_ms))
        return EXIT_OK if call.answered_at else EXIT_FAILED

    raise SystemExit(run(main))


async def _answer_one(agent: UserAgent) -> None:
    """The echo side: answers, and sends back every DTMF digit it receives."""
    call = await agent.incoming.get()

    def echo_digit(event: Event) -> None:
        if isinstance(event, Dtmf) and event.call_id == call.call_id:
            agent.spawn(call.send_dtmf(event.digit))

    agent.add_listener(echo_digit)
    await call.ring()
    await asyncio.sleep(0.5)
    await call.answer()
    await asyncio.shield(call.ended)


async def _dtmf_round_trip(caller: UserAgent, call: Call, digits: str = "123") -> float | None:
    """Milliseconds from sending ``digits`` to hearing them all come back from the echo."""
    if not await call.answered:
        return None
    await asyncio.sleep(0.5)
    back = caller.subscribe()
    start = time.monotonic()
    await call.send_dtmf(digits)
    heard = ""
    while heard != digits:
        event = await back.get()
        if isinstance(event, Dtmf):
            heard += event.digit
    return (time.monotonic() - start) * 1000


def _summary(call: Call, ended: Ended, dtmf_ms: float | None) -> str:
    rtp = ended.rtp or {}
    received = int(rtp.get("packets_received") or 0)
    lost = int(rtp.get("packets_lost") or 0)
    rtt = rtp.get("rtt_ms")
    loss, mos = stream_quality(call.media.codec.encoding if call.media else "", received, lost,
                               float(rtp.get("jitter_ms") or 0.0),
                               float(rtt) if rtt is not None else None)
    return "\n".join([
        f"summary: {'answered' if call.answered_at else 'not answered'}, codec "
        f"{call.codec or '-'}, ended {ended.status} {ended.reason} after {ended.duration:.1f} s",
        f"  RTP: sent {rtp.get('packets_sent', 0)}, received {received}, lost {lost} "
        f"({loss:.1%}), jitter {rtp.get('jitter_ms', 0)} ms, RTT {rtp.get('rtt_ms')} ms",
        f"  MOS estimate: {mos if call.media else '-'}",
        "  DTMF round trip (123 there and back): "
        + (f"{dtmf_ms:.0f} ms" if dtmf_ms is not None else "-")])
