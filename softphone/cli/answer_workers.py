"""``softphone answer --workers N``: one SIP port served by N processes (issue 14).

Every worker is the same ``answer`` command line, run again with ``--workers 1``, the shared
``--listen`` port (SO_REUSEPORT: the kernel spreads UDP sources and TCP connections over the
workers, so a dialog's requests keep reaching the process that holds it) and a slice of the
RTP port range of its own. The workers write their lines to the parent's own output, each
write(2) whole lines (``WholeLines``), so nothing passes through the parent while calls run;
each hands its summary over a pipe of its own (``--summary-fd``), and the parent prints them
merged when all have stopped. Ctrl-C stops every worker (each hangs up its calls); a worker
that fails is named with its exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import select
import signal
import socket
import sys

from softphone.cli.answer_summary import AnswerSummary, summary_of
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
            "--rtp-ports", f"{rtp_ports[0]}-{rtp_ports[1]}", "--reuse-port"]


async def serve(commands: list[list[str]], stop: asyncio.Event, close_timeout: float,
                as_json: bool) -> int:
    """Run the workers until they all end, or until ``stop``; print their merged summary;
    the exit code."""
    sys.stdout.flush()  # what the parent wrote comes before the workers' lines
    workers, summary_pipes = [], []
    for command in commands:
        read_end, write_end = os.pipe()
        try:
            workers.append(await asyncio.create_subprocess_exec(
                *command, "--summary-fd", str(write_end), pass_fds=(write_end,)))
        finally:
            os.close(write_end)  # the worker's copy is the only one: its exit is the EOF
        summary_pipes.append(read_end)
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
    summaries = [summary for summary in map(_read_summary, summary_pipes) if summary is not None]
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


def _read_summary(read_end: int) -> AnswerSummary | None:
    """What a worker handed over its summary pipe (None: it ended before writing one).
    Read once it has exited: the write end closed, the read finds everything, then EOF."""
    with open(read_end, "rb") as pipe:
        return summary_of(pipe.read().decode("utf-8", "replace"))


def hand_over_summary(summary: AnswerSummary, fd: int) -> None:
    """A worker's last act: its tally, as JSON, to the parent's pipe."""
    with open(fd, "w", encoding="utf-8") as pipe:
        pipe.write(summary.to_json_line())


class WholeLines(io.TextIOBase):
    """A worker's standard output, shared with the other workers and the parent: every
    write(2) is whole lines, at most PIPE_BUF bytes of them (a longer line goes alone), which
    the kernel never interleaves with another process's writes, on a pipe as in a file or
    on a terminal. So the workers write straight to where the output goes: before, the
    parent read every line from a pipe per worker and wrote it again, a tenth of the CPU a
    call costs, while the workers and the load generator shared the same cores.

    What is written is held until ``flush`` (the event printer flushes once per turn of
    the event loop). It is not a terminal, whatever the output is: workers draw no live
    view and no colours, as with their output piped to the parent before."""

    encoding = "utf-8"

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._held: list[str] = []

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def write(self, text: str) -> int:
        self._held.append(text)
        return len(text)

    def flush(self) -> None:
        data, self._held = "".join(self._held).encode("utf-8", "replace"), []
        while data:
            cut = data.rfind(b"\n", 0, select.PIPE_BUF) + 1 or data.find(b"\n") + 1 or \
                len(data)
            self._write_all(data[:cut])
            data = data[cut:]

    def _write_all(self, chunk: bytes) -> None:
        while chunk:
            chunk = chunk[os.write(self._fd, chunk):]
