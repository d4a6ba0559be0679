"""deploy/ agrees with the code: the compose file's wiring matches the config variables and
ports, and the systemd units start real subcommands. (No container engine or systemd runs here
to try them.) The example config is held to the settings' rows in test_settings_table.py."""
import configparser
import pathlib
import shlex
from urllib.parse import urlsplit

import pytest
import yaml

from guacbridge import cli, config

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"


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
