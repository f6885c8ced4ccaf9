"""The CLI contract, run as a user runs it: separate processes, real sockets, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SOFTPHONE = [sys.executable, "-m", "softphone"]


class Agent:
    """A ``softphone`` process with --json output read line by line."""

    def __init__(self, *args: str) -> None:
        # No sound card here: calls run on null audio (the device path has its own tests).
        audio = ["--null-audio"] if args[0] in ("call", "answer") else []
        self.process = subprocess.Popen([*SOFTPHONE, *args, *audio, "--json"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.events: list[dict[str, Any]] = []

    def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.process.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise AssertionError(f"no event; stderr: {self.stderr()}")
        event: dict[str, Any] = json.loads(line)
        self.events.append(event)
        return event

    def wait_event(self, name: str) -> dict[str, Any]:
        while True:
            event = self.next_event()
            if event["event"] == name:
                return event

    @property
    def port(self) -> int:
        first = self.events[0] if self.events else self.next_event()
        assert first["event"] == "listening"
        return int(first["port"])

    def finish(self, timeout: float = 15.0) -> int:
        code = self.process.wait(timeout)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))
        return code

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def names(self) -> list[str]:
        return [e["event"] for e in self.events]

    def last(self, name: str) -> dict[str, Any]:
        """The last event called ``name`` (answer ends with its summary, after the calls)."""
        return next(e for e in reversed(self.events) if e["event"] == name)


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        if agent.process.poll() is None:
            agent.process.kill()
        agent.process.wait()
        for stream in (agent.process.stdout, agent.process.stderr):
            if stream is not None:
                stream.close()


def start(agents: list[Agent], *args: str) -> Agent:
    agent = Agent(*args)
    agents.append(agent)
    return agent


def test_call_answered_then_hung_up_after_duration(agents: list[Agent]) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--auto-answer", "--max-calls", "1")
    alice = start(agents, "call", f"sip:bob@127.0.0.1:{bob.port}", "--duration", "0.5")
    assert alice.finish() == 0
    assert alice.names() == ["listening", "calling", "ringing", "answered", "ended"]
    ended = alice.events[-1]
    assert (ended["status"], ended["by"]) == (200, "local")
    assert bob.finish() == 0
    assert bob.names() == ["listening", "incoming", "ringing", "answered", "ended", "summary"]
    assert bob.last("ended")["by"] == "remote"
    summary = bob.last("summary")
    assert (summary["received"], summary["answered"]) == (1, 1)
    assert summary["ended_by_status"] == {"200": 1} and summary["packets_received"] > 10


def test_rtp_ports_confine_each_side_to_its_range(agents: list[Agent], tmp_path: Path) -> None:
    trace = tmp_path / "sip.log"
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--auto-answer", "--max-calls",
                "1", "--rtp-ports", "12400-12409")
    alice = start(agents, "--log-sip", str(trace), "call", f"sip:bob@127.0.0.1:{bob.port}",
                  "--duration", "0.3", "--rtp-ports", "12410-12419", "--null-audio")
    assert alice.finish() == 0 and bob.finish() == 0
    media_ports = [int(line.split()[1]) for line in trace.read_text().splitlines()
                   if line.startswith("m=audio ")]
    assert len(media_ports) == 2  # our offer, then their answer
    assert 12410 <= media_ports[0] <= 12418 and 12400 <= media_ports[1] <= 12408
    assert all(port % 2 == 0 for port in media_ports)


def test_rejected_call_exits_1_with_the_status(agents: list[Agent]) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--reject", "486",
                "--max-calls", "1")
    alice = start(agents, "call", f"sip:bob@127.0.0.1:{bob.port}")
    assert alice.finish() == 1
    assert alice.events[-1]["event"] == "ended" and alice.events[-1]["status"] == 486
    assert bob.finish() == 0


def test_redirect_server_is_followed(agents: list[Agent]) -> None:
    carol = start(agents, "answer", "--listen", "127.0.0.1:0", "--auto-answer",
                  "--max-calls", "1")
    redirector = start(agents, "answer", "--listen", "127.0.0.1:0", "--redirect",
                       f"sip:carol@127.0.0.1:{carol.port}", "--max-calls", "1")
    alice = start(agents, "call", f"sip:bob@127.0.0.1:{redirector.port}", "--duration", "0.2")
    assert alice.finish() == 0
    assert "redirected" in alice.names() and "answered" in alice.names()
    assert carol.finish() == 0 and redirector.finish() == 0


def test_ctrl_c_hangs_up_cleanly_and_exits_130(agents: list[Agent]) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--auto-answer", "--max-calls", "1")
    alice = start(agents, "call", f"sip:bob@127.0.0.1:{bob.port}")
    alice.wait_event("answered")
    alice.process.send_signal(signal.SIGINT)
    assert alice.finish() == 130
    assert alice.events[-1]["event"] == "ended"
    assert bob.finish() == 0
    assert bob.last("ended")["by"] == "remote"  # our BYE reached it


def test_unanswered_call_is_cancelled_at_the_timeout(agents: list[Agent]) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--max-calls", "1")
    alice = start(agents, "call", f"sip:bob@127.0.0.1:{bob.port}", "--timeout", "0.5")
    assert alice.finish() == 1
    assert alice.events[-1]["status"] == 487
    assert bob.finish() == 0 and bob.last("ended")["status"] == 487


def test_options_exit_code(agents: list[Agent]) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0")
    alice = start(agents, "options", f"sip:127.0.0.1:{bob.port}")
    assert alice.finish() == 0
    result = alice.events[-1]
    assert result["event"] == "options" and result["status"] == 200
    assert "INVITE" in result["allow"]


@pytest.mark.parametrize("args", [
    ["call", "sip:bad uri"],
    ["call", "sip:a@127.0.0.1", "--listen", "nonsense"],
    ["answer", "--reject", "200"],
    ["call", "sip:a@127.0.0.1", "--password", "x"],
    ["call", "sip:a@127.0.0.1", "--rtp-ports", "30000-20000"],
    ["load", "sip:a@127.0.0.1", "--rtp-ports", "many"],
    ["frobnicate"],
])
def test_usage_errors_are_one_line_and_exit_2(args: list[str]) -> None:
    result = subprocess.run([*SOFTPHONE, *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softphone: error:")


def test_a_call_without_any_sound_device_says_so_and_exits_2(tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "-c", "from softphone.media.device import "
                            "list_devices; print(len(list_devices()))"],
                           capture_output=True, text=True, timeout=30)
    if probe.stdout.strip() != "0":
        pytest.skip("this machine has a sound device")
    result = subprocess.run([*SOFTPHONE, "call", "sip:a@127.0.0.1:9", "--record",
                             str(tmp_path / "r.wav")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("softphone: error: no sound device for the microphone")
    assert len(result.stderr.strip().splitlines()) == 1


def test_demo_runs_a_loopback_call_with_media_and_exits_0() -> None:
    result = subprocess.run([*SOFTPHONE, "demo", "--seconds", "2"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    summary = result.stdout[result.stdout.index("summary:"):]
    assert "answered" in summary and "ended 200" in summary
    received = int(summary.split("received ")[1].split(",")[0])
    assert received > 50  # 1.5 s of 20 ms frames came back from the echo
    assert "MOS estimate: 4." in summary  # a clean loopback call
    assert "DTMF round trip (123 there and back): " in summary and " ms" in summary


def test_profile_supplies_the_account_and_the_command_line_overrides_it(
        agents: list[Agent], tmp_path: Path) -> None:
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--auto-answer", "--max-calls", "1")
    config = tmp_path / "config.toml"
    config.write_text(f'default_profile = "me"\n[profiles.me]\nuser = "carol"\n'
                      f'domain = "127.0.0.1"\noutbound_proxy = "sip:127.0.0.1:{bob.port}"\n'
                      'codecs = ["pcma"]\n')
    trace = tmp_path / "trace.txt"
    result = subprocess.run(
        [*SOFTPHONE, "--config", str(config), "--log-sip", str(trace), "call", "bob",
         "--null-audio", "--duration", "0.3", "--json"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    answered = next(json.loads(line) for line in result.stdout.splitlines()
                    if '"answered"' in line)
    assert answered["codec"] == "PCMA/8000"  # the profile's codecs
    log = trace.read_text()
    assert "sent to udp:127.0.0.1:" in log and "INVITE sip:bob@127.0.0.1 SIP/2.0" in log
    assert "From: <sip:carol@127.0.0.1" in log  # the profile's user
    assert "received from udp:127.0.0.1:" in log and "SIP/2.0 200 OK" in log
    assert bob.finish() == 0


def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.me]\ntransprt = "udp"\n')
    result = subprocess.run([*SOFTPHONE, "--config", str(config), "--profile", "me", "devices"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'transport'?" in lines[0]


def test_bare_command_prints_help_and_every_command_has_examples() -> None:
    bare = subprocess.run(SOFTPHONE, capture_output=True, text=True, timeout=30)
    assert bare.returncode == 0 and "Commands:" in bare.stdout and "demo" in bare.stdout
    for command in ("call", "answer", "register", "options", "demo", "devices"):
        helped = subprocess.run([*SOFTPHONE, command, "--help"], capture_output=True,
                                text=True, timeout=30)
        assert helped.returncode == 0 and "Example" in helped.stdout, command


def recording_call(agents: list[Agent], recording: Path) -> subprocess.Popen[str]:
    """A caller recording Bob's 500 Hz tone into ``recording``, once it is answered."""
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--auto-answer", "--max-calls", "1",
                "--tone", "500")
    alice = subprocess.Popen(
        [*SOFTPHONE, "call", f"sip:bob@127.0.0.1:{bob.port}", "--record", str(recording),
         "--null-audio", "--json"], stdout=subprocess.PIPE, text=True)
    assert alice.stdout is not None
    while '"answered"' not in alice.stdout.readline():
        pass
    return alice


def test_ctrl_c_leaves_a_valid_recording(agents: list[Agent], tmp_path: Path) -> None:
    import wave

    recording = tmp_path / "heard.wav"
    alice = recording_call(agents, recording)
    time.sleep(1.0)
    alice.send_signal(signal.SIGINT)
    assert alice.wait(15) == 130
    assert alice.stdout is not None
    alice.stdout.close()
    with wave.open(str(recording), "rb") as heard:
        assert heard.getframerate() > 0 and heard.getnframes() > 4000  # about a second
    assert agents[-1].finish() == 0


def test_a_recording_survives_sigkill_with_at_most_a_second_lost(
        agents: list[Agent], tmp_path: Path) -> None:
    import wave

    recording = tmp_path / "heard.wav"
    alice = recording_call(agents, recording)
    answered = time.monotonic()
    time.sleep(2.5)
    alice.kill()
    talked = time.monotonic() - answered
    alice.wait(15)
    assert alice.stdout is not None
    alice.stdout.close()
    with wave.open(str(recording), "rb") as heard:
        seconds = heard.getnframes() / heard.getframerate()
    assert talked - 1.0 <= seconds <= talked
