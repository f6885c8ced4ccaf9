"""SDP session descriptions: parsed into fields, serialised back, unknown lines kept."""

from __future__ import annotations

from dataclasses import dataclass, field

from softphone.sip.errors import ParseError
from softphone.sip.grammar import decimal

MAX_PAYLOAD_TYPE = 127  # RTP's payload type field has seven bits (RFC 3550 5.1)
# The static payload types (RFC 3551 6) an offer may list without an a=rtpmap
STATIC_TYPES = {"0": ("PCMU", 8000, 1), "8": ("PCMA", 8000, 1), "9": ("G722", 8000, 1),
                "3": ("GSM", 8000, 1), "18": ("G729", 8000, 1)}


def payload_type(text: str) -> int | None:
    """An RTP payload type from an m= format or rtpmap, or None when it cannot be one."""
    number = decimal(text)
    return number if number is not None and number <= MAX_PAYLOAD_TYPE else None


class SdpError(ParseError):
    """A body that is not a usable SDP description: an INVITE carrying one is answered 488
    Not Acceptable Here (RFC 3261 21.4.26), whether it did not parse or offered nothing
    usable, so the caller learns its offer was the problem."""

    def __init__(self, reason: str, status: int = 488) -> None:
        super().__init__(reason, status)


@dataclass
class Media:
    """One m= section."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None  # c= address of this section, when it has its own
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other_lines: list[str] = field(default_factory=list)  # i=, b=, k= kept as they came

    def attribute(self, name: str) -> str | None:
        return next((v for k, v in self.attributes if k == name), None)

    def attribute_values(self, name: str) -> list[str]:
        return [v for k, v in self.attributes if k == name and v is not None]

    @property
    def direction(self) -> str:
        for name, _ in self.attributes:
            if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                return name
        return "sendrecv"

    def rtpmap(self) -> dict[str, tuple[str, int, int]]:
        """Payload type -> (encoding, clock rate, channels), static types included."""
        result = {pt: STATIC_TYPES[pt] for pt in self.formats if pt in STATIC_TYPES}
        for value in self.attribute_values("rtpmap"):
            pt, _, spec = value.partition(" ")
            parts = spec.split("/")
            clock_rate = decimal(parts[1]) if len(parts) >= 2 else None
            if payload_type(pt) is not None and clock_rate:
                channels = decimal(parts[2]) if len(parts) > 2 else 1
                result[pt] = (parts[0], clock_rate, channels or 1)
        return result

    def rtcp_port(self) -> int | None:
        """Where the peer takes RTCP: its a=rtcp port (RFC 3605), else the RTP port plus one,
        else nowhere (an RTP port of 65535 leaves no port above it)."""
        announced = decimal((self.attribute("rtcp") or "").split(" ")[0])
        if announced is not None and 0 < announced <= 65535:
            return announced
        return self.port + 1 if self.port < 65535 else None

    def fmtp(self, pt: str) -> str | None:
        for value in self.attribute_values("fmtp"):
            fmt, _, params = value.partition(" ")
            if fmt == pt:
                return params
        return None


@dataclass
class SessionDescription:
    origin_user: str
    session_id: int
    session_version: int
    origin_address: str
    name: str = "-"
    connection: str | None = None
    media: list[Media] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other_lines: list[str] = field(default_factory=list)

    def connection_for(self, media: Media) -> str | None:
        return media.connection or self.connection

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpError("SDP is not UTF-8") from exc
        lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
        if not lines or lines[0] != "v=0":
            raise SdpError("SDP must start with v=0")
        session: SessionDescription | None = None
        current: Media | None = None
        for line in lines[1:]:
            kind, equals, value = line.partition("=")
            if not equals or len(kind) != 1:
                raise SdpError(f"Bad SDP line {line[:40]!r}")
            if kind == "o":
                session = _origin(value)
            elif session is None:
                raise SdpError("SDP o= line missing or late")
            elif kind == "m":
                current = _media(value)
                session.media.append(current)
            elif kind == "c":
                address = _connection(value)
                if current is None:
                    session.connection = address
                else:
                    current.connection = address
            elif kind == "a":
                name, _, attr = value.partition(":")
                target = current.attributes if current else session.attributes
                target.append((name, attr if ":" in value else None))
            elif kind == "s" and current is None:
                session.name = value
            elif kind != "t":
                (current.other_lines if current else session.other_lines).append(line)
        if session is None:
            raise SdpError("SDP without o= line")
        return session

    def __bytes__(self) -> bytes:
        family = "IP6" if ":" in self.origin_address else "IP4"
        lines = ["v=0", f"o={self.origin_user} {self.session_id} {self.session_version} IN "
                 f"{family} {self.origin_address}", f"s={self.name or '-'}"]
        lines += self.other_lines
        if self.connection:
            lines.append(_c_line(self.connection))
        lines.append("t=0 0")
        lines += [_a_line(a) for a in self.attributes]
        for media in self.media:
            lines.append(f"m={media.kind} {media.port} {media.proto} {' '.join(media.formats)}")
            lines += media.other_lines
            if media.connection:
                lines.append(_c_line(media.connection))
            lines += [_a_line(a) for a in media.attributes]
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _origin(value: str) -> SessionDescription:
    parts = value.split()
    session_id, version = (decimal(p) for p in parts[1:3]) if len(parts) == 6 else (None, None)
    if session_id is None or version is None:
        raise SdpError(f"Bad SDP origin {value[:60]!r}")
    return SessionDescription(origin_user=parts[0], session_id=session_id,
                              session_version=version, origin_address=parts[5])


def _media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"Bad SDP media line {value[:60]!r}")
    port = decimal(parts[1].split("/")[0])
    if port is None or port > 65535:
        raise SdpError(f"Bad SDP media port {parts[1][:20]!r}")
    return Media(kind=parts[0], port=port, proto=parts[2], formats=parts[3:])


def _connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"Bad SDP connection {value[:60]!r}")
    return parts[2].split("/")[0]


def _c_line(address: str) -> str:
    return f"c=IN {'IP6' if ':' in address else 'IP4'} {address}"


def _a_line(attribute: tuple[str, str | None]) -> str:
    name, value = attribute
    return f"a={name}" if value is None else f"a={name}:{value}"
