"""Registration of our contact with a registrar (RFC 3261 10), inside the core.

REGISTER, answered challenges (the core's exchanges do that), 423 Interval Too Brief retried
with the registrar's Min-Expires, the binding refreshed on the core's timer before it
expires, retried with back-off when a refresh fails, and removed with Expires: 0. The 200
may list several contacts (other devices of the same account): ours is found by its URI.
The registrar's Service-Route (RFC 3608) becomes the route of our later requests; a Path
(RFC 3327) in the 200 is the proxies' business and is only noted.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from softphone.core.events import Completed
from softphone.core.requests import Exchange
from softphone.core.state import RegistrationInput, RegistrationState, next_registration_state
from softphone.events import Registered, RegistrationFailed, Unregistered
from softphone.sip import ParseError, Response, SipUri
from softphone.sip.builder import new_call_id, new_tag
from softphone.sip.headers import Address, parse_address, parse_expires
from softphone.sip.transaction import Peer

if TYPE_CHECKING:
    from softphone.core.agent import UserAgentCore

log = logging.getLogger("softphone.registration")
MIN_REFRESH_MARGIN = 5.0
MAX_423_RETRIES = 3
RETRY_LIMIT = 30.0
PING = b"\r\n\r\n"   # RFC 5626 3.5.1: a double CRLF, answered by a single one
PONG_WAIT = 10.0       # seconds a pong may take before the flow counts as dead
REGISTRATION_TIMERS = ("refresh", "keepalive", "pong")


class CoreRegistration:
    def __init__(self, core: UserAgentCore, registrar: SipUri, expires: int,
                 refresh: bool) -> None:
        self.core = core
        self.registrar = registrar
        self.requested_expires = expires
        self.granted_expires = 0
        self.refresh = refresh
        self.state = RegistrationState.UNREGISTERED
        self.call_id = new_call_id(core.advertised_host())
        self.from_tag = new_tag()
        self.cseq = 0
        self.service_route: list[Address] = []
        self._exchange: Exchange | None = None
        self.path: list[str] = []
        self.other_contacts: list[str] = []  # the account's other bindings the 200 listed
        self._request: int | None = None     # the API request waiting for the outcome
        self._asked = expires
        self._too_brief = 0
        self.flow: Peer | None = None        # where the last accepted REGISTER went
        self._replaced: str | None = None    # a Contact to remove in the next REGISTER
        self._failures = 0                   # flows lost in a row, for the back-off

    @property
    def aor(self) -> SipUri:
        return SipUri(host=self.core.config.domain or self.registrar.host,
                      user=self.core.config.user)

    def _move(self, event: RegistrationInput) -> None:
        self.state = next_registration_state(self.state, event)

    def register(self, request_id: int | None, now: float) -> None:
        self._request = request_id
        self._too_brief = 0
        self._send(self.requested_expires, now)

    def unregister(self, request_id: int | None, now: float) -> None:
        self.core.timers.cancel_all(self, REGISTRATION_TIMERS)
        self._move(RegistrationInput.REMOVE)
        if self.state is not RegistrationState.UNREGISTERING:  # never bound: nothing to do
            if request_id is not None:
                self.core.emit(Completed(request_id, 200, "Not registered"))
            self.core.forget_registration(self)
            return
        self._request = request_id
        self._send(0, now)

    def _send(self, expires: int, now: float) -> None:
        if expires:
            self._move(RegistrationInput.SEND)
        self._asked = expires
        self.cseq += 1
        target = SipUri(host=self.registrar.host, port=self.registrar.port,
                        params=self.registrar.params)
        request = self.core.new_request("REGISTER", target, to=Address(uri=self.aor),
                                        call_id=self.call_id, from_tag=self.from_tag,
                                        cseq=self.cseq, routes=False)
        request.headers.set("From", str(Address(uri=self.aor,
                                                display_name=self.core.config.display_name)
                                        .with_param("tag", self.from_tag)))
        # RFC 5626 4.2: the instance and registration ids let the registrar tell this flow
        # from the account's others, and reach us over the connection this REGISTER opens.
        request.headers.add("Contact", f'{self.core.contact_text()};reg-id=1;'
                                       f'+sip.instance="<urn:uuid:{self.core.instance_id}>"')
        if self._replaced is not None:  # the private Contact a NAT hid: remove its binding
            request.headers.add("Contact", f"{self._replaced};expires=0")
            self._replaced = None
        request.headers.add("Expires", str(expires))
        request.headers.add("Supported", "outbound, path")
        self._exchange = self.core.exchange(
            request, self.core.route_for(self.registrar, registering=True), self._on_final,
            None, now)

    def _on_final(self, response: Response) -> None:
        now = self.core.now
        self.cseq = max(self.cseq, response.cseq.number)
        status = response.status
        if status == 423 and self._asked and self._too_brief < MAX_423_RETRIES:
            self._too_brief += 1
            self._send(_min_expires(response, self._asked), now)
            return
        if self.state is RegistrationState.UNREGISTERING:
            self._unregistered(response, now)
            return
        if not 200 <= status < 300:
            self._failed(response, now)
            return
        self._move(RegistrationInput.ACCEPTED)
        self.granted_expires = self._granted(response)
        self._learn_routes(response)
        self.flow = self._exchange.peer if self._exchange is not None else None
        self._failures = 0
        if self._behind_nat(response, now):
            return  # registering again with the public Contact
        self._keep_alive(now)
        log.info("registered %s at %s for %d s", self.aor, self.registrar,
                 self.granted_expires)
        self.core.emit(Registered(str(self.aor), self.core.contact_text(),
                                  self.granted_expires))
        self._complete(response)
        if self.refresh:
            margin = max(MIN_REFRESH_MARGIN, self.granted_expires * 0.1)
            self.core.timers.arm(self, "refresh",
                                 now + max(1.0, self.granted_expires - margin))

    def _behind_nat(self, response: Response, now: float) -> bool:
        """RFC 3581: the registrar saw our REGISTER come from ``received``:``rport``. When
        that is not what our Contact says (a NAT is in between, on UDP), take it as our
        public address and register again at once with it, removing the binding of the
        private one in the same request."""
        if self.flow is None or self.flow.reliable or self.core.config.public_host:
            return False
        try:
            via = response.top_via
        except ParseError:
            return False
        if via.received is None and via.rport is None:
            return False
        old = self.core.contact_text()
        contact = self.core.contact().sip_uri
        public = (via.received or contact.host, via.rport or contact.port or 5060)
        if (contact.host, contact.port) == public or \
                not self.core.learn_public(self.flow.transport, *public):
            return False
        self._replaced = old
        self._send(self.requested_expires, now)
        return True

    def _failed(self, response: Response, now: float) -> None:
        was_registered = self.granted_expires > 0
        self._move(RegistrationInput.REFUSED)
        log.warning("registration of %s failed: %d %s", self.aor, response.status,
                    response.reason)
        self.core.emit(RegistrationFailed(str(self.aor), response.status, response.reason))
        self._complete(response)
        if self.refresh and was_registered:  # a refresh failed: keep trying, backing off
            wait = min(RETRY_LIMIT, max(1.0, self.granted_expires / 4))
            self.core.timers.arm(self, "refresh", now + wait)

    def _unregistered(self, response: Response, now: float) -> None:
        self._move(RegistrationInput.ACCEPTED if 200 <= response.status < 300
                   else RegistrationInput.REFUSED)
        self.granted_expires = 0
        if 200 <= response.status < 300:
            self.core.emit(Unregistered(str(self.aor)))
        self._complete(response)
        self.core.forget_registration(self)

    def _complete(self, response: Response) -> None:
        if self._request is not None:
            self.core.emit(Completed(self._request, response.status, response.reason,
                                     response))
            self._request = None

    def on_timer(self, name: str, now: float) -> None:
        if name == "refresh" and self.state in (RegistrationState.REGISTERED,
                                                RegistrationState.FAILED):
            self._too_brief = 0
            self._send(self.requested_expires, now)
        elif name == "keepalive" and self.flow is not None:
            self.core.send_raw(PING, self.flow)
            if self.flow.reliable and self.core.timers.armed(self, "pong") is None:
                self.core.timers.arm(self, "pong", now + PONG_WAIT)  # the first ping's
            self._keep_alive(now)
        elif name == "pong" and self.flow is not None:
            log.info("no pong from %s: the flow is dead", self.flow)
            self.flow_lost(self.flow, now)

    # --- the flow (RFC 5626): keep-alives, and re-registering when it is lost -----------------

    def _keep_alive(self, now: float) -> None:
        """Arm the next keep-alive: a CRLF ping that holds a NAT binding open and, on a
        connection, proves it alive by its pong."""
        interval = self.core.keepalive_interval(self.flow)
        if interval:
            self.core.timers.arm(self, "keepalive", now + interval)

    def pong(self, peer: Peer, now: float) -> None:
        if peer == self.flow:
            self.core.timers.cancel(self, "pong")

    def flow_lost(self, peer: Peer, now: float) -> None:
        """The connection carrying the registration closed, or stopped answering pings:
        register again (a new connection), after 1, 2, 4 ... up to 30 s when it keeps
        failing."""
        if peer != self.flow or self.state is not RegistrationState.REGISTERED:
            return
        self.core.timers.cancel_all(self, ("keepalive", "pong"))
        wait = min(RETRY_LIMIT, 2.0 ** self._failures)
        self._failures += 1
        log.info("the flow to %s is lost: registering again in %g s", peer, wait)
        self.core.timers.arm(self, "refresh", now + wait)

    def _granted(self, response: Response) -> int:
        """The expiry the registrar gave our contact (its Contact's expires, else the
        Expires header, else what we asked), and the other contacts it listed."""
        ours = self.core.contact().uri
        granted: int | None = None
        others: list[str] = []
        with contextlib.suppress(ParseError, ValueError):
            for contact in response.contacts:
                if contact.uri == ours:
                    if contact.param("expires"):
                        granted = int(contact.param("expires") or self._asked)
                else:
                    others.append(str(contact.uri))
        self.other_contacts = others
        if granted is not None:
            return granted
        with contextlib.suppress(ParseError):
            if response.expires is not None:
                return response.expires
        return self._asked

    def _learn_routes(self, response: Response) -> None:
        with contextlib.suppress(ParseError):
            self.service_route = [Address(uri=route.uri) for route in
                                  _addresses(response, "Service-Route")]
        self.path = response.headers.get_all("Path")
        if self.service_route:
            log.info("registrar's Service-Route: %s",
                     ", ".join(str(r) for r in self.service_route))


def _addresses(response: Response, name: str) -> list[Address]:
    return [parse_address(value) for value in response.headers.get_all(name)]


def _min_expires(response: Response, current: int) -> int:
    value = response.headers.get("Min-Expires")
    try:
        return max(current, parse_expires(value)) if value else current * 2
    except ParseError:
        return current * 2
