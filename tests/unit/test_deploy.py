"""deploy/ agrees with the code: the example config names every option with its real
default, the compose file's wiring matches the config variables and ports, and the systemd
units start real subcommands. (No container engine or systemd runs here to try them.)"""
import configparser
import dataclasses
import pathlib
import shlex
from urllib.parse import urlsplit

import pytest
import yaml

from guacbridge import cli, config

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"
SECTIONS = {"use_by": "consoles", "duration": "consoles", "max_duration": "consoles",
            "extend_step": "consoles", "reconnect_window": "consoles",
            "idle_timeout": "consoles", "idle_warning": "consoles"}


def where(field: str) -> tuple[str, str]:
    for section in ("guacamole", "broker", "legacy", "audit", "limits", "recordings", "shares"):
        if field.startswith(section + "_"):
            return section, field[len(section) + 1:]
    return SECTIONS.get(field, "guacbridge"), field


def test_the_example_config_shows_every_option_with_its_default(tmp_path):
    text = (DEPLOY / "guacbridge.example.toml").read_text()
    section, shown = None, set()
    for line in text.splitlines():
        if line.startswith("["):
            section = line.split("]")[0].strip("[")
        elif line.startswith("#= "):
            shown.add((section, line[3:].split("=")[0].strip()))
    fields = {where(f.name) for f in dataclasses.fields(config.Settings) if f.name != "agents"}
    assert fields - shown == set(), "options missing from the example"
    assert shown - fields == set(), "the example shows options that do not exist"
    uncommented = tmp_path / "all-defaults.toml"
    uncommented.write_text(text.replace("\n#= ", "\n"))
    assert config.load(env={}, path=uncommented) == config.Settings()
    assert config.load(env={}, path=DEPLOY / "guacbridge.example.toml") == config.Settings()


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def test_the_compose_file_wires_guacbridge_to_its_neighbours(compose):
    env = compose["guacbridge"]["environment"]
    assert set(env) <= set(config.ENV), "a GUACBRIDGE_* variable that no option reads"
    settings = config.load(env=env)                      # valid as configuration
    listen_port = settings.listen[1]
    assert any(p.endswith(f":{listen_port}") for p in compose["guacbridge"]["ports"])
    assert settings.guacd == (("guacd", 4822),) and "guacd" in compose
    maria = compose["mariadb"]["environment"]
    for url in (settings.mysql_url, settings.guacamole_db_url):
        parts = urlsplit(url)
        assert (parts.hostname, parts.port) == ("mariadb", 3306)
    assert urlsplit(settings.guacamole_db_url).path.strip("/") == maria["MARIADB_DATABASE"] \
        == compose["guacamole"]["environment"]["MYSQL_DATABASE"]
    init = (DEPLOY / "mariadb-init.sql").read_text()
    grants_user = urlsplit(settings.mysql_url)
    assert f"'{grants_user.username}'@'%' IDENTIFIED BY '{grants_user.password}'" in init
    amqp = urlsplit(settings.amqp_url)
    rabbit = compose["rabbitmq"]["environment"]
    assert (amqp.hostname, amqp.port) == ("rabbitmq", 5672)
    assert (amqp.username, amqp.password) == (rabbit["RABBITMQ_DEFAULT_USER"],
                                              rabbit["RABBITMQ_DEFAULT_PASS"])
    guacamole_port = urlsplit(settings.guacamole_url).port
    assert f"{guacamole_port}:8080" in compose["guacamole"]["ports"]
    assert compose["guacamole"]["environment"]["GUACD_HOSTNAME"] == "guacd"


@pytest.mark.parametrize("unit, command", [("guacbridge.service", "serve"),
                                           ("guacbridge-worker.service", "worker")])
def test_the_systemd_units_start_real_commands_hardened(unit, command):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(DEPLOY / unit)
    argv = shlex.split(parser["Service"]["ExecStart"])
    assert argv[0].endswith("/bin/guacbridge") and argv[-1] == command
    args = cli._parser().parse_args(argv[1:])            # a real subcommand and options
    assert args.command == command and args.config == "/etc/guacbridge/guacbridge.toml"
    service = parser["Service"]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("DynamicUser", "yes"), ("PrivateTmp", "yes"),
                       ("KillSignal", "SIGTERM")]:
        assert service[key] == value


def test_systemd_waits_longer_than_the_drain_before_killing():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(DEPLOY / "guacbridge.service")
    assert float(parser["Service"]["TimeoutStopSec"]) > config.Settings().drain_seconds + 5
