"""One call's SDP offer/answer (RFC 3264), its state kept by the table of ``core.state``.

The session knows what we can do (codecs, the address and RTP port the shell bound) and
what we want (to send and receive, or to hold), builds our offers and answers, reads the
peer's, and remembers the agreed stream. Whose turn it is decides what a body means: an SDP
in a 2xx is an answer when we offered and an offer when we did not (an INVITE without SDP).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from softphone.core.state import OfferInput, OfferState, next_offer_state
from softphone.sdp.model import SdpError, SessionDescription
from softphone.sdp.negotiation import (
    NegotiatedMedia,
    answer_offer,
    known_codecs,
    make_offer,
    read_answer,
)


@dataclass
class MediaSession:
    codecs: tuple[str, ...]   # what we support, in our preference
    address: str              # where our RTP is reached (c=)
    port: int                 # our RTP port (m=)
    session_id: int
    version: int = 0
    state: OfferState = OfferState.NONE
    wish: str = "sendrecv"    # our own direction: sendonly while we hold the call
    srtp: str = "off"         # off, optional or mandatory (RFC 4568 keys in the SDP)
    media: NegotiatedMedia | None = None
    peer_codecs: tuple[str, ...] = ()
    _offered: SessionDescription | None = None       # our offer awaiting its answer
    _offered_codecs: tuple[str, ...] = ()
    _their_offer: SessionDescription | None = None   # their offer awaiting our answer
    _before: NegotiatedMedia | None = field(default=None, repr=False)
    _answered: tuple[SessionDescription, tuple[str, ...]] | None = field(default=None,
                                                                          repr=False)

    def _move(self, event: OfferInput) -> None:
        self.state = next_offer_state(self.state, event)

    def offer(self, direction: str | None = None,
              codecs: tuple[str, ...] | None = None) -> bytes:
        """Our offer (an INVITE, a re-INVITE, or a 2xx to an INVITE without SDP)."""
        self._move(OfferInput.SEND_OFFER)
        if direction is not None:
            self.wish = direction
        self._offered_codecs = codecs or self.codecs
        self.version += 1
        self._offered = make_offer(self._offered_codecs, self.address, self.port,
                                   self.session_id, self.version, self.wish, self.srtp)
        self._before = self.media
        return bytes(self._offered)

    def take_offer(self, body: bytes) -> None:
        """Their offer, kept until we answer it. SdpError (488) when it does not parse."""
        offer = SessionDescription.parse(body)
        self._move(OfferInput.RECEIVE_OFFER)
        self._their_offer = offer
        self._before = self.media

    def answer(self) -> bytes:
        """Our answer to their offer; the agreed stream is ``media`` from now on. SdpError
        (488) when we share nothing with it: the offer is then refused, the session as it
        was (``rejected`` has been applied)."""
        assert self._their_offer is not None
        offer = self._their_offer
        self.version += 1
        try:
            answer, agreed = answer_offer(offer, self.codecs, self.address, self.port,
                                          self.session_id, self.version, self.wish, self.srtp)
        except SdpError:
            self.version -= 1
            self.rejected()
            raise
        self._move(OfferInput.SEND_ANSWER)
        self._their_offer = None
        self.media = agreed
        if not self.peer_codecs:
            self.peer_codecs = tuple(known_codecs(offer))
        return bytes(answer)

    def take_answer(self, body: bytes) -> NegotiatedMedia:
        """Their answer to our offer. SdpError (488) when it does not parse or accepts none
        of what we offered; the offer is then over, the session as it was."""
        try:
            description = SessionDescription.parse(body)
            agreed = read_answer(description, self._offered_codecs, self._offered)
        except SdpError:
            self.rejected()
            raise
        self._move(OfferInput.RECEIVE_ANSWER)
        self._answered = (self._offered, self._offered_codecs) if self._offered else None
        self._offered = None
        self.media = agreed
        self.peer_codecs = tuple(known_codecs(description)) or self.peer_codecs
        return agreed

    def replace_answer(self, body: bytes) -> NegotiatedMedia:
        """Another answer to the offer already answered: the 2xx after a 183 whose SDP
        started early media (RFC 3261 13.2.1 wants them equal; a forking proxy can bring
        another phone's). SdpError when it is unusable; the session is then unchanged."""
        if self._answered is None:
            raise SdpError("No offer of ours to take a second answer to")
        offered, codecs = self._answered
        description = SessionDescription.parse(body)
        self.media = read_answer(description, codecs, offered)
        self.peer_codecs = tuple(known_codecs(description)) or self.peer_codecs
        return self.media

    def rejected(self) -> None:
        """The exchange failed (a 488 to our re-INVITE, an answer we cannot use): the
        session stays what it was before (RFC 3261 14.1)."""
        if self.state in (OfferState.LOCAL_OFFER, OfferState.REMOTE_OFFER):
            self._move(OfferInput.REJECTED)
            if self._before is None and self.media is None:
                self.state = OfferState.NONE
        self._offered = self._their_offer = None
        self.media = self._before

    @property
    def held(self) -> bool:
        """Whether the agreed stream is on hold, by either side."""
        return self.media is not None and self.media.direction != "sendrecv"
