"""What a failed scenario leaves behind for whoever debugs it, in one directory per scenario:

- ``ladder.txt``: every SIP message in full, in order, with its time, leg and addresses;
- ``sip.pcap``: the same messages as a capture Wireshark and tshark read (its VoIP calls and
  flow views draw the ladder), written with dpkt; each message is one UDP datagram between
  the addresses it travelled, also the ones that went over TCP or TLS (no handshake or
  segments to invent, and the SIP dissector reads them the same);
- ``<leg>-<n>.wav``: each call of each leg recorded both ways (stereo: left what the leg
  sent, right what it heard), as the scenario ran.

A scenario that passes leaves nothing: its directory is removed.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import dpkt

from softphone.sip.transaction import Peer

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SipRecord:
    """One SIP message as it crossed a leg's socket."""

    at: float  # seconds since the scenario started
    leg: str
    direction: str  # sent or received
    local: tuple[str, int]
    peer: Peer
    data: bytes


class Artifacts:
    """The directory of one scenario's run: recordings go in as it runs, the SIP records are
    kept in memory and written out only if the scenario fails."""

    def __init__(self, root: Path, scenario_file: str) -> None:
        """``root/<scenario file's stem>``: one directory per scenario file."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", scenario_file).strip("-") or "scenario"
        self.directory = root / slug
        if self.directory.exists():
            shutil.rmtree(self.directory)  # a previous run's leftovers would mislead
        self.directory.mkdir(parents=True)
        self.records: list[SipRecord] = []

    def note(self, record: SipRecord) -> None:
        self.records.append(record)

    def keep(self) -> list[str]:
        """Write the ladder and the capture; every file of the run, recordings included."""
        ladder, capture = self.directory / "ladder.txt", self.directory / "sip.pcap"
        records = _once(self.records)
        ladder.write_text("".join(_ladder_entry(r) for r in records), encoding="utf-8")
        with capture.open("wb") as out:
            writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB)
            for record in records:
                writer.writepkt(_frame(record), ts=record.at)
        return sorted(str(path.resolve()) for path in self.directory.iterdir())

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _once(records: list[SipRecord]) -> list[SipRecord]:
    """Each message once: one leg sending to another is seen by both, and a capture on the
    wire would hold it once (the sender's record stays)."""
    sent = {(r.local, (r.peer.host, r.peer.port), r.data) for r in records
            if r.direction == "sent"}
    return [r for r in records if r.direction == "sent"
            or ((r.peer.host, r.peer.port), r.local, r.data) not in sent]


def _ladder_entry(record: SipRecord) -> str:
    here = f"{record.local[0]}:{record.local[1]}"
    there = f"{record.peer.host}:{record.peer.port}"
    arrow = f"{here} -> {there}" if record.direction == "sent" else f"{here} <- {there}"
    text = record.data.decode("utf-8", "replace").replace("\r\n", "\n")
    return f"=== {record.at:8.3f} {record.leg} {arrow} ({record.peer.transport})\n{text}\n"


def _frame(record: SipRecord) -> bytes:
    """The message as an Ethernet frame: IPv4 or IPv6, UDP, the SIP bytes."""
    local, remote = (_address(record.local[0]), record.local[1]), \
        (_address(record.peer.host), record.peer.port)
    (source, sport), (destination, dport) = (local, remote) if record.direction == "sent" \
        else (remote, local)
    datagram = dpkt.udp.UDP(sport=sport, dport=dport, data=record.data)
    datagram.ulen = len(datagram)
    if source.version == 6 or destination.version == 6:
        packet: dpkt.Packet = dpkt.ip6.IP6(src=_v6(source).packed, dst=_v6(destination).packed,
                                           nxt=dpkt.ip.IP_PROTO_UDP, hlim=64, data=datagram,
                                           plen=len(datagram))
        kind = dpkt.ethernet.ETH_TYPE_IP6
    else:
        packet = dpkt.ip.IP(src=source.packed, dst=destination.packed, p=dpkt.ip.IP_PROTO_UDP,
                            ttl=64, data=datagram)
        packet.len = len(packet)
        kind = dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.ethernet.Ethernet(type=kind, data=packet))


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address to write: a host name or a wildcard stands for loopback."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return ipaddress.IPv4Address(LOOPBACK)
    return address if not address.is_unspecified else ipaddress.ip_address(
        "::1" if address.version == 6 else LOOPBACK)


def _v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    return address if isinstance(address, ipaddress.IPv6Address) else \
        ipaddress.IPv6Address(f"::ffff:{address}")
