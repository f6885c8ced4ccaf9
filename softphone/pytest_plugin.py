"""pytest fixtures for call tests: ``sip_agent`` is a TestAgent on loopback, started and
closed around the test; ``sip_agents`` makes more of them.

Installed as a pytest11 entry point, so a project that installs ``softphone[pytest]`` gets
them with no configuration: async tests that use these fixtures run on pytest-asyncio
without ``asyncio_mode = "auto"`` (the plugin marks them itself). Without pytest-asyncio the
fixtures still exist and fail with a line saying what to install, rather than pytest's
"fixture not found"."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from softphone.testing import TestAgent

try:
    import pytest_asyncio
except ImportError:  # the fixtures explain what is missing instead
    pytest_asyncio = None  # type: ignore[assignment]

AgentMaker = Callable[..., Awaitable[TestAgent]]
FIXTURES = frozenset({"sip_agent", "sip_agents"})
MISSING = ("softphone's call-test fixtures need pytest-asyncio: "
           "pip install 'softphone[pytest]'")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> None:
    """Mark async tests that use our fixtures as asyncio tests before pytest-asyncio looks,
    so they run in its strict mode (its default) as well as in auto mode."""
    if pytest_asyncio is None or not inspect.iscoroutinefunction(obj):
        return
    wanted = set(inspect.signature(obj).parameters)
    if wanted & FIXTURES and not any(m.name == "asyncio" for m in getattr(obj, "pytestmark", ())):
        pytest.mark.asyncio(obj)


async def _agents() -> AsyncIterator[AgentMaker]:
    started: list[TestAgent] = []

    async def make(user: str = "test", **config: object) -> TestAgent:
        agent = TestAgent(user, **config)  # type: ignore[arg-type]
        await agent.__aenter__()
        started.append(agent)
        return agent

    yield make
    for agent in started:
        await agent.__aexit__(None, None, None)


async def _agent(sip_agents: AgentMaker) -> TestAgent:
    return await sip_agents("test")


if pytest_asyncio is not None:
    sip_agents = pytest_asyncio.fixture(_agents, name="sip_agents")
    sip_agent = pytest_asyncio.fixture(_agent, name="sip_agent")
else:
    @pytest.fixture(name="sip_agents")
    def _missing_agents() -> None:
        pytest.fail(MISSING, pytrace=False)

    @pytest.fixture(name="sip_agent")
    def _missing_agent() -> None:
        pytest.fail(MISSING, pytrace=False)
