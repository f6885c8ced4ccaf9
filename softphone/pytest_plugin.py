"""pytest fixtures for call tests (needs pytest-asyncio): ``sip_agent`` is a TestAgent on
loopback, started and closed around the test; ``sip_agents`` makes more of them.

Installed as a pytest11 entry point, so a project that installs softphone gets them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from softphone.testing import TestAgent

try:
    import pytest_asyncio
except ImportError:  # without pytest-asyncio the fixtures cannot run: offer none
    pytest_asyncio = None  # type: ignore[assignment]

AgentMaker = Callable[..., Awaitable[TestAgent]]


if pytest_asyncio is not None:
    fixture = pytest_asyncio.fixture
else:  # pragma: no cover
    def fixture(function: Callable[..., object]) -> Callable[..., object]:
        return function


@fixture
async def sip_agents() -> AsyncIterator[AgentMaker]:
    started: list[TestAgent] = []

    async def make(user: str = "test", **config: object) -> TestAgent:
        agent = TestAgent(user, **config)  # type: ignore[arg-type]
        await agent.__aenter__()
        started.append(agent)
        return agent

    yield make
    for agent in started:
        await agent.__aexit__(None, None, None)


@fixture
async def sip_agent(sip_agents: AgentMaker) -> TestAgent:
    return await sip_agents("test")
