"""The serial bridge (serial_bridge.py) over real sockets: a serial console's connection
becomes a one-connection telnet listener, taken only by the connection that gives its one-time
secret (what guacd types at its "Password:"), that speaks telnet as guacd's client expects (255
doubled, options answered, subnegotiations dropped), relays both ways, says why the line
ended, keeps the line's last output while the console lives; the policy judges the line's
real far end before the line is opened."""
import asyncio

import pytest

from guacbridge import config, serial
from guacbridge.agents.static import StaticAgent
from guacbridge.errors import ConsoleError
from guacbridge.serial_bridge import DO, DONT, IAC, SB, SE, WILL, Ring, Unframer, escape
from guacbridge.service import assemble
from guacbridge.store.sqlite import SqliteGrantStore

KIND = "test-loop"
TARGET = {"agent": "static", "protocol": "serial", "line": KIND, "hostname": "10.0.0.9",
          "port": 623, "username": "admin", "password": "bmc-secret-1", "font-size": 14}
NAWS, TTYPE = 31, 24


class Line:
    """A serial line the test plays the far end of."""

    def __init__(self, params):
        self.params = dict(params)
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.written = bytearray()
        self.closed = False
        self.reason = None

    async def read(self):
        return await self.incoming.get()

    async def write(self, data):
        self.written += data

    async def close(self):
        self.closed = True
        self.incoming.put_nowait(b"")

    def end(self, reason):
        self.reason = reason
        self.incoming.put_nowait(b"")


@pytest.fixture
def lines():
    opened: list[Line] = []

    async def opener(params, settings):
        line = Line(params)
        opened.append(line)
        return line
    serial.register(KIND, opener)
    yield opened
    serial._OPENERS.pop(KIND, None)


@pytest.fixture
def parts(tmp_path):
    settings = config.load(env={}, data_dir=str(tmp_path), serial_accept_timeout=1,
                           serial_output_bytes=32)
    return assemble(settings, SqliteGrantStore(settings.sqlite_path),
                    {"static": StaticAgent()})


async def read_until(reader, wanted: bytes, timeout=5.0) -> bytes:
    seen = b""
    while wanted not in seen:
        chunk = await asyncio.wait_for(reader.read(4096), timeout)
        if not chunk:
            break
        seen += chunk
    return seen


async def log_in(target, secret=None, then=b""):
    """A connection to *target*'s listener that answers its prompt as guacd does (with
    *secret*, the target's own by default); its streams and what came before the prompt."""
    reader, writer = await asyncio.open_connection("127.0.0.1", int(target.params["port"]))
    greeting = await read_until(reader, b"Password: ")
    writer.write((target.params["password"] if secret is None else secret).encode()
                 + b"\r\x00" + then)
    return reader, writer, greeting


def test_telnet_255_is_doubled_out_and_undoubled_in():
    assert escape(b"a\xffb") == b"a\xff\xffb"
    data, answer = Unframer().feed(b"x\xff\xffy")
    assert data == b"x\xffy" and answer == b""


def test_telnet_options_are_answered_once_and_subnegotiations_dropped():
    un = Unframer()
    data, answer = un.feed(bytes((IAC, WILL, NAWS, IAC, DO, TTYPE, IAC, DO, 1)) + b"ok"
                           + bytes((IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE)) + b"\r\x00")
    assert data == b"ok\r"              # CR NUL is a bare CR
    assert answer == bytes((IAC, DONT, NAWS, IAC, 252, TTYPE))   # DO ECHO: said already
    assert un.feed(bytes((IAC, WILL, NAWS)))[1] == b""          # no loop


def test_a_command_split_between_two_reads_is_still_one_command():
    un = Unframer()
    first = un.feed(b"ab\xff")
    second = un.feed(bytes((WILL, NAWS)) + b"cd")
    assert first == (b"ab", b"") and second == (b"cd", bytes((IAC, DONT, NAWS)))


def test_the_ring_keeps_the_last_bytes_and_lines():
    ring = Ring(10)
    ring.append(b"one\ntwo\n")
    ring.append(b"three\n")
    assert ring.text() == "two\nthree\n"        # 10 bytes: "one\n" went
    assert ring.text(lines=1) == "three\n" and ring.text(lines=0) == ""


def test_a_serial_console_is_a_one_connection_telnet_listener_relaying_both_ways(
        parts, lines):
    async def scenario():
        reply = await parts.consoles.open({"target": TARGET}, owner="portal")
        grant = parts.store.get(reply["id"])
        target = await parts.targets.for_connection(grant)
        assert target.protocol == "telnet"
        assert target.params["hostname"] == "127.0.0.1" and target.params["font-size"] == "14"
        # the line's far end and login are the line's, never guacd's: guacd's password is
        # the listener's one-time secret
        assert {"username", "line"}.isdisjoint(target.params)
        assert target.params["password"] != TARGET["password"]
        assert target.params["password-regex"] == "[Pp]assword:"
        line = lines[-1]
        assert line.params["hostname"] == "10.0.0.9" and line.params["password"]
        reader, writer, greeting = await log_in(target, then=b"e")
        assert greeting == bytes((IAC, WILL, 1, IAC, WILL, 3)) + b"Password: "
        assert await read_until(reader, b"\x1b[K") == b"\r\x1b[K"     # the prompt wiped
        line.incoming.put_nowait(b"login: \xff")
        assert await read_until(reader, b"\xff\xff") == b"login: \xff\xff"
        writer.write(b"cho hi\r\x00" + bytes((IAC, WILL, NAWS)))
        assert await read_until(reader, bytes((IAC, DONT, NAWS))) == bytes((IAC, DONT, NAWS))
        assert bytes(line.written) == b"echo hi\r"
        # a second connection to the same listener gets nothing
        with pytest.raises(OSError):
            r2, w2 = await asyncio.open_connection("127.0.0.1", int(target.params["port"]))
            if not await asyncio.wait_for(r2.read(10), 2):
                raise ConnectionResetError
        line.incoming.put_nowait(b"0123456789" * 4)
        line.end("SOL deactivated by the BMC")
        shown = await read_until(reader, b"deactivated by the BMC]\r\n")
        assert b"[guacbridge: SOL deactivated by the BMC]" in shown
        assert await asyncio.wait_for(reader.read(), 5) == b""      # then it hangs up
        assert parts.serial.output(grant.id).text() == ("0123456789" * 4)[-32:]
        await parts.consoles.close(grant.id)
        assert parts.serial.output(grant.id) is None               # freed with the console
    asyncio.run(scenario())


def test_the_line_closes_when_guacd_hangs_up_or_never_comes(parts, lines):
    async def scenario():
        reply = await parts.consoles.open({"target": TARGET}, owner="portal")
        grant = parts.store.get(reply["id"])
        target = await parts.targets.for_connection(grant)
        reader, writer, _ = await log_in(target)
        await read_until(reader, b"\x1b[K")
        writer.close()
        for _ in range(50):
            if lines[-1].closed:
                break
            await asyncio.sleep(0.05)
        assert lines[-1].closed
        await parts.targets.for_connection(grant)        # nobody connects within 1 s
        await asyncio.sleep(1.5)
        assert lines[-1].closed
    asyncio.run(scenario())


def test_a_connection_without_the_secret_gets_nothing_of_the_line_and_guacd_still_does(
        parts, lines, caplog):
    async def scenario():
        reply = await parts.consoles.open({"target": TARGET}, owner="portal")
        target = await parts.targets.for_connection(parts.store.get(reply["id"]))
        secret, port = target.params["password"], int(target.params["port"])
        line = lines[-1]
        line.incoming.put_nowait(b"BMC console: root# ")
        # a local process that comes first: one that waits, one with a wrong secret
        waiting_r, waiting_w = await asyncio.open_connection("127.0.0.1", port)
        reader, writer, _ = await log_in(target, secret="guess-" + secret[6:], then=b"reboot\r")
        assert await asyncio.wait_for(reader.read(), 5) == b""   # closed: nothing of the line
        assert await read_until(waiting_r, b"Password: ") == \
            bytes((IAC, WILL, 1, IAC, WILL, 3)) + b"Password: "
        assert line.incoming.qsize() == 1 and not line.written and not line.closed
        # guacd, with the secret, still gets the line, the squatter still connected
        reader, writer, _ = await log_in(target)
        assert b"BMC console: root# " in await read_until(reader, b"root# ")
        writer.write(b"id\r")
        for _ in range(50):
            if line.written:
                break
            await asyncio.sleep(0.05)
        assert bytes(line.written) == b"id\r"                  # no "reboot", no secret
        assert await asyncio.wait_for(waiting_r.read(), 7) == b""   # its login timed out
        waiting_w.close()
        writer.close()
        return secret
    with caplog.at_level("DEBUG"):
        secret = asyncio.run(scenario())
    refused = [r.getMessage() for r in caplog.records if "refused a connection" in r.message]
    assert len(refused) == 2 and "wrong secret" in refused[0]
    assert secret not in caplog.text and secret[6:] not in caplog.text


def test_the_policy_judges_the_lines_far_end_before_the_line_opens(parts, lines,
                                                                 monkeypatch):
    async def scenario():
        reply = await parts.consoles.open({"target": TARGET}, owner="portal")
        grant = parts.store.get(reply["id"])

        async def refuse(owner, agent, protocol, params):
            assert protocol == "serial" and params["hostname"] == "10.0.0.9"
            raise ConsoleError(403, "10.0.0.9 is outside policy.allow")
        monkeypatch.setattr(parts.policy, "judge", refuse)
        opened = len(lines)
        with pytest.raises(ConsoleError) as e:
            await parts.targets.for_connection(grant)
        assert e.value.status == 403 and len(lines) == opened
    asyncio.run(scenario())


def test_a_serial_console_without_its_line_kind_is_refused(parts, lines):
    async def scenario():
        with pytest.raises(ConsoleError) as e:
            await parts.consoles.open({"target": {**TARGET, "line": None}}, owner="portal")
        assert e.value.status == 400 and "line is required" in e.value.details
    asyncio.run(scenario())


def test_pyghmis_words_for_a_refused_sol_map_to_statuses():
    from guacbridge.serial_ipmi import status_of
    assert status_of("Incorrect password provided") == 403
    assert status_of("SOL Session active for another client") == 409
    assert status_of("Maximum SOL session count reached") == 409
    assert status_of("timeout") == 504
    assert status_of("Non-standard SOL Port Number") == 502
