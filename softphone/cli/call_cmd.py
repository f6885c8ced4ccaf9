"""``softphone call URI``: place one call and report how it went."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from softphone.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    account_options,
    audio_config,
    audio_options,
    build_agent,
    caller_config,
    cli_context,
    codec_list,
    dial_target,
    is_interactive,
    network_options,
    rtp_port_range,
    run,
    sip_uri,
    srtp_options,
    until_stopped,
)
from softphone.cli.live import LiveSession, through_transfers
from softphone.rtp.dtmf import event_code
from softphone.ua.call import Call

DTMF_SETTLE = 0.3  # seconds after the answer before the first digit


@click.command("call")
@click.argument("uri")
@account_options
@click.option("--duration", type=click.FloatRange(0), metavar="SECONDS",
              help="Hang up this long after the call is answered.")
@click.option("--timeout", type=click.FloatRange(0), metavar="SECONDS",
              help="Cancel the call if it is not answered by then.")
@audio_options
@click.option("--dtmf", metavar="DIGITS", help="Send these digits (0-9*#A-D) once answered.")
@network_options
@srtp_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def call_command(uri: str, listen: str | None, transport: str, user: str | None,
                 password: str | None, proxy: str | None, duration: float | None,
                 timeout: float | None, play: str | None, tone: float | None,
                 record: str | None, record_both: bool, codecs: str, null_audio: bool,
                 device: str | None,
                 rtp_ports: str | None, dtmf: str | None, as_json: bool,
                 **network: Any) -> None:
    """Call URI; exits 0 if it was answered, 1 if it failed (the status is printed).

    \b
    Examples:
      softphone call sip:bob@127.0.0.1:5062 --duration 5
      softphone call bob@127.0.0.1 --proxy sip:127.0.0.1:5060 --user alice --password pw
      softphone call sip:ivr@127.0.0.1:5062 --play prompt.wav --record reply.wav --codec pcmu
      softphone call sip:ivr@127.0.0.1:5062 --dtmf 1234# --duration 5 --json
    """
    profile = cli_context().profile.overridden(
        user=user, password=password, outbound_proxy=proxy, listen=listen, transport=transport,
        device=device, **network)
    target = sip_uri(dial_target(uri, profile))
    if dtmf is not None:
        try:
            for digit in dtmf:
                event_code(digit)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--dtmf") from None
    config = caller_config(
        profile, target, codecs=codec_list(codecs, profile),
        rtp_ports=rtp_port_range(rtp_ports, profile),
        audio=audio_config(play, tone, record, null_audio=null_audio, device=profile.device,
                           record_both=record_both, capture_device=profile.capture_device,
                           playback_device=profile.playback_device,
                           aec=profile.aec is not False))

    async def main(stop: asyncio.Event) -> int:
        interactive = is_interactive(as_json)
        agent = build_agent(config, as_json, printer=not interactive)
        async with agent:
            session = LiveSession(agent) if interactive else None
            call = await agent.call(str(target), duration=duration, ring_timeout=timeout)
            if dtmf:
                agent.spawn(_send_digits_when_answered(call, dtmf))
            if session is not None:
                session.view.watch(call)
                ended = await session.run(through_transfers(call, session), stop)
            else:
                ended = await until_stopped(through_transfers(call, None), stop)
            if ended is None:
                await call.hangup()
                return EXIT_INTERRUPTED
        return EXIT_OK if call.succeeded else EXIT_FAILED

    raise SystemExit(run(main))


async def _send_digits_when_answered(call: Call, digits: str) -> None:
    if await call.answered:
        await asyncio.sleep(DTMF_SETTLE)  # let the far end's media start before the first
        await call.send_dtmf(digits)
