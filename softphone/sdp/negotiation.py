"""SDP offer/answer (RFC 3264) for one audio stream with telephone-event.

The answerer picks the best codec both sides support: local preference first, the offer's
order among equals; it keeps the offer's m-line order and refuses other media with port 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from softphone.sdp.crypto import Crypto, Suite, choose, offer_cryptos, parse_crypto
from softphone.sdp.model import Media, SdpError, SessionDescription, payload_type
from softphone.sip.grammar import decimal

PLAIN, SECURE = "RTP/AVP", "RTP/SAVP"
SRTP_MODES = ("off", "optional", "mandatory")  # RTP/AVP, RTP/AVP with keys, RTP/SAVP
DEFAULT_PTIME = 20
ANY_PTIME = (10, 20, 30, 40, 50, 60)  # sample-based codecs take any whole 10 ms (RFC 3551)


@dataclass(frozen=True)
class Codec:
    key: str
    encoding: str
    clock_rate: int
    channels: int = 1
    static_pt: int | None = None
    fmtp: str | None = None
    sample_rate: int | None = None  # where the audio's rate is not the RTP clock's (G.722)
    frame_sizes: tuple[int, ...] = ANY_PTIME  # the packet durations (ms) it can send

    def matches(self, encoding: str, clock_rate: int) -> bool:
        return encoding.lower() == self.encoding.lower() and clock_rate == self.clock_rate

    @property
    def audio_rate(self) -> int:
        """Samples per second of the audio the codec carries."""
        return self.sample_rate or self.clock_rate


CODECS = {
    "opus": Codec("opus", "opus", 48000, 2, None, "useinbandfec=1",
                  frame_sizes=(10, 20, 40, 60)),  # Opus frames (RFC 6716 2.1.4) we send
    "pcmu": Codec("pcmu", "PCMU", 8000, 1, 0),
    "pcma": Codec("pcma", "PCMA", 8000, 1, 8),
    "g722": Codec("g722", "G722", 8000, 1, 9, sample_rate=16000),  # RFC 3551 4.5.2
}
TELEPHONE_EVENT = Codec("telephone-event", "telephone-event", 8000, 1, None, "0-16")
DEFAULT_CODECS = ("opus", "g722", "pcmu", "pcma")
_DYNAMIC_PT = {"opus": 111, "telephone-event": 101}
_DIRECTION_ANSWER = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_SENDS = ("sendrecv", "sendonly")
_RECEIVES = ("sendrecv", "recvonly")


def answer_direction(offered: str, wish: str) -> str:
    """Our direction in an answer (RFC 3264 6.1): we send only if the offerer receives and
    we want to send, we receive only if it sends and we want to receive. A party holding
    the call (wish sendonly) answers a hold (offered sendonly) with inactive."""
    send = wish in _SENDS and offered in _RECEIVES
    receive = wish in _RECEIVES and offered in _SENDS
    return {(True, True): "sendrecv", (True, False): "sendonly",
            (False, True): "recvonly", (False, False): "inactive"}[(send, receive)]


@dataclass(frozen=True)
class SrtpKeys:
    """The SRTP of a stream (RFC 4568): the suite, our key (we send with it) and theirs."""

    suite: Suite
    local: bytes   # our master key || salt
    remote: bytes  # the peer's

    def __repr__(self) -> str:
        return f"SrtpKeys({self.suite.name})"  # keys stay out of logs


@dataclass(frozen=True)
class NegotiatedMedia:
    """What both sides agreed on for the audio stream."""

    codec: Codec
    payload_type: int
    remote_address: str
    remote_port: int
    dtmf_payload_type: int | None
    direction: str  # ours: sendrecv, sendonly, recvonly or inactive
    ptime: int = DEFAULT_PTIME  # ms of audio in each packet we send (what the peer asked for)
    remote_fmtp: str | None = None  # the peer's format parameters for the codec (what it
    #                                 wants to receive: Opus's maxaveragebitrate, usedtx ...)
    remote_rtcp_port: int | None = None  # None: the peer has no port for RTCP
    srtp: SrtpKeys | None = None  # None: plain RTP

    @property
    def description(self) -> str:
        return f"{self.codec.encoding}/{self.codec.clock_rate}"

    @property
    def remote_parameters(self) -> dict[str, str]:
        return parse_fmtp(self.remote_fmtp)


def parse_fmtp(text: str | None) -> dict[str, str]:
    """``"maxaveragebitrate=20000; usedtx=1"`` -> {"maxaveragebitrate": "20000", ...};
    names lower-cased, anything that is not name=value ignored (as RFC 7587 asks of
    receivers of unknown parameters)."""
    parameters: dict[str, str] = {}
    for item in (text or "").split(";"):
        name, equals, value = item.partition("=")
        if equals and name.strip():
            parameters[name.strip().lower()] = value.strip()
    return parameters


def _codecs(keys: tuple[str, ...] | list[str]) -> list[Codec]:
    unknown = [k for k in keys if k.lower() not in CODECS]
    if unknown:
        raise ValueError(f"Unknown codec {unknown[0]!r}; known: {', '.join(CODECS)}")
    return [CODECS[k.lower()] for k in keys]


def _payload_type(codec: Codec) -> int:
    return codec.static_pt if codec.static_pt is not None else _DYNAMIC_PT[codec.key]


def _audio_section(codecs: list[Codec], port: int, direction: str) -> Media:
    media = Media(kind="audio", port=port, proto="RTP/AVP", formats=[])
    for codec in [*codecs, TELEPHONE_EVENT]:
        pt = _payload_type(codec)
        media.formats.append(str(pt))
        channels = f"/{codec.channels}" if codec.channels > 1 else ""
        media.attributes.append(("rtpmap", f"{pt} {codec.encoding}/{codec.clock_rate}{channels}"))
        if codec.fmtp:
            media.attributes.append(("fmtp", f"{pt} {codec.fmtp}"))
    media.attributes += [("ptime", str(DEFAULT_PTIME)), (direction, None)]
    return media


def make_offer(codec_keys: tuple[str, ...] | list[str], address: str, port: int,
               session_id: int, version: int, direction: str = "sendrecv",
               srtp: str = "off") -> SessionDescription:
    """Our offer. ``srtp``: off (RTP/AVP), optional (RTP/AVP with a=crypto keys, which a
    peer that knows SRTP takes and another ignores), mandatory (RTP/SAVP with keys); every
    offer carries fresh keys (RFC 4568 7.1.4 allows new keys in any new offer)."""
    media = _audio_section(_codecs(codec_keys), port, direction)
    if srtp != "off":
        media.proto = SECURE if srtp == "mandatory" else PLAIN
        media.attributes[-1:-1] = [("crypto", str(crypto)) for crypto in offer_cryptos()]
    return SessionDescription(
        origin_user="softphone", session_id=session_id, session_version=version,
        origin_address=address, connection=address, media=[media])


def answer_offer(offer: SessionDescription, codec_keys: tuple[str, ...] | list[str],
                 address: str, port: int, session_id: int, version: int,
                 direction: str = "sendrecv", srtp: str = "off",
                 ) -> tuple[SessionDescription, NegotiatedMedia]:
    """Our answer and the agreed stream. Raises SdpError(status=488) with nothing in common,
    codec or SRTP (``srtp`` is our mode: off, optional or mandatory)."""
    local = _codecs(codec_keys)
    answer = SessionDescription(origin_user="softphone", session_id=session_id,
                                session_version=version, origin_address=address,
                                connection=address)
    agreed: NegotiatedMedia | None = None
    for media in offer.media:
        chosen = None
        if agreed is None and _is_usable_audio(media):
            chosen = _choose(media, local)
        if chosen is None:
            answer.media.append(Media(kind=media.kind, port=0, proto=media.proto,
                                      formats=media.formats[:1] or ["0"]))
            continue
        remote = offer.connection_for(media)
        if remote is None:
            raise SdpError("SDP offer without a connection address")
        agreed = _agreed(chosen, media, remote, answer_direction(media.direction, direction))
        keys = _answer_keys(media, srtp)
        section = _answer_section(agreed, port)  # asks for the packet size it sends
        section.proto = media.proto
        if keys is not None:
            ours, agreed_keys = keys
            agreed = replace(agreed, srtp=agreed_keys)
            section.attributes.insert(-1, ("crypto", str(ours)))
        answer.media.append(section)
    if agreed is None:
        raise SdpError("No common codec", status=488)
    return answer, agreed


def _answer_keys(media: Media, mode: str) -> tuple[Crypto, SrtpKeys] | None:
    """Our a=crypto for an offered stream and the keys agreed, or None for plain RTP.
    SdpError (488) when the offer and our mode cannot meet."""
    secure = media.proto == SECURE
    offered = [c for c in (parse_crypto(v) for v in media.attribute_values("crypto")) if c]
    if mode == "off":
        if secure:
            raise SdpError("The offer requires SRTP (RTP/SAVP), which is off here")
        return None
    crypto = choose(offered)
    if crypto is None:
        if secure and offered:
            raise SdpError("No SRTP crypto suite in common")
        if secure or mode == "mandatory":
            raise SdpError("SRTP is mandatory here, and the offer carries no usable key")
        return None
    ours = Crypto.new(crypto.tag, crypto.suite)
    return ours, SrtpKeys(crypto.suite, ours.material, crypto.material)


def _keys_of_answer(media: Media, offer: SessionDescription | None) -> SrtpKeys | None:
    """The keys an answer to our offer agreed on: its a=crypto names one of our tags."""
    ours_media = next((m for m in (offer.media if offer else []) if _is_usable_audio(m)),
                      None)
    ours = [c for c in (parse_crypto(v) for v in (ours_media.attribute_values("crypto")
                                                   if ours_media else [])) if c]
    answered = next((c for c in (parse_crypto(v) for v in media.attribute_values("crypto"))
                     if c), None)
    if answered is None:
        if ours_media is not None and ours_media.proto == SECURE:
            raise SdpError("The answer refused SRTP: it carries no key")
        return None
    mine = next((c for c in ours if c.tag == answered.tag and c.suite == answered.suite), None)
    if mine is None:
        raise SdpError("The answer's a=crypto matches none we offered")
    return SrtpKeys(answered.suite, mine.material, answered.material)


def _choose(media: Media, local: list[Codec]) -> tuple[Codec, int, int | None] | None:
    offered = media.rtpmap()
    dtmf_pt = next((payload_type(pt) for pt, (enc, rate, _) in offered.items()
                    if TELEPHONE_EVENT.matches(enc, rate)), None)
    for codec in local:
        for pt in media.formats:
            spec = offered.get(pt)
            number = payload_type(pt)
            if spec is not None and number is not None and codec.matches(spec[0], spec[1]):
                return codec, number, dtmf_pt
    return None


def _agreed(chosen: tuple[Codec, int, int | None], media: Media, remote: str,
            direction: str) -> NegotiatedMedia:
    codec, pt, dtmf_pt = chosen
    return NegotiatedMedia(codec, pt, remote, media.port, dtmf_pt, direction,
                           send_ptime(codec, media), media.fmtp(str(pt)), media.rtcp_port())


def _answer_section(agreed: NegotiatedMedia, port: int) -> Media:
    codec, pt, dtmf_pt = agreed.codec, agreed.payload_type, agreed.dtmf_payload_type
    media = Media(kind="audio", port=port, proto="RTP/AVP", formats=[str(pt)])
    channels = f"/{codec.channels}" if codec.channels > 1 else ""
    media.attributes.append(("rtpmap", f"{pt} {codec.encoding}/{codec.clock_rate}{channels}"))
    fmtp = codec.fmtp or agreed.remote_fmtp
    if fmtp:
        media.attributes.append(("fmtp", f"{pt} {fmtp}"))
    if dtmf_pt is not None:
        media.formats.append(str(dtmf_pt))
        media.attributes.append(("rtpmap", f"{dtmf_pt} telephone-event/8000"))
        media.attributes.append(("fmtp", f"{dtmf_pt} 0-16"))
    media.attributes += [("ptime", str(agreed.ptime)), (agreed.direction, None)]
    return media


def send_ptime(codec: Codec, media: Media) -> int:
    """The packet duration to send: the peer's a=ptime (what it wants to receive, RFC 4566
    6), within its a=maxptime, rounded down to a frame size the codec has (Opus has no
    11 ms frame); the codec's smallest frame when the peer asks for less."""
    wanted = decimal(media.attribute("ptime")) or DEFAULT_PTIME
    ceiling = decimal(media.attribute("maxptime"))
    if ceiling:
        wanted = min(wanted, ceiling)
    fitting = [size for size in codec.frame_sizes if size <= wanted]
    return max(fitting) if fitting else min(codec.frame_sizes)


def _is_usable_audio(media: Media) -> bool:
    return media.kind == "audio" and media.port != 0 and media.proto in (PLAIN, SECURE)


def read_answer(answer: SessionDescription, codec_keys: tuple[str, ...] | list[str],
                offer: SessionDescription | None = None) -> NegotiatedMedia:
    """The stream an answer to our ``offer`` agreed on. Raises SdpError(status=488)."""
    for media in answer.media:
        if not _is_usable_audio(media):
            continue
        chosen = _choose(media, _codecs(codec_keys))
        remote = answer.connection_for(media)
        if chosen is not None and remote is not None:
            agreed = _agreed(chosen, media, remote,
                             _DIRECTION_ANSWER.get(media.direction, "sendrecv"))
            return replace(agreed, srtp=_keys_of_answer(media, offer))
    raise SdpError("The answer accepts none of our codecs", status=488)


def known_codecs(description: SessionDescription) -> list[str]:
    """Our keys of the codecs the first usable audio section lists, in its order."""
    for media in description.media:
        if _is_usable_audio(media):
            found: list[str] = []
            mapping = media.rtpmap()
            for encoding, rate, _ in (mapping[pt] for pt in media.formats if pt in mapping):
                key = next((c.key for c in CODECS.values() if c.matches(encoding, rate)), None)
                if key is not None and key not in found:
                    found.append(key)
            return found
    return []


def common_codec(participants: list[list[str]], preference: list[str]) -> str | None:
    """The codec every participant listed, by our preference: the point of a conference's
    negotiation (everyone on one codec, nothing transcoded)."""
    for key in preference:
        if all(key in listed for listed in participants):
            return key
    return None
