"""G.711 bit-exactness, WAV ports, tones and the audio quality measures."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from softphone.media.codecs import make_codec
from softphone.media.codecs.g711 import ALAW_DECODE, ALAW_ENCODE, ULAW_DECODE, ULAW_ENCODE
from softphone.media.ports import (
    AudioSource,
    BothWays,
    CallWaiting,
    Echo,
    FrameCycle,
    Recorder,
    Silence,
    Tone,
)
from softphone.media.quality import dominant_frequency, similarity, tone_level
from softphone.media.wav import WavError, WavSink, WavSource, load_wav
from tests.conftest import TESTDATA


@pytest.mark.parametrize(("law", "encode", "decode"), [
    ("ulaw", ULAW_ENCODE, ULAW_DECODE), ("alaw", ALAW_ENCODE, ALAW_DECODE)])
def test_g711_tables_are_bit_exact(law: str, encode: np.ndarray, decode: np.ndarray) -> None:
    folder = TESTDATA / "g711"
    reference = np.frombuffer((folder / f"{law}_encode_all16.bin").read_bytes(), np.uint8)
    assert np.array_equal(encode, reference)
    rows = (folder / f"{law}_decode.tsv").read_text().split("\n")[1:]
    table = {int(code, 16): int(value) for code, value in (r.split() for r in rows if r)}
    assert [int(decode[c]) for c in range(256)] == [table[c] for c in range(256)]


def test_g711_anchor_values() -> None:
    pcmu, pcma = make_codec("pcmu"), make_codec("pcma")
    assert pcmu.encode(np.array([0, 32767, -32768], np.int16)) == b"\xff\x80\x00"
    assert pcma.encode(np.array([0, 32767, -32768], np.int16)) == b"\xd5\xaa\x2a"
    assert list(pcma.decode(b"\xd5\x55")) == [8, -8]


@pytest.mark.parametrize(("key", "table"), [("pcmu", ULAW_ENCODE), ("pcma", ALAW_ENCODE)])
def test_g711_encoder_agrees_with_the_table_for_every_frame_remembered_or_not(
        key: str, table: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoders remember the payloads of frames they met (a tone repeats every second): a
    frame seen again, reused in place with new samples, or arriving after the memory is full
    is encoded exactly as the table says."""
    from softphone.media.codecs import g711

    monkeypatch.setattr(g711, "MEMO_FRAMES", len(g711._ULAW_MEMO) + len(g711._ALAW_MEMO) + 50)
    codec = make_codec(key)
    rng = np.random.default_rng(7)
    frames = [rng.integers(-32768, 32768, 160).astype(np.int16) for _ in range(100)]
    reused = np.zeros(160, np.int16)
    for frame in frames + frames[:10]:
        reused[:] = frame  # one buffer refilled, as a ring-buffered source does
        for samples in (frame, reused, frame[::-1]):
            assert codec.encode(samples) == bytes(table[samples.astype(np.int32) + 32768])


def test_g711_concealment_fades_the_last_frame() -> None:
    codec = make_codec("pcmu")
    frame = codec.decode(codec.encode(np.full(160, 8000, np.int16)))
    first, second = codec.conceal(160), codec.conceal(160)
    assert 0 < abs(int(second[0])) < abs(int(first[0])) < abs(int(frame[0]))


def test_g722_carries_wideband_audio_in_half_the_bytes() -> None:
    """A 6 kHz tone, which no 8 kHz codec can carry, survives G.722 at 64 kbit/s; a 20 ms
    frame is 320 samples in 160 bytes, and a lost one repeats the last, fading."""
    codec = make_codec("g722")
    tone = Tone(6000, level_dbfs=-12)
    payloads = [codec.encode(tone.read(320, 16000)) for _ in range(50)]
    assert {len(p) for p in payloads} == {160}
    decoded = np.concatenate([codec.decode(p) for p in payloads])
    assert len(decoded) == 16000
    assert abs(dominant_frequency(decoded[3200:], 16000) - 6000) < 10
    assert tone_level(decoded[3200:], 16000, 6000) > 0.9
    first, second = codec.conceal(320), codec.conceal(320)
    assert 0 < np.abs(second).max() < np.abs(first).max() < np.abs(decoded[-320:]).max() + 1


def test_opus_encodes_as_the_peer_asked_in_its_fmtp() -> None:
    """RFC 7587 6.1: the receiver's parameters bound what we send."""
    from softphone.media.codecs.opus import Opus

    default = Opus()
    assert (default.setting("inband_fec"), default.setting("dtx")) == (1, 0)
    frugal = Opus(peer={"maxaveragebitrate": "12000", "usedtx": "1", "useinbandfec": "0",
                        "maxplaybackrate": "16000", "cbr": "1"})
    assert (frugal.setting("bitrate"), frugal.setting("dtx"), frugal.setting("inband_fec"),
            frugal.setting("vbr")) == (12000, 1, 0, 0)
    assert frugal.setting("max_bandwidth") == 1103  # OPUS_BANDWIDTH_WIDEBAND
    tone = Tone(440, level_dbfs=-12)
    sizes = {name: np.mean([len(codec.encode(tone.read(960, 48000))) for _ in range(50)])
             for name, codec in (("default", default), ("frugal", frugal))}
    assert sizes["frugal"] <= 12000 / 8 / 50 * 1.1 < sizes["default"]
    assert Opus(peer={"maxaveragebitrate": "1"}).setting("bitrate") == 6000  # clamped


def test_opus_round_trip_keeps_a_tone() -> None:
    codec = make_codec("opus")
    tone = Tone(440, level_dbfs=-12)
    decoded = np.concatenate([codec.decode(codec.encode(tone.read(960, 48000)))
                              for _ in range(50)])
    assert abs(dominant_frequency(decoded[4800:], 48000) - 440) < 5
    assert len(codec.conceal(960)) == 960


def write_wav(path: Path, rate: int, width: int, channels: int, seconds: float = 0.5) -> None:
    t = np.arange(int(rate * seconds)) / rate
    mono = np.sin(2 * np.pi * 500 * t) * 0.5
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        samples = np.repeat(mono, channels)
        if width == 1:
            out.writeframes((samples * 127 + 128).astype(np.uint8).tobytes())
        elif width == 2:
            out.writeframes((samples * 32767).astype("<i2").tobytes())
        else:
            ints = (samples * 2**23).astype("<i4")
            out.writeframes(b"".join(int(v).to_bytes(4, "little", signed=True)[:3]
                                     for v in ints))


@pytest.mark.parametrize(("rate", "width", "channels"), [
    (8000, 2, 1), (44100, 2, 2), (16000, 1, 1), (48000, 3, 2)])
def test_wav_source_reads_any_pcm_and_resamples(tmp_path: Path, rate: int, width: int,
                                                channels: int) -> None:
    path = tmp_path / "in.wav"
    write_wav(path, rate, width, channels)
    source = WavSource(path)
    source.prepare(8000)
    audio = np.concatenate([source.read(160, 8000) for _ in range(25)])
    assert abs(dominant_frequency(audio, 8000) - 500) < 10
    assert source.finished
    assert not source.read(160, 8000).any()  # then silence


def test_wav_sources_of_one_file_share_its_decoding_until_the_file_changes(
        tmp_path: Path) -> None:
    """Hundreds of calls of a load test play one file: it is decoded and resampled once,
    each call still reads from its own position, and a rewritten file is read afresh."""
    path = tmp_path / "prompt.wav"
    write_wav(path, 16000, 2, 1)
    first, second = WavSource(path), WavSource(path)
    first.prepare(8000)
    second.prepare(8000)
    assert first._at(8000) is second._at(8000) and not first._at(8000).flags.writeable
    ramp_path = tmp_path / "ramp.wav"
    ramp = WavSink(ramp_path)
    ramp.write(np.arange(8000, dtype=np.int16), 8000)
    ramp.close()
    ahead, behind = WavSource(ramp_path), WavSource(ramp_path)
    ahead.read(160, 8000)
    assert ahead.read(160, 8000)[0] == 160 and behind.read(160, 8000)[0] == 0
    write_wav(path, 16000, 2, 1, seconds=1.0)
    rewritten = WavSource(path)
    assert len(rewritten.samples) == 16000 and rewritten._at(8000) is not first._at(8000)
    with pytest.raises(WavError, match="missing.wav"):
        WavSource(tmp_path / "missing.wav")


def test_wav_sink_is_valid_at_every_moment(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    sink = WavSink(path)
    tone = Tone(1000)
    for frames in range(1, 4):
        sink.write(tone.read(160, 8000), 8000)
        with wave.open(str(path), "rb") as partial:  # readable while still being written
            assert partial.getnframes() == 160 * frames and partial.getframerate() == 8000
    sink.close()
    samples, rate = load_wav(path)
    assert rate == 8000 and len(samples) == 480
    empty = WavSink(tmp_path / "empty.wav")
    empty.close()
    with wave.open(str(tmp_path / "empty.wav"), "rb") as nothing:
        assert nothing.getnframes() == 0


@pytest.mark.parametrize("sizes", [
    [160] * 120,  # whole frames that divide the second: handed out from the second cut once
    [160] * 7 + [80] + [160] * 60 + [333] * 30 + [160] * 20,  # off the frame grid and back
    [441] * 40,  # frames that do not divide the second
])
def test_a_tone_read_in_frames_is_one_continuous_sine(sizes: list[int]) -> None:
    tone = Tone(440, level_dbfs=-6.0)
    read = np.concatenate([tone.read(size, 8000) for size in sizes])
    n = np.arange(len(read))
    expected = (32767 * 10 ** (-6 / 20) * np.sin(2 * np.pi * 440 * n / 8000)).astype(np.int16)
    assert np.array_equal(read, expected)


def ramp_wav(path: Path, samples: int) -> Path:
    sink = WavSink(path)
    sink.write((np.arange(samples) * 13 % 20000 - 10000).astype(np.int16), 8000)
    sink.close()
    return path


def walk(cycle: FrameCycle, count: int) -> tuple[list[npt.NDArray[np.int16]], int]:
    """The next ``count`` frames a cycle gives, and the index of the one after them."""
    index, frames = cycle.start, []
    for _ in range(count):
        frames.append(cycle.frames[index])
        index = cycle.after(index)
    return frames, index


@pytest.mark.parametrize(("make", "read_first"), [
    (lambda tmp: Tone(443), 0), (lambda tmp: Tone(443), 37),  # round the second, and again
    (lambda tmp: Silence(), 3),
    (lambda tmp: WavSource(ramp_wav(tmp / "once.wav", 8000 + 70)), 2),  # then padding, silence
    (lambda tmp: WavSource(ramp_wav(tmp / "loop.wav", 4800), loop=True), 5),  # 30 frames
])
def test_a_source_cycle_gives_the_frames_its_reads_would_and_catches_the_source_up(
        tmp_path: Path, make: Callable[[Path], AudioSource], read_first: int) -> None:
    """Two of the same source: one read frame by frame, the other's cycle walked (three
    times round a short loop, past a file's end into silence). Same frames; and the cycled
    source, caught up, reads on where the cycle got to, at any size."""
    cycled, read = make(tmp_path), make(tmp_path)
    for source in (cycled, read):
        for _ in range(read_first):
            source.read(160, 8000)
    cycle = cycled.cycle(160, 8000)  # type: ignore[attr-defined]
    assert isinstance(cycle, FrameCycle)
    frames, index = walk(cycle, 90)
    expected = [read.read(160, 8000) for _ in range(90)]
    assert all(np.array_equal(got, want) for got, want in zip(frames, expected, strict=True))
    assert not any(frame.flags.writeable for frame in frames)
    cycle.catch_up(cycled, index)
    for size in (160, 100, 160):
        assert np.array_equal(cycled.read(size, 8000), read.read(size, 8000))


def test_a_source_between_frames_or_a_loop_they_do_not_divide_has_no_cycle(
        tmp_path: Path) -> None:
    tone = Tone(440)
    tone.read(80, 8000)
    assert tone.cycle(160, 8000) is None and tone.cycle(80, 8000) is not None
    assert Tone(440).cycle(441, 8000) is None  # frames that do not divide the second
    assert WavSource(ramp_wav(tmp_path / "odd.wav", 4810), loop=True).cycle(160, 8000) is None
    once = WavSource(ramp_wav(tmp_path / "once.wav", 4810))
    once.read(100, 8000)
    assert once.cycle(160, 8000) is None
    once.read(5000, 8000)  # past the end: silence from here, whatever the grid
    finished = once.cycle(160, 8000)
    assert finished is not None and not finished.frames[finished.start].any()


def test_echo_returns_what_it_was_given() -> None:
    echo = Echo()
    echo.write(np.arange(100, dtype=np.int16), 8000)
    assert list(echo.read(60, 8000)) == list(range(60))
    assert list(echo.read(60, 8000)[:40]) == list(range(60, 100))


def test_quality_measures() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=4000)
    delayed = np.concatenate([np.zeros(250), reference * 0.3 + rng.normal(size=4000) * 0.05])
    match = similarity(reference, delayed)
    assert match.lag == 250 and match.score > 0.95
    assert similarity(reference, rng.normal(size=4000)).score < 0.2
    tone = Tone(1209).read(4000, 8000)
    assert tone_level(tone, 8000, 1209) > 0.9 and tone_level(tone, 8000, 697) < 0.01


def test_opus_fec_rebuilds_a_lost_frame_better_than_concealment() -> None:
    from softphone.media.codecs.opus import Opus

    rate, frame = 48000, 960
    t = np.arange(frame * 30) / rate
    chirp = (8000 * np.sin(2 * np.pi * (300 + 400 * t) * t)).astype(np.int16)
    encoder = Opus()
    payloads = [encoder.encode(chirp[i * frame : (i + 1) * frame]) for i in range(30)]
    lost = 20

    def decode(fec: bool) -> np.ndarray:
        decoder = Opus()
        for payload in payloads[:lost]:
            decoder.decode(payload)
        return decoder.recover(payloads[lost + 1], frame) if fec else decoder.conceal(frame)

    reference = make_codec("opus")
    for payload in payloads[:lost]:
        reference.decode(payload)
    original = reference.decode(payloads[lost])
    with_fec = similarity(original, decode(True), max_lag=20).score
    without = similarity(original, decode(False), max_lag=20).score
    assert with_fec > without and with_fec > 0.5


def test_mos_estimate_follows_the_e_model() -> None:
    from softphone.media.quality import level_dbfs, mos_estimate

    clean = mos_estimate("PCMU", 0.0, 20)
    assert 4.3 <= clean <= 4.5  # G.711, no loss, little delay: R about 93
    assert mos_estimate("PCMU", 0.05, 20) < clean - 0.8  # 5% loss hurts G.711 a lot
    assert mos_estimate("opus", 0.05, 20) > mos_estimate("PCMU", 0.05, 20)  # FEC/PLC help
    assert mos_estimate("PCMU", 0.0, 400) < mos_estimate("PCMU", 0.0, 100)
    assert level_dbfs(np.zeros(160, np.int16)) == -96.0
    assert abs(level_dbfs(Tone(1000, level_dbfs=-20).read(8000, 8000)) + 23.0) < 0.1


def test_inband_dtmf_detection_on_synthetic_signals() -> None:
    from softphone.media.ports import DtmfTones
    from softphone.media.quality import detect_dtmf

    def render(source: object, rate: int, frames: int) -> np.ndarray:
        return np.concatenate([source.read(rate // 50, rate) for _ in range(frames)])  # type: ignore[attr-defined]

    for rate in (8000, 16000, 48000):
        assert detect_dtmf(render(DtmfTones("0123456789*#ABCD"), rate, 120), rate) == \
            "0123456789*#ABCD"
    noisy = render(DtmfTones("59#"), 8000, 30).astype(np.float64)
    noisy += np.random.default_rng(3).normal(scale=300, size=len(noisy))
    assert detect_dtmf(noisy, 8000) == "59#"
    assert detect_dtmf(render(Tone(697), 8000, 50), 8000) == ""  # one tone is no digit
    assert detect_dtmf(np.zeros(8000), 8000) == ""


def test_float_and_other_common_wav_formats_play(tmp_path: Path) -> None:
    import soundfile

    t = np.arange(8000) / 8000
    tone = 0.5 * np.sin(2 * np.pi * 700 * t)
    for subtype in ("FLOAT", "DOUBLE", "PCM_32", "ULAW"):
        path = tmp_path / f"{subtype}.wav"
        soundfile.write(str(path), tone, 8000, subtype=subtype)
        samples, rate = load_wav(path)
        assert rate == 8000 and len(samples) == 8000, subtype
        assert abs(dominant_frequency(samples, 8000) - 700) < 10, subtype
        assert 14000 < np.abs(samples).max() < 17000, subtype  # 0.5 of full scale


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file (0 bytes), not a WAV"),
    (b"this is not audio at all, just text" * 10, "not audio libsndfile can read"),
])
def test_unreadable_audio_names_the_file_and_the_defect(tmp_path: Path, content: bytes,
                                                        message: str) -> None:
    path = tmp_path / "prompt.wav"
    path.write_bytes(content)
    with pytest.raises(WavError) as raised:
        load_wav(path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_a_truncated_wav_says_how_much_is_missing(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole.wav", tmp_path / "cut.wav"
    sink = WavSink(whole)
    sink.write(np.ones(8000, dtype=np.int16), 8000)
    sink.close()
    cut.write_bytes(whole.read_bytes()[:1044])
    with pytest.raises(WavError, match=r"cut.wav: truncated: its header promises 16000 bytes "
                                       r"of audio, the file holds 1000"):
        load_wav(cut)


# --- both ways in one stereo file ----------------------------------------------------------

def _frame(value: int, samples: int = 160) -> npt.NDArray[np.int16]:
    return np.full(samples, value, dtype=np.int16)


def test_both_ways_puts_what_we_send_left_and_what_we_hear_right() -> None:
    stereo = Recorder()
    both = BothWays(stereo)
    source = both.tap(Tone(500))
    source.prepare(8000)
    for _ in range(50):
        sent = source.read(160, 8000)
        both.write(_frame(1000), 8000)
        assert len(sent) == 160
    recorded = np.concatenate(stereo.frames)
    assert recorded.shape == (8000, 2)
    assert tone_level(recorded[:, 0], 8000, 500) > 0.9
    assert set(recorded[:, 1].tolist()) == {1000}


def test_both_ways_keeps_step_when_one_side_goes_silent() -> None:
    stereo = Recorder()
    both = BothWays(stereo)
    for _ in range(10):  # both sides
        both.sent(_frame(1), 8000)
        both.write(_frame(2), 8000)
    for _ in range(50):  # the peer holds us: nothing heard for a second
        both.sent(_frame(1), 8000)
    recorded = np.concatenate(stereo.frames)
    assert len(recorded) >= 60 * 160 - int(BothWays.MAX_LEAD * 8000) - 160
    assert (recorded[:, 0] == 1).all()
    heard = recorded[:, 1]
    assert (heard[:1600] == 2).all() and (heard[1600:] == 0).all()  # silence, in step


def test_the_call_waiting_tone_beeps_beside_the_conversation_every_period() -> None:
    """0.3 s of 440 Hz every 3 s mixed into what is heard; the voice goes on under it."""
    heard = Recorder()
    waiting = CallWaiting(heard, period=3.0)
    voice = Tone(1000, level_dbfs=-20.0)
    for _ in range(4 * 50):  # four seconds of 20 ms frames at 8 kHz
        waiting.write(voice.read(160, 8000), 8000)
    samples = heard.samples
    assert tone_level(samples[:2000], 8000, 440) > 0.2        # the first burst
    assert tone_level(samples[4000:20000], 8000, 440) < 0.01   # then quiet until 3 s
    assert tone_level(samples[24000:26000], 8000, 440) > 0.2  # the next burst
    assert tone_level(samples[4000:20000], 8000, 1000) > 0.5   # the call still heard
