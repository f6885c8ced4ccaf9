"""``softphone answer``: wait for calls and answer, reject or redirect them."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import click

from softphone.cli.answer_summary import AnswerSummary
from softphone.cli.answer_workers import (
    WholeLines,
    hand_over_summary,
    shared_port,
    worker_command,
)
from softphone.cli.answer_workers import serve as serve_workers
from softphone.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    TRANSPORT_OPTION,
    audio_config,
    audio_options,
    build_agent,
    cli_context,
    codec_list,
    credentials_of,
    guard_options,
    guard_settings,
    is_interactive,
    is_loopback,
    listen_address,
    network_options,
    network_settings,
    rtp_port_range,
    run,
    sip_uri,
    srtp_options,
    subscribe_mwi,
    until_stopped,
    wav_seconds,
)
from softphone.cli.live import LiveSession, through_transfers
from softphone.media.wav import WavSource
from softphone.scenario.workers import split_ports, worker_count
from softphone.ua.agent import AgentConfig, UserAgent
from softphone.ua.call import Call
from softphone.ua.registration import RegistrationError

log = logging.getLogger("softphone.cli")


@click.command("answer")
@click.option("--listen", metavar="HOST:PORT", help="Local address [default: 127.0.0.1:5060].")
@TRANSPORT_OPTION
@click.option("--auto-answer", is_flag=True, help="Answer every call (after ringing).")
@click.option("--answer-after", type=click.FloatRange(0), metavar="SECONDS",
              help="Ring this long, then answer (implies --auto-answer).")
@click.option("--early-media", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
              help="Play this WAV in a 183 before answering (an announcement, a ringback); "
                   "with --auto-answer the call is answered when it ends.")
@click.option("--reject", "reject_code", type=click.IntRange(300, 699), metavar="CODE",
              help="Reject every call with this status (e.g. 486, 603).")
@click.option("--redirect", metavar="URI", help="Answer every call with 302 to URI.")
@click.option("--duration", type=click.FloatRange(0), metavar="SECONDS",
              help="Hang up answered calls after this long.")
@click.option("--registrar", metavar="URI", help="Register here first, to be reachable.")
@click.option("--user", help="Our user name (and the digest user with --password).")
@click.option("--password", help="Digest password for --registrar.")
@click.option("--mwi", is_flag=True, default=None,
              help="With --registrar: subscribe to voicemail waiting indication (RFC 3842).")
@click.option("--max-calls", type=click.IntRange(1), metavar="N",
              help="Exit after N calls have ended.")
@click.option("--workers", default="1", show_default=True, metavar="N|auto",
              help="Serve the SIP port from N processes (auto: one per core; SO_REUSEPORT), "
                   "each with its own slice of --rtp-ports.")
@click.option("--reuse-port", is_flag=True, hidden=True)  # a worker of --workers
@click.option("--summary-fd", type=int, hidden=True)  # a worker: its tally goes to this pipe
@click.option("--max-active", type=click.IntRange(1), metavar="N",
              help="At most N calls up (ringing or answered) at once; more get 486 Busy Here.")
@audio_options
@click.option("--echo", is_flag=True, help="Send back to the caller what it sends.")
@click.option("--no-media", is_flag=True, help="Signalling only: no RTP flows.")
@network_options
@srtp_options
@guard_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def answer_command(listen: str | None, transport: str, auto_answer: bool,
                   answer_after: float | None, early_media: str | None,
                   reject_code: int | None, redirect: str | None,
                   duration: float | None, registrar: str | None, user: str | None,
                   password: str | None, mwi: bool | None, max_calls: int | None,
                   max_active: int | None, workers: str, reuse_port: bool, summary_fd: int | None,
                   play: str | None,
                   tone: float | None, record: str | None, record_both: bool, codecs: str,
                   null_audio: bool,
                   device: str | None, rtp_ports: str | None, echo: bool, no_media: bool,
                   as_json: bool, auth: tuple[str, ...], auth_algorithms: tuple[str, ...],
                   trust: tuple[str, ...],
                   max_request_rate: float, max_calls_per_source: int, follow_maddr: bool,
                   **network: Any) -> None:
    """Wait for incoming calls.

    \b
    Examples:
      softphone answer --listen 127.0.0.1:5062 --auto-answer
      softphone answer --reject 486 --max-calls 1 --json
      softphone answer --auto-answer --echo --codec pcmu,pcma
      softphone answer --registrar sip:127.0.0.1 --user bob --password pw --auto-answer
      softphone answer --listen 0.0.0.0:5060 --auto-answer --auth alice:secret
      softphone answer --early-media announcement.wav --auto-answer --tone 440
    """
    if summary_fd is not None:  # a worker of --workers: its lines share the parent's output
        sys.stdout = WholeLines(sys.stdout.fileno())
    profile = cli_context().profile.overridden(
        registrar=registrar, user=user, password=password, listen=listen, transport=transport,
        mwi=mwi,
        **network, auth=list(auth) or None, trust=list(trust) or None,
        device=device)
    guard = guard_settings(profile, max_request_rate, max_calls_per_source, follow_maddr,
                           auth_algorithms)
    if sum(x is not None and x is not False for x in (reject_code, redirect)) > 1:
        raise click.UsageError("--reject and --redirect exclude each other")
    registrar_uri = sip_uri(profile.registrar, "--registrar") if profile.registrar else None
    redirect_uri = str(sip_uri(redirect, "--redirect")) if redirect else None
    credentials = credentials_of(profile)
    if registrar_uri and credentials is None:
        raise click.UsageError("--registrar needs --user and --password")
    listen = profile.listen
    host, port = listen_address(listen, registrar_uri, 5060 if listen is None else 0)
    if listen is None and registrar_uri is None:
        host = "127.0.0.1"
    config = AgentConfig(
        **network_settings(profile),
        listen_host=host, listen_port=port, transport=profile.transport or "udp",
        user=profile.user or "softphone", display_name=profile.display_name,
        domain=profile.domain or (registrar_uri.host if registrar_uri else None),
        credentials=credentials, codecs=codec_list(codecs, profile),
        rtp_ports=rtp_port_range(rtp_ports, profile),
        # A line that rejects or redirects every call carries no audio: no device needed.
        audio=audio_config(play, tone, record, echo,
                           null_audio or no_media or reject_code is not None
                           or redirect is not None, profile.device, record_both,
                           profile.capture_device, profile.playback_device,
                           profile.aec is not False),
        media=not no_media,
        guard=guard, reuse_port=reuse_port)
    try:
        processes = worker_count(workers)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--workers") from None
    if processes > 1:
        if registrar_uri is not None:
            raise click.UsageError("--workers cannot share one registration: leave out "
                                   "--registrar (register the shared port another way)")
        shared = shared_port(host, port)
        try:
            slices = split_ports(*config.rtp_ports, processes)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--workers") from None
        arguments = sys.argv[1:]
        commands = [worker_command(arguments, host, shared, ports) for ports in slices]
        raise SystemExit(run(lambda stop: serve_workers(commands, stop,
                                                        config.close_timeout, as_json)))
    answer = auto_answer or answer_after is not None
    announcement_seconds = wav_seconds(early_media, "--early-media") if early_media else 0.0
    if answer and not config.guard.callers and not is_loopback(host):
        log.warning("--auto-answer on %s answers anyone who reaches it, and sends them audio "
                    "wherever their SDP says: add --auth USER:PASSWORD", host)

    async def handle(call: Call) -> None:
        if max_active is not None and busy_lines(call) >= max_active:
            await call.reject(486, "Busy Here (all lines in use)")
        elif reject_code is not None:
            await call.reject(reject_code)
        elif redirect_uri is not None:
            await call.redirect(redirect_uri)
        else:
            if early_media is not None:
                await call.early_media(WavSource(early_media))
            else:
                await call.ring()
            if answer:
                await asyncio.sleep(answer_after if answer_after is not None
                                    else announcement_seconds)
                await call.answer()
                if duration is not None and call.state == "answered":
                    await asyncio.wait([call.ended], timeout=duration)
                    await call.hangup()
        await through_transfers(call, None)  # (cancelling this must not cancel the call)

    def busy_lines(call: Call) -> int:
        """The calls up besides ``call``: ringing or answered, either way."""
        return sum(1 for other in call.agent.calls if other is not call and not other.is_over
                   and other.state in ("incoming", "ringing", "answered"))

    async def serve(agent: UserAgent) -> bool:
        """Handle calls concurrently until ``max_calls`` of them have ended. Each call's
        handler is its own task that counts itself out when done: waiting on all of them
        at once after every call would cost a walk over hundreds of calls under load."""
        handlers: set[asyncio.Task[None]] = set()
        finished = 0
        enough = asyncio.Event()

        def done(task: asyncio.Task[None]) -> None:
            nonlocal finished
            handlers.discard(task)
            finished += 1
            if max_calls is not None and finished >= max_calls:
                enough.set()

        async def accept() -> None:
            while True:
                task = asyncio.ensure_future(handle(await agent.incoming.get()))
                handlers.add(task)
                task.add_done_callback(done)

        accepting = asyncio.ensure_future(accept())
        try:
            await enough.wait()
        finally:
            for pending in (accepting, *handlers):
                pending.cancel()
        return True

    async def main(stop: asyncio.Event) -> int:
        interactive = is_interactive(as_json)
        agent = build_agent(config, as_json, printer=not interactive)
        tally = AnswerSummary()
        agent.add_listener(tally)
        try:
            return await serve_until_stopped(agent, interactive, stop)
        finally:
            if tally.listened:
                if summary_fd is not None:  # a worker: the parent prints them all merged
                    hand_over_summary(tally, summary_fd)
                else:
                    tally.print(as_json)

    async def serve_until_stopped(agent: UserAgent, interactive: bool,
                                  stop: asyncio.Event) -> int:
        async with agent:  # closing hangs up every call and unregisters
            if registrar_uri is not None:
                try:
                    await agent.register(str(registrar_uri))
                except RegistrationError:
                    return EXIT_FAILED
                if profile.mwi:
                    await subscribe_mwi(agent, registrar_uri, profile.domain)
            if interactive:
                served = await LiveSession(agent).run(serve(agent), stop)
            else:
                served = await until_stopped(serve(agent), stop)
        return EXIT_INTERRUPTED if served is None else EXIT_OK

    raise SystemExit(run(main))
