"""What the core asks of the program around it, besides the public events it also emits.

``UserAgentCore.next_event()`` returns public events (``softphone.events``: calling,
ringing, answered, ended ...), which the shell hands to the API's listeners as they are, and
these requests, which the shell carries out: resolve a name, start or change a call's media,
report on the media, finish an API call that waits for an answer. Each is a frozen
dataclass, as the public events are.
"""

from __future__ import annotations

from dataclasses import dataclass

from softphone.events import Ended
from softphone.sdp.negotiation import NegotiatedMedia
from softphone.sip import Request, Response, SipUri


@dataclass(frozen=True)
class CoreEvent:
    """Base of the core's requests to its shell."""


@dataclass(frozen=True)
class ResolveNeeded(CoreEvent):
    """Find where ``uri`` is (RFC 3263: NAPTR, SRV, A/AAAA) and give the answer back with
    ``core.resolved(lookup, peers, now)`` (or ``core.resolution_failed``). Addresses and
    explicit ports never come here: the core places those itself."""

    lookup: int
    uri: SipUri
    transport: str | None


@dataclass(frozen=True)
class CallCreated(CoreEvent):
    """A call exists now (an INVITE arrived, or a kept fork answered): the shell makes its
    API object. ``handle`` names it in every later core event and call."""

    handle: str
    direction: str  # incoming or outgoing


@dataclass(frozen=True)
class MediaReady(CoreEvent):
    """Start the call's media as agreed, or change it to this (hold, resume, a new codec or
    address): the offer/answer exchange has completed."""

    handle: str
    media: NegotiatedMedia
    peer_codecs: tuple[str, ...]  # the codecs the peer listed, in its order


@dataclass(frozen=True)
class MediaCheck(CoreEvent):
    """The RTP inactivity timer fired: tell the core when RTP last arrived, with
    ``core.media_status(handle, last_packet, now)``."""

    handle: str


@dataclass(frozen=True)
class CallGone(CoreEvent):
    """The call is over: stop its media, release it, and publish ``ended`` (the core does
    not emit that public event itself: the shell adds the RTP figures only it knows)."""

    handle: str
    ended: Ended


@dataclass(frozen=True)
class Completed(CoreEvent):
    """A request the API waits on got its final response (after every auth retry, failover
    and glare retry). ``response`` is None when no response came (a timeout: status 408,
    a transport failure: 503, a call that ended meanwhile: 481)."""

    request: int
    status: int
    reason: str
    response: Response | None = None
    sent: Request | None = None  # the request as last sent (after any challenge answered)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class TransferNeeded(CoreEvent):
    """A REFER we accepted (we are the transferee): place the call to ``target`` (with
    ``core.invite(..., transfer_of=handle)``, which adds Referred-By and Replaces and
    reports the new call's progress to the transferor)."""

    handle: str
    target: SipUri
