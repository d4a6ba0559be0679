"""The restart bookkeeping on its own: who is told, when the wait ends, who is closed."""
import asyncio

from guacbridge.web.drain import Drain


class Tunnel:
    def __init__(self) -> None:
        self.notices: list[str] = []
        self.closed = False

    def announce_restart(self, notice: str) -> None:
        self.notices.append(notice)

    def close_for_restart(self) -> None:
        self.closed = True


def test_live_tunnels_are_told_and_one_that_comes_up_later_is_told_at_once():
    drain = Drain()
    early = Tunnel()
    drain.add(early)
    assert drain.announce("restarting") == 1 and early.notices == ["restarting"]
    late = Tunnel()                    # finished its handshake during the drain
    drain.add(late)
    assert late.notices == ["restarting"]


def test_the_wait_ends_when_the_last_tunnel_leaves_and_the_rest_are_closed():
    async def scenario():
        drain = Drain()
        leaving, staying = Tunnel(), Tunnel()
        remove = drain.add(leaving)
        drain.add(staying)
        drain.announce("restarting")
        asyncio.get_running_loop().call_later(0.05, remove)
        left = await drain.wait(0.2)            # staying never goes: the time runs out
        return left, drain.close(), leaving.closed, staying.closed
    assert asyncio.run(scenario()) == (1, 1, False, True)


def test_with_nothing_live_the_wait_returns_at_once():
    async def scenario():
        return await asyncio.wait_for(Drain().wait(3600), 1)
    assert asyncio.run(scenario()) == 0
