"""RTP packets (RFC 3550 section 5.1) and the modular arithmetic of their counters."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from softphone.sip.errors import ParseError

RTP_HEADER = struct.Struct("!BBHII")  # the fixed header: V/P/X/CC, M/PT, sequence, time, SSRC


class RtpError(ParseError):
    """Bytes that are not an RTP packet."""


def seq_add(a: int, b: int) -> int:
    return (a + b) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """a - b on the 16-bit circle, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_add(a: int, b: int) -> int:
    return (a + b) & 0xFFFFFFFF


def build(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes,
          marker: bool = False) -> bytes:
    """A plain packet (no CSRC, extension or padding) without building an RtpPacket first.
    A media stream packs the same header in its own send path (media/stream.py)."""
    return RTP_HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence, timestamp,
                        ssrc) + payload


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0  # octets of padding to add (or that were removed)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < RTP_HEADER.size:
            raise RtpError("RTP packet shorter than its fixed header")
        first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
        if first == 0x80:  # the common case: no CSRC, extension or padding
            return cls(second & 0x7F, sequence, timestamp, ssrc, data[RTP_HEADER.size :],
                       second > 0x7F)
        if first >> 6 != 2:
            raise RtpError("RTP packet is not version 2")
        pos = RTP_HEADER.size
        csrc_count = first & 0x0F
        if len(data) < pos + 4 * csrc_count:
            raise RtpError("RTP packet has truncated CSRC")
        csrc = struct.unpack_from(f"!{csrc_count}I", data, pos)
        pos += 4 * csrc_count
        profile, extension = None, b""
        if first & 0x10:
            if len(data) < pos + 4:
                raise RtpError("RTP packet has truncated extension header")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise RtpError("RTP packet has truncated extension")
            extension = data[pos : pos + 4 * words]
            pos += 4 * words
        end = len(data)
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or pos + padding > end:
                raise RtpError("RTP packet has invalid padding")
            end -= padding
        return cls(payload_type=second & 0x7F, sequence=sequence, timestamp=timestamp,
                   ssrc=ssrc, payload=data[pos:end], marker=bool(second & 0x80), csrc=csrc,
                   extension_profile=profile, extension=extension, padding=padding)

    def __bytes__(self) -> bytes:
        first = 0x80 | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        parts = [RTP_HEADER.pack(first, second, self.sequence & 0xFFFF,
                              self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF)]
        parts += [struct.pack("!I", c) for c in self.csrc]
        if self.extension_profile is not None:
            if len(self.extension) % 4:
                raise ValueError("RTP header extension must be a whole number of words")
            parts.append(struct.pack("!HH", self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)

    def __repr__(self) -> str:
        return (f"RtpPacket(pt={self.payload_type}, seq={self.sequence}, ts={self.timestamp}, "
                f"ssrc={self.ssrc:#010x}, marker={self.marker}, {len(self.payload)} bytes)")
