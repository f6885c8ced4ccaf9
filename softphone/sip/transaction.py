"""SIP transactions (RFC 3261 section 17, with the RFC 6026 Accepted state), sans-IO.

The layer is driven by three inputs only, as aioquic's connection is: ``receive(message,
source, now)``, calls from the transaction user (``send_request``, ``respond``), and
``handle_timer(now)``. It answers with ``datagrams_to_send()``, ``next_event()`` and
``get_timer()`` (the next deadline or None). Time is a number the caller passes in, so tests
drive Timers A to M with a fake clock and never sleep. Timer values derive from T1, T2 and T4
in one place, and keep their RFC names.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from softphone.sip.builder import make_ack_for_failure, make_response
from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.headers import BRANCH_MAGIC_COOKIE, Via
from softphone.sip.message import Headers, Request, Response
from softphone.sip.uri import format_host

TransactionKey = tuple[str, ...]


@dataclass(frozen=True)
class TimerSettings:
    """RFC 3261 table 4: T1 (RTT estimate), T2 (max non-INVITE retransmit interval), T4
    (max time a message stays in the network)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def b(self) -> float:  # also F, H, J, L, M
        return 64 * self.t1

    @property
    def d(self) -> float:
        return max(32.0, self.b)


@dataclass(frozen=True)
class Peer:
    """Where a message comes from or goes to. ``name`` is the SIP domain a TLS connection
    must prove it serves (RFC 5922); it takes no part in comparisons."""

    transport: str  # a transport of the registry: udp, tcp, tls
    host: str
    port: int
    name: str | None = field(default=None, compare=False)

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    def __str__(self) -> str:
        return f"{self.transport}:{format_host(self.host)}:{self.port}"


# --- events for the transaction user --------------------------------------------------------

@dataclass(frozen=True)
class RequestReceived:
    """A new request. ``transaction`` is None for an ACK to a 2xx (it has none of its own);
    for a CANCEL, ``cancels`` names the INVITE transaction it matches (None: 481)."""

    request: Request
    source: Peer
    transaction: TransactionKey | None
    cancels: TransactionKey | None = None


@dataclass(frozen=True)
class ResponseReceived:
    """A response for a client transaction; ``transaction`` is None for a 2xx retransmission
    that arrived after the INVITE transaction ended (the dialog ACKs it again)."""

    response: Response
    transaction: TransactionKey | None


@dataclass(frozen=True)
class TransactionTimedOut:
    """Timer B or F fired, or the transport failed: the TU treats it as a 408 (or 503)."""

    transaction: TransactionKey
    request: Request
    status: int = 408
    reason: str | None = None  # what failed, for a transport error ("connection refused")


@dataclass(frozen=True)
class AckNotReceived:
    """Timer H or L fired without an ACK for our final response (a 2xx one ends the call)."""

    transaction: TransactionKey
    request: Request
    status: int


class LocalResponse(Response):
    """A response nobody sent: what the TU sees on a timeout (RFC 3261 8.1.3.1: a 408) or a
    transport failure (a 503). Callers tell it from a peer's answer by its type."""


def local_response(request: Request, status: int, reason: str | None = None) -> LocalResponse:
    made = make_response(request, status, reason)
    return LocalResponse(made.status, made.reason, made.headers, made.body)


TransactionEvent = RequestReceived | ResponseReceived | TransactionTimedOut | AckNotReceived


# --- the four machines -----------------------------------------------------------------------

class _Transaction:
    """What every machine shares: its peer, named timers and a terminated flag."""

    def __init__(self, layer: TransactionLayer, key: TransactionKey, peer: Peer) -> None:
        self.layer = layer
        self.key = key
        self.peer = peer
        self.state = "init"
        self.timers: dict[str, float] = {}
        self.intervals: dict[str, float] = {}

    @property
    def settings(self) -> TimerSettings:
        return self.layer.settings

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def deadline(self) -> float | None:
        return min(self.timers.values(), default=None)

    def handle_timer(self, now: float) -> None:
        for name, when in sorted(self.timers.items(), key=lambda item: item[1]):
            if when <= now and self.timers.get(name) == when and not self.terminated:
                del self.timers[name]
                self.fire(name, now)

    def fire(self, name: str, now: float) -> None:
        raise NotImplementedError

    def arm(self, name: str, now: float, interval: float) -> None:
        self.intervals[name] = interval
        self.timers[name] = now + interval
        self.layer.schedule(self, now + interval)

    def rearm_backoff(self, name: str, now: float, cap: float | None) -> None:
        """Double the interval (capped): ``min(T1 << n, T2)`` as RFC 3261 17.1.2.2 has it."""
        interval = self.intervals[name] * 2
        self.arm(name, now, min(interval, cap) if cap is not None else interval)

    def terminate(self) -> None:
        self.state = "terminated"
        self.timers.clear()
        self.layer.forget(self)

    def send(self, message: Request | Response) -> None:
        self.layer.queue_send(message, self.peer)


class _ClientTransaction(_Transaction):
    """A request of ours: sent, retransmitted and named in a timeout until its final
    response; after a 2xx to an INVITE, or any final response to another request, all the
    transaction does is wait out Timer M or K, so the request is let go (see
    _ServerTransaction: a load test's caller holds as many finished ones)."""

    def __init__(self, layer: TransactionLayer, key: TransactionKey, request: Request,
                 peer: Peer) -> None:
        super().__init__(layer, key, peer)
        self._request: Request | None = request

    @property
    def request(self) -> Request:
        """Ours, in every state that sends or names it."""
        assert self._request is not None, "the transaction let its request go"
        return self._request

    @property
    def answered(self) -> bool:
        """The final response that lets the request go has come."""
        return self._request is None

    def _let_request_go(self) -> None:
        self._request = None


class _ServerTransaction(_Transaction):
    """A peer's request and our answer to it. The transaction outlives its final response
    by up to 64*T1 (32 s) to absorb the peer's retransmissions (RFC 3261 17.2), and all it
    needs for them is the answer as sent: so that answer is kept as bytes, and the parsed
    request only until nothing can still ask for it (the ACK of an INVITE's final response,
    a non-INVITE's final response). At hundreds of calls a second these finished
    transactions are most of what the agent holds, and every object they held was one the
    cyclic collector walked over and over."""

    def __init__(self, layer: TransactionLayer, key: TransactionKey, request: Request,
                 peer: Peer) -> None:
        super().__init__(layer, key, peer)
        self.request: Request | None = request
        self.method = request.method
        # Call-ID, From tag and CSeq number: what the layer's indexes file the transaction
        # under (read once, while the request is here; _unusable made sure they read)
        self.ids = _ack_key(request)
        self.answer: bytes | None = None  # the last response, as sent
        self.status = 0  # and its status

    def send_answer(self, response: Response) -> None:
        self.answer = bytes(response)
        self.status = response.status
        self.layer.queue_datagram(self.answer, self.peer)

    def repeat_answer(self) -> None:
        if self.answer is not None:
            self.layer.queue_datagram(self.answer, self.peer)

    def _let_request_go(self) -> None:
        self.request = None

    @property
    def merge_key(self) -> tuple[str, str, int, str]:
        """What RFC 3261 8.2.2.2 files a request without a To tag under, to spot it arriving
        again by another path: its ids and method."""
        return (*self.ids, self.method)


class ClientInviteTransaction(_ClientTransaction):
    """RFC 3261 17.1.1 with RFC 6026: Calling, Proceeding, Completed, Accepted, Terminated."""

    def start(self, now: float) -> None:
        self.state = "calling"
        self.send(self.request)
        if not self.peer.reliable:
            self.arm("A", now, self.settings.t1)
        self.arm("B", now, self.settings.b)

    def expect_final_within(self, now: float, seconds: float) -> None:
        """After a CANCEL: a final response must come, or the call is given up (RFC 9.1)."""
        if self.state in ("calling", "proceeding"):
            self.arm("B", now, seconds)

    def receive(self, response: Response, now: float) -> None:
        status = response.status
        if self.state in ("calling", "proceeding"):
            if status < 200:
                self.state = "proceeding"
                self.timers.pop("A", None)
                self.timers.pop("B", None)
            elif status < 300:
                self.state = "accepted"
                self._let_request_go()
                self.timers.clear()
                self.arm("M", now, self.settings.b)
            else:
                self._ack(response)
                self.state = "completed"
                self.timers.clear()
                self.arm("D", now, 0 if self.peer.reliable else self.settings.d)
            self.layer.emit(ResponseReceived(response, self.key))
        elif self.state == "completed" and status >= 300:
            self._ack(response)  # our ACK was lost: send it again, tell nobody
        elif self.state == "accepted" and 200 <= status < 300:
            self.layer.emit(ResponseReceived(response, self.key))

    def _ack(self, response: Response) -> None:
        self.send(make_ack_for_failure(self.request, response))

    def fire(self, name: str, now: float) -> None:
        if name == "A":
            self.send(self.request)
            self.rearm_backoff("A", now, cap=None)
        elif name == "B":
            self.terminate()
            self.layer.emit(TransactionTimedOut(self.key, self.request))
        else:  # D, M
            self.terminate()


class ClientNonInviteTransaction(_ClientTransaction):
    """RFC 3261 17.1.2: Trying, Proceeding, Completed, Terminated."""

    def start(self, now: float) -> None:
        self.state = "trying"
        self.send(self.request)
        if not self.peer.reliable:
            self.arm("E", now, self.settings.t1)
        self.arm("F", now, self.settings.b)

    def receive(self, response: Response, now: float) -> None:
        if self.state not in ("trying", "proceeding"):
            return
        if response.status < 200:
            self.state = "proceeding"
        else:
            self.state = "completed"
            self._let_request_go()
            self.timers.clear()
            self.arm("K", now, 0 if self.peer.reliable else self.settings.t4)
        self.layer.emit(ResponseReceived(response, self.key))

    def fire(self, name: str, now: float) -> None:
        if name == "E":
            self.send(self.request)
            if self.state == "trying":
                self.rearm_backoff("E", now, cap=self.settings.t2)
            else:
                self.arm("E", now, self.settings.t2)
        elif name == "F":
            self.terminate()
            self.layer.emit(TransactionTimedOut(self.key, self.request))
        else:  # K
            self.terminate()


class ServerInviteTransaction(_ServerTransaction):
    """RFC 3261 17.2.1 with RFC 6026: Proceeding, Completed, Confirmed, Accepted, Terminated.

    In Accepted it also retransmits the 2xx until the dialog's ACK arrives (RFC 3261 13.3.1.4
    gives that job to the UA core; it lives here because this is where the 2xx is held).
    The request is let go once an ACK came: until then Timer H or L may name it."""

    def start(self, now: float) -> None:
        self.state = "proceeding"
        assert self.request is not None
        self.respond(make_response(self.request, 100), now)

    def receive_request(self, request: Request, now: float) -> None:
        if request.method == "ACK":
            if self.state == "completed":
                self.state = "confirmed"
                self._let_request_go()
                self.timers.clear()
                self.arm("I", now, 0 if self.peer.reliable else self.settings.t4)
            return
        if self.state in ("proceeding", "completed"):
            self.repeat_answer()  # a retransmitted INVITE: repeat our answer

    def respond(self, response: Response, now: float) -> None:
        if self.state != "proceeding":
            raise LocalProtocolError(f"INVITE transaction already answered ({self.state})")
        self.send_answer(response)
        if response.status < 200:
            return
        if response.status < 300:
            self.state = "accepted"
            self.arm("2xx", now, self.settings.t1)
            self.arm("L", now, self.settings.b)
        else:
            self.state = "completed"
            if not self.peer.reliable:
                self.arm("G", now, self.settings.t1)
            self.arm("H", now, self.settings.b)

    def ack_for_2xx(self) -> None:
        self._let_request_go()
        self.timers.pop("2xx", None)

    def fire(self, name: str, now: float) -> None:
        if name in ("G", "2xx"):
            self.repeat_answer()
            self.rearm_backoff(name, now, cap=self.settings.t2)
        elif name in ("H", "L"):
            self.terminate()
            if self.request is not None:  # no ACK came
                self.layer.emit(AckNotReceived(self.key, self.request, self.status))
        else:  # I
            self.terminate()


class ServerNonInviteTransaction(_ServerTransaction):
    """RFC 3261 17.2.2: Trying, Proceeding, Completed, Terminated. The request is let go
    with the final response: retransmissions get its bytes again, nothing else."""

    def start(self, now: float) -> None:
        self.state = "trying"

    def receive_request(self, request: Request, now: float) -> None:
        self.repeat_answer()

    def respond(self, response: Response, now: float) -> None:
        if self.state not in ("trying", "proceeding"):
            raise LocalProtocolError(f"{self.method} transaction already answered")
        self.send_answer(response)
        if response.status < 200:
            self.state = "proceeding"
        else:
            self.state = "completed"
            self._let_request_go()
            self.arm("J", now, 0 if self.peer.reliable else self.settings.b)

    def fire(self, name: str, now: float) -> None:
        self.terminate()


ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction


def server_key(request: Request) -> TransactionKey:
    """RFC 3261 17.2.3: branch, sent-by and method (ACK matches its INVITE); the RFC 2543
    fallback for branches without the magic cookie."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(BRANCH_MAGIC_COOKIE) and len(branch) > len(BRANCH_MAGIC_COOKIE):
        return (branch, via.sent_by.lower(), method)
    return ("rfc2543", request.call_id, request.from_address.tag or "",
            str(request.cseq.number), via.sent_by.lower(), method)


def client_key(message: Request | Response) -> TransactionKey:
    """RFC 3261 17.1.3: top Via branch and CSeq method."""
    method = message.cseq.method
    return (message.top_via.branch or "", "INVITE" if method == "ACK" else method)


def response_destination(via: Via, source: Peer, follow_maddr: bool = False) -> Peer:
    """RFC 3261 18.2.2 with RFC 3581: reliable transports answer on the connection; UDP
    answers the source address, at the source port when the client asked for rport. A Via
    ``maddr`` is followed only when asked: otherwise anyone could aim our responses at a
    third party (reflection)."""
    if source.reliable:
        return source
    if via.maddr and follow_maddr:
        return Peer("udp", via.maddr, via.port or 5060)
    return Peer("udp", source.host, source.port if via.wants_rport else (via.port or 5060))


@dataclass
class TransactionLayer:
    """All transactions of one user agent, matched, timed and reaped."""

    settings: TimerSettings = field(default_factory=TimerSettings)
    # RFC timers keep finished transactions for up to 64*T1 (32 s) to absorb retransmissions:
    # at 1,000 calls/s that is some 64,000 alive, which this bound must allow.
    max_server_transactions: int = 100_000
    follow_maddr: bool = False  # send responses to a Via's maddr (RFC 3261 18.2.2)
    client: dict[TransactionKey, ClientTransaction] = field(default_factory=dict)
    server: dict[TransactionKey, ServerTransaction] = field(default_factory=dict)
    _outbox: list[tuple[bytes, Peer]] = field(default_factory=list)
    _events: deque[TransactionEvent] = field(default_factory=deque)
    # (call-id, from-tag, cseq number) -> key of INVITE server transactions awaiting a 2xx ACK
    _awaiting_ack: dict[tuple[str, str, int], TransactionKey] = field(default_factory=dict)
    # (call-id, from-tag, cseq number, method) of requests without To tag -> key (RFC 8.2.2.2)
    _merge_index: dict[tuple[str, str, int, str], TransactionKey] = field(default_factory=dict)
    # Deadlines as (when, sequence, transaction); an entry whose time no longer matches its
    # transaction's next deadline is stale and skipped, so re-arming never searches the heap.
    _deadlines: list[tuple[float, int, _Transaction]] = field(default_factory=list)
    _sequence: itertools.count[int] = field(default_factory=itertools.count)

    # --- outputs -----------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> TransactionEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        while self._deadlines:
            when, _, transaction = self._deadlines[0]
            if not transaction.terminated and transaction.deadline() == when:
                return when
            heapq.heappop(self._deadlines)
        return None

    # --- inputs from the transaction user --------------------------------------------------

    def send_request(self, request: Request, peer: Peer, now: float) -> TransactionKey:
        """Start a client transaction (any method but ACK) and send the request."""
        if request.method == "ACK":
            raise LocalProtocolError("ACK for a 2xx has no transaction: use send_stateless")
        key = client_key(request)
        transaction: ClientTransaction
        if request.method == "INVITE":
            transaction = ClientInviteTransaction(self, key, request, peer)
        else:
            transaction = ClientNonInviteTransaction(self, key, request, peer)
        self.client[key] = transaction
        transaction.start(now)
        return key

    def send_stateless(self, message: Request | Response, peer: Peer) -> None:
        self.queue_send(message, peer)

    def respond(self, key: TransactionKey, response: Response, now: float) -> None:
        transaction = self.server.get(key)
        if transaction is None or transaction.terminated:
            raise LocalProtocolError("No such server transaction")
        transaction.respond(response, now)
        if isinstance(transaction, ServerInviteTransaction) and 200 <= response.status < 300:
            self._awaiting_ack[transaction.ids] = key

    def stop_retransmitting(self, key: TransactionKey) -> None:
        """The call this INVITE began is over (a BYE came before the ACK, say): stop
        repeating our 2xx, and expect no ACK any more."""
        transaction = self.server.get(key)
        if isinstance(transaction, ServerInviteTransaction):
            transaction.ack_for_2xx()

    def expect_final_within(self, key: TransactionKey, now: float, seconds: float) -> None:
        transaction = self.client.get(key)
        if isinstance(transaction, ClientInviteTransaction):
            transaction.expect_final_within(now, seconds)

    def transport_error(self, key: TransactionKey, reason: str | None = None) -> None:
        """Sending failed: a transaction still waiting for its final response fails with
        503; one already answered has nothing left to lose, and just ends."""
        transaction = self.client.get(key)
        if transaction is not None and not transaction.terminated:
            transaction.terminate()
            if not transaction.answered:
                self.emit(TransactionTimedOut(key, transaction.request, 503, reason))

    # --- inputs from the network and the clock ----------------------------------------------

    def receive(self, message: Request | Response, source: Peer, now: float) -> None:
        if isinstance(message, Response):
            self._receive_response(message, now)
        else:
            self._receive_request(message, source, now)

    def handle_timer(self, now: float) -> None:
        while (when := self.get_timer()) is not None and when <= now:
            _, _, transaction = heapq.heappop(self._deadlines)
            transaction.handle_timer(now)  # re-arming pushes new entries

    # --- internals -------------------------------------------------------------------------

    def queue_send(self, message: Request | Response, peer: Peer) -> None:
        self._outbox.append((bytes(message), peer))

    def queue_datagram(self, data: bytes, peer: Peer) -> None:
        self._outbox.append((data, peer))

    def emit(self, event: TransactionEvent) -> None:
        self._events.append(event)

    def schedule(self, transaction: _Transaction, when: float) -> None:
        """Called by every timer a transaction arms. Entries that stop matching the
        transaction's next deadline (disarmed, fired, terminated) are skipped later."""
        heapq.heappush(self._deadlines, (when, next(self._sequence), transaction))

    def forget(self, transaction: _Transaction) -> None:
        """A transaction ended: drop it and the indexes that point at it."""
        table: dict[TransactionKey, Any] = self.server if isinstance(
            transaction, _ServerTransaction) else self.client
        if table.get(transaction.key) is transaction:
            del table[transaction.key]
        if isinstance(transaction, _ServerTransaction):
            ids = transaction.ids
            if self._awaiting_ack.get(ids) == transaction.key:
                del self._awaiting_ack[ids]
            merge = transaction.merge_key
            if self._merge_index.get(merge) == transaction.key:
                del self._merge_index[merge]

    def _receive_response(self, response: Response, now: float) -> None:
        transaction = self.client.get(client_key(response))
        if transaction is not None and not transaction.terminated:
            transaction.receive(response, now)
        elif response.cseq.method == "INVITE" and 200 <= response.status < 300:
            self.emit(ResponseReceived(response, None))

    def _receive_request(self, request: Request, source: Peer, now: float) -> None:
        request = _stamp_received(request, source)
        key = server_key(request)
        problem = _unusable(request)
        if problem is not None:  # no transaction for what its bookkeeping cannot read
            if request.method != "ACK":
                with contextlib.suppress(ParseError):
                    self.queue_send(make_response(request, 400, problem[:100]),
                                    response_destination(request.top_via, source))
            return
        existing = self.server.get(key)
        if existing is not None:
            existing.receive_request(request, now)
            return
        if request.method == "ACK":
            self._receive_ack_for_2xx(request, source)
            return
        if len(self.server) >= self.max_server_transactions:
            self.queue_send(make_response(request, 503, extra=Headers([("Retry-After", "5")])),
                            response_destination(request.top_via, source))
            return
        transaction = self._new_server_transaction(key, request, source, now)
        if self._is_merged(request, transaction):
            transaction.respond(make_response(request, 482, to_tag="merged"), now)
            return
        cancels = None
        if request.method == "CANCEL":
            invite_key = (*key[:-1], "INVITE")
            cancels = invite_key if invite_key in self.server else None
        self.emit(RequestReceived(request, source, key, cancels))

    def _new_server_transaction(self, key: TransactionKey, request: Request, source: Peer,
                                now: float) -> ServerTransaction:
        peer = response_destination(request.top_via, source, self.follow_maddr)
        transaction: ServerTransaction
        if request.method == "INVITE":
            transaction = ServerInviteTransaction(self, key, request, peer)
        else:
            transaction = ServerNonInviteTransaction(self, key, request, peer)
        self.server[key] = transaction
        transaction.start(now)
        return transaction

    def _is_merged(self, request: Request, transaction: ServerTransaction) -> bool:
        """RFC 3261 8.2.2.2: the same request reaching us twice by different paths."""
        if request.to_address.tag is not None or request.method == "CANCEL":
            return False
        merge = transaction.merge_key
        other = self._merge_index.get(merge)
        if other is not None and other != transaction.key and other in self.server:
            return True
        self._merge_index[merge] = transaction.key
        return False

    def _receive_ack_for_2xx(self, ack: Request, source: Peer) -> None:
        try:
            invite_key = self._awaiting_ack.pop(_ack_key(ack), None)
        except ParseError:
            return
        transaction = self.server.get(invite_key) if invite_key else None
        if isinstance(transaction, ServerInviteTransaction):
            transaction.ack_for_2xx()
        self.emit(RequestReceived(ack, source, None))


def _unusable(request: Request) -> str | None:
    """Why a request cannot get a transaction (To, From, Call-ID or CSeq unreadable), or
    None. Checked before one is made, so that hostile input leaves nothing behind."""
    try:
        _ack_key(request)
        request.to_address  # noqa: B018
    except ParseError as error:
        return error.reason
    return None


def _ack_key(request: Request) -> tuple[str, str, int]:
    """What ties an end-to-end ACK to the INVITE it acknowledges: Call-ID, From tag, CSeq."""
    return (request.call_id, request.from_address.tag or "", request.cseq.number)


def _stamp_received(request: Request, source: Peer) -> Request:
    """RFC 3261 18.2.1 and RFC 3581: note where the request really came from in its Via."""
    via = request.top_via
    stamped = via
    if via.host != source.host:
        stamped = stamped.with_param("received", source.host)
    if via.wants_rport and source.transport == "udp":
        stamped = stamped.with_param("rport", str(source.port))
    if stamped is via:
        return request
    headers = request.headers.copy()
    headers.replace_first("Via", str(stamped))
    return Request(request.method, request.uri, headers, request.body)
