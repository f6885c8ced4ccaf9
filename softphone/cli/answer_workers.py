"""``softphone answer --workers N``: one SIP port served by N processes (issue 14).

Every worker is the same ``answer`` command line, run again with ``--workers 1``, the shared
``--listen`` port (SO_REUSEPORT: the kernel spreads UDP sources and TCP connections over the
workers, so a dialog's requests keep reaching the process that holds it) and a slice of the
RTP port range of its own. Their output lines are passed through as they come, except their
summaries (``--summary-json``), which are merged into one printed when all have stopped;
Ctrl-C stops every worker (each hangs up its calls); a worker that fails is named with its
exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys

from softphone.cli.answer_summary import SUMMARY_START, AnswerSummary, summary_of
from softphone.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, until_stopped

log_prefix = "softphone: answer worker"


def shared_port(host: str, port: int) -> int:
    """The port the workers share: ``port``, or a free one (free for UDP and TCP both)
    when it is 0."""
    if port:
        return port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            candidate = int(udp.getsockname()[1])
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, candidate))
                except OSError:
                    continue
        return candidate
    raise OSError(f"no port free for both UDP and TCP on {host}")


def worker_command(arguments: list[str], host: str, port: int,
                   rtp_ports: tuple[int, int]) -> list[str]:
    """This process's command line for one worker (later options override earlier ones)."""
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return [sys.executable, "-m", "softphone", *arguments, "--workers", "1", "--listen", listen,
            "--rtp-ports", f"{rtp_ports[0]}-{rtp_ports[1]}", "--reuse-port", "--summary-json"]


async def serve(commands: list[list[str]], stop: asyncio.Event, close_timeout: float,
                as_json: bool) -> int:
    """Run the workers until they all end, or until ``stop``; print their merged summary;
    the exit code."""
    workers = [await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
               for command in commands]
    summaries: list[AnswerSummary] = []
    relays = []
    for worker in workers:
        assert worker.stdout is not None  # piped above
        relays.append(asyncio.ensure_future(_relay(worker.stdout, summaries)))
    ended = asyncio.ensure_future(asyncio.gather(*(w.wait() for w in workers)))
    interrupted = await until_stopped(asyncio.shield(ended), stop) is None
    if interrupted:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ended), close_timeout + 2)
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
        await ended
    await asyncio.gather(*relays)
    merged = AnswerSummary()
    for summary in summaries:
        merged = merged.merged(summary)
    if summaries:
        merged.print(as_json)
    if interrupted:
        return EXIT_INTERRUPTED
    failed = [(index, w.returncode) for index, w in enumerate(workers) if w.returncode]
    for index, code in failed:
        print(f"{log_prefix} {index} ended with exit code {code}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


async def _relay(output: asyncio.StreamReader, summaries: list[AnswerSummary]) -> None:
    """Pass a worker's output on as it comes, keeping back its summary: whole lines in the
    chunks they arrive in, one write for many (a busy worker prints thousands of event lines
    a second, and a write and a parse per line cost the parent a tenth of what the worker
    spends on its calls)."""
    pending = b""
    while chunk := await output.read(RELAY_CHUNK):
        whole, cut, pending = (pending + chunk).rpartition(b"\n")
        if cut:
            _pass_on(whole + cut, summaries)
    if pending:  # a last line without its line end
        _pass_on(pending, summaries)


RELAY_CHUNK = 1 << 16


def _pass_on(lines: bytes, summaries: list[AnswerSummary]) -> None:
    text = lines.decode("utf-8", "replace")
    if SUMMARY_START in text:
        kept = []
        for line in text.splitlines(keepends=True):
            summary = summary_of(line) if line.startswith(SUMMARY_START) else None
            if summary is None:
                kept.append(line)
            else:
                summaries.append(summary)
        text = "".join(kept)
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()
