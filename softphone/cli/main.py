"""``softphone`` command group: parses options, builds the engine, renders its events.

Usage errors print one line naming the problem and exit 2 (scripts rely on that contract);
other SIP-level failures exit 1; Ctrl-C exits 130 after a clean hang-up."""

from __future__ import annotations

import logging
import sys

import click

from softphone import __version__
from softphone.cli.answer_cmd import answer_command
from softphone.cli.call_cmd import call_command
from softphone.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CliContext
from softphone.cli.demo_cmd import demo_command
from softphone.cli.devices_cmd import devices_command
from softphone.cli.examples_cmd import examples_command
from softphone.cli.load_cmd import load_command
from softphone.cli.options_cmd import options_command
from softphone.cli.register_cmd import register_command
from softphone.cli.test_cmd import test_command
from softphone.config import ConfigError, find_config, load_profile
from softphone.sip.errors import SipError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE",
              help="TOML profiles (default: $SOFTPHONE_CONFIG, ~/.config/softphone/config.toml).")
@click.option("--profile", metavar="NAME", help="The profile to use (default: default_profile).")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("--log-sip", metavar="FILE|-", help="Trace every SIP message sent and received.")
@click.version_option(__version__, prog_name="softphone")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, profile: str | None, verbose: int,
        log_sip: str | None) -> None:
    """A command-line SIP softphone and call-test tool.

    \b
    Examples:
      softphone demo
      softphone call sip:bob@127.0.0.1:5062 --duration 5
      softphone --profile office call 201
      softphone answer --auto-answer --listen 127.0.0.1:5062
    """
    try:
        chosen = load_profile(find_config(config_path), profile)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    logging.basicConfig(level=max(logging.DEBUG, logging.WARNING - 10 * verbose),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliContext(profile=chosen, log_sip=log_sip)


cli.add_command(options_command)
cli.add_command(register_command)
cli.add_command(call_command)
cli.add_command(answer_command)
cli.add_command(demo_command)
cli.add_command(devices_command)
cli.add_command(load_command)
cli.add_command(test_command)
cli.add_command(examples_command)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="softphone", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as help_wanted:
        assert help_wanted.ctx is not None
        click.echo(help_wanted.ctx.get_help())  # bare `softphone`: help, not an error
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
