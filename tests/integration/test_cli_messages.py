"""Messages, options and outputs users rely on: logging levels, a SIP trace that keeps out of
the --json lines, global options after the command, bounded waits, errors that name what
failed, codecs whose library is missing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_cli import SOFTPHONE, Agent, agents, start  # noqa: F401

__all__ = ["agents"]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOFTPHONE, *args], capture_output=True, text=True, timeout=timeout)


def test_verbosity_is_info_then_debug_on_stderr(agents: list[Agent]) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0")
    target = f"sip:127.0.0.1:{bob.port}"
    quiet, info, debug = run("options", target), run("-v", "options", target), \
        run("-vv", "options", target)
    assert quiet.returncode == info.returncode == debug.returncode == 0
    assert quiet.stderr == ""
    assert " INFO    softphone.agent: listening on udp and tcp" in info.stderr
    assert "DEBUG" not in info.stderr
    assert " DEBUG   softphone.sip: sent to udp:127.0.0.1:" in debug.stderr
    assert "OPTIONS sip:127.0.0.1" in debug.stderr and "SIP/2.0 200 OK" in debug.stderr


def test_global_options_also_work_after_the_command(agents: list[Agent],
                                                    tmp_path: Path) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0")
    trace = tmp_path / "trace.txt"
    result = run("options", f"sip:127.0.0.1:{bob.port}", "-v", "--log-sip", str(trace),
                 "--json")
    assert result.returncode == 0, result.stderr
    assert "INFO" in result.stderr and "OPTIONS sip:127.0.0.1" in trace.read_text()


def test_a_sip_trace_to_dash_never_mixes_with_json_lines(agents: list[Agent]) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--auto-answer", "--max-calls", "1")
    result = run("--log-sip", "-", "call", f"sip:bob@127.0.0.1:{bob.port}", "--null-audio",
                 "--duration", "0.3", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON
    assert [e["event"] for e in events][-1] == "ended"
    assert "INVITE sip:bob@127.0.0.1" in result.stderr and "SIP/2.0 200 OK" in result.stderr


def test_options_and_register_take_a_timeout_against_a_silent_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        options = run("options", f"sip:127.0.0.1:{port}", "--timeout", "0.5", "--json")
        register = run("register", "--registrar", f"sip:127.0.0.1:{port}", "--user", "a",
                       "--password", "b", "--once", "--timeout", "0.5", "--json")
    assert options.returncode == 1
    result = json.loads(options.stdout.splitlines()[-1])
    assert (result["status"], result["reason"]) == (408, "No response within 0.5 s")
    assert register.returncode == 1
    failed = json.loads(register.stdout.splitlines()[-1])
    assert failed["event"] == "registration_failed" and failed["status"] == 408


def test_a_closed_tcp_port_says_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        result = run("options", f"sip:127.0.0.1:{port};transport=tcp", "--transport", "tcp",
                     "--json")
    assert result.returncode == 1
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["status"] == 503 and "Connection refused" in answer["reason"]


@pytest.mark.parametrize("mode", [["--reject", "486"], ["--redirect", "sip:carol@127.0.0.1"]])
def test_rejecting_or_redirecting_needs_no_sound_device(mode: list[str]) -> None:
    """Without --null-audio, on a machine whose PortAudio has no device (this one)."""
    server = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "127.0.0.1:0", *mode,
                               "--max-calls", "1", "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line, server.stderr.read() if server.stderr else ""
        port = json.loads(line)["port"]
        caller = run("call", f"sip:bob@127.0.0.1:{port}", "--null-audio", "--json",
                     "--timeout", "1")
        assert caller.returncode in (0, 1)
        statuses = [json.loads(x).get("status") for x in caller.stdout.splitlines()]
        assert 486 in statuses or any("redirected" in x for x in caller.stdout.splitlines())
        assert server.wait(15) == 0
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()


def test_without_libopus_opus_is_off_with_one_line_and_the_demo_works() -> None:
    hide_opus = ("import sys; sys.modules['opuslib'] = None; "
                 "from softphone.cli.main import main; main(sys.argv[1:])")
    demo = subprocess.run([sys.executable, "-c", hide_opus, "demo", "--seconds", "2"],
                          capture_output=True, text=True, timeout=60)
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr.strip().splitlines() == [
        line for line in demo.stderr.strip().splitlines() if "Opus is off" in line]
    assert len(demo.stderr.strip().splitlines()) == 1
    assert "libopus0" in demo.stderr and "Traceback" not in demo.stderr
    assert "codec G722/8000" in demo.stdout
    only_opus = subprocess.run([sys.executable, "-c", hide_opus, "call", "sip:a@127.0.0.1:9",
                                "--codec", "opus", "--null-audio"],
                               capture_output=True, text=True, timeout=60)
    assert only_opus.returncode == 2
    assert "no codec left to offer (Opus is off" in only_opus.stderr


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_a_port_in_use_is_named_and_exits_2(kind: int) -> None:
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        port = taken.getsockname()[1]
        result = run("answer", "--listen", f"127.0.0.1:{port}", "--null-audio")
    assert result.returncode == 2
    assert result.stderr == f"softphone: error: address 127.0.0.1:{port} already in use\n"


@pytest.mark.parametrize("uri", ["tel:+15551234567", "http://example.com/bob",
                                 "mailto:bob@example.com"])
def test_other_schemes_are_refused_with_the_uri_as_typed(uri: str) -> None:
    result = run("call", uri, "--null-audio")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"'{uri}' is a {uri.split(':')[0]}: URI" in lines[0]


def test_version_names_python_and_the_libraries_found() -> None:
    result = run("--version")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("softphone ")
    names = [line.split(":")[0].strip() for line in lines[1:]]
    assert names == ["Python", "libopus", "PortAudio", "libsndfile", "uvloop", "event loop"]
    assert f"Python: {sys.version.split()[0]}" in result.stdout
    hidden = subprocess.run([sys.executable, "-c", "import sys; sys.modules['opuslib'] = None; "
                             "from softphone.cli.main import main; main(['--version'])"],
                            capture_output=True, text=True, timeout=30)
    assert "libopus: not found (Opus is off; Debian package libopus0)" in hidden.stdout
