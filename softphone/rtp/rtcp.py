"""RTCP (RFC 3550 section 6), sans-IO: sender and receiver reports, SDES CNAME and BYE, parsed
from and serialised to compound packets."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from softphone.sip.errors import ParseError

SR, RR, SDES, BYE = 200, 201, 202, 203
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970
_REPORT_BLOCK = struct.Struct("!IB3sIIII")


class RtcpError(ParseError):
    """Bytes that are not an RTCP compound packet."""


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP fixed point: seconds since 1900 in the high word."""
    return int((unix_time + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits, as LSR carries them."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # loss since the last report, in 1/256
    cumulative_lost: int
    highest_sequence: int  # extended: cycles << 16 | max seq
    jitter: int  # timestamp units
    last_sr: int = 0  # middle 32 bits of the last SR's NTP time
    delay_since_last_sr: int = 0  # in 1/65536 s

    def __bytes__(self) -> bytes:
        lost = max(-(1 << 23), min((1 << 23) - 1, self.cumulative_lost)) & 0xFFFFFF
        return _REPORT_BLOCK.pack(self.ssrc, self.fraction_lost, lost.to_bytes(3, "big"),
                                  self.highest_sequence, self.jitter, self.last_sr,
                                  self.delay_since_last_sr)

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = int.from_bytes(lost, "big")
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc, fraction, cumulative, highest, jitter, lsr, dlsr)


@dataclass(frozen=True)
class SenderReport:
    ssrc: int
    ntp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(frozen=True)
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(frozen=True)
class SourceDescription:
    ssrc: int
    cname: str


@dataclass(frozen=True)
class Goodbye:
    sources: list[int]
    reason: str | None = None


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye


def _header(count: int, packet_type: int, body: bytes) -> bytes:
    padded = body + bytes(-len(body) % 4)
    return struct.pack("!BBH", 0x80 | count, packet_type, len(padded) // 4) + padded


def serialise(packets: list[RtcpPacket]) -> bytes:
    out = []
    for packet in packets:
        if isinstance(packet, SenderReport):
            body = struct.pack("!IQIII", packet.ssrc, packet.ntp, packet.rtp_timestamp,
                               packet.packet_count, packet.octet_count)
            body += b"".join(bytes(r) for r in packet.reports)
            out.append(_header(len(packet.reports), SR, body))
        elif isinstance(packet, ReceiverReport):
            body = struct.pack("!I", packet.ssrc) + b"".join(bytes(r) for r in packet.reports)
            out.append(_header(len(packet.reports), RR, body))
        elif isinstance(packet, SourceDescription):
            cname = packet.cname.encode("utf-8")[:255]
            body = struct.pack("!IBB", packet.ssrc, 1, len(cname)) + cname + b"\0"
            out.append(_header(1, SDES, body))
        else:
            body = b"".join(struct.pack("!I", s) for s in packet.sources)
            if packet.reason:
                reason = packet.reason.encode("utf-8")[:255]
                body += bytes([len(reason)]) + reason
            out.append(_header(len(packet.sources), BYE, body))
    return b"".join(out)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """The packets we understand; others (APP, XR, feedback) are skipped by their length."""
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise RtcpError("RTCP packet shorter than its header")
        first, packet_type, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != 2:
            raise RtcpError("RTCP packet is not version 2")
        end = offset + 4 + 4 * words
        if end > len(data):
            raise RtcpError("RTCP packet longer than the datagram")
        body = data[offset + 4 : end]
        parsed = _parse_one(first & 0x1F, packet_type, body)
        if parsed is not None:
            packets.append(parsed)
        offset = end
    if not packets:
        raise RtcpError("RTCP datagram without a known packet")
    return packets


def _parse_one(count: int, packet_type: int, body: bytes) -> RtcpPacket | None:
    try:
        if packet_type == SR:
            ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
            return SenderReport(ssrc, ntp, rtp_ts, packets, octets, _blocks(body, 24, count))
        if packet_type == RR:
            return ReceiverReport(struct.unpack_from("!I", body)[0], _blocks(body, 4, count))
        if packet_type == SDES:
            return _first_cname(body)
        if packet_type == BYE:
            sources = list(struct.unpack_from(f"!{count}I", body))
            reason = None
            if len(body) > 4 * count:
                length = body[4 * count]
                reason = body[4 * count + 1 : 4 * count + 1 + length].decode("utf-8", "replace")
            return Goodbye(sources, reason)
    except struct.error as error:
        raise RtcpError(f"Truncated RTCP packet type {packet_type}") from error
    return None


def _blocks(body: bytes, offset: int, count: int) -> list[ReportBlock]:
    return [ReportBlock.parse(body, offset + i * _REPORT_BLOCK.size) for i in range(count)]


def _first_cname(body: bytes) -> SourceDescription | None:
    ssrc = struct.unpack_from("!I", body)[0]
    position = 4
    while position + 2 <= len(body) and body[position] != 0:
        kind, length = body[position], body[position + 1]
        if kind == 1:
            return SourceDescription(ssrc, body[position + 2 : position + 2 + length].decode(
                "utf-8", "replace"))
        position += 2 + length
    return None
