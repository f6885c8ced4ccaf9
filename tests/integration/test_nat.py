"""softphone behind a real NAT: three network namespaces (inside, a router that masquerades
with nftables, outside) joined by veth pairs, with Kamailio, a STUN server and baresip
outside. softphone registers through the NAT (learning its public address from the
registrar's rport and from STUN), is called by baresip through Kamailio, and the audio is
compared both ways. The router forgets idle UDP bindings after 3 s: with keep-alives the
call still reaches softphone; without them it is lost, which is why they exist.

Needs root (namespaces, nftables); addresses are 198.18.0.0/15, which exist only here."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from softphone.media.quality import tone_level
from softphone.media.wav import load_wav
from tests.peers import HERE, require, stop, write_tone_wav

pytestmark = pytest.mark.peers

INSIDE, ROUTER_IN, ROUTER_OUT, OUTSIDE = "198.18.1.2", "198.18.1.1", "198.18.2.1", "198.18.2.2"
LOG_SIP: list[str] = []
BINDING_TIMEOUT = 3  # seconds the router keeps an idle UDP binding


@dataclass
class Net:
    inside: str
    router: str
    outside: str

    def run(self, namespace: str, *command: str,
            **options: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", namespace, *command],
                                **options)  # type: ignore[call-overload]


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def natted_network() -> Iterator[Net]:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            raise RuntimeError("the NAT tests need root")
        pytest.skip("the NAT tests need root (network namespaces, nftables)")
    nft = require("nft")
    require("ip")
    tag = f"{os.getpid() % 10000}"
    net = Net(f"sp{tag}in", f"sp{tag}nat", f"sp{tag}out")
    try:
        for namespace in (net.inside, net.router, net.outside):
            sh("ip", "netns", "add", namespace)
            sh("ip", "-n", namespace, "link", "set", "lo", "up")
        sh("ip", "link", "add", f"v{tag}a", "type", "veth", "peer", "name", f"v{tag}b")
        sh("ip", "link", "set", f"v{tag}a", "netns", net.inside)
        sh("ip", "link", "set", f"v{tag}b", "netns", net.router)
        sh("ip", "link", "add", f"v{tag}c", "type", "veth", "peer", "name", f"v{tag}d")
        sh("ip", "link", "set", f"v{tag}c", "netns", net.router)
        sh("ip", "link", "set", f"v{tag}d", "netns", net.outside)
        for namespace, device, address in ((net.inside, "a", INSIDE), (net.router, "b", ROUTER_IN),
                                           (net.router, "c", ROUTER_OUT),
                                           (net.outside, "d", OUTSIDE)):
            sh("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", f"v{tag}{device}")
            sh("ip", "-n", namespace, "link", "set", f"v{tag}{device}", "up")
        sh("ip", "-n", net.inside, "route", "add", "default", "via", ROUTER_IN)
        router = ["ip", "netns", "exec", net.router]
        sh(*router, "sysctl", "-w", "net.ipv4.ip_forward=1")
        sh(*router, nft, "add", "table", "ip", "nat")
        sh(*router, nft, "add chain ip nat post { type nat hook postrouting priority 100 ; }")
        sh(*router, nft, "add", "rule", "ip", "nat", "post", "oifname", f"v{tag}c",
           "masquerade")
        for name in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
            sh(*router, "sysctl", "-w", f"net.netfilter.{name}={BINDING_TIMEOUT}")
        yield net
    finally:
        for namespace in (net.inside, net.router, net.outside):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@contextlib.contextmanager
def outside_services(net: Net, folder: Path) -> Iterator[None]:
    """Kamailio (registrar and proxy) and a STUN server, both on the outside address."""
    kamailio = require("kamailio")
    with (folder / "kamailio.log").open("wb") as log:
        proxy = net.run(net.outside, kamailio, "-DD", "-E", "-f", str(HERE / "kamailio.cfg"),
                        "-A", f"SIP_HOST={OUTSIDE}", "-A", "SIP_PORT=5060", "-Y", str(folder),
                        "-m", "64", "-M", "8", stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL)
        stun = net.run(net.outside, sys.executable, str(HERE / "stun_server.py"), OUTSIDE,
                       "3478", stdout=subprocess.PIPE)
        try:
            assert stun.stdout is not None and stun.stdout.readline().strip() == b"serving"
            deadline = time.monotonic() + 10
            while b"Listening on" not in (folder / "kamailio.log").read_bytes():
                assert time.monotonic() < deadline, "Kamailio did not start"
                time.sleep(0.1)
            time.sleep(0.5)
            yield
        finally:
            stop(stun)
            stun.stdout.close()  # type: ignore[union-attr]
            stop(proxy)


@contextlib.contextmanager
def baresip_calls_bob(net: Net, folder: Path, seconds: int) -> Iterator[subprocess.Popen[bytes]]:
    """baresip outside, as carol through Kamailio, dialling bob at once; it plays a 440 Hz
    tone and dumps what it hears (sndfile), then quits after ``seconds``."""
    binary = require("baresip")
    device = next(line.split(":")[1].split("@")[0].strip() for line in subprocess.run(
        ["ip", "-n", net.outside, "-o", "link"], capture_output=True, text=True,
        check=True).stdout.splitlines() if "veth" in line or "@" in line)
    write_tone_wav(folder / "source.wav")
    (folder / "config").write_text("\n".join([
        "poll_method epoll", f"sip_listen {OUTSIDE}:5070", f"net_interface {device}",
        "rtp_ports 30000-30020", "audio_player aubridge,nil",
        f"audio_source aufile,{folder / 'source.wav'}", "ausrc_srate 8000",
        "ausrc_channels 1", "module_path /usr/lib/baresip/modules", "module g711.so",
        "module aufile.so", "module aubridge.so", "module sndfile.so", f"snd_path {folder}",
        "module_app account.so", "module_app menu.so", ""]))
    (folder / "accounts").write_text(
        f'<sip:carol@{OUTSIDE}>;auth_pass=carolpw;regint=0;audio_codecs=PCMU/8000/1;'
        f'outbound="sip:{OUTSIDE}:5060"\n')
    (folder / "contacts").write_text("")
    with (folder / "baresip.log").open("wb") as log:
        process = net.run(net.outside, binary, "-f", str(folder), "-e",
                          f"/dial sip:bob@{OUTSIDE}", "-t", str(seconds),
                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop(process, timeout=seconds + 10)


def softphone_bob(net: Net, recording: Path, keepalive: float) -> subprocess.Popen[bytes]:
    return net.run(net.inside, sys.executable, "-m", "softphone", *LOG_SIP, "answer",
                   "--listen", f"{INSIDE}:5060", "--registrar", f"sip:{OUTSIDE}:5060",
                   "--user", "bob", "--password", "bobpw", "--auto-answer", "--tone", "600",
                   "--record", str(recording), "--stun", f"{OUTSIDE}:3478",
                   "--keepalive", str(keepalive), "--max-calls", "1", "--json",
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   cwd=str(Path(__file__).resolve().parents[2]))


class Events:
    """The --json lines of a process, read as they come, without blocking."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.seen: list[dict[str, object]] = []
        self._buffer = b""

    def until(self, name: str, timeout: float) -> list[str]:
        """The event names seen so far, once ``name`` is among them or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and name not in self.names():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                *lines, self._buffer = (self._buffer + chunk).split(b"\n")
                self.seen += [json.loads(line) for line in lines if line.strip()]
        return self.names()

    def names(self) -> list[str]:
        return [str(event["event"]) for event in self.seen]


@pytest.mark.parametrize("keepalive", [1.0, 0.0])
def test_behind_a_nat_with_and_without_keepalives(tmp_path: Path, keepalive: float) -> None:
    if shutil.which("baresip") is None and not os.environ.get("CI"):
        pytest.skip("baresip is not installed")
    recording = tmp_path / "heard.wav"
    with natted_network() as net, tempfile.TemporaryDirectory(prefix="nat-") as runtime, \
            outside_services(net, Path(runtime)):
        bob = softphone_bob(net, recording, keepalive)
        events = Events(bob)
        try:
            assert "registered" in events.until("registered", 10)
            contact = [e for e in events.seen if e["event"] == "registered"][-1]["contact"]
            assert f"@{ROUTER_OUT}:" in str(contact)  # the NAT's address, not 198.18.1.2
            time.sleep(BINDING_TIMEOUT + 2.0)  # longer than the router keeps idle bindings
            with baresip_calls_bob(net, tmp_path, seconds=8) as caller:
                names = events.until("ended", 12)
                caller.wait(20)
            if keepalive == 0:
                assert "incoming" not in names  # the binding was gone: the INVITE was lost
                return
            assert "answered" in names and "ended" in names, names
        finally:
            stop(bob)
            for stream in (bob.stdout, bob.stderr):
                if stream is not None:
                    stream.close()
    heard, rate = load_wav(recording)
    assert tone_level(heard[rate // 2: rate * 2], rate, 440) > 0.7  # baresip's tone
    dumps = sorted(tmp_path.glob("dump-*-dec.wav"))
    assert dumps, (tmp_path / "baresip.log").read_text(errors="replace")
    theirs, their_rate = load_wav(dumps[-1])
    assert tone_level(theirs[their_rate // 2: their_rate * 2], their_rate, 600) > 0.7
