"""``softphone`` command group: parses options, builds the engine, renders its events."""

from __future__ import annotations

import click

from softphone import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="softphone")
def cli() -> None:
    """A command-line SIP softphone and call-test tool."""


def main() -> None:
    cli()
