"""Nothing that goes wrong here leaves the other side up: a local failure after the answer
sends BYE (with a Reason), a bad recording path is refused before any request goes out, and
a media failure mid-call ends the call and the command's exit status says so."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest

from softphone.media.ports import AudioSink, AudioSource, Silence
from softphone.ua.agent import AgentConfig, UserAgent
from softphone.ua.call import Call
from tests.integration.test_cli import SOFTPHONE, Agent, agents, start  # noqa: F401

__all__ = ["agents"]


def test_an_unwritable_recording_is_refused_before_any_request(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        missing = tmp_path / "no" / "such" / "dir" / "x.wav"
        result = subprocess.run([*SOFTPHONE, "call", f"sip:bob@127.0.0.1:{port}",
                                 "--null-audio", "--record", str(missing)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(missing) in lines[0], result.stderr
        with pytest.raises(TimeoutError):
            listener.recvfrom(65536)  # no INVITE was sent


def test_a_disk_full_mid_call_ends_it_with_bye_and_exit_1(agents: list[Agent]) -> None:
    """/dev/full takes the file open, then fails every write: the disk is full."""
    bob = start(agents, "answer", "--listen", "127.0.0.1:0", "--auto-answer", "--max-calls", "1")
    alice = start(agents, "call", f"sip:bob@127.0.0.1:{bob.port}", "--record", "/dev/full",
                  "--duration", "10")
    assert alice.finish() == 1
    ended = alice.events[-1]
    assert ended["event"] == "ended" and ended["by"] == "error"
    assert "No space left on device" in ended["reason"] and "/dev/full" in ended["reason"]
    assert "answered" in alice.names()
    assert bob.finish() == 0
    assert bob.last("ended")["by"] == "remote"


class Breaking:
    """A sink that works for ``frames`` frames and then raises, as a lost device does."""

    def __init__(self, frames: int) -> None:
        self.frames = frames

    def write(self, frame: object, rate: int) -> None:
        self.frames -= 1
        if self.frames < 0:
            raise OSError(5, "Input/output error")

    def close(self) -> None:
        pass


async def _answered_pair(caller_ports: object) -> tuple[UserAgent, UserAgent, Call, Call]:
    callee = UserAgent(AgentConfig(listen_port=0, user="bob", codecs=("pcmu",)))
    caller = UserAgent(AgentConfig(listen_port=0, user="alice", codecs=("pcmu",),
                                   port_factory=caller_ports))  # type: ignore[arg-type]
    await callee.start()
    await caller.start()
    call = await caller.call(f"sip:bob@127.0.0.1:{callee.port}")
    incoming = await asyncio.wait_for(callee.incoming.get(), 5)
    await incoming.answer()
    return caller, callee, call, incoming


async def test_a_sink_that_breaks_mid_call_sends_bye_with_the_reason() -> None:
    def ports(call: Call) -> tuple[AudioSource, AudioSink]:
        return Silence(), Breaking(frames=10)

    caller, callee, call, incoming = await _answered_pair(ports)
    received: list[bytes] = []
    callee.add_tracer(lambda direction, data, peer: received.append(data)
                      if direction == "received" else None)
    try:
        ended = await asyncio.wait_for(asyncio.shield(call.ended), 5)
        assert ended.by == "error" and "Input/output error" in ended.reason
        theirs = await asyncio.wait_for(asyncio.shield(incoming.ended), 5)
        assert theirs.by == "remote"
        bye = next(m for m in received if m.startswith(b"BYE "))
        assert b"Reason: SIP;cause=500" in bye and b"Input/output error" in bye
    finally:
        await caller.close()
        await callee.close()


async def test_media_that_cannot_start_after_the_answer_still_sends_bye() -> None:
    def ports(call: Call) -> tuple[AudioSource, AudioSink]:
        raise OSError(19, "No such device")

    caller, callee, call, incoming = await _answered_pair(ports)
    try:
        ended = await asyncio.wait_for(asyncio.shield(call.ended), 5)
        assert ended.by == "error" and "No such device" in ended.reason
        theirs = await asyncio.wait_for(asyncio.shield(incoming.ended), 5)
        assert theirs.by == "remote"
    finally:
        await caller.close()
        await callee.close()


async def test_closing_sends_every_bye_at_once_and_waits_a_bounded_time() -> None:
    """Three answered calls, then the far end vanishes without a word: closing sends the
    three BYEs together and gives up after close_timeout, not after 3 x 32 s of Timer F."""
    callee = UserAgent(AgentConfig(listen_port=0, user="bob", codecs=("pcmu",), media=False))
    caller = UserAgent(AgentConfig(listen_port=0, user="alice", codecs=("pcmu",), media=False,
                                   close_timeout=1.0))
    await callee.start()
    await caller.start()
    calls = []
    for _ in range(3):
        calls.append(await caller.call(f"sip:bob@127.0.0.1:{callee.port}"))
        incoming = await asyncio.wait_for(callee.incoming.get(), 5)
        await incoming.answer()
    for call in calls:
        assert await asyncio.wait_for(asyncio.shield(call.answered), 5)
    callee.udp.close()  # gone: nothing will answer the BYEs
    byes: list[float] = []
    caller.add_tracer(lambda direction, data, peer: byes.append(loop.time())
                      if data.startswith(b"BYE ") else None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await caller.close()
    took = loop.time() - started
    await callee.close()
    assert len(byes) >= 3 and byes[2] - started < 0.5  # the three first BYEs at once
    assert took < 3.0  # bounded by close_timeout (1 s), not by Timer F (32 s each)
    assert all(call.is_over for call in calls)
