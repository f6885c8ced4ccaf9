"""``softphone test FILE...``: run scenario files; exit 0 when none failed, 1 when any did
(the summary counts them), 2 for a usage error, 130 for Ctrl-C (after writing the reports)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from softphone.bundled import find_example
from softphone.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, run, until_stopped
from softphone.scenario.model import Scenario, ScenarioError, load_scenario, scenario_schema
from softphone.scenario.report import summary_counts, write_json, write_junit
from softphone.scenario.runner import ScenarioResult, run_scenario


@click.command("test")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--junit", "junit_path", metavar="FILE", help="Write JUnit XML here.")
@click.option("--report", "report_path", metavar="FILE.json",
              help="Write a JSON report: steps with timings, SIP trace, RTP figures.")
@click.option("--artifacts", "artifacts_path", metavar="DIR",
              help="Keep what a failed scenario leaves here: SIP ladder, sip.pcap, each "
                   "call's two-way WAV (default with --junit: FILE-artifacts beside it).")
@click.option("--example", "example_names", metavar="NAME", multiple=True,
              help="Run a scenario that comes with softphone (see softphone examples).")
@click.option("--schema", "print_schema", is_flag=True,
              help="Print the scenario format as JSON Schema and exit.")
def test_command(files: tuple[str, ...], junit_path: str | None,
                 report_path: str | None, artifacts_path: str | None,
                 example_names: tuple[str, ...], print_schema: bool) -> None:
    """Run call-test scenario files (TOML). Exit code 0 when every scenario passed (or was
    skipped for an unset environment variable), 1 when any failed, 130 after Ctrl-C.

    \b
    Examples:
      softphone test my_scenarios/*.toml
      softphone test --example busy --example basic_call
      softphone test ivr.toml --junit results.xml --report results.json
      softphone test ivr.toml --artifacts failures/
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
    artifacts = Path(artifacts_path) if artifacts_path else \
        _beside(Path(junit_path)) if junit_path else None

    async def main(stop: asyncio.Event) -> int:
        results: list[ScenarioResult] = []
        finished = await until_stopped(_run_all(scenarios, console, results, artifacts), stop)
        if finished is None:  # Ctrl-C: what ran, what was cut short, what never ran
            results += _not_run(scenarios[len(results):])
        console.print(_summary(results))
        if junit_path:
            write_junit(results, Path(junit_path))
        if report_path:
            write_json(results, Path(report_path))
        if finished is None:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if any(not r.ok for r in results) else EXIT_OK

    raise SystemExit(run(main))


MARKS = {"passed": "[green]PASS[/green]", "failed": "[red]FAIL[/red]",
         "error": "[red]ERROR[/red]", "skipped": "[yellow]SKIP[/yellow]"}


def _beside(junit: Path) -> Path:
    """Where a JUnit file's attachments go by default: ``results.xml`` ->
    ``results-artifacts/`` in the same directory."""
    return junit.with_name(f"{junit.stem}-artifacts")


async def _run_all(scenarios: list[Scenario], console: Console,
                   results: list[ScenarioResult], artifacts: Path | None) -> bool:
    for scenario in scenarios:
        with console.status(f"running {scenario.name} ..."):
            result = await run_scenario(scenario, artifacts)
        console.print(f"{MARKS[result.outcome]} {scenario.name} ({result.seconds:.1f} s)"
                      + (f": {result.error}" if result.error else "")
                      + (f" (calls: {result.diagnosis})" if result.diagnosis else ""))
        if result.attachments:
            console.print(f"  kept: {Path(result.attachments[0]).parent}", highlight=False)
        results.append(result)
    return True


def _not_run(scenarios: list[Scenario]) -> list[ScenarioResult]:
    """The interrupted scenario (an error) and those that never started (skipped)."""
    cut: list[ScenarioResult] = []
    for index, scenario in enumerate(scenarios):
        result = ScenarioResult(scenario.name, str(scenario.path))
        if index == 0:
            result.end("error", "interrupted (Ctrl-C)")
        else:
            result.end("skipped", "not run: interrupted (Ctrl-C)")
        cut.append(result)
    return cut


def _summary(results: list[ScenarioResult]) -> Table:
    counts = summary_counts(results)
    table = Table(title=", ".join(f"{count} {outcome}" for outcome, count in counts.items()
                                  if count or outcome in ("passed", "failed")))
    for column in ("scenario", "result", "steps", "seconds"):
        table.add_column(column)
    for result in results:
        table.add_row(result.name, result.outcome,
                      f"{sum(s.ok for s in result.steps)}/{len(result.steps)}",
                      f"{result.seconds:.1f}")
    return table
