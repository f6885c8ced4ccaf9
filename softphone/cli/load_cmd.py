"""``softphone load URI``: many calls with media from one process, and what became of them."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from softphone.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RTP_PORTS_OPTION,
    account_options,
    build_agent,
    cli_context,
    dial_target,
    network_options,
    run,
    sip_uri,
    srtp_options,
    unheard_call_options,
    unheard_caller_config,
    until_stopped,
)
from softphone.scenario.load import CallRow, LoadPlan, LoadProgress, LoadSummary, run_load
from softphone.scenario.workers import Workers, merge, split_plan, split_ports, worker_count

log = logging.getLogger("softphone.load")


@click.command("load")
@click.argument("uri")
@click.option("--calls", type=click.IntRange(1), default=100, show_default=True,
              help="How many calls to place.")
@click.option("--rate", type=click.FloatRange(0.1), default=10.0, show_default=True,
              metavar="CPS", help="New calls per second.")
@click.option("--concurrency", type=click.IntRange(1), default=50, show_default=True,
              help="Most calls up at once.")
@click.option("--duration", type=click.FloatRange(0), default=5.0, show_default=True,
              metavar="SECONDS", help="How long each answered call is held.")
@unheard_call_options
@click.option("--workers", default="1", show_default=True, metavar="N|auto",
              help="Processes sharing the load (auto: one per core); one merged summary.")
@account_options
@RTP_PORTS_OPTION
@click.option("--csv", "csv_path", metavar="FILE|-", help="Write one row per call as CSV.")
@network_options
@srtp_options
@click.option("--json", "json_path", metavar="FILE|-",
              help="Write one JSON object per call, then the summary.")
@click.option("--voice-timing", is_flag=True,
              help="Time who speaks when on every call (first words, response to --play, "
                   "talk-over, dead air: row columns); decodes all audio received.")
def load_command(uri: str, calls: int, rate: float, concurrency: int, duration: float,
                 play: str | None, codecs: str | None, no_media: bool, workers: str,
                 listen: str | None,
                 transport: str | None, user: str | None, password: str | None,
                 proxy: str | None, rtp_ports: str | None, csv_path: str | None,
                 json_path: str | None, voice_timing: bool, **network: Any) -> None:
    """Place many calls to URI and report set-up latency, failures and RTP quality.
    Exits 0 when every call was answered, 1 otherwise.

    \b
    Examples:
      softphone answer --auto-answer --null-audio --listen 127.0.0.1:5062 &
      softphone load sip:bob@127.0.0.1:5062 --calls 200 --rate 50 --concurrency 100
      softphone load sip:ivr@127.0.0.1:5062 --play prompt.wav --duration 10 --csv calls.csv
      softphone load sip:bob@127.0.0.1:5062 --calls 5000 --rate 500 --no-media --workers auto
      softphone load sip:bob@pbx.example.com --proxy sip:pbx.example.com --user alice \
          --password secret --calls 1000 --rate 100 --concurrency 300
    """
    profile = cli_context().profile.overridden(
        user=user, password=password, outbound_proxy=proxy, listen=listen, transport=transport,
        **network)
    target = sip_uri(dial_target(uri, profile))
    config = unheard_caller_config(profile, target, codecs, rtp_ports, play, no_media,
                                   max_unanswered_calls=10 * concurrency,
                                   voice_timing=voice_timing)
    plan = LoadPlan(str(target), calls, rate, concurrency, duration)
    try:
        shares = split_plan(plan, worker_count(workers))
        port_slices = split_ports(*config.rtp_ports, len(shares))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--workers") from None
    warning = plan.rate_warning()
    if warning is not None:
        log.warning("%s", warning)
    console = Console(stderr=json_path == "-" or csv_path == "-")

    async def main(stop: asyncio.Event) -> int:
        agent = build_agent(config, as_json=False, printer=False)
        async with agent:
            with progress_bar(console, "load", calls) as show:
                outcome = await until_stopped(run_load(agent, plan, show), stop)
        if outcome is None:
            return EXIT_INTERRUPTED
        return report(*outcome)

    def report(rows: list[CallRow], summary: LoadSummary, crashed: bool = False) -> int:
        _write_rows(rows, summary, csv_path, json_path)
        console.print(_summary_table(summary))
        ok = summary.answered == summary.attempted == calls and not crashed
        return EXIT_OK if ok else EXIT_FAILED

    async def main_workers(stop: asyncio.Event) -> int:
        """Each share in a process of its own, on its own SIP port and RTP slice."""
        configs = [replace(config, listen_port=0, rtp_ports=ports) for ports in port_slices]
        pool = Workers(configs, shares)
        pool.start()
        with progress_bar(console, f"load x{len(shares)}", calls) as show:
            done = await until_stopped(pool.gather(show), stop)
            if done is None:
                await pool.stop(config.close_timeout + 2)
                return EXIT_INTERRUPTED
        for line in pool.crashed():
            log.error("%s", line)
        rows, summary = merge(list(pool.collected.values()), len(shares), config.media)
        return report(rows, summary, crashed=bool(pool.crashed()))

    raise SystemExit(run(main if len(shares) == 1 else main_workers))


@contextlib.contextmanager
def progress_bar(console: Console, label: str,
                 calls: int) -> Iterator[Callable[[LoadProgress], None]]:
    """The load's progress bar; yields what to call with each progress report."""
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[counters]}"), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("calls", total=calls, counters="")

        def show(progress: LoadProgress) -> None:
            bar.update(task, completed=progress.finished, counters=(
                f"active {progress.active}  answered {progress.answered}  "
                f"failed {progress.failed}"))

        yield show


def _write_rows(rows: list[CallRow], summary: LoadSummary, csv_path: str | None,
                json_path: str | None) -> None:
    if csv_path is not None:
        out = sys.stdout if csv_path == "-" else open(csv_path, "w", newline="")  # noqa: SIM115
        writer = csv.DictWriter(out, fieldnames=list(rows[0].to_json()) if rows else ["index"])
        writer.writeheader()
        for row in rows:
            writer.writerow(row.to_json())
        if out is not sys.stdout:
            out.close()
    if json_path is not None:
        out = sys.stdout if json_path == "-" else open(json_path, "w")  # noqa: SIM115
        for row in rows:
            out.write(json.dumps({"event": "call", **row.to_json()}) + "\n")
        out.write(json.dumps({"event": "summary", **summary.to_json()}) + "\n")
        if out is not sys.stdout:
            out.close()


def _summary_table(summary: LoadSummary) -> Table:
    table = Table(title="load result", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    failed = ", ".join(f"{status}: {count}" for status, count in
                       sorted(summary.failed_by_status.items())) or "none"
    table.add_row("attempted", str(summary.attempted))
    table.add_row("answered", str(summary.answered))
    table.add_row("failed", failed)
    for reason, count in summary.failure_reasons.items():
        table.add_row("", f"{count} x {reason}")
    table.add_row("set-up p50/p95/p99",
                  " / ".join(f"{v:.1f} ms" if v is not None else "-" for v in (
                      summary.setup_ms_p50, summary.setup_ms_p95, summary.setup_ms_p99)))
    if summary.media:
        table.add_row("RTP loss", f"{summary.loss_fraction:.2%}")
        table.add_row("jitter (mean)", f"{summary.jitter_ms_mean:.1f} ms")
        if summary.mos_mean is not None:
            table.add_row("MOS (mean, E-model)", f"{summary.mos_mean:.2f}")
    else:
        table.add_row("RTP", "no media (--no-media: signalling only)")
    table.add_row("rate", f"{summary.start_rate:.1f} calls/s placed, "
                  f"{summary.calls_per_second:.1f} calls/s completed over {summary.seconds} s")
    return table
