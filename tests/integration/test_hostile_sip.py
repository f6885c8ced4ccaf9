"""Hostile or unusual SIP from outside reaches no traceback: the answering process replies
with the status that names the defect and keeps serving."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.test_cli import SOFTPHONE


@pytest.fixture
def answering() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    process = subprocess.Popen([*SOFTPHONE, "answer", "--listen", "127.0.0.1:0",
                                "--auto-answer", "--null-audio", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(json.loads(process.stdout.readline())["port"])
    yield port, process
    process.terminate()
    process.communicate(timeout=15)


def exchange(port: int, message: str, branch: str) -> str:
    """Send one request over UDP; the first final response's status line."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        own = sock.getsockname()[1]
        data = message.replace("{own}", str(own)).replace("{branch}", branch)
        sock.sendto(data.encode(), ("127.0.0.1", port))
        while True:
            reply = sock.recv(65536).decode()
            status_line = reply.split("\r\n", 1)[0]
            if not status_line.startswith("SIP/2.0 1"):
                return status_line


INVITE_WITHOUT_CONTACT = (
    "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{own};branch=z9hG4bK{branch};rport\r\n"
    "Max-Forwards: 70\r\nFrom: <sip:eve@127.0.0.1>;tag=e1\r\nTo: <sip:bob@127.0.0.1>\r\n"
    "Call-ID: {branch}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")


def test_an_invite_without_contact_gets_400_naming_it(
        answering: tuple[int, subprocess.Popen[str]]) -> None:
    port, process = answering
    assert exchange(port, INVITE_WITHOUT_CONTACT, "nocontact1") == \
        "SIP/2.0 400 Missing Contact"
    bad = INVITE_WITHOUT_CONTACT.replace("Content-Length", "Contact: <mailto:eve@x>\r\n"
                                         "Content-Length")
    assert exchange(port, bad, "badcontact1") == "SIP/2.0 400 Contact must be one SIP URI"
    options = ("OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:{own};branch=z9hG4bK{branch};rport\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:eve@127.0.0.1>;tag=e1\r\n"
               "To: <sip:bob@127.0.0.1>\r\nCall-ID: {branch}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n")
    assert exchange(port, options, "stillthere1") == "SIP/2.0 200 OK"
    process.terminate()
    _, stderr = process.communicate(timeout=15)
    assert "Traceback" not in stderr and "exception" not in stderr.lower()


def request_lines(method: str, headers: str, via_extra: str = ";rport") -> str:
    return (f"{method} sip:bob@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{{own}};branch=z9hG4bK{{branch}}{via_extra}\r\n"
            f"Max-Forwards: 70\r\n{headers}Content-Length: 0\r\n\r\n")


@pytest.mark.parametrize("method", ["OPTIONS", "INVITE", "BYE"])
def test_a_request_without_to_gets_400(answering: tuple[int, subprocess.Popen[str]],
                                       method: str) -> None:
    port, _ = answering
    headers = f"From: <sip:eve@127.0.0.1>;tag=e1\r\nCall-ID: {{branch}}\r\nCSeq: 1 {method}\r\n"
    assert exchange(port, request_lines(method, headers), f"noto{method}") == \
        "SIP/2.0 400 Missing To header"


def test_an_invite_from_a_tel_uri_is_answered(
        answering: tuple[int, subprocess.Popen[str]]) -> None:
    port, process = answering
    headers = ("From: <tel:+15551234567>;tag=t1\r\nTo: <sip:bob@127.0.0.1>\r\n"
               "Call-ID: {branch}\r\nCSeq: 1 INVITE\r\nContact: <sip:eve@127.0.0.1:{own}>\r\n")
    assert exchange(port, request_lines("INVITE", headers), "telfrom1") == "SIP/2.0 200 OK"
    assert process.stdout is not None
    incoming = next(json.loads(line) for line in process.stdout if '"incoming"' in line)
    assert incoming["caller"] == "<tel:+15551234567>;tag=t1"


def test_a_via_maddr_is_not_followed(answering: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = answering
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as third_party:
        third_party.bind(("127.0.0.9", 0))
        third_party.settimeout(1.0)
        aimed = ";rport;maddr=127.0.0.9"  # Via 127.0.0.9:its port: where maddr would aim
        headers = ("From: <sip:eve@127.0.0.1>;tag=e1\r\nTo: <sip:bob@127.0.0.1>\r\n"
                   "Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n")
        message = request_lines("OPTIONS", headers, aimed).replace(
            "127.0.0.1:{own};", f"127.0.0.9:{third_party.getsockname()[1]};", 1)
        assert exchange(port, message, "maddr1") == "SIP/2.0 200 OK"  # to where it came from
        with pytest.raises(TimeoutError):
            third_party.recv(65536)
