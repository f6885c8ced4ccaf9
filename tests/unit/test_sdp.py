"""SDP parsing and offer/answer against the RFC 4317 examples (tests/data/rfc4317)."""

from __future__ import annotations

import pytest

from softphone.sdp.model import SdpError, SessionDescription
from softphone.sdp.negotiation import answer_offer, make_offer, parse_fmtp, read_answer
from tests.conftest import TESTDATA

FOLDER = TESTDATA / "rfc4317"
ALL = sorted(p.name for p in FOLDER.glob("*.sdp"))


def load(name: str) -> SessionDescription:
    return SessionDescription.parse((FOLDER / f"{name}.sdp").read_bytes())


@pytest.mark.parametrize("name", ALL)
def test_every_example_parses_and_round_trips(name: str) -> None:
    description = SessionDescription.parse((FOLDER / name).read_bytes())
    assert SessionDescription.parse(bytes(description)) == description


def test_all_54_examples_are_there() -> None:
    assert len(ALL) == 54


def test_answer_keeps_m_line_order_and_refuses_video_with_port_0() -> None:
    answer, agreed = answer_offer(load("2.1-offer"), ["pcmu", "pcma"], "192.0.2.2", 40000, 1, 1)
    assert [(m.kind, m.port) for m in answer.media] == [("audio", 40000), ("video", 0)]
    assert answer.media[0].formats == ["0"]
    assert (agreed.codec.key, agreed.payload_type) == ("pcmu", 0)
    assert (agreed.remote_address, agreed.remote_port) == ("host.atlanta.example.com", 49170)


def test_local_preference_decides_between_common_codecs() -> None:
    _, agreed = answer_offer(load("2.2-offer"), ["pcma", "pcmu"], "192.0.2.2", 40000, 1, 1)
    assert agreed.codec.key == "pcma" and agreed.payload_type == 8


def test_only_one_audio_stream_is_taken() -> None:
    answer, agreed = answer_offer(load("2.4-offer"), ["pcmu"], "192.0.2.2", 40000, 1, 1)
    assert [m.port for m in answer.media] == [40000, 0]
    assert agreed.dtmf_payload_type is None  # telephone-event was only in the other stream


def test_direction_of_the_answer_mirrors_the_offer() -> None:
    offer = load("2.1-offer")
    offer.media[0].attributes.append(("sendonly", None))
    answer, agreed = answer_offer(offer, ["pcmu"], "192.0.2.2", 40000, 1, 1)
    assert answer.media[0].direction == "recvonly" and agreed.direction == "recvonly"


def test_media_level_connection_wins() -> None:
    offer = load("2.8-offer")
    video = offer.media[-1]
    assert offer.connection_for(video) == (video.connection or offer.connection)


def test_nothing_in_common_or_no_media_is_488() -> None:
    with pytest.raises(SdpError) as error:
        answer_offer(load("2.1-offer"), ["opus"], "192.0.2.2", 40000, 1, 1)
    assert error.value.status == 488
    with pytest.raises(SdpError):
        answer_offer(load("5.1-offer"), ["pcmu"], "192.0.2.2", 40000, 1, 1)


def test_reading_the_rfc_answer_to_our_kind_of_offer() -> None:
    agreed = read_answer(load("2.1-answer"), ["opus", "pcmu"])
    assert agreed.codec.key == "pcmu"
    assert (agreed.remote_address, agreed.remote_port) == ("host.biloxi.example.com", 49174)
    with pytest.raises(SdpError) as error:  # the hold answer carries only iLBC
        read_answer(load("3.1-answer"), ["pcmu"])
    assert error.value.status == 488


def test_our_offer_lists_codecs_in_preference_order_with_telephone_event() -> None:
    offer = make_offer(["opus", "pcmu", "pcma"], "192.0.2.1", 4000, 7, 2)
    media = offer.media[0]
    assert media.formats == ["111", "0", "8", "101"]
    assert media.rtpmap()["111"] == ("opus", 48000, 2)
    assert media.fmtp("101") == "0-16" and offer.session_version == 2
    assert SessionDescription.parse(bytes(offer)) == offer


def test_g722_is_offered_on_its_static_type_with_the_8000_clock_rfc_3551_gives_it() -> None:
    offer = make_offer(["g722", "pcmu"], "192.0.2.1", 4000, 7, 1)
    media = offer.media[0]
    assert media.formats[:2] == ["9", "0"] and media.rtpmap()["9"] == ("G722", 8000, 1)
    answer, agreed = answer_offer(offer, ["pcmu", "g722"], "192.0.2.2", 40000, 1, 1)
    assert agreed.codec.key == "pcmu"  # our preference decides
    answer, agreed = answer_offer(offer, ["g722"], "192.0.2.2", 40000, 1, 1)
    assert (agreed.codec.key, agreed.payload_type, agreed.codec.clock_rate,
            agreed.codec.audio_rate) == ("g722", 9, 8000, 16000)
    assert read_answer(answer, ["g722", "pcmu"]).codec.key == "g722"


def test_the_peers_format_parameters_are_kept_for_the_chosen_codec() -> None:
    offer = make_offer(["opus", "pcmu"], "192.0.2.1", 4000, 7, 1)
    media = offer.media[0]
    media.attributes = [(name, "111 maxaveragebitrate=12000; usedtx=1;junk"
                         if name == "fmtp" and value and value.startswith("111") else value)
                        for name, value in media.attributes]
    answer, agreed = answer_offer(offer, ["opus"], "192.0.2.2", 40000, 1, 1)
    assert agreed.remote_parameters == {"maxaveragebitrate": "12000", "usedtx": "1"}
    assert read_answer(answer, ["opus"]).remote_parameters == {"useinbandfec": "1"}
    assert parse_fmtp(None) == {} and parse_fmtp("0-16") == {}


@pytest.mark.parametrize("body", [b"", b"v=1\r\n", b"v=0\r\nm=audio x RTP/AVP 0\r\n",
                                  b"v=0\r\no=a b c IN IP4 h\r\n", b"\xff\xfe",
                                  b"v=0\r\no=a 1 1 IN IP4 h\r\nc=IN IP9 x\r\n"])
def test_bad_bodies_raise_sdp_error(body: bytes) -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(body)


def offer_of(media_line: str, *attributes: str) -> SessionDescription:
    lines = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
             media_line, *attributes]
    return SessionDescription.parse(("\r\n".join(lines) + "\r\n").encode())


@pytest.mark.parametrize("media", [
    "m=audio 4000 RTP/AVP 128",      # above the seven bits of RTP's payload type
    "m=audio 4000 RTP/AVP 300",
    "m=audio 4000 RTP/AVP \u2070",    # a superscript zero: isdigit() says yes, int() says no
    "m=audio 4000 RTP/AVP \u0660",    # an Arabic-Indic zero: int() would read it as 0
])
def test_payload_types_that_cannot_be_get_488(media: str) -> None:
    pt = media.rsplit(" ", 1)[1]
    offer = offer_of(media, f"a=rtpmap:{pt} PCMU/8000")
    with pytest.raises(SdpError) as raised:
        answer_offer(offer, ["pcmu", "pcma"], "192.0.2.2", 40000, 1, 1)
    assert raised.value.status == 488


@pytest.mark.parametrize("body_line", [
    "m=audio \u00b2\u00b2\u00b2\u00b2 RTP/AVP 0",  # superscript digits in the port
    "m=audio 4\u0660\u0660\u0660 RTP/AVP 0",       # Arabic-Indic digits in the port
])
def test_unicode_digits_in_a_port_are_refused_not_crashing(body_line: str) -> None:
    with pytest.raises(SdpError):
        offer_of(body_line)


def test_unicode_digits_in_ptime_and_rtpmap_fall_back_to_the_defaults() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0 97", "a=rtpmap:97 opus/\u00b9\u00b2/2",
                     "a=ptime:\u00b3\u2070")
    _, agreed = answer_offer(offer, ["opus", "pcmu"], "192.0.2.2", 40000, 1, 1)
    assert agreed.codec.key == "pcmu" and agreed.ptime == 20


def test_rtp_on_port_65535_is_answered_and_has_no_rtcp_port() -> None:
    _, agreed = answer_offer(offer_of("m=audio 65535 RTP/AVP 0"), ["pcmu"], "192.0.2.2",
                             40000, 1, 1)
    assert agreed.remote_port == 65535 and agreed.remote_rtcp_port is None
    _, usual = answer_offer(offer_of("m=audio 4000 RTP/AVP 0"), ["pcmu"], "192.0.2.2",
                            40000, 1, 1)
    assert usual.remote_rtcp_port == 4001
    _, announced = answer_offer(offer_of("m=audio 4000 RTP/AVP 0", "a=rtcp:5007"), ["pcmu"],
                                "192.0.2.2", 40000, 1, 1)
    assert announced.remote_rtcp_port == 5007  # RFC 3605


@pytest.mark.parametrize(("codec", "attributes", "ptime"), [
    ("pcmu", ["a=ptime:30"], 30),
    ("pcmu", ["a=ptime:40"], 40),
    ("pcmu", ["a=ptime:40", "a=maxptime:20"], 20),
    ("opus", ["a=ptime:11"], 10),   # Opus has no 11 ms frame: the largest below it
    ("opus", ["a=ptime:30"], 20),
    ("opus", ["a=ptime:5"], 10),    # less than any frame we send: our smallest
    ("opus", ["a=ptime:120"], 60),
    ("pcmu", [], 20),
])
def test_the_packet_time_we_send_is_the_one_the_peer_asked_for(
        codec: str, attributes: list[str], ptime: int) -> None:
    formats = "0" if codec == "pcmu" else "111"
    rtpmap = [] if codec == "pcmu" else ["a=rtpmap:111 opus/48000/2"]
    offer = offer_of(f"m=audio 4000 RTP/AVP {formats}", *rtpmap, *attributes)
    answer, agreed = answer_offer(offer, [codec], "192.0.2.2", 40000, 1, 1)
    assert agreed.ptime == ptime
    assert answer.media[0].attribute("ptime") == str(ptime)  # and we ask for the same
    reread = read_answer(offer, [codec])  # the same rules when it is an answer to us
    assert reread.ptime == ptime


def test_an_sdp_that_does_not_parse_is_not_acceptable_here() -> None:
    with pytest.raises(SdpError) as raised:
        SessionDescription.parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n")
    assert raised.value.status == 488


# --- SRTP keys in the SDP (RFC 4568) ---------------------------------------------------------

def test_offers_carry_keys_as_each_srtp_mode_says() -> None:
    from softphone.sdp.crypto import parse_crypto

    plain = make_offer(["pcmu"], "192.0.2.1", 4000, 1, 1)
    optional = make_offer(["pcmu"], "192.0.2.1", 4000, 1, 1, srtp="optional")
    mandatory = make_offer(["pcmu"], "192.0.2.1", 4000, 1, 1, srtp="mandatory")
    assert plain.media[0].proto == optional.media[0].proto == "RTP/AVP"
    assert mandatory.media[0].proto == "RTP/SAVP"
    assert not plain.media[0].attribute_values("crypto")
    lines = mandatory.media[0].attribute_values("crypto")
    suites = [line.split()[1] for line in lines]
    assert suites == ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_32"]
    assert all(parse_crypto(line) is not None for line in lines)
    again = make_offer(["pcmu"], "192.0.2.1", 4000, 1, 2, srtp="mandatory")
    assert again.media[0].attribute_values("crypto") != lines  # every offer: fresh keys
    assert SessionDescription.parse(bytes(mandatory)) == mandatory


@pytest.mark.parametrize(("offer_mode", "answer_mode", "outcome"), [
    ("mandatory", "mandatory", "srtp"), ("mandatory", "optional", "srtp"),
    ("mandatory", "off", 488), ("optional", "off", "plain"), ("optional", "optional", "srtp"),
    ("optional", "mandatory", "srtp"), ("off", "mandatory", 488), ("off", "optional", "plain"),
])
def test_answers_meet_offers_or_refuse_them(offer_mode: str, answer_mode: str,
                                            outcome: object) -> None:
    offer = make_offer(["pcmu"], "192.0.2.1", 4000, 1, 1, srtp=offer_mode)
    if outcome == 488:
        with pytest.raises(SdpError) as refused:
            answer_offer(offer, ["pcmu"], "192.0.2.2", 5000, 2, 1, srtp=answer_mode)
        assert refused.value.status == 488
        return
    answer, agreed = answer_offer(offer, ["pcmu"], "192.0.2.2", 5000, 2, 1, srtp=answer_mode)
    assert answer.media[0].proto == offer.media[0].proto
    ours = read_answer(answer, ["pcmu"], offer)
    if outcome == "plain":
        assert agreed.srtp is None and ours.srtp is None
        return
    assert agreed.srtp is not None and ours.srtp is not None
    assert agreed.srtp.suite.name == "AES_CM_128_HMAC_SHA1_80"  # the offerer's first
    assert (agreed.srtp.local, agreed.srtp.remote) == (ours.srtp.remote, ours.srtp.local)


def test_a_suite_we_lack_or_a_broken_key_is_ignored_and_an_answer_must_match() -> None:
    offer = offer_of("m=audio 4000 RTP/SAVP 0",
                     "a=crypto:1 F8_128_HMAC_SHA1_80 "
                     "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
                     "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:not base64!",
                     "a=crypto:3 AEAD_AES_128_GCM inline:"
                     "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==")
    answer, agreed = answer_offer(offer, ["pcmu"], "192.0.2.2", 5000, 2, 1, srtp="mandatory")
    assert agreed.srtp is not None and agreed.srtp.suite.name == "AEAD_AES_128_GCM"
    assert answer.media[0].attribute_values("crypto")[0].startswith("3 AEAD_AES_128_GCM ")
    ours = make_offer(["pcmu"], "192.0.2.1", 4000, 1, 1, srtp="mandatory")
    foreign = answer_offer(make_offer(["pcmu"], "192.0.2.9", 4000, 9, 1, srtp="mandatory"),
                           ["pcmu"], "192.0.2.2", 5000, 2, 1, srtp="mandatory")[0]
    crypto = foreign.media[0].attribute_values("crypto")[0]
    foreign.media[0].attributes = [(k, "7" + v[1:] if k == "crypto" and v else v)
                                   for k, v in foreign.media[0].attributes]  # a tag never offered
    assert crypto.startswith("1 ")
    with pytest.raises(SdpError, match="matches none we offered"):
        read_answer(foreign, ["pcmu"], ours)
    plain = answer_offer(make_offer(["pcmu"], "192.0.2.1", 4000, 1, 1), ["pcmu"],
                         "192.0.2.2", 5000, 2, 1)[0]
    with pytest.raises(SdpError, match="refused SRTP"):
        read_answer(plain, ["pcmu"], ours)
