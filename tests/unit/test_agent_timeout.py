"""The core's call of an agent (agents.resolve_within) and the agents' own threads
(agents.run_blocking): a slow agent is a 504 naming it at the timeout; an agent's own
failure, a TimeoutError of its own included, stays its own."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from guacbridge.agents import AgentError, Resolved, resolve_within, run_blocking
from guacbridge.grants import Target


class Sleepy:
    name = "sleepy"

    async def resolve(self, target):
        await asyncio.sleep(target["seconds"])
        return Resolved(Target("vnc", {"hostname": "10.0.0.1", "port": "5900"}))


class OwnTimeout:
    name = "own"

    async def resolve(self, target):
        raise TimeoutError("the agent's socket timed out")


def test_a_slow_agent_is_a_504_naming_it_at_the_timeout():
    started = time.monotonic()
    with pytest.raises(AgentError) as e:
        asyncio.run(resolve_within(Sleepy(), {"seconds": 5}, 0.2))
    assert (e.value.status, e.value.details) == (504, "agent sleepy did not answer within 0.2 s")
    assert time.monotonic() - started < 1
    assert asyncio.run(resolve_within(Sleepy(), {"seconds": 0}, 1)).target.protocol == "vnc"


def test_an_agents_own_timeout_error_is_not_mistaken_for_ours():
    with pytest.raises(TimeoutError, match="the agent's socket"):
        asyncio.run(resolve_within(OwnTimeout(), {}, 5))


def test_run_blocking_uses_the_agents_threads_not_the_default_executor():
    name = asyncio.run(run_blocking(lambda: threading.current_thread().name))
    assert name.startswith("guacbridge-agent")
