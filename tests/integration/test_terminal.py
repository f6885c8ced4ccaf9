"""The live view driven in a real terminal (tmux), one renderer for call, answer and demo:
answer with a, send a digit, hold, hang up with h, quit with q or Ctrl-C; the last frame says
how the call ended and the timer stops with the call."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers import free_port, require

pytestmark = pytest.mark.peers


class Terminal:
    def __init__(self, tmux: str, name: str) -> None:
        self.tmux = tmux
        self.name = name

    def screen(self) -> str:
        return subprocess.run([self.tmux, "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def press(self, key: str) -> None:
        subprocess.run([self.tmux, "send-keys", "-t", self.name, key], check=True)


@contextlib.contextmanager
def in_tmux(arguments: str, tmp_path: Path) -> Iterator[Terminal]:
    """``softphone ARGUMENTS`` in a new 100x40 tmux session; its exit code lands in a file."""
    tmux = require("tmux")
    name = f"softphone-{free_port()}"
    command = (f"{shlex.quote(sys.executable)} -m softphone {arguments} "
               f"2>{tmp_path / 'stderr.txt'}; echo $? > {tmp_path / 'exit.txt'}; sleep 30")
    subprocess.run([tmux, "new-session", "-d", "-s", name, "-x", "100", "-y", "40", command],
                   check=True)
    try:
        yield Terminal(tmux, name)
    finally:
        subprocess.run([tmux, "kill-session", "-t", name], capture_output=True)


def exit_code(tmp_path: Path, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    path = tmp_path / "exit.txt"
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            raise AssertionError("the command did not exit")
        time.sleep(0.1)
    return int(path.read_text())


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[Terminal, int]]:
    port = free_port()
    with in_tmux(f"answer --listen 127.0.0.1:{port} --null-audio --max-calls 1",
                 tmp_path) as screen:
        yield screen, port


def caller(port: int, user: str | None = None) -> subprocess.Popen[str]:
    """``softphone call`` to the terminal's answering softphone, sending a tone."""
    account = ["--user", user] if user else []
    return subprocess.Popen(
        [sys.executable, "-m", "softphone", "call", f"sip:bob@127.0.0.1:{port}", *account,
         "--tone", "440", "--null-audio", "--json"], stdout=subprocess.PIPE, text=True)


@contextlib.contextmanager
def calling(port: int) -> Iterator[subprocess.Popen[str]]:
    """A caller that is killed, and its pipe closed, whatever the test does."""
    process = caller(port)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout is not None and not process.stdout.closed:
            process.communicate()  # reaps it and closes the pipe (unless already read)


def events_when_done(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """The caller's JSON events, once it has exited 0 (within 15 s)."""
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 0
    return [json.loads(line) for line in output.splitlines()]


def test_answer_send_a_digit_and_hang_up_with_keys(terminal: tuple[Terminal, int]) -> None:
    screen, port = terminal
    screen.wait_for("waiting for calls")
    with calling(port) as call:
        screen.wait_for("a answer")  # the keys show from the INVITE on ("incoming call")
        ringing = screen.wait_for("ringing")  # and the state from our 180 on
        assert "sip:softphone@127.0.0.1" in ringing and "a answer" in ringing
        screen.press("a")
        talking = screen.wait_for("talking")
        assert "h hang up" in talking and "MOS" in talking
        screen.wait_for("dBFS")  # the caller's tone moves the speaker meter
        screen.press("5")
        time.sleep(1.0)
        screen.press("h")
        ended = screen.wait_for("ended: 200")
        assert "softphone: ended" in ended and "q quit" in ended
        time.sleep(1.5)
        assert timer_of(screen.screen()) == timer_of(ended)  # it stopped with the call
        events = events_when_done(call)
    names = [e["event"] for e in events]
    assert names[-1] == "ended" and events[-1]["by"] == "remote"
    assert [e["digit"] for e in events if e["event"] == "dtmf"] == ["5"]
    assert "answered" in names


def timer_of(screen: str) -> str:
    found = re.search(r"timer\s+(\d\d:\d\d)", screen)
    assert found is not None, screen
    return found.group(1)


@contextlib.contextmanager
def answering(*extra: str) -> Iterator[int]:
    """A softphone answering on a free port (without a terminal), its port."""
    server = subprocess.Popen([sys.executable, "-m", "softphone", "answer", "--listen",
                               "127.0.0.1:0", "--null-audio", "--json", *extra],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield int(json.loads(server.stdout.readline())["port"])
    finally:
        server.terminate()
        server.communicate(timeout=15)


def test_the_caller_sees_its_digits_holds_and_quits_leaving_the_last_frame(
        tmp_path: Path) -> None:
    with answering("--auto-answer", "--tone", "440") as port, \
            in_tmux(f"call sip:bob@127.0.0.1:{port} --null-audio", tmp_path) as screen:
        screen.wait_for("talking")
        screen.wait_for("dBFS")
        screen.press("5")
        screen.wait_for("DTMF out  5")
        screen.press("p")
        held = screen.wait_for("on hold")
        time.sleep(0.6)
        held = screen.screen()
        assert re.search(r"speaker\s+░+\s+silent", held), held  # nothing arrives on hold
        screen.press("q")
        last = screen.wait_for("softphone: ended")
        assert "hanging up" not in last and "ended: 200" in last
        assert exit_code(tmp_path) == 130


def test_ctrl_c_while_ringing_leaves_the_ended_frame(tmp_path: Path) -> None:
    port = free_port()
    with in_tmux(f"answer --listen 127.0.0.1:{port} --null-audio", tmp_path) as screen:
        screen.wait_for("waiting for calls")
        caller = subprocess.Popen([sys.executable, "-m", "softphone", "call",
                                   f"sip:bob@127.0.0.1:{port}", "--null-audio", "--json"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            screen.wait_for("a answer")
            screen.press("C-c")
            last = screen.wait_for("softphone: ended")
            assert "ringing" not in last.split("softphone: ended")[1].split("╰")[0]
            assert "ended: 603" in last
            assert exit_code(tmp_path) == 130
            assert caller.wait(15) == 1
        finally:
            if caller.poll() is None:
                caller.kill()
            caller.communicate()


def test_demo_shows_the_same_view_then_its_summary(tmp_path: Path) -> None:
    with in_tmux("demo --seconds 2", tmp_path) as screen:
        talking = screen.wait_for("softphone demo: talking")
        for row in ("peer", "timer", "codec", "packets", "MOS", "mic", "speaker"):
            assert re.search(rf"│ {row}\s", talking), row
        assert "h hang up  0-9*# DTMF  m mute  p hold/resume  t transfer  q quit" in talking
        summary = screen.wait_for("summary:")
        assert "softphone demo: ended" in summary and "DTMF out  123" in summary
        assert exit_code(tmp_path) == 0


def test_t_transfers_the_caller_to_the_target_typed(terminal: tuple[Terminal, int]) -> None:
    screen, port = terminal
    screen.wait_for("waiting for calls")
    with answering("--auto-answer", "--duration", "1", "--max-calls", "1") as carol, \
            calling(port) as call:
        screen.wait_for("a answer")
        screen.press("a")
        assert "t transfer" in screen.wait_for("talking")
        screen.press("t")
        screen.wait_for("transfer to (Enter sends")
        for char in f"carol@127.0.0.1:{carol}":
            screen.press(char)
        screen.press("Enter")
        done = screen.wait_for("transfer: 200 OK")
        assert "ended: 200 Remote hangup" in done or "Remote hangup" in screen.wait_for(
            "ended: 200")
        events = events_when_done(call)
    names = [e["event"] for e in events]
    requested = next(e for e in events if e["event"] == "transfer_requested")
    assert requested["target"] == f"sip:carol@127.0.0.1:{carol}"
    assert names.count("answered") == 2 and names.count("ended") == 2
    assert events[-1]["event"] == "ended" and events[-1]["by"] == "remote"  # carol hung up


def holds(output: str) -> list[bool]:
    events = [json.loads(line) for line in output.splitlines()]
    return [e["held"] for e in events if e["event"] == "hold"]


def test_a_second_call_is_answered_beside_the_first_switched_and_joined(
        terminal: tuple[Terminal, int]) -> None:
    screen, port = terminal
    screen.wait_for("waiting for calls")
    alice = caller(port, "alice")
    carol: subprocess.Popen[str] | None = None
    outputs: list[str] = []
    try:
        screen.wait_for("a answer")
        screen.press("a")
        screen.wait_for("talking")
        carol = caller(port, "carol")
        both = screen.wait_for("sip:carol@127.0.0.1")
        assert "a answer" in both and "sip:alice@127.0.0.1" in both
        screen.press("a")  # alice goes on hold, carol is answered
        screen.wait_for("on hold")
        screen.press("Tab")  # back to alice: carol held, alice resumed
        time.sleep(1.0)
        chosen = screen.screen()
        assert "▶ softphone: talking" in chosen and "on hold" in chosen, chosen
        screen.press("j")
        deadline = time.monotonic() + 10
        while screen.screen().count("(conference)") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        joined = screen.screen()
        assert joined.count("(conference)") == 2 and "on hold" not in joined, joined
        screen.press("q")
        screen.wait_for("ended: 200")
    finally:
        for process in (alice, carol):
            if process is not None:
                try:
                    outputs.append(process.communicate(timeout=15)[0])
                except subprocess.TimeoutExpired:
                    process.kill()
                    outputs.append(process.communicate()[0])
    assert holds(outputs[0]) == [True, False]  # held for carol, resumed by Tab
    assert holds(outputs[1]) == [True, False]  # held by Tab, resumed when joined


def test_max_active_turns_away_a_call_beyond_the_lines() -> None:
    with answering("--auto-answer", "--max-active", "1") as port:
        first = caller(port, "alice")
        try:
            time.sleep(1.5)
            second = subprocess.run(
                [sys.executable, "-m", "softphone", "call", f"sip:bob@127.0.0.1:{port}",
                 "--null-audio", "--json"], capture_output=True, text=True, timeout=30)
        finally:
            first.terminate()
            first.communicate(timeout=15)
    ended = json.loads(second.stdout.splitlines()[-1])
    assert second.returncode == 1 and ended["status"] == 486
    assert ended["reason"] == "Busy Here (all lines in use)"
