"""Typed events the engine emits (the sans-IO core and the asyncio shell alike). The CLI's
live view, its JSON lines, the scenario runner and the tests all consume these and nothing
else; ``to_json`` is the ``--json`` line format, whose ``"event"`` names are a contract
scripts rely on."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar


def utc_timestamp(when: float | None = None) -> str:
    """ISO 8601 in UTC with milliseconds (``2026-12-02T19:30:05.123Z``), as --json events
    and scenario reports carry it: what ``datetime`` would write (its microsecond rounding,
    then milliseconds cut, not rounded), with the whole second formatted once per second,
    since an answering agent under load stamps thousands of events a second."""
    fraction, whole = math.modf(time.time() if when is None else when)
    micros = round(fraction * 1e6)
    if micros < 0:  # before 1970: datetime counts the fraction up from the second below
        whole, micros = whole - 1, micros + 1_000_000
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return f"{_second(int(whole))}.{micros // 1000:03d}Z"


@lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class Event:
    """Base of all engine events. ``name`` is the JSON ``event`` value; ``at`` is when the
    event happened (seconds since the epoch; ``timestamp`` in its JSON, as ISO 8601 UTC).
    ``at`` takes no part in comparisons."""

    name: ClassVar[str] = "event"
    at: float = field(default_factory=time.time, kw_only=True, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": self.name, "timestamp": utc_timestamp(self.at)}
        for name in _json_fields(type(self)):
            value = getattr(self, name)
            data[name] = value if isinstance(value, _JSON_TYPES) else str(value)
        return data


_JSON_TYPES = (int, float, str, bool, list, dict, type(None))


def _json_fields(kind: type[Event]) -> tuple[str, ...]:
    """An event class's fields in its JSON, in order: looked up once per class, not per
    event (``dataclasses.fields`` builds its list anew each call)."""
    names = _FIELDS_OF.get(kind)
    if names is None:
        names = _FIELDS_OF[kind] = tuple(item.name for item in dataclasses.fields(kind)
                                         if item.name != "at")
    return names


_FIELDS_OF: dict[type[Event], tuple[str, ...]] = {}


@dataclass(frozen=True)
class Listening(Event):
    """The agent's SIP socket is bound; with port 0 this says which port was picked."""

    name: ClassVar[str] = "listening"
    transport: str
    host: str
    port: int


@dataclass(frozen=True)
class Registered(Event):
    name: ClassVar[str] = "registered"
    aor: str
    contact: str
    expires: int  # seconds granted by the registrar


@dataclass(frozen=True)
class RegistrationFailed(Event):
    name: ClassVar[str] = "registration_failed"
    aor: str
    status: int
    reason: str


@dataclass(frozen=True)
class Unregistered(Event):
    name: ClassVar[str] = "unregistered"
    aor: str


@dataclass(frozen=True)
class OptionsResult(Event):
    """A peer's answer to OPTIONS: what it supports, without calling it."""

    name: ClassVar[str] = "options"
    uri: str
    status: int
    reason: str
    allow: list[str]
    accept: list[str]
    supported: list[str]
    user_agent: str | None


@dataclass(frozen=True)
class MessageReceived(Event):
    """A MESSAGE arrived (RFC 3428, pager mode): ``sender`` is its From address, ``text``
    its body (UTF-8, undecodable bytes replaced), ``content_type`` the body's type;
    ``call_id`` names the call it came in, None when it came outside any call."""

    name: ClassVar[str] = "message"
    sender: str
    text: str
    content_type: str
    call_id: str | None = None


@dataclass(frozen=True)
class MessageSent(Event):
    """The answer to a MESSAGE we sent to ``uri``: delivered (2xx) or why not (a timeout is
    408). ``call_id`` names the call it went in, None outside any call."""

    name: ClassVar[str] = "message_sent"
    uri: str
    status: int
    reason: str
    call_id: str | None = None


@dataclass(frozen=True)
class Mwi(Event):
    """Message waiting indication (RFC 3842): what the voicemail's NOTIFY says. ``waiting``
    whether new messages wait; ``new``/``old`` the voice messages (``urgent_new`` and
    ``urgent_old`` among them); ``account`` the mailbox, when the server names it."""

    name: ClassVar[str] = "mwi"
    waiting: bool
    new: int
    old: int
    urgent_new: int = 0
    urgent_old: int = 0
    account: str | None = None


@dataclass(frozen=True)
class Calling(Event):
    name: ClassVar[str] = "calling"
    call_id: str
    uri: str


@dataclass(frozen=True)
class Incoming(Event):
    """A call arrives; ``caller`` is the From address, ``callee`` the To address."""

    name: ClassVar[str] = "incoming"
    call_id: str
    caller: str
    callee: str


@dataclass(frozen=True)
class Progress(Event):
    """A provisional response other than 180/183 (100 Trying never becomes an event)."""

    name: ClassVar[str] = "progress"
    call_id: str
    status: int
    reason: str


@dataclass(frozen=True)
class Ringing(Event):
    """180 Ringing or 183 Session Progress (sent or received)."""

    name: ClassVar[str] = "ringing"
    call_id: str
    status: int


@dataclass(frozen=True)
class EarlyMedia(Event):
    """Media before the answer (RFC 3960): a 183 (or 180) whose SDP starts a session,
    received (the network's ringback tone or an announcement plays from now on) or sent
    (``answer --early-media``). ``status`` is the provisional's; ``codec`` the agreed one
    (None while our offer in a reliable 183 awaits the PRACK's answer)."""

    name: ClassVar[str] = "early_media"
    call_id: str
    status: int
    codec: str | None


@dataclass(frozen=True)
class TransferRequested(Event):
    """The peer of ``call_id`` asks us to call ``target`` (a REFER, RFC 3515): accepted
    (202), the new call follows with its own events, and the old call ends once the new
    one is answered. ``referred_by`` is the Referred-By the REFER carried; ``attended``
    whether the new call replaces one the target has with the transferor (RFC 3891)."""

    name: ClassVar[str] = "transfer_requested"
    call_id: str
    target: str
    referred_by: str | None
    attended: bool


@dataclass(frozen=True)
class TransferProgress(Event):
    """How the transfer of ``call_id`` goes (we are the transferor): the status of the
    transferee's call to the target, as its NOTIFY said (100 Trying, 180, 200 OK, 486 ...),
    or the REFER's own failure; ``final`` on the last word."""

    name: ClassVar[str] = "transfer_progress"
    call_id: str
    status: int
    reason: str
    final: bool


@dataclass(frozen=True)
class Redirected(Event):
    name: ClassVar[str] = "redirected"
    call_id: str
    status: int
    target: str


@dataclass(frozen=True)
class Answered(Event):
    name: ClassVar[str] = "answered"
    call_id: str
    peer: str
    codec: str | None


@dataclass(frozen=True)
class Hold(Event):
    """The call was put on hold or resumed; ``by`` is local or remote."""

    name: ClassVar[str] = "hold"
    call_id: str
    held: bool
    by: str


@dataclass(frozen=True)
class MediaTimeout(Event):
    """No RTP arrived for ``seconds`` while we expected some."""

    name: ClassVar[str] = "media_timeout"
    call_id: str
    seconds: float


@dataclass(frozen=True)
class Dtmf(Event):
    """A digit the peer sent; ``method`` is rfc4733 (RTP telephone-event) or info (SIP INFO)."""

    name: ClassVar[str] = "dtmf"
    call_id: str
    digit: str
    method: str


@dataclass(frozen=True)
class DtmfSent(Event):
    """Digits we sent; ``method`` is rfc4733 or info, as the call could."""

    name: ClassVar[str] = "dtmf_sent"
    call_id: str
    digits: str
    method: str


@dataclass(frozen=True)
class Ended(Event):
    """The call is over. ``status`` is the SIP status that ended it (200 for a normal hang-up,
    487 for a cancelled call, 408 for a timeout ...); ``by`` is local, remote or error;
    ``diagnosis`` says in one line what went wrong, when something did (authentication, codec
    mismatch, timeout, no RTP, one-way audio and which way, silence, clipping, loss, late
    media, poor quality: softphone.media.diagnosis), else None."""

    name: ClassVar[str] = "ended"
    call_id: str
    status: int
    reason: str
    by: str
    duration: float
    rtp: dict[str, float | int | None] | None = None  # RTP and RTCP figures of the stream
    diagnosis: str | None = None


__all__ = ["Answered", "Calling", "Dtmf", "DtmfSent", "EarlyMedia", "Ended", "Event", "Hold",
           "Incoming", "Listening", "MediaTimeout", "Mwi", "MessageReceived", "MessageSent",
           "OptionsResult", "Progress", "Redirected", "TransferProgress", "TransferRequested",
           "Registered", "RegistrationFailed", "Ringing", "Unregistered", "utc_timestamp"]
