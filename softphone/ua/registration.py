"""Registration of our contact with a registrar (RFC 3261 section 10).

Digest challenges are answered by the agent; a 423 Interval Too Brief is retried with the
registrar's Min-Expires; the binding is refreshed before it expires and removed on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from softphone.sip import ParseError, Request, Response, SipUri
from softphone.sip.builder import new_call_id, new_tag
from softphone.sip.errors import SipError
from softphone.sip.headers import Address, parse_expires
from softphone.ua.events import Registered, RegistrationFailed, Unregistered

if TYPE_CHECKING:
    from softphone.ua.agent import UserAgent

log = logging.getLogger("softphone.registration")
MIN_REFRESH_MARGIN = 5.0


class RegistrationError(SipError):
    """The registrar refused, or did not answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class Registration:
    def __init__(self, agent: UserAgent, registrar: SipUri, expires: int,
                 timeout: float | None = None) -> None:
        self.agent = agent
        self.timeout = timeout  # bounds each REGISTER's wait for its final response
        self.registrar = registrar
        self.requested_expires = expires
        self.granted_expires = 0
        self.call_id = new_call_id(agent.advertised_host())
        self.from_tag = new_tag()
        self.cseq = 0
        self._refresher: asyncio.Task[object] | None = None

    @property
    def aor(self) -> SipUri:
        return SipUri(host=self.agent.config.domain or self.registrar.host,
                      user=self.agent.config.user)

    async def register(self) -> int:
        """Register (or refresh); returns the seconds granted. Raises RegistrationError."""
        expires = self.requested_expires
        for _ in range(3):
            response = await self._send(expires)
            if response.status == 423:
                expires = _min_expires(response, expires)
                continue
            break
        if not 200 <= response.status < 300:
            log.warning("registration of %s failed: %d %s", self.aor, response.status,
                        response.reason)
            self.agent.emit(RegistrationFailed(str(self.aor), response.status, response.reason))
            raise RegistrationError(response.status, response.reason)
        self.granted_expires = self._granted(response, expires)
        log.info("registered %s at %s for %d s", self.aor, self.registrar, self.granted_expires)
        self.agent.emit(Registered(str(self.aor), self.agent.contact_text(), self.granted_expires))
        return self.granted_expires

    async def _send(self, expires: int) -> Response:
        self.cseq += 1
        request = self.agent.new_request(
            "REGISTER", SipUri(host=self.registrar.host, port=self.registrar.port,
                               params=self.registrar.params),
            to=Address(uri=self.aor), call_id=self.call_id, from_tag=self.from_tag,
            cseq=self.cseq)
        request.headers.set("From", str(Address(uri=self.aor,
                                                display_name=self.agent.config.display_name)
                                        .with_param("tag", self.from_tag)))
        request.headers.add("Contact", self.agent.contact_text())
        request.headers.add("Expires", str(expires))
        peers = await self.agent.targets(self.registrar)

        async def exchange() -> tuple[Response, Request]:
            response, sent = await self.agent.send_request(request, peers)
            self.cseq = sent.cseq.number
            return response, sent

        return await self.agent.within(self.timeout, exchange(), request)

    def _granted(self, response: Response, asked: int) -> int:
        """The expiry the registrar gave our contact (its Contact expires, else Expires)."""
        ours = self.agent.contact().uri
        with contextlib.suppress(ParseError, ValueError):
            for contact in response.contacts:
                if contact.uri == ours and contact.param("expires"):
                    return int(contact.param("expires") or asked)
        with contextlib.suppress(ParseError):
            if response.expires is not None:
                return response.expires
        return asked

    def keep_refreshed(self) -> None:
        self._refresher = self.agent.spawn(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        while True:
            margin = max(MIN_REFRESH_MARGIN, self.granted_expires * 0.1)
            await asyncio.sleep(max(1.0, self.granted_expires - margin))
            try:
                await self.register()
            except RegistrationError:
                await asyncio.sleep(min(30.0, max(1.0, self.granted_expires / 4)))

    async def unregister(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        if self in self.agent.registrations:
            self.agent.registrations.remove(self)
        response = await self._send(0)
        if 200 <= response.status < 300:
            self.agent.emit(Unregistered(str(self.aor)))


def _min_expires(response: Response, current: int) -> int:
    value = response.headers.get("Min-Expires")
    try:
        return max(current, parse_expires(value)) if value else current * 2
    except ParseError:
        return current * 2
