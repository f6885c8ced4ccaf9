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
from typing import Any

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


def stop(process: subprocess.Popen[Any], timeout: float = 5.0) -> None:
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

    def __init__(self, port: int, log: Path, tls_port: int | None = None) -> None:
        self.port = port
        self.log = log
        self.tls_port = tls_port

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    @property
    def tls_uri(self) -> str:
        return f"sips:127.0.0.1:{self.tls_port}"


TLS_CFG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = {certificate}
private_key = {certificate}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


@contextlib.contextmanager
def kamailio(tls_certificate: Path | None = None) -> Iterator[Kamailio]:
    """Kamailio on free loopback ports; with ``tls_certificate`` (key and certificate in one
    PEM file) it takes TLS too, on another free port."""
    binary = require("kamailio")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kamailio-") as runtime:
        log = Path(runtime) / "kamailio.log"
        arguments = ["-A", f"SIP_PORT={port}"]
        tls_port = None
        if tls_certificate is not None:
            tls_port = free_port()
            config = Path(runtime) / "tls.cfg"
            config.write_text(TLS_CFG.format(certificate=tls_certificate))
            arguments += ["-A", "WITH_TLS", "-A", f"TLS_PORT={tls_port}",
                          "-A", f'TLS_CFG="{config}"']
        with log.open("wb") as output:
            process = subprocess.Popen(
                [binary, "-DD", "-E", "-f", str(HERE / "kamailio.cfg"), *arguments,
                 "-Y", runtime, "-m", "64", "-M", "8"],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                wait_for_sip(port)
                yield Kamailio(port, log, tls_port)
            finally:
                stop(process)


@contextlib.contextmanager
def kamailio_presence() -> Iterator[Kamailio]:
    """Kamailio as a presence server for message-summary (presence + presence_mwi over
    db_text tables in a scratch copy of tests/peers/presence-db)."""
    binary = require("kamailio")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kamailio-presence-") as runtime:
        database = Path(runtime) / "db"
        shutil.copytree(HERE / "presence-db", database)
        log = Path(runtime) / "kamailio.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [binary, "-DD", "-E", "-f", str(HERE / "kamailio-presence.cfg"),
                 "-A", f"SIP_PORT={port}", "-A", f'DB_URL="text://{database}"',
                 "-A", f'SERVER_ADDRESS="sip:127.0.0.1:{port}"',
                 "-Y", runtime, "-m", "64", "-M", "8"],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                wait_for_sip(port)
                yield Kamailio(port, log)
            finally:
                stop(process)


LINPHONE_RC = """[sip]
auto_net_state_mon=0
sip_port={port}
sip_tcp_port=0
sip_tls_port=0
guess_hostname=0
100rel_support_level={rel100}
incoming_calls_early_media={early_media}
[rtp]
audio_rtp_port={rtp_port}
[sound]
echocancellation=0
"""


class Linphone:
    """linphonec (Debian linphone-cli, liblinphone 5.1) driven through its stdin commands
    (``answer``, ``call URI``, ``terminate``)."""

    def __init__(self, process: subprocess.Popen[str], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def uri(self) -> str:
        return f"sip:linphone@127.0.0.1:{self.port}"

    def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()


@contextlib.contextmanager
def linphone(rel100: int = 2, early_media: bool = False) -> Iterator[Linphone]:
    """``rel100``: its 100rel_support_level (0 none, 1 optional, 2 mandatory: its 18x are
    reliable and its INVITEs require 100rel). ``early_media``: it answers calls with a 183
    carrying SDP before the user answers. It needs a HOME of its own (its database) and
    network monitoring off (no route to the outside here), or it binds nothing."""
    binary = require("linphonec")
    port, rtp_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="linphone-") as folder:
        home = Path(folder)
        (home / ".local" / "share" / "linphone").mkdir(parents=True)
        rc = home / "linphonerc"
        rc.write_text(LINPHONE_RC.format(port=port, rtp_port=rtp_port, rel100=rel100,
                                         early_media=int(early_media)))
        log = home / "linphonec.log"
        with log.open("w") as output:
            process = subprocess.Popen([binary, "-c", str(rc), "-d", "0"],
                                       stdin=subprocess.PIPE, stdout=output,
                                       stderr=subprocess.STDOUT, text=True,
                                       env={**os.environ, "HOME": str(home)})
            try:
                wait_for_sip(port)
                yield Linphone(process, port, log)
            finally:
                if process.stdin is not None:
                    with contextlib.suppress(OSError):
                        process.stdin.close()
                stop(process)


class Baresip:
    """baresip 1.0 as a foreign user agent, headless (aufile in, aubridge out), driven through
    its ctrl_tcp module (netstring-framed JSON commands)."""

    def __init__(self, port: int, control_port: int, directory: Path) -> None:
        self.port = port
        self.control_port = control_port
        self.directory = directory

    @property
    def uri(self) -> str:
        return f"sip:bob@127.0.0.1:{self.port}"

    def command(self, command: str, params: str = "") -> dict[str, object]:
        """Send one command; the answer is the netstring marked ``response`` (events that
        ctrl_tcp interleaves on the same connection are skipped)."""
        import json

        payload = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as sock:
            sock.sendall(b"%d:%s," % (len(payload), payload))
            buffer = b""
            while True:
                length, colon, rest = buffer.partition(b":")
                if colon and len(rest) > int(length):
                    message: dict[str, object] = json.loads(rest[: int(length)])
                    buffer = rest[int(length) + 1 :]
                    if message.get("response"):
                        return message
                    continue
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError(f"baresip closed the control connection on {command}")
                buffer += chunk

    def log(self) -> str:
        return (self.directory / "baresip.log").read_text(errors="replace")


def write_tone_wav(path: Path, seconds: float = 3.0, rate: int = 8000, hz: float = 440.0) -> None:
    import math
    import struct
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
            for i in range(int(rate * seconds))))


@contextlib.contextmanager
def baresip(answermode: str = "auto", codecs: str = "PCMU/8000/1",
            dump_audio: bool = False, config: tuple[str, ...] = (),
            mediaenc: str | None = None, account: str = "",
            contacts: tuple[str, ...] = (), source_seconds: float = 3.0) -> Iterator[Baresip]:
    """``dump_audio``: the sndfile module writes dump-*-dec.wav (what baresip received) and
    dump-*-enc.wav (what it sent) into the instance's folder. ``config``: more lines for its
    config file (``opus_bitrate 12000`` ...). ``mediaenc``: its srtp module's media
    encryption for the account (srtp: best effort, srtp-mand: RTP/SAVP). ``account``: more
    parameters for the account line (``;auth_user=alice;auth_pass=pw``). ``contacts``: lines
    of its contacts file (``"Alice" <sip:alice@127.0.0.1:5060>``; module_app contact.so
    loads it, for its contact_next and message commands). ``source_seconds``: the length of
    the tone it plays (it hangs up when the file ends)."""
    binary = require("baresip")
    port, control_port, rtp_base = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="baresip-") as folder:
        directory = Path(folder)
        write_tone_wav(directory / "source.wav", seconds=source_seconds)
        (directory / "config").write_text("\n".join([
            "poll_method epoll", f"sip_listen 127.0.0.1:{port}", "net_interface 127.0.0.1",
            f"rtp_ports {rtp_base}-{rtp_base + 20}", "audio_player aubridge,nil",
            f"audio_source aufile,{directory / 'source.wav'}", "ausrc_srate 8000",
            "ausrc_channels 1", "module_path /usr/lib/baresip/modules", "module g711.so",
            "module g722.so", "module opus.so", "module aufile.so", "module aubridge.so",
            "module_app account.so",
            "module_app menu.so", "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen 127.0.0.1:{control_port}",
            *(["module sndfile.so", f"snd_path {directory}"] if dump_audio else []),
            *(["module srtp.so"] if mediaenc else []),
            *config, ""]))
        encryption = f";mediaenc={mediaenc}" if mediaenc else ""
        (directory / "accounts").write_text(
            f"<sip:bob@127.0.0.1:{port}>;regint=0;answermode={answermode};"
            f"audio_codecs={codecs}{encryption}{account}\n")
        (directory / "contacts").write_text("".join(f"{line}\n" for line in contacts))
        with (directory / "baresip.log").open("wb") as output:
            process = subprocess.Popen([binary, "-f", str(directory)], stdin=subprocess.DEVNULL,
                                       stdout=output, stderr=subprocess.STDOUT)
            try:
                wait_for_sip(port)
                yield Baresip(port, control_port, directory)
            finally:
                stop(process)


class Capture:
    """A tshark capture on the loopback interface, read back with tshark's dissectors."""

    def __init__(self, path: Path, tshark: str) -> None:
        self.path = path
        self.tshark = tshark

    def fields(self, display_filter: str, *fields: str) -> list[list[str]]:
        args = [self.tshark, "-r", str(self.path), "-o", "rtp.heuristic_rtp:TRUE",
                "-o", "rtcp.heuristic_rtcp:TRUE", "-Y", display_filter, "-T", "fields"]
        for field_name in fields:
            args += ["-e", field_name]
        output = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return [line.split("\t") for line in output.splitlines()]

    def count(self, display_filter: str) -> int:
        return len(self.fields(display_filter, "frame.number"))


@contextlib.contextmanager
def tshark_capture(ports: list[int], folder: Path,
                   capture_filter: str | None = None) -> Iterator[Capture]:
    """Capture UDP on ``ports`` (or whatever ``capture_filter`` says) over lo until the block
    ends; the file stays in ``folder``. RTP and RTCP are decoded as such (tshark needs telling
    for RTP on arbitrary ports)."""
    binary = require("tshark")
    path = folder / "capture.pcapng"
    port_filter = capture_filter or " or ".join(f"udp port {p}" for p in ports)
    process = subprocess.Popen([binary, "-i", "lo", "-f", port_filter, "-w", str(path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:  # wait until it really captures
        if "Capturing on" in line:
            break
    else:
        raise RuntimeError("tshark did not start capturing")
    time.sleep(1.0)  # "Capturing on" comes a little before the capture really runs
    try:
        yield Capture(path, binary)
    finally:
        time.sleep(0.5)  # let the last packets reach the file
        stop(process)
        process.stderr.close()


def loop_speaker_into_microphone(env: dict[str, str]) -> None:
    """Join a private PulseAudio's speaker to its microphone, 20 ms apart (a speakerphone in
    a room, or a headset held to itself): what the card plays comes back in."""
    subprocess.run(["pactl", "load-module", "module-loopback", "source=speaker.monitor",
                    "sink=mic", "latency_msec=20"], env=env, check=True, capture_output=True,
                   timeout=30)


@contextlib.contextmanager
def pulseaudio(folder: Path) -> Iterator[dict[str, str]]:
    """A private PulseAudio with two null sinks: ``speaker`` (the default sink; record what
    was played from ``speaker.monitor``) and ``mic`` (its monitor is the default source; play
    into ``mic`` to feed the microphone). Yields the environment its clients need."""
    binary = require("pulseaudio")
    runtime, home = folder / "run", folder / "home"
    runtime.mkdir()
    home.mkdir()
    socket_path = runtime / "native"
    script = folder / "default.pa"
    script.write_text("\n".join([
        f"load-module module-native-protocol-unix auth-anonymous=1 socket={socket_path}",
        "load-module module-null-sink sink_name=speaker",
        "load-module module-null-sink sink_name=mic",
        "set-default-sink speaker", "set-default-source mic.monitor", ""]))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(home),
           "PULSE_SERVER": f"unix:{socket_path}"}
    with (folder / "pulseaudio.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("PulseAudio did not start: " +
                                       (folder / "pulseaudio.log").read_text())
                time.sleep(0.1)
            yield env
        finally:
            stop(process)
