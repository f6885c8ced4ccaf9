"""TOML configuration profiles (stdlib tomllib).

A file holds ``[profiles.NAME]`` tables of account and audio settings; ``default_profile``
names the one used without ``--profile``. The file is looked up in ``--config``, then
``$SOFTPHONE_CONFIG``, then the user config dir (``$XDG_CONFIG_HOME/softphone/config.toml``).
Command-line options override the profile. Every error names the file, the key and what was
expected, in one line; an unknown key gets a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from softphone.sdp.negotiation import CODECS
from softphone.sip.errors import ParseError
from softphone.sip.grammar import decimal
from softphone.sip.uri import parse_host_port, parse_sip_uri
from softphone.transport.rtp import Impairment, PortRange


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Profile:
    """One account and its defaults. Every field is optional."""

    user: str | None = None
    domain: str | None = None
    display_name: str | None = None
    password: str | None = None
    password_env: str | None = None  # read the password from this environment variable
    registrar: str | None = None
    outbound_proxy: str | None = None
    transport: str | None = None
    codecs: list[str] | None = None
    device: str | None = None
    capture_device: str | None = None   # the microphone's device, when it is not ``device``
    playback_device: str | None = None  # the speaker's device, when it is not ``device``
    aec: bool | None = None  # echo cancellation on the sound device (None: on)
    listen: str | None = None
    rtp_ports: str | None = None  # "LOW-HIGH": where calls bind their RTP/RTCP port pairs
    ca_file: str | None = None    # TLS: trust these CAs instead of the system's
    tls_cert: str | None = None   # TLS: our certificate (client, and server for answer)
    tls_key: str | None = None
    tls_insecure: bool | None = None  # TLS without verification (labs only)
    srtp: str | None = None       # off, optional or mandatory
    srtp_insecure: bool | None = None  # SRTP keys also over UDP/TCP signalling (readable!)
    stun: str | None = None       # HOST[:PORT] of a STUN server, to learn the public address
    keepalive: float | None = None  # seconds between keep-alives (0: none)
    public_address: str | None = None  # the address to advertise (a NAT's public one)
    auth: list[str] | None = None  # answer: USER:PASSWORD entries callers must prove
    trust: list[str] | None = None  # answer: networks the per-source limits spare
    session_expires: int | None = None  # RFC 4028 interval we propose (0: none of ours)
    rel100: str | None = None  # reliable provisionals (RFC 3262): off, supported, required
    mwi: bool | None = None  # subscribe to voicemail waiting indication once registered
    decline_transfers: bool | None = None  # a peer's REFER gets 603 instead of being followed
    impair: str | None = None  # loss=5%,jitter=30ms,seed=1: trouble added to the RTP we send

    def overridden(self, **options: Any) -> Profile:
        """This profile under the command line's options (None: not given on the line)."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})

    def secret(self) -> str | None:
        if self.password is not None:
            return self.password
        if self.password_env is not None:
            return os.environ.get(self.password_env)
        return None


_FIELDS = {f.name: f for f in fields(Profile)}
_TOP_LEVEL = ("default_profile", "profiles")
_KINDS = {"codecs": "a list of strings", "auth": "a list of strings",
          "trust": "a list of strings",
          "tls_insecure": "true or false", "srtp_insecure": "true or false",
          "mwi": "true or false", "decline_transfers": "true or false",
          "aec": "true or false",
          "keepalive": "a number of seconds", "session_expires": "a whole number of seconds"}
_CHECKS: dict[str, Any] = {
    "transport": lambda v: v in ("udp", "tcp", "tls") or "udp, tcp or tls",
    "srtp": lambda v: v in ("off", "optional", "mandatory") or "off, optional or mandatory",
    "rel100": lambda v: v in ("off", "supported", "required") or "off, supported or required",
    "ca_file": lambda v: Path(v).is_file() or "a file that exists",
    "tls_cert": lambda v: Path(v).is_file() or "a file that exists",
    "tls_key": lambda v: Path(v).is_file() or "a file that exists",
    "stun": lambda v: _is_host_port(v) or "HOST[:PORT]",
    "keepalive": lambda v: v >= 0 or "a number of seconds, 0 or more",
    "session_expires": lambda v: v >= 0 or "a whole number of seconds, 0 or more",
    "public_address": lambda v: _is_host(v) or "a host name or address, without port",
    "auth": lambda v: all(":" in entry and entry.split(":")[0] for entry in v)
    or "USER:PASSWORD entries",
    "trust": lambda v: all(_is_network(entry) for entry in v)
    or "addresses or networks (192.0.2.0/24)",
    "codecs": lambda v: all(c in CODECS for c in v) or ", ".join(CODECS),
    "registrar": lambda v: _is_sip_uri(v) or "a SIP URI",
    "outbound_proxy": lambda v: _is_sip_uri(v) or "a SIP URI",
    "listen": lambda v: (":" in v and decimal(v.rpartition(":")[2]) is not None) or "HOST:PORT",
    "domain": lambda v: _is_host(v) or "a host name or address, without port",
    "rtp_ports": lambda v: _is_port_range(v) or "LOW-HIGH, ports with an even/odd pair",
    "impair": lambda v: _is_impairment(v) or "loss=PERCENT%,jitter=MILLISECONDSms,seed=N",
}


def parse_port_range(text: str) -> tuple[int, int]:
    """``"16384-32767"`` -> (16384, 32767); ValueError unless it holds an even/odd pair."""
    low, dash, high = text.partition("-")
    first, last = decimal(low.strip()), decimal(high.strip())
    if not dash or first is None or last is None:
        raise ValueError(f"{text!r} is not LOW-HIGH")
    PortRange(first, last)  # its own checks: ports within 1-65535, room for a pair
    return first, last


def _is_port_range(value: str) -> bool:
    try:
        parse_port_range(value)
    except ValueError:
        return False
    return True


def _is_impairment(value: str) -> bool:
    try:
        Impairment.parse(value)
    except ValueError:
        return False
    return True


def _is_host_port(value: str) -> bool:
    try:
        parse_host_port(value, value)
    except ParseError:
        return False
    return True


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _is_host(value: str) -> bool:
    try:
        return parse_host_port(value, value)[1] is None
    except ParseError:
        return False


def _is_sip_uri(value: str) -> bool:
    try:
        parse_sip_uri(value if value.startswith(("sip:", "sips:")) else f"sip:{value}")
    except ParseError:
        return False
    return True


def find_config(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    if os.environ.get("SOFTPHONE_CONFIG"):
        return Path(os.environ["SOFTPHONE_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidate = base / "softphone" / "config.toml"
    return candidate if candidate.is_file() else None


def load_profile(path: Path | None, name: str | None) -> Profile:
    """The named (or default) profile; an empty Profile when there is no file and no name."""
    if path is None:
        if name is not None:
            raise ConfigError(f"profile {name!r} asked for, but no configuration file found "
                              "(--config, $SOFTPHONE_CONFIG or ~/.config/softphone/config.toml)")
        return Profile()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    _check_keys(path, "", data, _TOP_LEVEL)
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: profiles: expected a table of [profiles.NAME]")
    checked = {key: _profile(path, key, table) for key, table in profiles.items()}
    chosen = name or data.get("default_profile")
    if chosen is None:
        return Profile()
    if chosen not in checked:
        hint = _suggest(str(chosen), list(checked))
        raise ConfigError(f"{path}: no profile {chosen!r}{hint}")
    return checked[chosen]


def _profile(path: Path, name: str, table: object) -> Profile:
    where = f"profiles.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where}: expected a table")
    _check_keys(path, where + ".", table, tuple(_FIELDS))
    for key, value in table.items():
        expected = _KINDS.get(key, "a string")
        if not _is_kind(value, expected):
            raise ConfigError(f"{path}: {where}.{key}: expected {expected}, got {value!r}")
        verdict = _CHECKS.get(key, lambda v: True)(value)
        if verdict is not True:
            raise ConfigError(f"{path}: {where}.{key}: expected {verdict}, got {value!r}")
    return Profile(**table)


def _is_kind(value: object, expected: str) -> bool:
    if expected == "a list of strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if expected == "true or false":
        return isinstance(value, bool)
    if expected == "a number of seconds":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected == "a whole number of seconds":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def _check_keys(path: Path, where: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{path}: unknown key {where}{key}{_suggest(key, list(allowed))}")


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
