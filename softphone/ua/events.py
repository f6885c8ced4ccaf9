"""The engine's public events, where the API has always offered them (``softphone.events``
holds them, so that the sans-IO core can emit them without importing the asyncio shell)."""

from softphone.events import *  # noqa: F403
from softphone.events import __all__  # noqa: F401
