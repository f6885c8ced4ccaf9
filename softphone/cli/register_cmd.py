"""``softphone register``: register an account, keep it registered, unregister on exit."""

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
    credentials_of,
    listen_address,
    network_options,
    network_settings,
    run,
    sip_uri,
    subscribe_mwi,
    until_stopped,
)
from softphone.ua.agent import AgentConfig
from softphone.ua.registration import RegistrationError


@click.command("register")
@click.option("--registrar", metavar="URI", help="The registrar, e.g. sip:pbx (or the profile's).")
@click.option("--user", help="Account user name, also the digest user (or the profile's).")
@click.option("--password", help="Digest password (or the profile's password/password_env).")
@click.option("--domain", help="Domain of the address of record (default: registrar host).")
@click.option("--expires", type=click.IntRange(0, 2**32 - 1), default=3600, show_default=True)
@click.option("--once", is_flag=True, help="Register, report, unregister and exit.")
@click.option("--mwi", is_flag=True, default=None,
              help="Also subscribe to voicemail waiting indication (RFC 3842): mwi events.")
@click.option("--listen", metavar="HOST:PORT", help="Local address (port 0: any free port).")
@TRANSPORT_OPTION
@click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Give up on a REGISTER after this long without an answer [default: 32].")
@network_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def register_command(registrar: str | None, user: str | None, password: str | None,
                     domain: str | None, expires: int, once: bool, mwi: bool | None,
                     listen: str | None,
                     transport: str | None, timeout: float | None, as_json: bool,
                     **network: Any) -> None:
    """Register USER with a registrar and stay registered (refreshing) until Ctrl-C.

    \b
    Examples:
      softphone register --registrar sip:127.0.0.1:5060 --user alice --password secret
      softphone register --registrar sip:pbx.example.com --user 201 --password pw --once
      softphone register --registrar sip:pbx.example.com --user 201 --password pw --mwi
    """
    profile = cli_context().profile.overridden(
        registrar=registrar, user=user, password=password, domain=domain, listen=listen,
        transport=transport, mwi=mwi, **network)
    for value, option in ((profile.registrar, "--registrar"), (profile.user, "--user"),
                          (profile.secret(), "--password")):
        if value is None:
            raise click.UsageError(f"{option} is needed (on the command line or in the profile)")
    credentials = credentials_of(profile)
    assert profile.registrar is not None and credentials is not None
    registrar_uri = sip_uri(profile.registrar, "--registrar")
    host, port = listen_address(profile.listen, registrar_uri, 0)
    config = AgentConfig(listen_host=host, listen_port=port,
                         transport=profile.transport or "udp", user=credentials.username,
                         **network_settings(profile),
                         display_name=profile.display_name,
                         domain=profile.domain or registrar_uri.host, credentials=credentials)

    async def main(stop: asyncio.Event) -> int:
        agent = build_agent(config, as_json)
        async with agent:  # closing unregisters
            try:
                done = await until_stopped(
                    agent.register(str(registrar_uri), expires, refresh=not once,
                                   timeout=timeout), stop)
            except RegistrationError:
                return EXIT_FAILED
            if done is None:
                return EXIT_INTERRUPTED
            if profile.mwi:
                await subscribe_mwi(agent, registrar_uri, profile.domain, timeout)
            if once:
                return EXIT_OK
            await stop.wait()
            return EXIT_INTERRUPTED

    raise SystemExit(run(main))
