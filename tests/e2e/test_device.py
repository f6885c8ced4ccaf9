"""The sound-device path through a real PortAudio device: a private PulseAudio whose null
sinks stand in for the microphone and the speaker (see tests/peers.pulseaudio)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from softphone.media.ports import Tone
from softphone.media.quality import dominant_frequency, level_dbfs, similarity, tone_level
from softphone.media.wav import WavSink, load_wav, resample
from tests.e2e.test_audio import voice_like
from tests.peers import loop_speaker_into_microphone, pulseaudio

pytestmark = pytest.mark.peers


def tone_file(path: Path, hz: float, seconds: float) -> None:
    sink = WavSink(path)
    tone = Tone(hz, level_dbfs=-6)
    for _ in range(int(seconds * 50)):
        sink.write(tone.read(160, 8000), 8000)
    sink.close()


# These null sinks have no echo path from the speaker to the microphone. The canceller (on by
# default for a device used both ways) then sees the far end talk and a steady near-end tone
# it cannot explain: while it converges it attenuates the tone in stretches, as a canceller
# does in double talk. The device path is judged here without it; the canceller is judged
# with a real echo path below and in tests/unit/test_echo.py.
NO_ECHO_PATH = ["--no-aec"]


@pytest.mark.parametrize("device_options", [
    ["--device", "pulse"],
    ["--capture-device", "pulse", "--playback-device", "default"],  # each way its own
], ids=["one device", "capture and playback apart"])
def test_call_through_the_sound_card_both_ways(tmp_path: Path,
                                               device_options: list[str]) -> None:
    with pulseaudio(tmp_path) as env:
        devices = subprocess.run(
            [sys.executable, "-c", "from softphone.media.device import list_devices;"
             "print([d['name'] for d in list_devices()])"],
            env=env, capture_output=True, text=True, timeout=30).stdout
        assert "pulse" in devices  # PortAudio sees the private server through ALSA's plugin

        microphone, speaker = tmp_path / "microphone.wav", tmp_path / "speaker.wav"
        sent, heard = tmp_path / "sent.wav", tmp_path / "heard.wav"
        tone_file(microphone, 600, seconds=20)  # past the call's end, however slow its start
        voice_like(sent)
        feeding = subprocess.Popen(["paplay", "-d", "mic", str(microphone)], env=env)
        recording = subprocess.Popen(
            ["parec", "-d", "speaker.monitor", "--rate=8000", "--channels=1",
             "--format=s16le", "--file-format=wav", str(speaker)], env=env)
        try:
            call_the_card_side(env, [*device_options, *NO_ECHO_PATH], sent, heard, seconds=6)
            time.sleep(0.5)
        finally:
            for process in (feeding, recording):
                process.terminate()
                process.wait()

    # The microphone's 600 Hz reached the caller through the card side's capture path (after
    # the second or so a fresh null sink can take to render its first audio).
    received, rate = load_wav(heard)
    middle = received[rate * 2 : rate * 5]
    assert abs(dominant_frequency(middle, rate) - 600) < 10
    # in 0.1 s windows (10 Hz bins): the drift steering may shift it by up to 0.2% (1.2 Hz),
    # which a 3 s window's 0.33 Hz bins would count as another frequency
    windows = [tone_level(middle[start : start + rate // 10], rate, 600)
               for start in range(0, len(middle) - rate // 10, rate // 10)]
    assert float(np.median(windows)) > 0.5, [round(level, 2) for level in windows]
    # The caller's voice-like signal came out of the card side's speaker: past the plugin's
    # start-up, quarter-second stretches of it are found there intact. Not every stretch:
    # the start-up's backlog is dropped. And time-scaled: the drift steering plays it up to
    # 0.2% faster or slower (inaudible), which over a quarter second moves its 900 Hz part
    # by a third of a cycle, so each stretch is looked for at the scales the steering uses.
    played, played_rate = load_wav(speaker)
    heard_there = resample(played, played_rate, 8000)
    reference = resample(*load_wav(sent), 8000)
    scores = [max(similarity(scaled(reference[int(start * 8000) : int((start + 0.25) * 8000)],
                                    scale), heard_there).score
                  for scale in np.linspace(0.998, 1.002, 9))
              for start in np.arange(1.5, 5.0, 0.25)]
    assert max(scores) > 0.95, scores


SPEECH = Path(__file__).parent.parent / "data" / "speech" / "far.wav"


def test_the_canceller_takes_the_far_ends_echo_out_of_a_real_device(tmp_path: Path) -> None:
    """The private PulseAudio loops the card side's speaker into its microphone (a speakerphone
    in a room): without the canceller the caller hears its own speech come back; with it (the
    default for a device used both ways) that echo is 25 dB quieter, the issue's ERLE aim."""
    with pulseaudio(tmp_path) as env:
        loop_speaker_into_microphone(env)
        echo_dbfs = {aec: echo_heard_by_caller(tmp_path / f"aec-{aec}.wav", env, aec)
                     for aec in ("on", "off")}
    assert echo_dbfs["off"] > -40, echo_dbfs  # the echo path is there: the far end's speech
    assert echo_dbfs["on"] < echo_dbfs["off"] - 25, echo_dbfs


def echo_heard_by_caller(heard: Path, env: dict[str, str], aec: str) -> float:
    """The median level, second by second past the first two (the canceller's convergence),
    of what a caller playing speech to the sound-card side hears back from it."""
    call_the_card_side(env, ["--device", "pulse", *(["--no-aec"] if aec == "off" else [])],
                       SPEECH, heard, seconds=9)
    received, rate = load_wav(heard)
    return float(np.median([level_dbfs(received[start : start + rate])
                            for start in range(2 * rate, len(received) - rate, rate)]))


def call_the_card_side(env: dict[str, str], card_options: list[str], play: Path,
                       record: Path, seconds: int) -> None:
    """A G.711 call for ``seconds`` from a caller playing ``play`` and recording ``record``
    to an answerer on the sound card (``card_options``); both must end well."""
    card_side = subprocess.Popen(
        [sys.executable, "-m", "softphone", "answer", "--listen", "127.0.0.1:0",
         "--auto-answer", "--codec", "pcmu", "--max-calls", "1", "--json", *card_options],
        env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert card_side.stdout is not None
        port = json.loads(card_side.stdout.readline())["port"]
        caller = subprocess.run(
            [sys.executable, "-m", "softphone", "call", f"sip:bob@127.0.0.1:{port}",
             "--play", str(play), "--record", str(record), "--codec", "pcmu",
             "--duration", str(seconds), "--json"], capture_output=True, text=True,
            timeout=seconds + 30)
        assert caller.returncode == 0, caller.stderr
        assert card_side.wait(15) == 0
    finally:
        if card_side.poll() is None:
            card_side.terminate()
        card_side.wait()
        if card_side.stdout is not None:
            card_side.stdout.close()


def scaled(stretch: np.ndarray, scale: float) -> np.ndarray:
    """The stretch played ``scale`` times as long (a drift-steered speaker's view of it)."""
    return np.asarray(soxr.resample(stretch, 8000, 8000 * scale), dtype=np.int16)


PROBE = """
import sys, time
import numpy as np
from softphone.media.device import SoundDevice
from softphone.media.quality import dominant_frequency
card = SoundDevice("pulse", device_rate=48000)
card.prepare(8000)
captured = []
start = time.monotonic()
while time.monotonic() - start < 3.5:
    captured.append(card.read(160, 8000))
    time.sleep(0.02)
card.close()
tail = np.concatenate(captured)[-8000:]
print(card.rate, round(dominant_frequency(tail, 8000)))
"""


def test_a_device_at_another_rate_is_resampled_to_the_call(tmp_path: Path) -> None:
    with pulseaudio(tmp_path) as env:
        microphone = tmp_path / "microphone.wav"
        tone_file(microphone, 600, seconds=8)
        feeding = subprocess.Popen(["paplay", "-d", "mic", str(microphone)], env=env)
        try:
            result = subprocess.run([sys.executable, "-c", PROBE], env=env,
                                    capture_output=True, text=True, timeout=30)
        finally:
            feeding.terminate()
            feeding.wait()
    device_rate, frequency = result.stdout.split()
    assert device_rate == "48000"  # the card ran at its rate, the call got 8 kHz frames
    assert abs(int(frequency) - 600) <= 10


def test_devices_lists_the_pulse_devices_and_marks_defaults(tmp_path: Path) -> None:
    with pulseaudio(tmp_path) as env:
        listed = subprocess.run([sys.executable, "-m", "softphone", "devices", "--json"],
                                env=env, capture_output=True, text=True, timeout=30)
        table = subprocess.run([sys.executable, "-m", "softphone", "devices"], env=env,
                               capture_output=True, text=True, timeout=30)
    devices = [json.loads(line) for line in listed.stdout.splitlines()]
    names = {d["name"] for d in devices}
    assert {"pulse", "default"} <= names
    assert any(d["default_input"] for d in devices) and any(d["default_output"] for d in devices)
    assert all(d["inputs"] > 0 and d["outputs"] > 0 and d["rate"] > 0 for d in devices)
    assert "default input" in table.stdout and "pulse" in table.stdout


def test_a_capture_or_playback_device_that_is_not_there_is_named(tmp_path: Path) -> None:
    with pulseaudio(tmp_path) as env:
        results = [subprocess.run(
            [sys.executable, "-m", "softphone", "call", "sip:bob@127.0.0.1:5", option,
             "no-such-card"], env=env, capture_output=True, text=True, timeout=30)
            for option in ("--capture-device", "--playback-device")]
    for result, option in zip(results, ("--capture-device", "--playback-device"), strict=True):
        assert result.returncode == 2
        assert option in result.stderr and "no device named like 'no-such-card'" in \
            result.stderr


def test_devices_test_plays_a_tone_and_shows_what_the_microphone_hears(tmp_path: Path) -> None:
    with pulseaudio(tmp_path) as env:
        microphone, speaker = tmp_path / "microphone.wav", tmp_path / "speaker.wav"
        tone_file(microphone, 600, seconds=8)
        feeding = subprocess.Popen(["paplay", "-d", "mic", str(microphone)], env=env)
        recording = subprocess.Popen(
            ["parec", "-d", "speaker.monitor", "--rate=8000", "--channels=1",
             "--format=s16le", "--file-format=wav", str(speaker)], env=env)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "softphone", "devices", "--test", "--seconds", "4",
                 "--capture-device", "pulse", "--playback-device", "default", "--json"],
                env=env, capture_output=True, text=True, timeout=60)
            time.sleep(0.5)
        finally:
            for process in (feeding, recording):
                process.terminate()
                process.wait()
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    levels = [e["dbfs"] for e in events if e["event"] == "mic_level"]
    assert len(levels) == 20  # one every 200 ms
    assert max(levels[-5:]) > -20  # the fed -6 dBFS tone, once ALSA's plugin delivers
    assert events[-1]["event"] == "device_test" and events[-1]["mic_peak_dbfs"] > -20
    played, rate = load_wav(speaker)
    assert abs(dominant_frequency(played[rate:], rate) - 440) < 10  # the tone came out


def test_devices_test_without_a_device_says_so() -> None:
    result = subprocess.run([sys.executable, "-m", "softphone", "devices", "--test",
                             "--seconds", "0.5"], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "PULSE_SERVER": "unix:/nonexistent"})
    assert result.returncode == 2
    assert result.stderr.startswith("softphone: error: ")


DRIFT_PROBE = """
import json, sys, time
import numpy as np
from softphone.media.device import SoundDevice
card = SoundDevice("pulse", compensate_drift=sys.argv[1] == "on")
card.prepare(8000)
tone = (np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 8000).astype(np.int16)
start, frames, fills, underruns_at_half = time.monotonic(), 0, [], None
while (elapsed := time.monotonic() - start) < 16:
    card.read(160, 8000)
    card.write(tone[frames % 50 * 160:(frames % 50 + 1) * 160], 8000)
    frames += 1
    if elapsed > 8:
        if underruns_at_half is None:
            underruns_at_half = card.capture.underruns + card.playback.underruns
        fills.append(card.playback.available * 1000 / card.rate)
    time.sleep(max(0.0, start + frames * 0.02 - time.monotonic()))
underruns = card.capture.underruns + card.playback.underruns - underruns_at_half
card.close()  # (stopping, PortAudio may pull once more from an emptied ring)
print(json.dumps({"playback_ms": max(fills), "underrun_ms": underruns * 1000 / card.rate}))
"""


def test_drift_steering_keeps_a_real_devices_speaker_queue_short(tmp_path: Path) -> None:
    """Through ALSA's pulse plugin the speaker starts late and pulls in bursts: unsteered,
    what the call writes queues up to the whole ring (half a second of delay); steered, the
    queue stays near its target and, once settled, neither ring runs dry."""
    with pulseaudio(tmp_path) as env:
        runs = {mode: json.loads(subprocess.run(
            [sys.executable, "-c", DRIFT_PROBE, mode], env=env, capture_output=True,
            text=True, timeout=60, check=True).stdout) for mode in ("on", "off")}
    assert runs["off"]["playback_ms"] > 300, runs
    assert runs["on"]["playback_ms"] < 200, runs
    # under 1% of the settled half (8 s): the ring raises its target a block at each underrun
    assert runs["on"]["underrun_ms"] < 8 * 1000 * 0.01, runs


def test_devices_latency_times_clicks_looped_back_from_the_speaker(tmp_path: Path) -> None:
    """The private PulseAudio loops the speaker's output back into the microphone (a room
    with the phone's speaker next to its microphone): the clicks come back, and the round
    trip holds softphone's own buffering and the rest of the path."""
    with pulseaudio(tmp_path) as env:
        loop_speaker_into_microphone(env)
        result = subprocess.run(
            [sys.executable, "-m", "softphone", "devices", "--latency", "--seconds", "6",
             "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["clicks"] == 12 and measured["found"] >= 6, measured
    assert measured["softphone_ms"] < measured["round_trip_ms"] < 1500, measured
    assert measured["first_audio_ms"] is not None and measured["first_audio_ms"] < 5000


def test_devices_latency_says_when_no_click_comes_back(tmp_path: Path) -> None:
    with pulseaudio(tmp_path) as env:  # the speaker and the microphone are not joined
        result = subprocess.run(
            [sys.executable, "-m", "softphone", "devices", "--latency", "--seconds", "2"],
            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "none of 4 clicks came back" in result.stdout
