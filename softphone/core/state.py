"""The state machines of a call, as transition tables (h11's ``_state.py`` style).

Two machines per call. The **call state** is what the user sees: a call is placed (calling),
rings, is answered, is being hung up, has ended. The **offer/answer state** (RFC 3264, as
baresip/re's sipsess keeps it: none, local offer, remote offer, done) says whose turn it is
in the SDP exchange, which is what decides glare (RFC 3261 14.2) and whether an SDP body is
an offer or an answer.

Every transition is a row of a table; an input a state does not list is refused with
LocalProtocolError naming the state and the input (our own misuse: the caller asked for
something the state does not allow). What the peer does wrong never reaches these tables
as an exception: the call logic answers it with the RFC's response first.
"""

from __future__ import annotations

from enum import Enum

from softphone.sip.errors import LocalProtocolError


class CallState(Enum):
    """The life of one call; ``value`` is the name the public API has always shown."""

    INCOMING = "incoming"   # an INVITE arrived; nothing sent but 100 Trying
    CALLING = "calling"     # our INVITE is out; no provisional response yet
    RINGING = "ringing"     # 180/183 sent (incoming) or received (outgoing)
    ANSWERED = "answered"   # a 2xx was sent or received: the dialog is confirmed
    ENDING = "ending"       # our BYE is out
    ENDED = "ended"


class CallInput(Enum):
    """What moves a call from state to state: the API's requests and the peer's messages."""

    PROVISIONAL = "provisional"     # a 1xx other than 100 (outgoing)
    RING = "ring"                   # the API rings an incoming call
    ACCEPT = "accept"               # a 2xx: sent by us (answer) or received (outgoing)
    REDIRECTED = "redirected"       # a 3xx we follow with a new INVITE
    FAIL = "fail"                   # a final failure: sent, received, timed out, cancelled
    HANGUP = "hangup"               # we send BYE
    BYE = "bye"                     # the peer's BYE, or ours answered or timed out
    REINVITE = "reinvite"           # an offer/answer exchange inside the confirmed dialog


S, C = CallState, CallInput
CALL_TRANSITIONS: dict[CallState, dict[CallInput, CallState]] = {
    S.INCOMING: {C.RING: S.RINGING, C.ACCEPT: S.ANSWERED, C.FAIL: S.ENDED},
    S.CALLING: {C.PROVISIONAL: S.RINGING, C.ACCEPT: S.ANSWERED, C.REDIRECTED: S.CALLING,
                C.FAIL: S.ENDED},
    S.RINGING: {C.PROVISIONAL: S.RINGING, C.RING: S.RINGING, C.ACCEPT: S.ANSWERED,
                C.REDIRECTED: S.CALLING, C.FAIL: S.ENDED},
    S.ANSWERED: {C.HANGUP: S.ENDING, C.BYE: S.ENDED, C.REINVITE: S.ANSWERED},
    S.ENDING: {C.BYE: S.ENDED, C.HANGUP: S.ENDING},
    S.ENDED: {C.HANGUP: S.ENDED, C.BYE: S.ENDED, C.FAIL: S.ENDED},
}


def next_call_state(state: CallState, event: CallInput) -> CallState:
    """The state ``event`` leads to from ``state``; LocalProtocolError when it may not."""
    try:
        return CALL_TRANSITIONS[state][event]
    except KeyError:
        raise LocalProtocolError(f"a call that is {state.value} cannot {event.value}") from None


class OfferState(Enum):
    """Whose turn it is in the SDP offer/answer exchange (RFC 3264)."""

    NONE = "none"            # no offer yet (an INVITE without SDP, say)
    LOCAL_OFFER = "local"    # we offered; their answer is due
    REMOTE_OFFER = "remote"  # they offered; our answer is due
    DONE = "done"            # offer and answer exchanged: a session is agreed


class OfferInput(Enum):
    SEND_OFFER = "send an offer"
    RECEIVE_OFFER = "receive an offer"
    SEND_ANSWER = "send an answer"
    RECEIVE_ANSWER = "receive an answer"
    REJECTED = "have the offer rejected"  # the offer's request failed: the old session holds


OS, A = OfferState, OfferInput
OFFER_TRANSITIONS: dict[OfferState, dict[OfferInput, OfferState]] = {
    OS.NONE: {A.SEND_OFFER: OS.LOCAL_OFFER, A.RECEIVE_OFFER: OS.REMOTE_OFFER},
    OS.LOCAL_OFFER: {A.RECEIVE_ANSWER: OS.DONE, A.REJECTED: OS.DONE},
    OS.REMOTE_OFFER: {A.SEND_ANSWER: OS.DONE, A.REJECTED: OS.DONE},
    OS.DONE: {A.SEND_OFFER: OS.LOCAL_OFFER, A.RECEIVE_OFFER: OS.REMOTE_OFFER},
}


def next_offer_state(state: OfferState, event: OfferInput) -> OfferState:
    try:
        return OFFER_TRANSITIONS[state][event]
    except KeyError:
        raise LocalProtocolError(f"offer/answer is at {state.value}: cannot "
                                 f"{event.value}") from None


class RegistrationState(Enum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"     # a REGISTER (first or refresh) is out
    REGISTERED = "registered"       # bound; the refresh timer is armed
    UNREGISTERING = "unregistering"  # Expires: 0 is out
    FAILED = "failed"


class RegistrationInput(Enum):
    SEND = "send a REGISTER"
    ACCEPTED = "be accepted"
    REFUSED = "be refused"
    REMOVE = "unregister"


R, G = RegistrationState, RegistrationInput
REGISTRATION_TRANSITIONS: dict[RegistrationState, dict[RegistrationInput, RegistrationState]] = {
    R.UNREGISTERED: {G.SEND: R.REGISTERING, G.REMOVE: R.UNREGISTERED},
    R.REGISTERING: {G.ACCEPTED: R.REGISTERED, G.REFUSED: R.FAILED, G.SEND: R.REGISTERING,
                    G.REMOVE: R.UNREGISTERING},
    R.REGISTERED: {G.SEND: R.REGISTERING, G.REMOVE: R.UNREGISTERING},
    R.UNREGISTERING: {G.ACCEPTED: R.UNREGISTERED, G.REFUSED: R.UNREGISTERED,
                      G.REMOVE: R.UNREGISTERING},
    R.FAILED: {G.SEND: R.REGISTERING, G.REMOVE: R.UNREGISTERED},
}


def next_registration_state(state: RegistrationState,
                            event: RegistrationInput) -> RegistrationState:
    try:
        return REGISTRATION_TRANSITIONS[state][event]
    except KeyError:
        raise LocalProtocolError(f"a registration that is {state.value} cannot "
                                 f"{event.value}") from None
