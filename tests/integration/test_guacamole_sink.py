"""The guacamole sink on real MariaDB: a console request makes a connection appear for a
Guacamole user, under Guacamole's own visibility rule, and takes it away again."""
import asyncio
import base64
import hashlib
import secrets
import urllib.parse
import uuid

import pytest
from db_fixtures import TEST_KEYS

from guacbridge import config
from guacbridge.agents import load_agents
from guacbridge.consoles import ConsoleError
from guacbridge.store.guacamole_db import GuacamoleDb, GuacamoleOptions
from guacbridge.service import assemble
from guacbridge.store.mysql import MysqlGrantStore

pytestmark = pytest.mark.integration
TARGET = {"agent": "static", "protocol": "vnc", "hostname": "10.1.2.3", "port": 5901,
          "password": "vnc-secret"}
WEB = "https://guac.example/guacamole"


class Clock:
    now = 1_900_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def databases(mariadb):
    suffix = uuid.uuid4().hex[:8]
    ours = mariadb.create_database(f"gb_{suffix}")
    theirs = mariadb.create_database(f"guac_{suffix}")
    MysqlGrantStore(ours).create_tables()
    GuacamoleDb(theirs, GuacamoleOptions(web_url=WEB)).create_schema()
    return ours, theirs, mariadb.root(theirs.rsplit("/", 1)[1])


def make_parts(ours, theirs, clock=None, db_class=GuacamoleDb, **options):
    settings = config.load(env={}, mysql_url=ours, guacamole_db_url=theirs, guacamole_url=WEB,
                           guacd="10.9.9.9:4822",
                           **{f"guacamole_{k}": v for k, v in options.items()})
    db = db_class(theirs, GuacamoleOptions(
        web_url=WEB, group=settings.guacamole_group, user_group=settings.guacamole_user_group,
        missing_user=settings.guacamole_missing_user, guacd=settings.guacd[0]))
    return assemble(settings, MysqlGrantStore(ours, TEST_KEYS), load_agents(settings),
                    clock=clock or Clock(), guacamole=db)


def add_user(conn, name, password="pw"):
    """A Guacamole user the way Guacamole stores one (salted SHA-256)."""
    salt = secrets.token_bytes(32)
    digest = hashlib.sha256((password + salt.hex().upper()).encode()).digest()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO guacamole_entity (name, type) VALUES (%s, 'USER')", (name,))
        entity = cur.lastrowid
        cur.execute("INSERT INTO guacamole_user (entity_id, password_hash, password_salt,"
                    " password_date) VALUES (%s, %s, %s, NOW())", (entity, digest, salt))
    return entity


def add_group(conn, name, members, disabled=False):
    with conn.cursor() as cur:
        cur.execute("INSERT INTO guacamole_entity (name, type) VALUES (%s, 'USER_GROUP')",
                    (name,))
        entity = cur.lastrowid
        cur.execute("INSERT INTO guacamole_user_group (entity_id, disabled) VALUES (%s, %s)",
                    (entity, disabled))
        group = cur.lastrowid
        for member in members:
            cur.execute("INSERT INTO guacamole_user_group_member VALUES (%s, %s)",
                        (group, member))
    return entity


# Guacamole's rule: READ for the user's entity or any enabled group it belongs to (nested),
# and READ on every ancestor connection group of the connection.
VISIBLE = """
WITH RECURSIVE effective (entity_id) AS (
    SELECT entity_id FROM guacamole_entity WHERE type = 'USER' AND name = %s
  UNION
    SELECT g.entity_id FROM guacamole_user_group_member m
    JOIN guacamole_user_group g ON g.user_group_id = m.user_group_id AND g.disabled = 0
    JOIN effective e ON m.member_entity_id = e.entity_id
),
ancestors (connection_id, group_id) AS (
    SELECT connection_id, parent_id FROM guacamole_connection WHERE parent_id IS NOT NULL
  UNION
    SELECT a.connection_id, g.parent_id FROM ancestors a
    JOIN guacamole_connection_group g ON g.connection_group_id = a.group_id
    WHERE g.parent_id IS NOT NULL
)
SELECT p.connection_id FROM guacamole_connection_permission p
JOIN effective e ON e.entity_id = p.entity_id AND p.permission = 'READ'
WHERE NOT EXISTS (
    SELECT 1 FROM ancestors a WHERE a.connection_id = p.connection_id AND NOT EXISTS (
        SELECT 1 FROM guacamole_connection_group_permission gp JOIN effective e2
        ON e2.entity_id = gp.entity_id
        WHERE gp.connection_group_id = a.group_id AND gp.permission = 'READ'))
"""


def visible(conn, user):
    with conn.cursor() as cur:
        cur.execute(VISIBLE, (user,))
        return {row[0] for row in cur.fetchall()}


def rows(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def open_console(parts, **request):
    return asyncio.run(parts.consoles.open({"target": TARGET, "sink": "guacamole", **request},
                                     owner="portal"))


def test_a_console_request_makes_a_connection_the_user_sees_ready_to_click(databases):
    ours, theirs, conn = databases
    add_user(conn, "alice")
    add_user(conn, "bob")
    reply = open_console(make_parts(ours, theirs), user="alice", name="web-12")
    connection_id = int(reply["guacamole"]["connection_id"])
    assert visible(conn, "alice") == {connection_id}
    assert visible(conn, "bob") == set()
    (name, protocol, host, port, maxc), = rows(
        conn, "SELECT connection_name, protocol, proxy_hostname, proxy_port, max_connections"
              " FROM guacamole_connection WHERE connection_id = %s", connection_id)
    assert (name, protocol, host, port, maxc) == ("web-12", "vnc", "10.9.9.9", 4822, 1)
    params = dict(rows(conn, "SELECT parameter_name, parameter_value FROM"
                             " guacamole_connection_parameter WHERE connection_id = %s",
                       connection_id))
    assert params == {"hostname": "10.1.2.3", "port": "5901", "password": "vnc-secret"}
    # The reply's URL is Guacamole's own client link: base64url("<id>\0c\0mysql").
    assert reply["url"].startswith(f"{WEB}/#/client/")
    ident = reply["url"].rsplit("/", 1)[1]
    decoded = base64.urlsafe_b64decode(ident + "=" * (-len(ident) % 4)).decode()
    assert decoded == f"{connection_id}\0c\0mysql"
    assert "websocket" not in reply and "vnc-secret" not in str(reply)


def test_read_can_go_to_a_user_group_and_counts_only_while_it_is_enabled(databases):
    ours, theirs, conn = databases
    carol = add_user(conn, "carol")
    add_user(conn, "dave")
    add_group(conn, "support", [carol])
    reply = open_console(make_parts(ours, theirs, user_group="support"), user="carol")
    connection_id = int(reply["guacamole"]["connection_id"])
    assert visible(conn, "carol") == {connection_id}
    assert visible(conn, "dave") == set()
    rows(conn, "UPDATE guacamole_user_group SET disabled = 1")
    assert visible(conn, "carol") == set()


def test_a_group_path_is_made_readable_on_every_level(databases):
    ours, theirs, conn = databases
    add_user(conn, "erin")
    reply = open_console(make_parts(ours, theirs, group="Consoles/Temporary"), user="erin")
    connection_id = int(reply["guacamole"]["connection_id"])
    groups = rows(conn, "SELECT connection_group_id, connection_group_name, parent_id"
                        " FROM guacamole_connection_group ORDER BY connection_group_id")
    assert [(g[1], g[2]) for g in groups] == [("Consoles", None), ("Temporary", groups[0][0])]
    assert visible(conn, "erin") == {connection_id}
    second = open_console(make_parts(ours, theirs, group="Consoles/Temporary"), user="erin")
    assert len(rows(conn, "SELECT 1 FROM guacamole_connection_group")) == 2   # reused
    assert visible(conn, "erin") == {connection_id, int(second["guacamole"]["connection_id"])}


def test_an_unknown_user_is_refused_unless_creating_users_is_configured(databases):
    ours, theirs, conn = databases
    with pytest.raises(ConsoleError) as e:
        open_console(make_parts(ours, theirs), user="mallory")
    assert e.value.status == 404 and "no user 'mallory'" in e.value.details
    assert rows(conn, "SELECT * FROM guacamole_connection") == ()
    reply = open_console(make_parts(ours, theirs, missing_user="create"), user="frank")
    assert visible(conn, "frank") == {int(reply["guacamole"]["connection_id"])}
    (digest, salt), = rows(conn, "SELECT password_hash, password_salt FROM guacamole_user u"
                                 " JOIN guacamole_entity e USING (entity_id) WHERE name='frank'")
    for guess in ("", "frank", "guacadmin"):      # no usable password
        assert hashlib.sha256((guess + salt.hex().upper()).encode()).digest() != digest


def test_colliding_names_get_a_number(databases):
    ours, theirs, conn = databases
    add_user(conn, "alice")
    parts = make_parts(ours, theirs)
    for _ in range(3):
        open_console(parts, user="alice", name="web-12")
    names = [r[0] for r in rows(conn, "SELECT connection_name FROM guacamole_connection"
                                      " ORDER BY connection_id")]
    assert names == ["web-12", "web-12 (2)", "web-12 (3)"]


def test_the_sweeper_removes_the_connection_at_the_deadline_and_keeps_history(databases):
    ours, theirs, conn = databases
    add_user(conn, "alice")
    clock = Clock()
    parts = make_parts(ours, theirs, clock=clock)
    reply = open_console(parts, user="alice", max_duration=600)
    connection_id = int(reply["guacamole"]["connection_id"])
    rows(conn, "INSERT INTO guacamole_connection_history (username, connection_id,"
               " connection_name, start_date) VALUES ('alice', %s, 'web', NOW())", connection_id)

    clock.now += 599
    asyncio.run(parts.sweeper.sweep())
    assert visible(conn, "alice") == {connection_id}          # not yet
    clock.now += 2
    asyncio.run(parts.sweeper.sweep())
    assert visible(conn, "alice") == set()
    for table in ("connection", "connection_parameter", "connection_permission",
                  "connection_attribute"):
        assert rows(conn, f"SELECT 1 FROM guacamole_{table}") == ()
    assert rows(conn, "SELECT username, connection_id FROM guacamole_connection_history") \
        == (("alice", None),)
    shown = asyncio.run(parts.consoles.get(reply["id"]))
    assert shown["state"] == "closed" and shown["guacamole"]["state"] == "removed"


def test_extend_and_close_work_for_guacamole_consoles(databases):
    ours, theirs, conn = databases
    add_user(conn, "alice")
    parts = make_parts(ours, theirs)
    reply = open_console(parts, user="alice", max_duration=600)
    extended = asyncio.run(parts.consoles.extend(reply["id"], 600))
    assert extended["deadline"] > reply["deadline"]
    closed = asyncio.run(parts.consoles.close(reply["id"], "closed by API key portal"))
    assert closed["state"] == "closed" and closed["guacamole"]["state"] == "removed"
    assert visible(conn, "alice") == set()


class FailsMidway(GuacamoleDb):
    """The permission insert fails after the connection and its parameters were written."""

    def _grant_read(self, cur, entity, connection_id):
        raise RuntimeError("injected failure")


def test_a_failure_mid_transaction_leaves_nothing_behind(databases):
    ours, theirs, conn = databases
    add_user(conn, "alice")
    parts = make_parts(ours, theirs, db_class=FailsMidway)
    with pytest.raises(ConsoleError) as e:
        open_console(parts, user="alice")
    assert e.value.status == 502 and "vnc-secret" not in e.value.details
    for table in ("connection", "connection_parameter", "connection_attribute",
                  "connection_permission"):
        assert rows(conn, f"SELECT 1 FROM guacamole_{table}") == ()
    assert rows(conn, f"SELECT 1 FROM {ours.rsplit('/', 1)[1]}.console_grant") == ()


def test_a_crash_between_the_two_databases_is_cleaned_up(databases):
    ours, theirs, conn = databases
    add_user(conn, "alice")
    clock = Clock()
    parts = make_parts(ours, theirs, clock=clock)

    class Crash(Exception):
        pass

    def crash(*args):
        raise Crash()
    # The Guacamole transaction commits, then the process "dies" before recording it.
    original, parts.store.set_sink = parts.store.set_sink, crash
    with pytest.raises(Crash):
        open_console(parts, user="alice")
    parts.store.set_sink = original
    assert len(visible(conn, "alice")) == 1
    clock.now += 61                                  # stuck provisioning: a crash
    asyncio.run(parts.consoles.sink.clean())
    assert visible(conn, "alice") == set()


def test_the_api_serves_the_guacamole_sink(databases, guacd, tmp_path):
    from service_fixtures import start_service
    ours, theirs, conn = databases
    add_user(conn, "alice")
    service = start_service(tmp_path / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_GUACAMOLE_DB_URL=theirs, GUACBRIDGE_GUACAMOLE_URL=WEB)
    try:
        r = service.api("POST", "/api/v1/consoles", json={"target": TARGET, "user": "alice",
                                                          "sink": "guacamole"})
        assert r.status_code == 201, r.text
        assert visible(conn, "alice") == {int(r.json()["guacamole"]["connection_id"])}
        missing = service.api("POST", "/api/v1/consoles", json={"target": TARGET,
                                                                "sink": "guacamole"})
        assert missing.status_code == 400 and "needs user" in missing.json()["details"]
        assert urllib.parse.urlsplit(theirs).password not in service.log_text()
    finally:
        service.stop()
