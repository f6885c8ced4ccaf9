"""The live view driven in a real terminal (tmux): answer with a, send a digit, hang up with h."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[Terminal, int]]:
    tmux = require("tmux")
    port = free_port()
    name = f"softphone-{port}"
    command = (f"{shlex.quote(sys.executable)} -m softphone answer --listen 127.0.0.1:{port} "
               f"--null-audio --max-calls 1 2>{tmp_path / 'stderr.txt'}; sleep 30")
    subprocess.run([tmux, "new-session", "-d", "-s", name, "-x", "100", "-y", "40", command],
                   check=True)
    try:
        yield Terminal(tmux, name), port
    finally:
        subprocess.run([tmux, "kill-session", "-t", name], capture_output=True)


def test_answer_send_a_digit_and_hang_up_with_keys(terminal: tuple[Terminal, int]) -> None:
    screen, port = terminal
    screen.wait_for("waiting for calls")
    caller = subprocess.Popen(
        [sys.executable, "-m", "softphone", "call", f"sip:bob@127.0.0.1:{port}", "--tone",
         "440", "--null-audio", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        ringing = screen.wait_for("a answer")
        assert "sip:softphone@127.0.0.1" in ringing and "ringing" in ringing
        screen.press("a")
        talking = screen.wait_for("talking")
        assert "h hang up" in talking and "MOS" in talking
        screen.wait_for("dBFS")  # the caller's tone moves the speaker meter
        screen.press("5")
        time.sleep(1.0)
        screen.press("h")
        ended = screen.wait_for("ended: 200")
        assert "softphone: ended" in ended
        assert caller.wait(15) == 0
        assert caller.stdout is not None
        events = [json.loads(line) for line in caller.stdout]
    finally:
        if caller.poll() is None:
            caller.kill()
        caller.wait()
        if caller.stdout is not None:
            caller.stdout.close()
    names = [e["event"] for e in events]
    assert names[-1] == "ended" and events[-1]["by"] == "remote"
    assert [e["digit"] for e in events if e["event"] == "dtmf"] == ["5"]
    assert "answered" in names
