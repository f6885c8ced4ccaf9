"""A local conference: calls the user joins into one, each participant hearing the others.

Every participant's stream is reconnected to a mixer leg (N-1 mix). The conference keeps
everybody on one codec that every participant listed when there is one: when someone joins
whose codecs do not include the one in use, the legs on another codec are re-INVITEd with an
offer of the common one only. Participants join and leave while the others keep talking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from softphone.media.mixer import Leg, Mixer
from softphone.sdp.negotiation import common_codec
from softphone.sip.errors import SipError

if TYPE_CHECKING:
    from softphone.ua.agent import UserAgent
    from softphone.ua.call import Call


class Conference:
    def __init__(self, agent: UserAgent) -> None:
        self.agent = agent
        self.mixer = Mixer()
        self.legs: dict[Call, Leg] = {}

    @property
    def codec(self) -> str | None:
        """The codec every participant shares, by our preference (None: they share none)."""
        return common_codec([call.peer_codecs for call in self.legs],
                            list(self.agent.codecs))

    async def add(self, call: Call) -> None:
        if call.stream is None or call.state != "answered":
            raise SipError("Only an answered call with media can join a conference")
        leg = self.mixer.add(call.call_id)
        call.stream.replace_ports(leg, leg)
        self.legs[call] = leg
        call.ended.add_done_callback(lambda _: self.remove(call))
        await self.align_codecs()

    def remove(self, call: Call) -> None:
        leg = self.legs.pop(call, None)
        if leg is not None:
            self.mixer.remove(leg)

    async def align_codecs(self) -> None:
        """Move every participant not on the shared codec onto it."""
        shared = self.codec
        if shared is None:
            return  # nothing in common: the mixer converts between rates
        for call in list(self.legs):
            if call.media is not None and call.media.codec.key != shared and not call.is_over:
                await call.renegotiate([shared])

    async def close(self) -> None:
        for call in list(self.legs):
            await call.hangup()
