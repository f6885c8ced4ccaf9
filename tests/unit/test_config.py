"""TOML profiles: the samples load, and every mistake is one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.bundled import EXAMPLES as EXAMPLES_DIR
from softphone.config import ConfigError, Profile, load_profile

SAMPLES = sorted((EXAMPLES_DIR).glob("*.toml"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_config_loads(path: Path) -> None:
    profile = load_profile(path, None)
    assert profile.user


def test_sample_profiles_by_name() -> None:
    bob = load_profile(EXAMPLES_DIR / "loopback.toml", "bob")
    assert (bob.user, bob.listen, bob.codecs) == ("bob", "127.0.0.1:5062", ["pcmu", "pcma"])


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTPHONE_TEST_SECRET", "s3cret")
    assert Profile(password_env="SOFTPHONE_TEST_SECRET").secret() == "s3cret"
    assert Profile(password="direct", password_env="SOFTPHONE_TEST_SECRET").secret() == "direct"


@pytest.mark.parametrize(("text", "message"), [
    ('[profiles.a]\nusr = "x"\n', "unknown key profiles.a.usr (did you mean 'user'?)"),
    ('defualt_profile = "a"\n', "unknown key defualt_profile (did you mean 'default_profile'?)"),
    ('[profiles.a]\ntransport = "sctp"\n', "profiles.a.transport: expected udp, tcp or tls"),
    ('[profiles.a]\ncodecs = "pcmu"\n', "profiles.a.codecs: expected a list of strings"),
    ('[profiles.a]\ncodecs = ["gsm"]\n', "profiles.a.codecs: expected opus, pcmu, pcma"),
    ('[profiles.a]\nregistrar = "sip:bad host"\n', "profiles.a.registrar: expected a SIP URI"),
    ('[profiles.a]\nuser = 5\n', "profiles.a.user: expected a string"),
    ('[profiles.a]\ndomain = "pbx:5060"\n', "profiles.a.domain: expected a host name"),
    ('[profiles.a]\nrtp_ports = "20000"\n', "profiles.a.rtp_ports: expected LOW-HIGH"),
    ('[profiles.a]\nrtp_ports = "20001-20001"\n', "profiles.a.rtp_ports: expected LOW-HIGH"),
    ('default_profile = "b"\n[profiles.a]\nuser = "x"\n', "no profile 'b'"),
    ("[profiles\n", "not valid TOML"),
])
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_profile(path, None)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_a_profile_name_without_any_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no configuration file"):
        load_profile(None, "office")
    assert load_profile(None, None) == Profile()
