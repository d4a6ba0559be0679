"""The target policy (guacbridge/policy.py): addresses judged as addresses, the built-in
refusals, guacbridge's own dependencies, the lists that narrow per agent, key and producer,
and the core and the TOML file around it. Names resolve through a resolver the tests hold,
so a DNS answer can change between creation and connect."""
import asyncio
import socket

import pytest

from guacbridge import config, policy
from guacbridge.agents import load_agents
from guacbridge.errors import ConsoleError
from guacbridge.policy import Policy
from guacbridge.service import assemble
from guacbridge.store.sqlite import SqliteGrantStore


class Dns:
    """A resolver whose answers the test sets (and changes)."""

    def __init__(self, **names: list[str]) -> None:
        self.names = dict(names)
        self.asked: list[str] = []

    async def __call__(self, name: str) -> list[str]:
        self.asked.append(name)
        if name == "slow.example":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if name not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.names[name]


def judge(p: Policy, host: str, port: int = 5900, owner: str = "portal", agent="static",
          protocol: str = "vnc", **params: str) -> policy.Judged:
    return asyncio.run(p.judge(owner, agent, protocol,
                               {"hostname": host, "port": str(port), **params}))


def refused(p: Policy, host: str, port: int = 5900, **kw) -> ConsoleError:
    with pytest.raises(ConsoleError) as e:
        judge(p, host, port, **kw)
    return e.value


@pytest.mark.parametrize("spelling", [
    "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "127.0.0.1.",
    "::ffff:127.0.0.1", "[::ffff:127.0.0.1]", "::1", "[::1]", "0:0:0:0:0:0:0:1"])
def test_every_spelling_of_loopback_is_refused_as_loopback(spelling):
    e = refused(Policy(resolver=Dns()), spelling)
    assert e.status == 403 and "is a loopback address" in e.details
    assert "policy.allow" in e.details


@pytest.mark.parametrize("host, what", [
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("0.0.0.0", "unspecified"),
    ("0", "unspecified"), ("::", "unspecified"), ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"), ("255.255.255.255", "broadcast")])
def test_the_built_in_classes_are_refused(host, what):
    e = refused(Policy(resolver=Dns()), host, 80)
    assert e.status == 403 and what in e.details


def test_a_name_is_judged_by_every_address_it_resolves_to():
    dns = Dns(localhost=["127.0.0.1"], mixed=["10.0.0.7", "127.0.0.1"], fine=["10.0.0.8"])
    p = Policy(resolver=dns)
    e = refused(p, "localhost")
    assert e.details == ("localhost (127.0.0.1:5900) is a loopback address, refused unless"
                         " policy.allow lists it")
    assert "mixed (127.0.0.1:5900) is a loopback" in refused(p, "mixed").details
    judged = judge(p, "fine")
    assert judged.params["hostname"] == "fine" and judged.key == "10.0.0.8:5900"


def test_literal_spellings_reach_guacd_and_the_cap_in_plain_form():
    p = Policy(allow=policy.allowed(["127.0.0.0/8"]), resolver=Dns())
    judged = judge(p, "2130706433", 5901)
    assert judged.params["hostname"] == "127.0.0.1" and judged.key == "127.0.0.1:5901"
    assert judge(p, "0x0a.0.0.5").params["hostname"] == "10.0.0.5"
    assert judge(p, "[2001:db8::5]").key == "[2001:db8::5]:5900"
    assert judge(p, "::ffff:10.0.0.5").params["hostname"] == "10.0.0.5"


def test_unresolvable_names_answer_400_and_a_failing_resolver_503():
    p = Policy(resolver=Dns())
    e = refused(p, "h3")
    assert e.status == 400 and "h3 does not resolve" in e.details
    e = refused(p, "slow.example")
    assert e.status == 503 and "try again" in e.details


def test_allow_lifts_a_class_for_its_network_and_ports_only():
    p = Policy(allow=policy.allowed("127.0.0.1:5901,[::1]:22"), resolver=Dns())
    judge(p, "127.0.0.1", 5901)
    judge(p, "::1", 22)
    assert "loopback" in refused(p, "127.0.0.1", 5902).details
    assert "loopback" in refused(p, "127.0.0.2", 5901).details


def settings(**kw) -> config.Settings:
    return config.load(env={}, **kw)


def test_the_dependencies_are_refused_even_where_loopback_is_allowed():
    s = settings(guacd="127.0.0.1:4822,10.0.0.3:4822",
                 mysql_url="mysql://gb:pw@db.internal:3307/gb", amqp_url="amqp://u:p@mq/",
                 guacamole_db_url="postgresql://g:p@10.0.0.4/guac", listen="0.0.0.0:8080",
                 guacamole_url="http://guac.example", policy_allow=["127.0.0.0/8"])
    dns = Dns(**{"db.internal": ["10.0.0.2"], "mq": ["10.0.0.9"],
                 socket.gethostname(): ["10.0.0.1"]})
    p = Policy.from_settings(s, resolver=dns)
    for host, port, what in [
            ("127.0.0.1", 4822, "guacd (guacbridge.guacd)"),
            ("10.0.0.3", 4822, "guacd (guacbridge.guacd)"),
            ("10.0.0.2", 3307, "the grant store (guacbridge.mysql_url)"),
            ("10.0.0.9", 5672, "the broker (guacbridge.amqp_url)"),
            ("10.0.0.4", 5432, "Guacamole's database (guacamole.db_url)"),
            ("127.0.0.1", 8080, "guacbridge itself (guacbridge.listen)"),
            ("10.0.0.1", 8080, "guacbridge itself (guacbridge.listen)")]:
        e = refused(p, host, port, protocol="telnet")
        assert e.status == 403 and e.details == (
            f"{host}:{port} is {what}, refused unless policy.allow lists that address with"
            " its port"), e.details
    judge(p, "127.0.0.1", 5900)                   # loopback itself is allowed here
    judge(p, "10.0.0.2", 3306)                    # another port of the database's host
    judged = Policy.from_settings(settings(guacd="127.0.0.1:4822",
                                           policy_allow=["127.0.0.1:4822"]), resolver=dns)
    judge(judged, "127.0.0.1", 4822)               # named with its port: allowed after all


def test_each_level_narrows_and_the_refusal_names_it():
    s = config.load(env={}, policy_networks=["10.0.0.0/8"], policy_ports=["22", "5900-5999"],
                    policy_agents={"bmc": {"networks": ["10.9.0.0/16"]}},
                    policy_api_keys={"portal": {"ports": [5901], "protocols": ["vnc"]}},
                    policy_producers={"billing": {"networks": ["10.1.0.0/16"]}},
                    policy_legacy={"ams1": {"protocols": ["rdp"]}})
    p = Policy.from_settings(s, resolver=Dns())
    assert refused(p, "192.168.1.5", 5900, owner="other").details == \
        "192.168.1.5:5900 is outside policy.networks"
    assert refused(p, "10.0.0.5", 23, owner="other").details == \
        "10.0.0.5:23 is outside policy.ports"
    judge(p, "10.0.0.5", 22, owner="other")
    assert refused(p, "10.0.0.5", 22).details == \
        "10.0.0.5:22 is outside policy.api_keys.portal.ports"
    judge(p, "10.0.0.5", 5901)
    assert "protocol ssh is outside policy.api_keys.portal.protocols" in \
        refused(p, "10.0.0.5", 5901, protocol="ssh").details
    assert refused(p, "10.0.0.5", 22, owner="x", agent="bmc").details == \
        "10.0.0.5:22 is outside policy.agents.bmc.networks"
    assert refused(p, "10.2.0.5", 22, owner="amqp:billing").details == \
        "10.2.0.5:22 is outside policy.producers.billing.networks"
    judge(p, "10.1.0.5", 22, owner="amqp:billing")
    assert "outside policy.legacy.ams1.protocols" in \
        refused(p, "10.1.0.5", 22, owner="legacy:ams1").details
    # a key's list cannot widen the global one: 10.0.0.5:23 stays outside policy.ports
    wide = config.load(env={}, policy_ports=[22], policy_api_keys={"portal": {"ports": [23]}})
    assert refused(Policy.from_settings(wide, resolver=Dns()), "10.0.0.5", 23).details == \
        "10.0.0.5:23 is outside policy.ports"


def test_a_vnc_repeaters_far_end_is_held_to_the_policy():
    p = Policy(resolver=Dns())
    e = refused(p, "10.0.0.5", 5500, **{"dest-host": "169.254.169.254", "dest-port": "80"})
    assert e.status == 403 and "169.254.169.254:80 is a link-local" in e.details
    e = refused(p, "10.0.0.5", 5500, **{"dest-host": "10.0.0.6"})
    assert e.status == 400 and "dest-host needs dest-port" in e.details
    judged = judge(p, "10.0.0.5", 5500, **{"dest-host": "0x0a000006", "dest-port": "5900"})
    assert judged.params["dest-host"] == "10.0.0.6"


def test_the_toml_shape(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('[policy]\nnetworks = ["10.0.0.0/8"]\nports = [22, "5900-5999"]\n'
                 'allow = ["127.0.0.1:5901"]\n'
                 '[policy.api_keys.portal]\nports = ["5900-5999"]\nprotocols = ["vnc"]\n'
                 '[policy.producers.billing]\nnetworks = ["10.1.0.0/16"]\n')
    s = config.load(env={}, path=f)
    assert s.policy_ports == ((22, 22), (5900, 5999))
    assert s.policy_api_keys["portal"].protocols == {"vnc"}
    assert str(s.policy_producers["billing"].networks[0]) == "10.1.0.0/16"
    f.write_text('[policy.api_keys.portal]\nport = [22]\n')
    with pytest.raises(config.ConfigError, match=r"policy_api_keys.*unknown key.*port"):
        config.load(env={}, path=f)
    f.write_text('[policy]\nnetwork = ["10.0.0.0/8"]\n')
    with pytest.raises(config.ConfigError, match=r"unknown setting.*policy_network"):
        config.load(env={}, path=f)
    with pytest.raises(config.ConfigError, match="policy_ports"):
        config.load(env={}, policy_ports=["70000"])
    with pytest.raises(config.ConfigError, match="unknown protocol"):
        config.load(env={}, policy_protocols=["spice"])
    s = config.load(env={"GUACBRIDGE_POLICY_ALLOW": "127.0.0.1:5901,[::1]:22"})
    assert [str(a.network) for a in s.policy_allow] == ["127.0.0.1/32", "::1/128"]


# -- the core -------------------------------------------------------------------------------

@pytest.fixture
def parts(tmp_path):
    s = config.load(env={}, data_dir=str(tmp_path), limits_consoles_per_target=1,
                    policy_allow=["127.0.0.0/8"])
    dns = Dns(localhost=["127.0.0.1"], desk=["10.0.0.5"])
    return assemble(s, SqliteGrantStore(s.sqlite_path), load_agents(s),
                    policy=Policy.from_settings(s, resolver=dns)), dns


def test_the_core_refuses_before_issuing_and_caps_by_the_normalised_address(parts):
    parts, _ = parts
    target = {"agent": "static", "protocol": "telnet", "hostname": "169.254.169.254",
              "port": 80}
    with pytest.raises(ConsoleError) as e:
        asyncio.run(parts.consoles.open({"target": target}, owner="portal"))
    assert e.value.status == 403 and "169.254.169.254:80 is a link-local" in e.value.details
    assert parts.store.sessions() == []
    opened = asyncio.run(parts.consoles.open(
        {"target": {**target, "hostname": "2130706433", "port": 5901}}, owner="portal"))
    assert opened["target"]["hostname"] == "127.0.0.1"
    with pytest.raises(ConsoleError) as e:      # the same address, spelled otherwise
        asyncio.run(parts.consoles.open(
            {"target": {**target, "hostname": "localhost", "port": 5901}}, owner="portal"))
    assert e.value.status == 429 and "127.0.0.1:5901 has 1 live consoles" in e.value.details


def test_a_dns_change_after_creation_is_judged_again_at_connect(parts):
    parts, dns = parts
    grant_target = {"agent": "static", "protocol": "vnc", "hostname": "desk", "port": 5900}
    reply = asyncio.run(parts.consoles.open({"target": grant_target}, owner="portal"))
    assert reply["target"]["hostname"] == "desk"     # the name is kept for guacd
    dns.names["desk"] = ["169.254.169.254"]          # the name now points at the metadata
    grant = asyncio.run(parts.consoles.current(reply["id"]))
    with pytest.raises(ConsoleError) as e:
        asyncio.run(parts.policy.judge(grant.owner, None, grant.target.protocol,
                                       grant.target.params))
    assert e.value.status == 403 and \
        e.value.details.startswith("desk (169.254.169.254:5900) is a link-local address")
