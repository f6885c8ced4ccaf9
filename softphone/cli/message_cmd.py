"""``softphone message URI TEXT``: send one instant message (RFC 3428 pager mode)."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from softphone.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    account_options,
    build_agent,
    caller_config,
    cli_context,
    network_options,
    run,
    sip_uri,
    until_stopped,
)
from softphone.sip.errors import SipError


@click.command("message")
@click.argument("uri")
@click.argument("text")
@account_options
@click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Give up after this long without an answer [default: 32].")
@network_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def message_command(uri: str, text: str, listen: str | None, transport: str | None,
                    user: str | None, password: str | None, proxy: str | None,
                    timeout: float | None, as_json: bool, **network: Any) -> None:
    """Send TEXT to URI in a SIP MESSAGE; exit 0 when it was delivered (2xx).

    \b
    Examples:
      softphone message sip:bob@127.0.0.1:5062 "the build is green"
      softphone message bob@pbx.example.com "call me" --proxy sip:pbx.example.com \\
          --user alice --password secret
    """
    target = sip_uri(uri)
    profile = cli_context().profile.overridden(
        listen=listen, transport=transport, user=user, password=password,
        outbound_proxy=proxy, **network)
    config = caller_config(profile, target, media=False)

    async def main(stop: asyncio.Event) -> int:
        agent = build_agent(config, as_json)
        async with agent:
            try:
                result = await until_stopped(agent.message(str(target), text, timeout), stop)
            except SipError as error:
                raise click.UsageError(str(error)) from None
        if result is None:
            return EXIT_INTERRUPTED
        return EXIT_OK if 200 <= result.status < 300 else EXIT_FAILED

    raise SystemExit(run(main))
