"""Real foreign peers for integration tests, started with our own configs and stopped after.

Each runs on 127.0.0.1 only, on ports picked free at start. When a peer's binary is missing the
test is skipped with the reason, except under CI (CI=true), where a missing peer is an error:
scripts/setup --test installs them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def require(binary: str) -> str:
    path = shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/usr/bin") / binary) if p.exists()),
        None)
    if path is None:
        if os.environ.get("CI"):
            raise RuntimeError(f"{binary} is not installed; scripts/setup --test installs it")
        pytest.skip(f"{binary} is not installed (scripts/setup --test installs it)")
    return path


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def wait_for_sip(port: int, timeout: float = 10.0) -> None:
    """Until something on ``port`` answers an OPTIONS over UDP."""
    probe = (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKprobe{n};rport\r\n"
             "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\n"
             f"To: <sip:127.0.0.1:{port}>\r\nCall-ID: probe{{n}}@127.0.0.1\r\n"
             "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.3)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            sock.sendto(probe.replace("{n}", str(n)).encode(), ("127.0.0.1", port))
            with contextlib.suppress(TimeoutError):
                if sock.recv(65535).startswith(b"SIP/2.0"):
                    return
    raise RuntimeError(f"nothing answers SIP on 127.0.0.1:{port}")


def stop(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Kamailio:
    """Kamailio as registrar and record-routing proxy (tests/peers/kamailio.cfg)."""

    USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port}"


@contextlib.contextmanager
def kamailio() -> Iterator[Kamailio]:
    binary = require("kamailio")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kamailio-") as runtime:
        log = Path(runtime) / "kamailio.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [binary, "-DD", "-E", "-f", str(HERE / "kamailio.cfg"), "-A", f"SIP_PORT={port}",
                 "-Y", runtime, "-m", "64", "-M", "8"],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                wait_for_sip(port)
                yield Kamailio(port, log)
            finally:
                stop(process)
