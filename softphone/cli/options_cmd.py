"""``softphone options URI``: ask a peer what it supports without calling it."""

from __future__ import annotations

import asyncio

import click

from softphone.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    build_agent,
    listen_address,
    run,
    sip_uri,
    until_stopped,
)
from softphone.ua.agent import AgentConfig


@click.command("options")
@click.argument("uri")
@click.option("--listen", metavar="HOST:PORT", help="Local address (port 0: any free port).")
@click.option("--transport", type=click.Choice(["udp", "tcp"]), default="udp", show_default=True)
@click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Give up after this long without an answer [default: 32].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def options_command(uri: str, listen: str | None, transport: str, timeout: float | None,
                    as_json: bool) -> None:
    """Send OPTIONS to URI and print what it allows, accepts and supports.

    \b
    Examples:
      softphone options sip:127.0.0.1:5060
      softphone options bob@pbx.example.com --json --timeout 3
    """
    target = sip_uri(uri)
    host, port = listen_address(listen, target, 0)
    config = AgentConfig(listen_host=host, listen_port=port, transport=transport)

    async def main(stop: asyncio.Event) -> int:
        agent = build_agent(config, as_json)
        async with agent:
            result = await until_stopped(agent.options(str(target), timeout), stop)
        if result is None:
            return EXIT_INTERRUPTED
        return EXIT_OK if 200 <= result.status < 300 else EXIT_FAILED

    raise SystemExit(run(main))
