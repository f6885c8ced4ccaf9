"""``softphone test FILE...``: run scenario files; the exit code is how many failed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from softphone.bundled import find_example
from softphone.cli.common import EXIT_INTERRUPTED, run, until_stopped
from softphone.scenario.model import Scenario, ScenarioError, load_scenario, scenario_schema
from softphone.scenario.report import write_json, write_junit
from softphone.scenario.runner import ScenarioResult, run_scenario

MAX_EXIT = 100


@click.command("test")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--junit", "junit_path", metavar="FILE", help="Write JUnit XML here.")
@click.option("--report", "report_path", metavar="FILE.json",
              help="Write a JSON report: steps with timings, SIP trace, RTP figures.")
@click.option("--example", "example_names", metavar="NAME", multiple=True,
              help="Run a scenario that comes with softphone (see softphone examples).")
@click.option("--schema", "print_schema", is_flag=True,
              help="Print the scenario format as JSON Schema and exit.")
def test_command(files: tuple[str, ...], junit_path: str | None,
                 report_path: str | None, example_names: tuple[str, ...],
                 print_schema: bool) -> None:
    """Run call-test scenario files (TOML). Exit code: the number of failed scenarios.

    \b
    Examples:
      softphone test my_scenarios/*.toml
      softphone test --example busy --example basic_call
      softphone test ivr.toml --junit results.xml --report results.json
      softphone test --schema > scenario.schema.json
    """
    if print_schema:
        click.echo(json.dumps(scenario_schema(), indent=2))
        return
    paths = [Path(f) for f in files]
    for name in example_names:
        try:
            paths.append(find_example(name, "scenario").path)
        except KeyError as error:
            raise click.BadParameter(str(error.args[0]), param_hint="--example") from None
    if not paths:
        raise click.UsageError("name at least one scenario file, an --example, or --schema")
    try:
        scenarios = [load_scenario(path) for path in paths]
    except ScenarioError as error:
        raise click.UsageError(str(error)) from None
    console = Console()

    async def main(stop: asyncio.Event) -> int:
        results = await until_stopped(_run_all(scenarios, console), stop)
        if results is None:
            return EXIT_INTERRUPTED
        console.print(_summary(results))
        if junit_path:
            write_junit(results, Path(junit_path))
        if report_path:
            write_json(results, Path(report_path))
        return min(MAX_EXIT, sum(not r.ok for r in results))

    raise SystemExit(run(main))


async def _run_all(scenarios: list[Scenario], console: Console) -> list[ScenarioResult]:
    results = []
    for scenario in scenarios:
        with console.status(f"running {scenario.name} ..."):
            result = await run_scenario(scenario)
        mark = "[green]PASS[/green]" if result.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {scenario.name} ({result.seconds:.1f} s)"
                      + (f": {result.error}" if result.error else ""))
        results.append(result)
    return results


def _summary(results: list[ScenarioResult]) -> Table:
    table = Table(title=f"{sum(r.ok for r in results)} passed, "
                        f"{sum(not r.ok for r in results)} failed")
    for column in ("scenario", "result", "steps", "seconds"):
        table.add_column(column)
    for result in results:
        table.add_row(result.name, "pass" if result.ok else "FAIL",
                      f"{sum(s.ok for s in result.steps)}/{len(result.steps)}",
                      f"{result.seconds:.1f}")
    return table
