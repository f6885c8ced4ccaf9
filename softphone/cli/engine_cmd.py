"""``softphone engine``: calls and scenarios asked for on stdin, one JSON answer per line.

The process Locust's workers drive (softphone.locust); any program can. The options are
``softphone load``'s for the account, codecs, media and network."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from softphone.cli.common import (
    EXIT_OK,
    RTP_PORTS_OPTION,
    account_options,
    build_agent,
    cli_context,
    dial_target,
    network_options,
    run,
    sip_uri,
    srtp_options,
    unheard_call_options,
    unheard_caller_config,
)
from softphone.scenario.engine import Engine, serve


@click.command("engine", hidden=True)
@click.option("--target", metavar="URI", help="Where a call request without a uri goes.")
@click.option("--duration", type=click.FloatRange(0), default=5.0, show_default=True,
              metavar="SECONDS", help="How long an answered call is held unless asked.")
@unheard_call_options
@account_options
@RTP_PORTS_OPTION
@network_options
@srtp_options
def engine_command(target: str | None, duration: float, play: str | None, codecs: str | None,
                   no_media: bool, listen: str | None, transport: str | None,
                   user: str | None, password: str | None, proxy: str | None,
                   rtp_ports: str | None, **network: Any) -> None:
    """Serve call and scenario requests read as JSON lines on stdin (see
    softphone/scenario/engine.py); answer each with one JSON line on stdout."""
    profile = cli_context().profile.overridden(
        user=user, password=password, outbound_proxy=proxy, listen=listen, transport=transport,
        **network)
    default_uri = sip_uri(dial_target(target, profile), "--target") if target else None
    route = default_uri or sip_uri(profile.outbound_proxy or "sip:127.0.0.1", "--proxy")
    config = unheard_caller_config(profile, route, codecs, rtp_ports, play, no_media)

    def reply(answer: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    async def main(stop: asyncio.Event) -> int:
        agent = build_agent(config, as_json=False, printer=False)
        async with agent:
            lines = asyncio.StreamReader()
            loop = asyncio.get_running_loop()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines),
                                         sys.stdin)
            reply({"event": "ready", "port": agent.port})
            await serve(Engine(agent, str(default_uri) if default_uri else None, duration,
                               reply), lines, stop)
        return EXIT_OK

    raise SystemExit(run(main))
