"""SDP (RFC 4566/8866) descriptions and the offer/answer model (RFC 3264), sans-IO."""

from softphone.sdp.model import Media, SdpError, SessionDescription
from softphone.sdp.negotiation import (
           CODECS,
           Codec,
           NegotiatedMedia,
           answer_offer,
           make_offer,
           read_answer,
)

__all__ = ["CODECS", "Codec", "Media", "NegotiatedMedia", "SdpError", "SessionDescription",
           "answer_offer", "make_offer", "read_answer"]
