"""``softphone`` command group: parses options, builds the engine, renders its events.

Usage errors print one line naming the problem and exit 2 (scripts rely on that contract);
other SIP-level failures exit 1; Ctrl-C exits 130 after a clean hang-up."""

from __future__ import annotations

import logging
import sys

import click

from softphone.cli.answer_cmd import answer_command
from softphone.cli.call_cmd import call_command
from softphone.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CliContext
from softphone.cli.demo_cmd import demo_command
from softphone.cli.devices_cmd import devices_command
from softphone.cli.engine_cmd import engine_command
from softphone.cli.examples_cmd import examples_command
from softphone.cli.load_cmd import load_command
from softphone.cli.message_cmd import message_command
from softphone.cli.options_cmd import options_command
from softphone.cli.register_cmd import register_command
from softphone.cli.test_cmd import test_command
from softphone.config import ConfigError, find_config, load_profile
from softphone.sip.errors import SipError
from softphone.transport.base import ListenError
from softphone.versions import version_report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE",
              help="TOML profiles (default: $SOFTPHONE_CONFIG, ~/.config/softphone/config.toml).")
@click.option("--profile", metavar="NAME", help="The profile to use (default: default_profile).")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("--log-sip", metavar="FILE|-",
              help="Trace every SIP message sent and received (-: to stderr).")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _param, wanted: _print_version(ctx) if wanted else None,
              help="Show the version, and those of Python and the libraries found.")
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
    configure_logging(verbose)
    ctx.obj = CliContext(profile=chosen, log_sip=log_sip)


def _print_version(ctx: click.Context) -> None:
    click.echo(version_report())
    ctx.exit()


class _PlainFormatter(logging.Formatter):
    """``softphone: warning: ...``: a line for a person, like the CLI's own errors."""

    def format(self, record: logging.LogRecord) -> str:
        return f"softphone: {record.levelname.lower()}: {record.getMessage()}"


def configure_logging(verbose: int) -> None:
    """The ``softphone.*`` loggers to stderr: warnings as plain lines by default; -v adds
    INFO (what happens to calls, registrations, media), -vv DEBUG (every message and
    timer), each with its time and logger name. stdout stays for --json and the view."""
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_PlainFormatter())
    root = logging.getLogger("softphone")
    root.handlers = [handler]
    root.setLevel(max(logging.DEBUG, logging.WARNING - 10 * verbose))
    root.propagate = False


GLOBAL_FLAGS = ("-v", "--verbose")
GLOBAL_VALUES = ("--config", "--profile", "--log-sip")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move the group's options found after the command name to before it, so that
    ``softphone call URI -v --log-sip -`` means what ``softphone -v --log-sip - call URI``
    does (no command has options of these names)."""
    command_at = _command_index(argv)
    if command_at is None:
        return argv
    head, rest = argv[: command_at + 1], argv[command_at + 1 :]
    hoisted: list[str] = []
    kept: list[str] = []
    index = 0
    while index < len(rest):
        token = rest[index]
        if token == "--":
            kept += rest[index:]
            break
        if token in GLOBAL_FLAGS or (token.startswith("-v") and set(token[1:]) == {"v"}):
            hoisted.append(token)
        elif token in GLOBAL_VALUES and index + 1 < len(rest):
            hoisted += rest[index : index + 2]
            index += 1
        elif token.split("=", 1)[0] in GLOBAL_VALUES and "=" in token:
            hoisted.append(token)
        else:
            kept.append(token)
        index += 1
    return [*head[:command_at], *hoisted, head[command_at], *kept]


def _command_index(argv: list[str]) -> int | None:
    """Where the command name is: the first word that is neither a group option nor the
    value of one."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in GLOBAL_VALUES:
            index += 2
            continue
        if token.startswith("-"):
            index += 1
            continue
        return index if token in cli.commands else None
    return None


cli.add_command(options_command)
cli.add_command(message_command)
cli.add_command(register_command)
cli.add_command(call_command)
cli.add_command(answer_command)
cli.add_command(demo_command)
cli.add_command(devices_command)
cli.add_command(load_command)
cli.add_command(test_command)
cli.add_command(examples_command)
cli.add_command(engine_command)


def main(argv: list[str] | None = None) -> None:
    arguments = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        cli.main(args=arguments, prog_name="softphone", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as help_wanted:
        assert help_wanted.ctx is not None
        click.echo(help_wanted.ctx.get_help())  # bare `softphone`: help, not an error
    except click.UsageError as error:
        hint = f" ({error.ctx.command_path} --help)" if error.ctx is not None else ""
        click.echo(f"softphone: error: {error.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except click.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except ListenError as error:  # the address the user chose: a usage error
        click.echo(f"softphone: error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except SipError as error:
        click.echo(f"softphone: error: {error}", err=True)
        sys.exit(EXIT_FAILED)
    except OSError as error:
        click.echo(f"softphone: error: {error.strerror or error}", err=True)
        sys.exit(EXIT_FAILED)
