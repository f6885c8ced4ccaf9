"""``softphone options URI``: ask a peer what it supports without calling it."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from softphone.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    TRANSPORT_OPTION,
    build_agent,
    cli_context,
    listen_address,
    network_options,
    network_settings,
    run,
    sip_uri,
    until_stopped,
)
from softphone.ua.agent import AgentConfig


@click.command("options")
@click.argument("uri")
@click.option("--listen", metavar="HOST:PORT", help="Local address (port 0: any free port).")
@TRANSPORT_OPTION
@click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Give up after this long without an answer [default: 32].")
@network_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def options_command(uri: str, listen: str | None, transport: str | None,
                    timeout: float | None, as_json: bool, **network: Any) -> None:
    """Send OPTIONS to URI and print what it allows, accepts and supports.

    \b
    Examples:
      softphone options sip:127.0.0.1:5060
      softphone options bob@pbx.example.com --json --timeout 3
    """
    target = sip_uri(uri)
    profile = cli_context().profile.overridden(transport=transport, **network)
    host, port = listen_address(listen, target, 0)
    config = AgentConfig(listen_host=host, listen_port=port,
                         transport=profile.transport or "udp", **network_settings(profile))

    async def main(stop: asyncio.Event) -> int:
        agent = build_agent(config, as_json)
        async with agent:
            result = await until_stopped(agent.options(str(target), timeout), stop)
        if result is None:
            return EXIT_INTERRUPTED
        return EXIT_OK if 200 <= result.status < 300 else EXIT_FAILED

    raise SystemExit(run(main))
