"""A registration of the public API: a shell over the core's (``softphone.core.registration``),
which sends the REGISTERs, answers challenges and 423, and refreshes on its own timer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from softphone.core.registration import CoreRegistration
from softphone.sip import SipUri
from softphone.sip.errors import SipError

if TYPE_CHECKING:
    from softphone.ua.agent import UserAgent


class RegistrationError(SipError):
    """The registrar refused, or did not answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class Registration:
    def __init__(self, agent: UserAgent, number: int, core_registration: CoreRegistration,
                 timeout: float | None = None) -> None:
        self.agent = agent
        self.number = number
        self.core_registration = core_registration
        self.timeout = timeout  # bounds the wait for the answer to the removal

    @property
    def aor(self) -> SipUri:
        return self.core_registration.aor

    @property
    def registrar(self) -> SipUri:
        return self.core_registration.registrar

    @property
    def granted_expires(self) -> int:
        return self.core_registration.granted_expires

    @property
    def state(self) -> str:
        return self.core_registration.state.value

    async def unregister(self) -> None:
        """Remove the binding (Expires: 0) and stop refreshing it."""
        if self in self.agent.registrations:
            self.agent.registrations.remove(self)
        await self.agent.within(self.timeout, self.agent.request(
            lambda now: self.agent.core.unregister(self.number, now)))


class MwiSubscription:
    """A message-summary subscription (RFC 3842) of the public API: the core sends and
    refreshes the SUBSCRIBEs; the mailbox's state arrives as ``mwi`` events."""

    def __init__(self, agent: UserAgent, number: int, status: int) -> None:
        self.agent = agent
        self.number = number
        self.status = status  # the first SUBSCRIBE's answer (200 or 202)

    async def unsubscribe(self) -> None:
        """End the subscription (Expires: 0) and stop refreshing it."""
        if self in self.agent.subscriptions:
            self.agent.subscriptions.remove(self)
        await self.agent.request(lambda now: self.agent.core.unsubscribe(self.number, now))
