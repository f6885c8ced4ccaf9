"""``softphone answer`` defends itself, through real sockets: callers prove a password
(baresip and our own ``call`` answer the challenge; a wrong password never rings), a flood
from one address gets 503 while another address is served (from a network namespace, since
loopback is spared), and auto-answering on a public address without --auth warns."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_cli import SOFTPHONE
from tests.integration.test_nat import INSIDE, OUTSIDE, Events, natted_network
from tests.peers import baresip

pytestmark = pytest.mark.peers

ROOT = str(Path(__file__).resolve().parents[2])


def answering(*options: str) -> tuple[subprocess.Popen[bytes], Events, int]:
    process = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "127.0.0.1:0",
                                "--auto-answer", "--null-audio", "--json", *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    events = Events(process)
    assert "listening" in events.until("listening", 15)
    port = int(str(events.seen[0]["port"]))
    return process, events, port


def finish(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    _, stderr = process.communicate(timeout=15)
    text = stderr.decode()
    assert "Traceback" not in text
    return text


@pytest.mark.parametrize("password", ["wonderland", "guess"])
def test_baresip_answers_our_challenge(password: str) -> None:
    """(baresip 1.0's libre gives up on a challenge list holding SHA-256, which it does
    not know, instead of skipping it: MD5 alone, as --auth-algorithm allows.)"""
    process, events, port = answering("--auth", "alice:wonderland", "--auth-algorithm",
                                      "md5", "--max-calls", "1")
    try:
        with baresip(account=f";auth_user=alice;auth_pass={password}") as peer:
            assert peer.command("dial", f"sip:bob@127.0.0.1:{port}").get("ok") is True
            if password == "wonderland":
                assert "answered" in events.until("answered", 10)
                time.sleep(1.0)
                peer.command("hangup")
                assert "ended" in events.until("ended", 10)
            else:
                assert "incoming" not in events.until("incoming", 4)
                time.sleep(0.5)
                assert "401 Unauthorized" in peer.log()
    finally:
        finish(process)


def test_our_call_command_answers_the_challenge_and_without_a_password_fails() -> None:
    process, events, port = answering("--auth", "alice:wonderland", "--auth", "carol:x")
    try:
        target = f"sip:bob@127.0.0.1:{port}"
        common = ["--null-audio", "--duration", "0.5", "--json"]
        done = subprocess.run([*SOFTPHONE, "call", target, "--user", "alice", "--password",
                               "wonderland", *common], capture_output=True, text=True,
                              timeout=30, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        refused = subprocess.run([*SOFTPHONE, "call", target, "--user", "alice", *common],
                                 capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert refused.returncode == 1
        ended = [json.loads(line) for line in refused.stdout.splitlines()
                 if '"ended"' in line][-1]
        assert ended["status"] == 401
        assert events.until("never", 1.0).count("incoming") == 1  # only the authorized one
    finally:
        finish(process)


def test_auto_answer_on_a_public_address_without_auth_warns() -> None:
    warned = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "0.0.0.0:0", "--auto-answer",
                               "--null-audio", "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=ROOT)
    Events(warned).until("listening", 15)
    assert "--auto-answer on 0.0.0.0 answers anyone" in finish(warned)
    quiet = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "0.0.0.0:0", "--auto-answer",
                              "--auth", "alice:wonderland", "--null-audio", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    Events(quiet).until("listening", 15)
    assert "warning" not in finish(quiet)
    process, _, _ = answering()  # on loopback: nobody else reaches it, no warning
    assert "warning" not in finish(process)


def test_a_bad_auth_or_trust_argument_is_one_line_and_exit_2() -> None:
    for option in (["--auth", "alice"], ["--trust", "not-a-network"]):
        done = subprocess.run([*SOFTPHONE, "answer", *option], capture_output=True, text=True,
                              timeout=30, cwd=ROOT)
        assert done.returncode == 2
        assert option[0] in done.stderr and "Traceback" not in done.stderr


FLOOD = """
import socket, sys
target = (sys.argv[1], int(sys.argv[2]))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 0))
own = sock.getsockname()[1]


def read(wait):
    sock.settimeout(wait)
    try:
        while True:
            reply = sock.recv(65536).decode()
            retry = "retry-after" if "Retry-After: 5" in reply else ""
            print(reply.split("\\r\\n", 1)[0][8:11], retry, flush=True)
    except (TimeoutError, BlockingIOError):
        pass


for n in range(300):
    sock.sendto((f"OPTIONS sip:bob@{target[0]} SIP/2.0\\r\\n"
                 f"Via: SIP/2.0/UDP {sys.argv[3]}:{own};branch=z9hG4bKflood{n};rport\\r\\n"
                 f"Max-Forwards: 70\\r\\nFrom: <sip:m@x>;tag=f{n}\\r\\nTo: <sip:bob@x>\\r\\n"
                 f"Call-ID: flood{n}\\r\\nCSeq: 1 OPTIONS\\r\\nContent-Length: 0\\r\\n\\r\\n"
                 ).encode(), target)
    if n % 10 == 9:
        read(0.01)  # (a flood, yet within what the sockets' buffers hold)
read(2.0)
"""


def test_a_flood_from_one_address_gets_503_while_another_is_served() -> None:
    with natted_network() as net:
        answer = net.run(net.outside, *SOFTPHONE, "answer", "--listen", f"{OUTSIDE}:5080",
                         "--auto-answer", "--null-audio", "--json", "--max-request-rate", "20",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        try:
            assert "listening" in Events(answer).until("listening", 15)
            flood = net.run(net.inside, sys.executable, "-c", FLOOD, OUTSIDE, "5080", INSIDE,
                            stdout=subprocess.PIPE, text=True)
            served = net.run(net.outside, *SOFTPHONE, "options", f"sip:bob@{OUTSIDE}:5080",
                             "--listen", f"{OUTSIDE}:0", "--json", stdout=subprocess.DEVNULL,
                             cwd=ROOT)
            out, _ = flood.communicate(timeout=30)
            answers = [line.split() for line in out.splitlines()]
            assert len(answers) == 300  # every request answered once, none retransmitted
            ok = [a for a in answers if a[0] == "200"]
            busy = [a for a in answers if a[0] == "503"]
            assert 40 <= len(ok) <= 100  # the burst (2 x rate), then 20 a second
            assert len(busy) == 300 - len(ok) and all(a[1:] == ["retry-after"] for a in busy)
            assert served.wait(timeout=30) == 0  # the other address: its OPTIONS answered
        finally:
            finish(answer)
