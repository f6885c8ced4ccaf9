"""``softphone examples``: the profiles and scenarios that come with the package."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from softphone.bundled import copy_examples, examples, find_example


@click.command("examples")
@click.option("--copy", "copy_to", metavar="DIR", type=click.Path(file_okay=False),
              help="Copy them all into DIR to edit (existing files are kept).")
@click.option("--path", "path_of", metavar="NAME", help="Print where example NAME is installed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per example.")
def examples_command(copy_to: str | None, path_of: str | None, as_json: bool) -> None:
    """List the bundled configuration profiles and call-test scenarios.

    \b
    Examples:
      softphone examples
      softphone examples --copy ./softphone-examples
      softphone test --example busy
      softphone --config "$(softphone examples --path loopback)" --profile bob answer
    """
    if path_of is not None:
        try:
            click.echo(str(find_example(path_of).path))
        except KeyError as error:
            raise click.BadParameter(str(error.args[0]), param_hint="--path") from None
        return
    if copy_to is not None:
        copied, kept = copy_examples(Path(copy_to))
        for path in copied:
            click.echo(f"copied {path}")
        for path in kept:
            click.echo(f"kept {path} (already there)")
        return
    found = examples()
    if as_json:
        for example in found:
            click.echo(json.dumps({"name": example.name, "kind": example.kind,
                                   "path": str(example.path), "summary": example.summary}))
        return
    table = Table("name", "kind", "what it is", "file")
    for example in found:
        table.add_row(example.name, example.kind, example.summary, str(example.path))
    Console().print(table)
    click.echo("Run a scenario: softphone test --example NAME; "
               "use a profile file: softphone --config FILE")
