"""Third-party agents arrive through the ``guacbridge.agents`` entry-point group."""
import asyncio
import sys

from guacbridge import config
from guacbridge.agents import load_agents


def test_an_installed_entry_point_becomes_an_agent(tmp_path, monkeypatch):
    (tmp_path / "acme_agent.py").write_text(
        "from guacbridge.agents import Resolved\n"
        "from guacbridge.grants import Target\n"
        "class AcmeAgent:\n"
        "    name = 'acme'\n"
        "    def __init__(self, settings):\n"
        "        self.port = settings.agents.get('acme', {}).get('port', 5900)\n"
        "    async def resolve(self, target):\n"
        "        return Resolved(Target('vnc', {'hostname': target['box'],"
        " 'port': str(self.port)}))\n")
    dist = tmp_path / "acme_agent-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-agent\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[guacbridge.agents]\nacme = acme_agent:AcmeAgent\n"
                                           "broken = acme_agent:Missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    agents = load_agents(config.load(env={}, agents={"acme": {"port": 5999}}))
    assert "broken" not in agents                    # a plug-in that fails is left out
    resolved = asyncio.run(agents["acme"].resolve({"agent": "acme", "box": "10.0.0.9"}))
    assert resolved.target.params == {"hostname": "10.0.0.9", "port": "5999"}
    sys.modules.pop("acme_agent", None)
