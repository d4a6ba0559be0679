"""Where a new guacd connection of a console goes (targets.py), on the real SQLite store:
a console whose agent follows is asked of its agent again at each connection (a fresh
ticket, the current host), judged by the policy, with guacbridge's own parameters kept and
its lifetime untouched; a static console is never asked again; refusals say why and are in
the console's trail, never with the ticket."""
import asyncio
import json

import pytest

from guacbridge import agents, config
from guacbridge.agents import AgentError, Resolved, load_agents
from guacbridge.errors import ConsoleError
from guacbridge.grants import Target
from guacbridge.service import assemble
from guacbridge.store.sqlite import SqliteGrantStore

STATIC = {"agent": "static", "protocol": "vnc", "hostname": "10.0.0.5", "port": 5901,
          "password": "hunter22"}
TICKET_SECONDS = 3


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Answers:
    """An agent like oVirt's: each answer holds a fresh ticket that expires, and the VM may
    have moved (``host``) or stopped (``running``) since the last one. It does not say
    whether it follows (a plug-in written before the word)."""
    name = "plug"

    def __init__(self, clock):
        self.clock = clock
        self.host = "10.0.0.7"
        self.running = True
        self.asked: list[dict] = []
        self.hang = False

    async def resolve(self, target):
        self.asked.append(dict(target))
        if self.hang:
            await asyncio.sleep(10)
        if not self.running:
            raise AgentError(409, f"VM {target['vm']} is not running (status down): start it"
                                  " and retry")
        return Resolved(Target("vnc", {"hostname": self.host, "port": "5900",
                                       "password": f"ticket-{len(self.asked)}"}),
                        expires_at=self.clock() + TICKET_SECONDS)


class Hypervisor(Answers):
    """The same, saying that it follows."""
    name = "hv"
    follows = True


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def parts(tmp_path, clock):
    settings = config.load(env={}, data_dir=str(tmp_path), use_by=120, duration=3600,
                           max_duration=7200, limits_agent_timeout=1,
                           recordings_dir=str(tmp_path / "rec"))
    found = {**load_agents(settings), "hv": Hypervisor(clock), "plug": Answers(clock)}
    return assemble(settings, SqliteGrantStore(settings.sqlite_path), found, clock=clock)


def run(coro):
    return asyncio.run(coro)


def open_console(parts, target, **request):
    return run(parts.consoles.open({"target": target, **request}, owner="portal"))


def grant_of(parts, reply):
    return parts.store.get(reply["id"])


def trail(parts, console_id):
    return run(parts.consoles.history(console_id))["events"]


def test_agents_say_whether_they_follow_and_a_plug_in_without_the_word_does_not(parts):
    found = parts.consoles.agents
    assert agents.follows(found["static"]) is False and agents.follows(found["bmc"]) is False
    assert agents.follows(found["hv"]) is True and agents.follows(found["plug"]) is False
    from guacbridge.agents.ovirt import OvirtAgent
    assert OvirtAgent.follows is True


def test_a_static_console_connects_where_it_was_made_and_its_agent_is_not_asked(
        parts, monkeypatch):
    asked = []
    static = parts.consoles.agents["static"]
    original = static.resolve

    async def counting(target):
        asked.append(target)
        return await original(target)
    monkeypatch.setattr(static, "resolve", counting)
    reply = open_console(parts, STATIC)
    assert len(asked) == 1                      # at creation only
    grant = grant_of(parts, reply)
    assert grant.follows is False and parts.store.asked_target(grant.id) is None
    for _ in range(3):
        target = run(parts.targets.for_connection(grant))
        assert (target.params["hostname"], target.params["password"]) == ("10.0.0.5",
                                                                          "hunter22")
    assert len(asked) == 1
    assert "target.resolved" not in [e["kind"] for e in trail(parts, reply["id"])]


def test_a_following_console_gets_a_fresh_ticket_and_the_current_host_at_each_connection(
        parts, clock):
    hv = parts.consoles.agents["hv"]
    reply = open_console(parts, {"agent": "hv", "vm": "web-12"}, recording=True,
                         prompt=False)
    grant = grant_of(parts, reply)
    assert grant.follows is True and grant.power is False
    first = run(parts.targets.for_connection(grant))
    assert first.params["password"] == "ticket-2"          # not the creation's ticket-1
    hv.host = "10.0.0.8"                                    # migrated
    clock.now += 600                                        # long past any ticket
    again = run(parts.targets.for_connection(grant))
    assert (again.params["hostname"], again.params["password"]) == ("10.0.0.8", "ticket-3")
    # guacbridge's own parameters stay: the recording and the prompt mark.
    assert again.params["recording-name"] == reply["id"]
    assert again.params["guacbridge-no-prompt"] == "true"
    assert hv.asked == [{"agent": "hv", "vm": "web-12"}] * 3
    # The console's lifetime is the one it had: a re-resolve extends nothing.
    assert grant_of(parts, reply).use_by == grant.use_by
    assert grant_of(parts, reply).deadline == grant.deadline
    resolved = [e for e in trail(parts, reply["id"]) if e["kind"] == "target.resolved"]
    assert [e["data"] for e in resolved] == [
        {"agent": "hv", "protocol": "vnc", "hostname": "10.0.0.7", "port": "5900"},
        {"agent": "hv", "protocol": "vnc", "hostname": "10.0.0.8", "port": "5900"}]
    assert "ticket-" not in json.dumps(trail(parts, reply["id"]))


def test_a_following_consoles_link_is_not_bound_to_the_first_tickets_life(parts, clock):
    follows = open_console(parts, {"agent": "hv", "vm": "web-12"})
    assert follows["use_by"] == open_console(parts, STATIC)["use_by"]      # its ttl: 120 s
    clock.now += TICKET_SECONDS + 1                  # the creation's ticket is dead …
    assert run(parts.sessions.start(follows["websocket"]["token"], None, "t1")).id == \
        follows["id"]                                # … and the link still works
    # An agent that does not follow: the link must be used while its answer works.
    plug = open_console(parts, {"agent": "plug", "vm": "web-12"})
    grant = grant_of(parts, plug)
    assert grant.follows is False and grant.use_by == clock.now + TICKET_SECONDS


def test_the_re_resolved_address_is_judged_by_the_policy(parts):
    hv = parts.consoles.agents["hv"]
    reply = open_console(parts, {"agent": "hv", "vm": "web-12"})
    hv.host = "127.0.0.1"                   # the agent now points at guacbridge's own host
    with pytest.raises(ConsoleError) as refused:
        run(parts.targets.for_connection(grant_of(parts, reply)))
    assert refused.value.status == 403 and "127.0.0.1" in refused.value.details
    failed = [e for e in trail(parts, reply["id"]) if e["kind"] == "target.failed"]
    assert failed[-1]["data"]["status"] == 403


def test_a_vm_that_stopped_between_connections_is_refused_in_words(parts):
    hv = parts.consoles.agents["hv"]
    reply = open_console(parts, {"agent": "hv", "vm": "web-12"})
    hv.running = False
    with pytest.raises(ConsoleError) as refused:
        run(parts.targets.for_connection(grant_of(parts, reply)))
    assert refused.value.status == 409
    assert refused.value.details == ("VM web-12 is not running (status down): start it and"
                                     " retry")
    failed = [e for e in trail(parts, reply["id"]) if e["kind"] == "target.failed"]
    assert failed[-1]["data"] == {"status": 409, "details": refused.value.details}


def test_an_agent_that_does_not_answer_at_connect_is_a_504_naming_it(parts):
    hv = parts.consoles.agents["hv"]
    reply = open_console(parts, {"agent": "hv", "vm": "web-12"})
    hv.hang = True
    with pytest.raises(ConsoleError) as refused:
        run(parts.targets.for_connection(grant_of(parts, reply)))
    assert refused.value.status == 504 and "agent hv did not answer" in refused.value.details
