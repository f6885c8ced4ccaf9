"""What every command shares: option parsing helpers, the event printer, the run loop with
its exit codes (0 success, 1 failure, 2 usage, 130 interrupted after a clean end)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from softphone.config import Profile, parse_port_range
from softphone.core.guard import GuardSettings
from softphone.core.session_timer import DEFAULT_INTERVAL, MIN_SE, SessionTimerSettings
from softphone.loop import run as run_loop
from softphone.media.codecs import usable_codecs
from softphone.media.device import list_devices
from softphone.media.wav import WavError, load_wav
from softphone.sip import ParseError, SipUri, parse_sip_uri
from softphone.sip.grammar import decimal
from softphone.sip.transaction import Peer
from softphone.transport.route import source_address_toward
from softphone.transport.rtp import DEFAULT_RTP_PORTS, Impairment
from softphone.transport.tls import TlsSettings
from softphone.ua.agent import AgentConfig, AudioConfig, Credentials, UserAgent
from softphone.ua.events import (
    Answered,
    Calling,
    Dtmf,
    DtmfSent,
    EarlyMedia,
    Ended,
    Event,
    Hold,
    Incoming,
    Listening,
    MediaTimeout,
    MessageReceived,
    MessageSent,
    Mwi,
    OptionsResult,
    Progress,
    Redirected,
    Registered,
    RegistrationFailed,
    Ringing,
    TransferProgress,
    TransferRequested,
    Unregistered,
)
from softphone.ua.registration import RegistrationError

log = logging.getLogger("softphone.cli")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
T = TypeVar("T")


_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(.*)", re.DOTALL)


def sip_uri(text: str, what: str = "URI") -> SipUri:
    """A SIP URI from the command line; ``user@host`` and ``host`` get ``sip:`` prepended.
    Another scheme (tel:, http: ...) is refused by name, with the URI as typed."""
    scheme = _SCHEME_RE.fullmatch(text)
    if scheme is not None and scheme.group(1).lower() not in ("sip", "sips") \
            and "@" not in scheme.group(1) and decimal(scheme.group(2)) is None:
        hint = (f"; to call a number, dial sip:{scheme.group(2)}@YOUR-PROVIDER"
                if scheme.group(1).lower() == "tel" else "")
        raise click.BadParameter(f"{text!r} is a {scheme.group(1).lower()}: URI; softphone "
                                 f"calls sip: and sips: URIs (or user@host){hint}",
                                 param_hint=what)
    candidate = text if text.lower().startswith(("sip:", "sips:")) else f"sip:{text}"
    try:
        return parse_sip_uri(candidate)
    except ParseError as error:
        raise click.BadParameter(f"{text!r} is not a SIP URI ({error.reason})",
                                 param_hint=what) from None


def listen_address(text: str | None, toward: SipUri | None, default_port: int) -> tuple[str, int]:
    """``HOST:PORT`` (port 0 = any free port). Without it: the local address that routes
    toward ``toward`` (loopback when there is none), on ``default_port``."""
    if text is None:
        return _local_address_toward(toward), default_port
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    number = decimal(port)
    if not host or number is None or number > 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--listen")
    return host, number


def _local_address_toward(target: SipUri | None) -> str:
    if target is None or target.host in ("localhost",):
        return "127.0.0.1"
    return source_address_toward(target.host, target.port or 5060) or "127.0.0.1"


_STYLE_TAG = re.compile(r"(?<!\\)\[(/?)(green|red|yellow|bold|dim)\]")
_STYLE_ON = {"green": "\x1b[32m", "red": "\x1b[31m", "yellow": "\x1b[33m", "bold": "\x1b[1m",
             "dim": "\x1b[2m"}
_STYLE_OFF = {"green": "\x1b[39m", "red": "\x1b[39m", "yellow": "\x1b[39m", "bold": "\x1b[22m",
              "dim": "\x1b[22m"}


def render_line(markup: str, colour: bool) -> str:
    """One line of ``describe``'s markup as text, with ANSI colours or without: the few styles
    it uses, translated directly. Rich's full rendering costs ~250 us a line, which an
    answering agent under load paid for every event (a third of its CPU)."""
    if not colour:  # a pipe or a file (a load test's log): the tags go, no call per tag
        return _STYLE_TAG.sub("", markup).replace("\\[", "[")

    def style(tag: re.Match[str]) -> str:
        return (_STYLE_OFF if tag[1] else _STYLE_ON)[tag[2]]

    return _STYLE_TAG.sub(style, markup).replace("\\[", "[")


class EventPrinter:
    """Renders engine events: JSON lines with --json, short human lines otherwise (coloured
    on a terminal unless NO_COLOR is set)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        console = Console(stderr=False)
        self.colour = console.is_terminal and not console.no_color
        self._flush_pending = False

    def __call__(self, event: Event) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(event.to_json()) + "\n")
            self._flush_soon()
            return
        line = describe(event)
        if line:
            sys.stdout.write(render_line(line, self.colour) + "\n")
            self._flush_soon()

    def _flush_soon(self) -> None:
        """One write to the pipe per turn of the event loop, not one per event: a load test's
        far end emits thousands of events a second, and a reader still sees each turn's lines
        as soon as the turn ends."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            sys.stdout.flush()
            return
        if not self._flush_pending:
            self._flush_pending = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        sys.stdout.flush()


def describe(event: Event) -> str:
    """One human line per event."""
    if isinstance(event, Listening):
        return f"[dim]listening on {event.transport} {event.host}:{event.port}[/dim]"
    if isinstance(event, Registered):
        return f"[green]registered[/green] {event.aor} as {event.contact} for {event.expires}s"
    if isinstance(event, RegistrationFailed):
        return f"[red]registration failed[/red]: {event.status} {event.reason}"
    if isinstance(event, Unregistered):
        return f"unregistered {event.aor}"
    if isinstance(event, OptionsResult):
        return (f"{event.status} {event.reason}  allow: {', '.join(event.allow) or '-'}  "
                f"accept: {', '.join(event.accept) or '-'}  agent: {event.user_agent or '-'}")
    if isinstance(event, MessageReceived):
        return f"[bold]message[/bold] from {escape(event.sender)}: {escape(event.text)}"
    if isinstance(event, MessageSent):
        colour = "green" if event.status < 300 else "red"
        return f"[{colour}]message[/{colour}] to {event.uri}: {event.status} {event.reason}"
    if isinstance(event, Calling):
        return f"calling {event.uri}"
    if isinstance(event, Incoming):
        return f"[bold]incoming call[/bold] from {event.caller}"
    if isinstance(event, Ringing):
        return f"ringing ({event.status})"
    if isinstance(event, Progress):
        return f"progress: {event.status} {event.reason}"
    if isinstance(event, Mwi):
        state = "[bold]messages waiting[/bold]" if event.waiting else "no new messages"
        return f"voicemail: {state} ({event.new} new, {event.old} old)"
    if isinstance(event, TransferRequested):
        return f"transferred by the peer to {event.target}"
    if isinstance(event, TransferProgress):
        return f"transfer: {event.status} {event.reason}" + (" (final)" if event.final else "")
    if isinstance(event, EarlyMedia):
        return f"early media ({event.status}, {event.codec or 'awaiting the answer'})"
    if isinstance(event, Redirected):
        return f"redirected ({event.status}) to {event.target}"
    if isinstance(event, Answered):
        return f"[green]answered[/green] by {event.peer} ({event.codec or 'no media'})"
    if isinstance(event, Hold):
        return f"{'on hold' if event.held else 'resumed'} (by {event.by})"
    if isinstance(event, MediaTimeout):
        return f"[yellow]no RTP for {event.seconds:.1f} s[/yellow]"
    if isinstance(event, Dtmf):
        return f"dtmf [bold]{event.digit}[/bold] ({event.method})"
    if isinstance(event, DtmfSent):
        return f"dtmf sent [bold]{event.digits}[/bold] ({event.method})"
    if isinstance(event, Ended):
        colour = "green" if event.status < 300 else "red"
        diagnosis = f" [yellow]{event.diagnosis}[/yellow]" if event.diagnosis else ""
        return (f"[{colour}]ended[/{colour}]: {event.status} {event.reason} "
                f"(by {event.by}, {event.duration:.1f}s){diagnosis}")
    return ""


async def until_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``work``'s result, or None when Ctrl-C (or SIGTERM) came first."""
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    if work_task in done:
        stop_task.cancel()
        return work_task.result()
    work_task.cancel()
    return None


def run(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run a command's coroutine with Ctrl-C and SIGTERM turned into a clean stop."""

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await main(stop)

    return run_loop(runner())


RTP_PORTS_OPTION = click.option(
    "--rtp-ports", metavar="LOW-HIGH",
    help="UDP ports for each call's RTP/RTCP pair (a firewall's opening) "
         f"[default: {DEFAULT_RTP_PORTS[0]}-{DEFAULT_RTP_PORTS[1]}].")


def rtp_port_range(text: str | None, profile: Profile | None = None) -> tuple[int, int]:
    """--rtp-ports, else the profile's rtp_ports, else the agent's default range."""
    text = text if text is not None else (profile.rtp_ports if profile else None)
    if text is None:
        return AgentConfig.rtp_ports
    try:
        return parse_port_range(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--rtp-ports") from None


def audio_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every call-carrying command shares (issue contract: call and answer)."""
    decorators = [
        click.option("--play", type=click.Path(exists=True, dir_okay=False),
                     metavar="FILE.wav", help="Send this WAV file (any rate, resampled)."),
        click.option("--tone", type=click.FloatRange(20, 20000), metavar="HZ",
                     help="Send a sine tone of HZ."),
        click.option("--record", metavar="FILE.wav", help="Record what the peer sends."),
        click.option("--record-both", is_flag=True,
                     help="With --record: a stereo file, left what we send, right what we "
                          "hear."),
        click.option("--codec", "codecs", metavar="LIST",
                     help="Codecs in order of preference [default: opus,g722,pcmu,pcma]."),
        click.option("--null-audio", is_flag=True,
                     help="No sound device: silence in, discard out where no file is given."),
        click.option("--device", metavar="NAME|INDEX",
                     help="Sound device (see PortAudio's list); default: the system's."),
        click.option("--capture-device", metavar="NAME|INDEX",
                     help="The microphone's device, when it is another (default: --device)."),
        click.option("--playback-device", metavar="NAME|INDEX",
                     help="The speaker's device, when it is another (default: --device)."),
        click.option("--no-aec", "aec", flag_value=False, default=None,
                     help="No echo cancellation or noise suppression on the sound device "
                          "(on when the call both plays and records through it)."),
        RTP_PORTS_OPTION,
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def codec_list(text: str | None, profile: Profile | None = None) -> tuple[str, ...]:
    """--codec, else the profile's codecs, else the default preference."""
    from softphone.sdp.negotiation import CODECS, DEFAULT_CODECS

    if text is None:
        keys = tuple(profile.codecs) if profile and profile.codecs else DEFAULT_CODECS
    else:
        keys = tuple(k.strip().lower() for k in text.split(",") if k.strip())
        unknown = [k for k in keys if k not in CODECS]
        if not keys or unknown:
            raise click.BadParameter(f"unknown codec {unknown[0] if unknown else text!r}; "
                                     f"choose from {', '.join(CODECS)}", param_hint="--codec")
    usable, dropped = usable_codecs(keys)
    if not usable:
        raise click.BadParameter(f"no codec left to offer ({'; '.join(dropped.values())})",
                                 param_hint="--codec")
    return keys


def audio_config(play: str | None, tone: float | None, record: str | None,
                 echo: bool = False, null_audio: bool = False,
                 device: str | None = None, record_both: bool = False,
                 capture_device: str | None = None,
                 playback_device: str | None = None, aec: bool = True) -> AudioConfig:
    """Ports for a call: files and tones where given, the sound device for the directions they
    leave uncovered, or silence/discard there with --null-audio."""
    if play is not None and tone is not None:
        raise click.UsageError("--play and --tone exclude each other")
    if echo and (play is not None or tone is not None or record is not None):
        raise click.UsageError("--echo excludes --play, --tone and --record")
    if play is not None:
        wav_seconds(play, "--play")
    if record_both and record is None:
        raise click.UsageError("--record-both needs --record FILE.wav")
    if record is not None:
        problem = unwritable(record)
        if problem is not None:
            raise click.BadParameter(f"cannot write {record}: {problem}",
                                     param_hint="--record")
    device_in = not (null_audio or echo or play is not None or tone is not None)
    device_out = not (null_audio or echo or record is not None)
    chosen, capture, playback = (device_choice(name) for name in (device, capture_device,
                                                                    playback_device))
    if device_in or device_out:
        _check_device(chosen, device_in, device_out)
    if device_in and capture is not None:
        _check_device(capture, True, False, "--capture-device")
    if device_out and playback is not None:
        _check_device(playback, False, True, "--playback-device")
    return AudioConfig(play=play, tone=tone, record=record, echo=echo, device=chosen,
                       device_in=device_in, device_out=device_out, record_both=record_both,
                       capture_device=capture, playback_device=playback, aec=aec)


def device_choice(name: str | None) -> str | int | None:
    """A device as sounddevice takes it: an index when the text is a number, else a name."""
    index = decimal(name)
    return index if index is not None else name


async def subscribe_mwi(agent: UserAgent, registrar: SipUri, domain: str | None,
                        timeout: float | None = None) -> None:
    """--mwi: subscribe to the account's voicemail summary at its address of record,
    which the registrar serves when the account names no domain of its own; a server that
    will not serve it is one warning, the registration goes on."""
    target = None if domain else str(SipUri(host=registrar.host, port=registrar.port,
                                            user=agent.config.user))
    try:
        await agent.subscribe_mwi(target, timeout=timeout)
    except RegistrationError as error:
        log.warning("voicemail indication (--mwi) refused: %s", error)


def wav_seconds(path: str, option: str) -> float:
    """How long the WAV file an option names plays; a file that will not play is the
    option's error (exit 2) now, not a call's failure later."""
    try:
        samples, rate = load_wav(path)
    except WavError as error:
        raise click.BadParameter(str(error), param_hint=option) from None
    import scipy.signal  # noqa: F401  (resampling at call start must not wait for this)
    return len(samples) / rate


def unwritable(path: str) -> str | None:
    """Why a recording could not be written at ``path``, or None. Checked before any request
    goes out: a call answered and then dropped for a bad path leaves the far end waiting."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        return "it is a directory"
    if target.exists():
        return None if os.access(target, os.W_OK) else "permission denied"
    if not folder.is_dir():
        return f"no such directory {str(folder)!r}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"permission denied in {str(folder)!r}"
    return None


def _check_device(device: str | int | None, need_in: bool, need_out: bool,
                  option: str = "--device") -> None:
    """The device must exist, and have channels for the directions it serves."""
    devices = list_devices()
    uncovered = " and ".join(
        d for d, needed in (("microphone", need_in), ("speaker", need_out)) if needed)
    if not devices:
        raise click.UsageError(
            f"no sound device for the {uncovered}: give --play/--tone and --record, "
            "or --null-audio")
    if isinstance(device, int) and not 0 <= device < len(devices):
        raise click.BadParameter(f"no device with index {device}", param_hint=option)
    if isinstance(device, str) and not any(device.lower() in str(d["name"]).lower()
                                           for d in devices):
        raise click.BadParameter(f"no device named like {device!r}", param_hint=option)
    matching = [d for i, d in enumerate(devices) if device is None or device == i
                or (isinstance(device, str) and device.lower() in str(d["name"]).lower())]
    for needed, channels, role in ((need_in, "max_input_channels", "capture"),
                                   (need_out, "max_output_channels", "play")):
        if device is not None and needed and not any(d.get(channels, 1) for d in matching):
            raise click.BadParameter(f"device {device!r} cannot {role} audio",
                                     param_hint=option)


@dataclass
class CliContext:
    """What the group's options set for every command."""

    profile: Profile = field(default_factory=Profile)
    log_sip: str | None = None


def cli_context() -> CliContext:
    context = click.get_current_context(silent=True)
    found = context.find_object(CliContext) if context is not None else None
    return found or CliContext()


class SipTrace:
    """--log-sip: every SIP message sent and received, with time, direction and peer."""

    def __init__(self, target: str) -> None:
        # "-" is stderr: stdout carries the --json lines and the live view, never this.
        self._stream: TextIO = sys.stderr if target == "-" else open(  # noqa: SIM115
            target, "a", encoding="utf-8")

    def __call__(self, direction: str, data: bytes, peer: Peer) -> None:
        stamp = datetime.now().isoformat(timespec="milliseconds")
        arrow = "to" if direction == "sent" else "from"
        self._stream.write(f"----- {stamp} {direction} {arrow} {peer} ({len(data)} bytes)\n")
        self._stream.write(data.decode("utf-8", "replace").replace("\r\n", "\n"))
        self._stream.write("\n")
        self._stream.flush()


def is_interactive(as_json: bool) -> bool:
    """The live view replaces the event lines when a person watches a terminal."""
    return not as_json and sys.stdout.isatty()


def build_agent(config: AgentConfig, as_json: bool, printer: bool = True) -> UserAgent:
    """The agent a command runs, with its events printed and, if asked, its SIP traced."""
    agent = UserAgent(config)
    if printer:
        agent.add_listener(EventPrinter(as_json))
    log_sip = cli_context().log_sip
    if log_sip is not None:
        agent.add_tracer(SipTrace(log_sip))
    return agent


TRANSPORT_OPTION = click.option(
    "--transport", type=click.Choice(["udp", "tcp", "tls"]),
    help="udp (default), tcp or tls (also chosen by a sips: URI).")

NETWORK_OPTIONS = [
    click.option("--ca-file", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
                 help="TLS: trust these CAs instead of the system's."),
    click.option("--tls-cert", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
                 help="TLS: our certificate (client; the server's for answer)."),
    click.option("--tls-key", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
                 help="TLS: the certificate's private key (if not in --tls-cert)."),
    click.option("--tls-insecure", is_flag=True, default=None,
                 help="TLS without verifying the server: labs only."),
    click.option("--stun", metavar="HOST[:PORT]",
                 help="A STUN server, to learn our public address behind a NAT."),
    click.option("--keepalive", type=click.FloatRange(0), metavar="SECONDS",
                 help="Keep-alives on the registration's flow [default: 25 UDP, 90 TCP/TLS]."),
    click.option("--public-address", metavar="HOST",
                 help="Advertise this address in Contact and SDP (a NAT's public one)."),

]
SRTP_OPTIONS = [
    click.option("--srtp", type=click.Choice(["off", "optional", "mandatory"]),
                 help="Encrypt media: off (default), optional (RTP/AVP with keys), mandatory "
                      "(RTP/SAVP). Keys travel in the SDP: over TLS only, unless "
                      "--srtp-insecure."),
    click.option("--srtp-insecure", is_flag=True, default=None,
                 help="Allow SRTP keys over UDP/TCP signalling, where anyone on the path "
                      "reads them."),
    click.option("--session-expires", type=click.IntRange(0), metavar="SECONDS",
                 help="Session timer (RFC 4028) we propose: refreshed at half, the call "
                      "ended without a refresh [default: 1800; 0: none of ours]."),
    click.option("--100rel", "rel100", type=click.Choice(["off", "supported", "required"]),
                 help="Reliable provisional responses (RFC 3262, PRACK): supported "
                      "(default: used when the peer takes them), required, or off."),
    click.option("--decline-transfers", is_flag=True, default=None,
                 help="Answer a peer's REFER with 603 instead of following the transfer."),
    click.option("--impair", metavar="SPEC",
                 help="Trouble on the RTP we send, to test what a bad network does: "
                      "loss=5%,jitter=30ms,seed=1 (seeded: the same run twice)."),
]


def srtp_options(command: Callable[..., None]) -> Callable[..., None]:
    """SRTP, session-timer and 100rel options, for the commands that carry calls."""
    for decorate in reversed(SRTP_OPTIONS):
        command = decorate(command)
    return command


def network_options(command: Callable[..., None]) -> Callable[..., None]:
    """TLS and NAT options: every command that talks to a server takes them."""
    for decorate in reversed(NETWORK_OPTIONS):
        command = decorate(command)
    return command


def network_settings(profile: Profile) -> dict[str, Any]:
    """AgentConfig settings of the TLS and NAT options (the command line merged over the
    profile): certificates and verification, STUN, keep-alives, the public address."""
    return dict(tls=TlsSettings(ca_file=profile.ca_file, cert_file=profile.tls_cert,
                                key_file=profile.tls_key, insecure=bool(profile.tls_insecure)),
                stun=profile.stun, keepalive=profile.keepalive,
                public_host=profile.public_address, srtp=profile.srtp or "off",
                srtp_insecure=bool(profile.srtp_insecure), rel100=profile.rel100 or "supported",
                accept_transfers=not profile.decline_transfers,
                impairment=impairment_of(profile.impair),
                session_timer=SessionTimerSettings(
                    DEFAULT_INTERVAL if profile.session_expires is None
                    else profile.session_expires,
                    min(MIN_SE, profile.session_expires or MIN_SE)))


def impairment_of(spec: str | None) -> Impairment | None:
    """--impair (or the profile's impair) as the agent's Impairment; a bad one exits 2."""
    if spec is None:
        return None
    try:
        return Impairment.parse(spec)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--impair") from None


GUARD_OPTIONS = [
    click.option("--auth", multiple=True, metavar="USER:PASSWORD",
                 help="Callers must prove one of these (digest, 401); repeatable."),
    click.option("--auth-algorithm", "auth_algorithms", multiple=True,
                 type=click.Choice(["SHA-256", "MD5"], case_sensitive=False),
                 help="Digest algorithms to challenge with, preferred first; repeatable "
                      "[default: SHA-256 then MD5; MD5 alone for clients that give up on "
                      "SHA-256]."),
    click.option("--trust", multiple=True, metavar="NETWORK",
                 help="Addresses the per-source limits spare (a PBX: 192.0.2.10/32); "
                      "repeatable. Loopback and our registrar always are."),
    click.option("--max-request-rate", type=click.FloatRange(0), default=50.0,
                 show_default=True, metavar="N",
                 help="New requests a second from one address before 503 (0: no limit)."),
    click.option("--max-calls-per-source", type=click.IntRange(0), default=20,
                 show_default=True, metavar="N",
                 help="Calls in progress from one address before 503 (0: no limit)."),
    click.option("--follow-maddr", is_flag=True,
                 help="Send responses to a Via's maddr (off: it could aim them at anyone)."),
]


def guard_options(command: Callable[..., None]) -> Callable[..., None]:
    """How ``answer`` defends itself: caller authentication and per-source limits."""
    for decorate in reversed(GUARD_OPTIONS):
        command = decorate(command)
    return command


def guard_settings(profile: Profile, max_request_rate: float, max_calls_per_source: int,
                   follow_maddr: bool, auth_algorithms: tuple[str, ...] = ()) -> GuardSettings:
    """The defences of ``answer``: callers from ``--auth`` (or the profile's ``auth``),
    trusted networks from ``--trust`` (or its ``trust``), and the limits."""
    callers = dict(entry.split(":", 1) for entry in _checked_auth(profile.auth or []))
    trusted = tuple(_checked_network(net) for net in profile.trust or [])
    algorithms = tuple(dict.fromkeys(a.upper() for a in auth_algorithms)) \
        or GuardSettings.algorithms
    return GuardSettings(callers=callers or None, trusted=GuardSettings.trusted + trusted,
                         algorithms=algorithms,
                         source_rate=max_request_rate, source_burst=2 * max_request_rate,
                         max_calls_per_source=max_calls_per_source, follow_maddr=follow_maddr)


def _checked_auth(entries: list[str]) -> list[str]:
    for entry in entries:
        if not entry.partition(":")[0] or ":" not in entry:
            raise click.BadParameter(f"{entry!r} is not USER:PASSWORD", param_hint="--auth")
    return entries


def _checked_network(text: str) -> str:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an address or network (192.0.2.0/24)",
                                 param_hint="--trust") from None
    return text


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine reaches."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


ACCOUNT_OPTIONS = [
    click.option("--listen", metavar="HOST:PORT", help="Local address (port 0: any free port)."),
    TRANSPORT_OPTION,
    click.option("--user", help="Our user name (From), and the digest user with --password."),
    click.option("--password", help="Digest password, used when a proxy or the peer challenges."),
    click.option("--proxy", metavar="URI", help="Outbound proxy every request goes through."),
]


def account_options(command: Callable[..., None]) -> Callable[..., None]:
    """Who calls and through where: the options of the commands that place calls."""
    for decorate in reversed(ACCOUNT_OPTIONS):
        command = decorate(command)
    return command


def caller_config(profile: Profile, target: SipUri, **settings: Any) -> AgentConfig:
    """The agent of a command that places calls to ``target``: the profile's account (the
    command line already merged over it), through its outbound proxy if any, listening where
    the route to the proxy or the target leaves; ``settings`` add to or override it."""
    proxy_uri = sip_uri(profile.outbound_proxy, "--proxy") if profile.outbound_proxy else None
    if profile.password is not None and profile.user is None:
        raise click.BadParameter("--password needs --user", param_hint="--password")
    host, port = listen_address(profile.listen, proxy_uri or target, 0)
    account: dict[str, Any] = dict(
        network_settings(profile),
        listen_host=host, listen_port=port, transport=profile.transport or "udp",
        user=profile.user or "softphone", display_name=profile.display_name,
        domain=profile.domain or (proxy_uri.host if proxy_uri else None),
        credentials=credentials_of(profile),
        outbound_proxy=str(proxy_uri) if proxy_uri else None)
    return AgentConfig(**(account | settings))


UNHEARD_CALL_OPTIONS = [
    click.option("--play", type=click.Path(exists=True, dir_okay=False), metavar="FILE.wav",
                 help="Send this file on every call (default: silence)."),
    click.option("--codec", "codecs", metavar="LIST",
                 help="Codec preference [opus,g722,pcmu,pcma]."),
    click.option("--no-media", is_flag=True, help="Signalling only: no RTP flows."),
]


def unheard_call_options(command: Callable[..., None]) -> Callable[..., None]:
    """What many calls nobody listens to send (load, engine): --play, --codec, --no-media."""
    for decorate in reversed(UNHEARD_CALL_OPTIONS):
        command = decorate(command)
    return command


def unheard_caller_config(profile: Profile, target: SipUri, codecs: str | None,
                          rtp_ports: str | None, play: str | None, no_media: bool,
                          **settings: Any) -> AgentConfig:
    """The agent of a command that places calls nobody listens to (load, engine): --codec,
    --rtp-ports, --play (else silence) and --no-media over the profile's account."""
    return caller_config(profile, target, codecs=codec_list(codecs, profile),
                         rtp_ports=rtp_port_range(rtp_ports, profile),
                         audio=audio_config(play, None, None, null_audio=True),
                         media=not no_media, **settings)


def credentials_of(profile: Profile) -> Credentials | None:
    """Digest credentials when the account has both a user and a password."""
    secret = profile.secret()
    return Credentials(profile.user, secret) if profile.user and secret is not None else None


def dial_target(text: str, profile: Profile) -> str:
    """``bob`` or ``201`` dials through the profile's domain; anything else is a URI."""
    if profile.domain and not any(mark in text for mark in "@:."):
        return f"sip:{text}@{profile.domain}"
    return text
