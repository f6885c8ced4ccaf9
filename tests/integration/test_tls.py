"""SIP over TLS between our own agents, with certificates the test makes (trustme): calls
with audio, the server's certificate checked against the CA and the SIP domain (RFC 5922),
and a handshake that fails said in one line."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from softphone.testing import TestAgent
from softphone.transport.tls import TlsSettings
from softphone.ua.agent import AgentConfig, AudioConfig, Credentials, UserAgent
from softphone.ua.registration import RegistrationError
from tests.integration.test_cli import SOFTPHONE
from tests.peers import Kamailio, kamailio


@dataclass(frozen=True)
class Certificates:
    ca: Path            # the test CA's certificate
    server: Path        # a certificate for 127.0.0.1 and localhost, with its key
    elsewhere: Path     # a certificate for another name only
    foreign_ca: Path    # a CA that signed none of these


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certificates]:
    folder = tmp_path_factory.mktemp("tls")
    ca, foreign = trustme.CA(), trustme.CA()
    paths = Certificates(folder / "ca.pem", folder / "server.pem", folder / "elsewhere.pem",
                         folder / "foreign.pem")
    ca.cert_pem.write_to_path(str(paths.ca))
    foreign.cert_pem.write_to_path(str(paths.foreign_ca))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(paths.server))
    ca.issue_cert("sip.elsewhere.test").private_key_and_cert_chain_pem.write_to_path(
        str(paths.elsewhere))
    yield paths


def server(certificate: Path, ca: Path) -> UserAgent:
    return UserAgent(AgentConfig(listen_port=0, user="bob", codecs=("pcmu",),
                                 tls=TlsSettings(cert_file=str(certificate), ca_file=str(ca)),
                                 audio=AudioConfig(tone=600)))


def client(ca: Path | None) -> UserAgent:
    return UserAgent(AgentConfig(listen_port=0, user="alice", codecs=("pcmu",),
                                 tls=TlsSettings(ca_file=str(ca) if ca else None)))


def tls_port(agent: UserAgent) -> int:
    return agent.transports["tls"].port


async def test_a_call_over_tls_with_audio(certificates: Certificates) -> None:
    sent: list[bytes] = []
    async with server(certificates.server, certificates.ca) as bob, \
            client(certificates.ca) as alice:
        alice.add_tracer(lambda direction, data, peer: sent.append(data)
                         if direction == "sent" else None)
        call = await alice.call(f"sips:bob@127.0.0.1:{tls_port(bob)}")
        incoming = await asyncio.wait_for(bob.incoming.get(), 5)
        await incoming.answer()
        assert await asyncio.wait_for(asyncio.shield(call.answered), 5)
        await asyncio.sleep(0.6)
        assert call.stream is not None and call.stream.stats.received > 15
        await call.hangup()
        assert (await asyncio.wait_for(asyncio.shield(incoming.ended), 5)).by == "remote"
    invite = next(data for data in sent if data.startswith(b"INVITE"))
    assert b"Via: SIP/2.0/TLS 127.0.0.1:" in invite
    assert b"Contact: <sips:alice@127.0.0.1:" in invite


async def test_a_peer_that_never_answers_our_close_notify_is_cut_off(
        certificates: Certificates) -> None:
    """Closing the agent sends close_notify on each TLS connection; a peer that never
    answers (here one that stops reading after the handshake) would keep our socket open
    for asyncio's 30 s shutdown timeout, past the agent's end: it is aborted after a
    moment instead."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificates.server))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[ssl.SSLSocket] = []

    def serve_one_handshake() -> None:
        connection, _ = listener.accept()
        held.append(context.wrap_socket(connection, server_side=True))  # then silence

    accepting = threading.Thread(target=serve_one_handshake, daemon=True)
    accepting.start()
    try:
        async with client(certificates.ca) as alice:
            asyncio.ensure_future(alice.options(f"sips:bob@127.0.0.1:{port}", timeout=30))
            for _ in range(100):
                if held:
                    break
                await asyncio.sleep(0.05)
            assert held, "the TLS connection was not made"
            assert established(port)
        assert not established(port)  # ours is gone, not waiting on the silent peer
    finally:
        for connection in held:
            connection.close()
        listener.close()


def established(port: int) -> bool:
    """Whether a TCP connection toward ``port`` on 127.0.0.1 is established."""
    lines = subprocess.run(["ss", "-tnH", "state", "established", f"dport = :{port}"],
                           capture_output=True, text=True, check=True).stdout
    return bool(lines.strip())


@pytest.mark.parametrize(("which", "reason"), [
    ("foreign_ca", "certificate"),
    ("elsewhere", "IP address mismatch"),
])
async def test_a_server_that_cannot_prove_itself_is_refused(
        certificates: Certificates, which: str, reason: str) -> None:
    served = certificates.elsewhere if which == "elsewhere" else certificates.server
    trusted = certificates.foreign_ca if which == "foreign_ca" else certificates.ca
    async with server(served, certificates.ca) as bob, client(trusted) as alice:
        call = await alice.call(f"sips:bob@127.0.0.1:{tls_port(bob)}")
        ended = await asyncio.wait_for(asyncio.shield(call.ended), 10)
        assert bob.incoming.empty()
    assert ended.status == 503 and ended.by == "error"
    assert ended.reason.startswith(f"TLS handshake with tls:127.0.0.1:{tls_port(bob)} failed: ")
    assert reason in ended.reason


def test_the_cli_places_a_tls_call_and_says_why_a_handshake_failed(
        certificates: Certificates) -> None:
    answering = subprocess.Popen(
        [*SOFTPHONE, "answer", "--listen", "127.0.0.1:0", "--auto-answer", "--null-audio",
         "--tls-cert", str(certificates.server), "--max-calls", "2", "--json"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert answering.stdout is not None
        port = json.loads(answering.stdout.readline())["port"] + 1  # TLS: the SIP port + 1
        good = subprocess.run([*SOFTPHONE, "call", f"sips:bob@127.0.0.1:{port}", "--null-audio",
                               "--ca-file", str(certificates.ca), "--duration", "0.5",
                               "--json"], capture_output=True, text=True, timeout=30)
        assert good.returncode == 0, good.stderr
        bad = subprocess.run([*SOFTPHONE, "call", f"sips:bob@127.0.0.1:{port}", "--null-audio",
                              "--json"], capture_output=True, text=True, timeout=30)
        assert bad.returncode == 1
        ended = json.loads(bad.stdout.splitlines()[-1])
        assert ended["reason"].startswith(f"TLS handshake with tls:127.0.0.1:{port} failed: ")
        lab = subprocess.run([*SOFTPHONE, "call", f"sips:bob@127.0.0.1:{port}", "--null-audio",
                              "--tls-insecure", "--duration", "0.3", "--json"],
                             capture_output=True, text=True, timeout=30)
        assert lab.returncode == 0, lab.stderr
    finally:
        answering.terminate()
        answering.communicate(timeout=15)


@pytest.fixture(scope="module")
def tls_proxy(certificates: Certificates) -> Iterator[Kamailio]:
    with kamailio(tls_certificate=certificates.server) as running:
        yield running


def tls_account(proxy: Kamailio, user: str, ca: Path, via_proxy: bool = True) -> UserAgent:
    """A client-only TLS account (no certificate of its own): what reaches it must come over
    the connections it opened."""
    return UserAgent(AgentConfig(
        listen_port=0, user=user, domain="127.0.0.1", transport="tls", codecs=("pcmu",),
        credentials=Credentials(user, Kamailio.USERS[user]), tls=TlsSettings(ca_file=str(ca)),
        outbound_proxy=proxy.tls_uri if via_proxy else None, audio=AudioConfig(tone=500)))


@pytest.mark.peers
async def test_register_and_call_both_ways_through_kamailio_over_tls(
        tls_proxy: Kamailio, certificates: Certificates) -> None:
    alice = tls_account(tls_proxy, "alice", certificates.ca)
    bob = tls_account(tls_proxy, "bob", certificates.ca)
    async with alice, bob:
        for agent in (alice, bob):
            registration = await agent.register(tls_proxy.tls_uri, expires=300)
            assert registration.granted_expires == 300
        for caller, callee in ((alice, bob), (bob, alice)):
            call = await caller.call(f"sips:{callee.config.user}@127.0.0.1")
            incoming = await asyncio.wait_for(callee.incoming.get(), 10)  # over its own
            await incoming.answer()                                       # connection
            assert await asyncio.wait_for(asyncio.shield(call.answered), 10)
            await asyncio.sleep(0.5)
            assert call.stream is not None and call.stream.stats.received > 10
            await incoming.hangup()  # the BYE too comes back over the caller's connection
            ended = await asyncio.wait_for(asyncio.shield(call.ended), 10)
            assert ended.by == "remote"


@pytest.mark.peers
async def test_kamailio_with_a_certificate_we_do_not_trust_is_refused(
        tls_proxy: Kamailio, certificates: Certificates) -> None:
    agent = tls_account(tls_proxy, "carol", certificates.foreign_ca)
    async with agent:
        with pytest.raises(RegistrationError) as refused:
            await agent.register(tls_proxy.tls_uri)
    assert refused.value.status == 503 and "TLS handshake" in refused.value.reason


@pytest.mark.peers
async def test_tls_and_srtp_through_kamailio_carry_audio_both_ways(
        tls_proxy: Kamailio, certificates: Certificates) -> None:
    """What a provider asks of a softphone: signalling over TLS through its proxy and media
    in SRTP (mandatory: RTP/SAVP), each side hearing the other's tone."""
    def account(user: str) -> TestAgent:
        return TestAgent(user, codecs=("pcmu",), domain="127.0.0.1", transport="tls",
                         credentials=Credentials(user, Kamailio.USERS[user]),
                         tls=TlsSettings(ca_file=str(certificates.ca)),
                         outbound_proxy=tls_proxy.tls_uri, srtp="mandatory")

    async with account("alice") as alice, account("bob") as bob:
        for agent in (alice, bob):
            await agent.agent.register(tls_proxy.tls_uri, expires=300)
        call, incoming = await alice.connect(bob, "sips:bob@127.0.0.1")
        incoming.play_tone(700)
        call.play_tone(500)
        await call.hears_tone(700, seconds=0.5)
        await incoming.hears_tone(500, seconds=0.5)
        for side in (call, incoming):
            assert side.call.media is not None and side.call.media.srtp is not None
        await call.hangup()


@pytest.mark.peers
async def test_kamailio_with_a_certificate_for_another_name_is_refused(
        certificates: Certificates) -> None:
    """RFC 5922: the certificate must name the server we asked for (here 127.0.0.1); one
    for sip.elsewhere.test, though signed by a CA we trust, is refused."""
    with kamailio(tls_certificate=certificates.elsewhere) as wrong_name:
        agent = tls_account(wrong_name, "alice", certificates.ca)
        async with agent:
            with pytest.raises(RegistrationError) as refused:
                await agent.register(wrong_name.tls_uri)
    assert refused.value.status == 503 and "TLS handshake" in refused.value.reason
    assert "IP address mismatch" in refused.value.reason
