"""``softphone`` command group: parses options, builds the engine, renders its events.

Usage errors print one line naming the problem and exit 2 (scripts rely on that contract);
other SIP-level failures exit 1; Ctrl-C exits 130 after a clean hang-up."""

from __future__ import annotations

import sys

import click

from softphone import __version__
from softphone.cli.answer_cmd import answer_command
from softphone.cli.call_cmd import call_command
from softphone.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from softphone.cli.demo_cmd import demo_command
from softphone.cli.options_cmd import options_command
from softphone.cli.register_cmd import register_command
from softphone.sip.errors import SipError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="softphone")
def cli() -> None:
    """A command-line SIP softphone and call-test tool."""


cli.add_command(options_command)
cli.add_command(register_command)
cli.add_command(call_command)
cli.add_command(answer_command)
cli.add_command(demo_command)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="softphone", standalone_mode=False)
    except click.UsageError as error:
        hint = f" ({error.ctx.command_path} --help)" if error.ctx is not None else ""
        click.echo(f"softphone: error: {error.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except click.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except SipError as error:
        click.echo(f"softphone: error: {error}", err=True)
        sys.exit(EXIT_FAILED)
    except OSError as error:
        click.echo(f"softphone: error: {error.strerror or error}", err=True)
        sys.exit(EXIT_FAILED)
