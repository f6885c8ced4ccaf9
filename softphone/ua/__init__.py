"""The user-agent engine: the public Python API (UserAgent, Call, Registration, events)."""

from softphone.ua.agent import UserAgent
from softphone.ua.call import Call
from softphone.ua.events import Event

__all__ = ["Call", "Event", "UserAgent"]
