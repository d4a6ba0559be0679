"""The tunnel's relay rules, against a scripted guacd stand-in that records what it gets.

Integration tests use real guacd; these check what real guacd cannot show: exactly which
bytes reach guacd, and that the relay stops reading while the browser does not read.
"""
from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
import tornado.httpserver
import tornado.platform.asyncio
import tornado.websocket

from guacbridge import config, loops, protocol
from guacbridge.agents import load_agents
from guacbridge.service import assemble
from guacbridge.store.sqlite import SqliteGrantStore
from guacbridge.web.app import make_app

TARGET = {"agent": "static", "protocol": "vnc", "hostname": "10.9.9.9", "password": "pw"}


class FakeGuacd:
    """Answers the handshake like guacd 1.3.0, then records and serves scripted bytes."""

    def __init__(self, after_ready: bytes = b"") -> None:
        self.received = bytearray()     # what it parsed after the handshake, re-encoded
        self.raw = bytearray()          # every byte it read after the handshake
        self.after_ready = after_ready
        self.server: asyncio.Server | None = None
        self.connected = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = protocol.Parser()
        self.writer = writer
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if self.connected.is_set():
                self.raw.extend(data)
            for elements in parser.feed(data):
                if elements[0] == "select":
                    writer.write(protocol.encode("args", "VERSION_1_3_0", "hostname",
                                                 "password").encode())
                elif elements[0] == "connect":
                    writer.write(protocol.encode("ready", "$abc").encode() + self.after_ready)
                    self.connected.set()
                elif self.connected.is_set():
                    self.received.extend(protocol.encode(*elements).encode())


@contextlib.asynccontextmanager
async def gateway(tmp_path, guacd_port: int, **more):
    settings = config.load(env={}, data_dir=str(tmp_path), guacd=f"127.0.0.1:{guacd_port}",
                           api_keys="t:k", **more)
    parts = assemble(settings, SqliteGrantStore(settings.sqlite_path), load_agents(settings))
    server = tornado.httpserver.HTTPServer(make_app(parts))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    server.add_socket(sock)
    port = sock.getsockname()[1]
    try:
        yield parts, port
    finally:
        server.stop()


async def open_tunnel(parts, port):
    reply = await parts.consoles.open({"target": TARGET}, owner="t")
    url = f"ws://127.0.0.1:{port}/tunnel?token={reply['websocket']['token']}"
    return await tornado.websocket.websocket_connect(url, subprotocols=["guacamole"])


def test_an_unrecorded_first_frame_shows_nothing_even_when_its_images_come_before_its_sync(
        tmp_path):
    """policy always, and guacd made no file: a first frame too large for one read sends
    its images before its sync; none of it may reach the browser, only the error."""
    first_part = (protocol.encode("size", 0, 1024, 768)
                  + protocol.encode("img", 1, 14, 0, "image/png", 0, 0)
                  + protocol.encode("blob", 1, "iVBORw0KGgo" + "A" * 4000))

    async def scenario():
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start(), recordings_dir=str(tmp_path / "rec"),
                           recordings_policy="always", recordings_verify_timeout=0.3) \
                as (parts, port):
            ws = await open_tunnel(parts, port)
            await ws.read_message()                       # the tunnel id
            await asyncio.wait_for(guacd.connected.wait(), 5)
            guacd.writer.write(first_part.encode())
            await guacd.writer.drain()
            await asyncio.sleep(0.6)                      # the rest of the frame comes later
            guacd.writer.write((protocol.encode("end", 1) + protocol.encode("sync", 1)).encode())
            seen = []
            while (message := await asyncio.wait_for(ws.read_message(), 5)) is not None:
                seen += [protocol.parse(raw) for raw in protocol.split(message)]
            return seen, ws.close_code
    seen, close_code = asyncio.run(scenario())
    assert [elements[0] for elements in seen] == ["error"], seen
    assert seen[0][2] == str(0x0200) and close_code == 1011


def test_pings_are_echoed_and_internal_instructions_never_reach_guacd(tmp_path):
    async def scenario():
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start()) as (parts, port):
            ws = await open_tunnel(parts, port)
            await ws.read_message()                       # the tunnel id
            await asyncio.wait_for(guacd.connected.wait(), 5)
            ping = protocol.encode("", "ping", 1234567)
            # Internal and ordinary instructions mixed in one message, and a value that
            # merely contains "0.,".
            ws.write_message(ping + protocol.encode("key", 65, 1)
                             + protocol.encode("", "other") + protocol.encode("clipboard", "0.,x"))
            echoed = await asyncio.wait_for(ws.read_message(), 5)
            await asyncio.sleep(0.2)
            ws.close()
            return echoed, bytes(guacd.received)
    echoed, received = asyncio.run(scenario())
    assert echoed == protocol.encode("", "ping", 1234567)
    assert received == (protocol.encode("key", 65, 1)
                        + protocol.encode("clipboard", "0.,x")).encode()


def test_whole_instructions_only_however_guacd_splits_its_bytes(tmp_path):
    stream = "".join(protocol.encode("blob", "1", "é" * 50 + "😀" * 3) for _ in range(20))

    async def scenario():
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start()) as (parts, port):
            ws = await open_tunnel(parts, port)
            await ws.read_message()
            await asyncio.wait_for(guacd.connected.wait(), 5)
            raw = stream.encode()
            for i in range(0, len(raw), 7):                # split inside characters too
                guacd.writer.write(raw[i:i + 7])
                await guacd.writer.drain()
                await asyncio.sleep(0)
            got = ""
            while len(got) < len(stream):
                message = await asyncio.wait_for(ws.read_message(), 5)
                assert message.endswith(";") and protocol.split(message)
                got += message
            ws.close()
            return got
    assert asyncio.run(scenario()) == stream


def test_the_relay_stops_reading_guacd_while_the_browser_does_not_read(tmp_path):
    blob = protocol.encode("blob", "1", "A" * 6000).encode()

    async def scenario():
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start()) as (parts, port):
            ws = await open_tunnel(parts, port)
            await ws.read_message()
            await asyncio.wait_for(guacd.connected.wait(), 5)
            # The browser reads nothing; guacd writes as fast as it may for a while.
            written = 0
            with contextlib.suppress(asyncio.TimeoutError):
                async def flood():
                    nonlocal written
                    while written < 200 * 2**20:
                        guacd.writer.write(blob * 16)
                        await guacd.writer.drain()
                        written += len(blob) * 16
                await asyncio.wait_for(flood(), 3)
            ws.close()
            return written
    written = asyncio.run(scenario())
    # Only socket buffers and one message in flight: far below what an unbounded relay
    # would have swallowed in 3 s on loopback (hundreds of MB).
    assert written < 32 * 2**20, written


async def ends_with(ws) -> tuple[list[list[str]], tuple]:
    """Everything the browser reads up to the close: (instructions, (close code, reason))."""
    seen = []
    while (message := await asyncio.wait_for(ws.read_message(), 5)) is not None:
        seen.extend(protocol.parse(raw) for raw in protocol.split(message))
    return seen, (ws.close_code, ws.close_reason)


def hostile(tmp_path, *messages: str | bytes):
    """Send a good instruction, then *messages*; what guacd got and what the browser saw."""
    async def scenario():
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start()) as (parts, port):
            ws = await open_tunnel(parts, port)
            await ws.read_message()
            await asyncio.wait_for(guacd.connected.wait(), 5)
            ws.write_message(protocol.encode("key", 65, 1))
            for message in messages:
                await ws.write_message(message, binary=isinstance(message, bytes))
            seen, close = await ends_with(ws)
            await asyncio.sleep(0.1)
            return bytes(guacd.raw), seen, close
    raw, seen, close = asyncio.run(scenario())
    goodbye = protocol.encode("disconnect").encode()   # the tunnel's own, at its end
    return raw.removesuffix(goodbye), seen, close


GOOD = protocol.encode("key", 65, 1).encode()


def test_an_oversize_instruction_ends_the_tunnel_with_client_overrun_and_never_reaches_guacd(
        tmp_path):
    # Valid instructions first in the same message: the message is refused whole.
    message = protocol.encode("mouse", 1, 2, 0) + protocol.encode("clipboard", "x" * 9000)
    raw, seen, close = hostile(tmp_path, message)
    assert raw == GOOD
    assert seen[-1][0] == "error" and seen[-1][2] == str(0x030D)
    assert "longer than 8192" in seen[-1][1]
    assert close == (1009, "781")


def test_a_partial_instruction_cannot_grow_without_bound(tmp_path):
    # Element after well-formed element, message after message, and never a ';'.
    element = ",100." + "z" * 100
    raw, seen, close = hostile(tmp_path, "4.blob", *[element * 10] * 10)
    assert raw == GOOD and close == (1009, "781")
    assert seen[-1][0] == "error" and seen[-1][2] == str(0x030D)
    assert "longer than 8192" in seen[-1][1]


def test_an_instruction_with_too_many_elements_is_an_overrun(tmp_path):
    raw, seen, close = hostile(tmp_path, protocol.encode("x", *range(200)))
    assert raw == GOOD and close == (1009, "781")
    assert "more than 128 elements" in seen[-1][1]


def test_a_malformed_message_ends_the_tunnel_with_client_bad_request_and_none_of_it_is_sent(
        tmp_path):
    message = protocol.encode("key", 66, 1) + "4.sync,x.12;"
    raw, seen, close = hostile(tmp_path, message)
    assert raw == GOOD
    assert seen[-1][0] == "error" and seen[-1][2] == str(0x0300)
    assert "malformed instruction from browser" in seen[-1][1]
    assert close == (1002, "768")


def test_a_binary_message_is_refused_as_the_wrong_type(tmp_path):
    raw, seen, close = hostile(tmp_path, GOOD)
    assert raw == GOOD                          # only the text one
    assert seen[-1][0] == "error" and seen[-1][2] == str(0x030F)
    assert close == (1003, "783")


def test_a_message_over_the_message_limit_is_an_overrun(tmp_path):
    from guacbridge.web.tunnel_input import MAX_MESSAGE
    chunk = protocol.encode("nop")
    raw, seen, close = hostile(tmp_path, chunk * (MAX_MESSAGE // len(chunk) + 1))
    assert raw == GOOD and close == (1009, "781")
    assert f"longer than {MAX_MESSAGE}" in seen[-1][1]


def guacd_ends(tmp_path, last_words: bytes):
    async def scenario():
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start()) as (parts, port):
            ws = await open_tunnel(parts, port)
            await ws.read_message()
            await asyncio.wait_for(guacd.connected.wait(), 5)
            guacd.writer.write(protocol.encode("sync", 1).encode() + last_words)
            await guacd.writer.drain()
            guacd.writer.close()
            return await ends_with(ws)
    return asyncio.run(scenario())


def test_guacd_vanishing_mid_session_reaches_the_browser_as_an_upstream_error(tmp_path):
    seen, close = guacd_ends(tmp_path, b"4.sync,")      # cut off inside an instruction
    assert seen[-1] == ["error", "The connection to guacd was lost.", str(0x0203)]
    assert close == (1011, "515")


def test_guacd_ending_the_session_with_disconnect_closes_the_tunnel_cleanly(tmp_path):
    seen, close = guacd_ends(tmp_path, protocol.encode("disconnect").encode())
    assert [s[0] for s in seen] == ["sync", "disconnect"]
    assert close == (1000, "0")


@pytest.mark.parametrize("name", ["ab10.disconnect", "x;10.disconnect", "title 5.error,"])
def test_a_name_that_looks_like_an_ending_does_not_end_the_tunnel(tmp_path, name):
    """guacd's endings are read from whole instructions: a desktop or terminal title that
    ends the way ``disconnect`` is written (or holds ``5.error,``) is only a name, even when
    it is the last thing in a read."""
    async def scenario():
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start()) as (parts, port):
            ws = await open_tunnel(parts, port)
            await ws.read_message()                       # the tunnel id
            await asyncio.wait_for(guacd.connected.wait(), 5)
            guacd.writer.write(protocol.encode("name", name).encode())
            await guacd.writer.drain()
            named = await asyncio.wait_for(ws.read_message(), 5)
            await asyncio.sleep(0.3)
            guacd.writer.write(protocol.encode("sync", 1).encode())
            after = await asyncio.wait_for(ws.read_message(), 5)
            code = ws.close_code
            ws.close()
            return named, after, code
    named, after, code = asyncio.run(scenario())
    assert named == protocol.encode("name", name)
    assert after == protocol.encode("sync", 1) and code is None     # still open


def test_an_idle_pages_pings_do_not_register_its_socket_with_the_event_loop_again_each(
        tmp_path, monkeypatch):
    """The browser's frames are read a socket-read at a time (web/frames.py): Tornado's own
    frame loop stopped and started listening on the socket for every message."""
    changes = []
    update = tornado.platform.asyncio.BaseAsyncIOLoop.update_handler

    def counted(self, fd, events):
        changes.append(fd)
        return update(self, fd, events)
    monkeypatch.setattr(tornado.platform.asyncio.BaseAsyncIOLoop, "update_handler", counted)

    async def scenario():
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start()) as (parts, port):
            reply = await parts.consoles.open({"target": TARGET}, owner="t")
            # A bare client on asyncio's streams: only the service's sockets are Tornado's.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /tunnel?token={reply['websocket']['token']} HTTP/1.1\r\n"
                         f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: guacamole\r\n"
                         "\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.wait_for(guacd.connected.wait(), 5)
            await asyncio.sleep(0.2)
            before = len(changes)
            for i in range(100):
                ping = protocol.encode("", "ping", 1000 + i).encode()
                writer.write(bytes([0x81, 0x80 | len(ping)]) + b"\0\0\0\0" + ping)
                while ping not in await asyncio.wait_for(reader.read(65536), 5):
                    pass
            during = len(changes) - before
            writer.close()
            return during
    # Tornado's loop: two per ping (200); read in batches: none once the tunnel is open.
    assert asyncio.run(scenario()) < 10


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_the_tunnel_relays_a_keystroke_and_echoes_a_ping_on_either_event_loop(
        tmp_path, event_loop):
    """guacbridge.event_loop (loops.py): uvloop's loop when installed, asyncio's otherwise."""
    async def scenario():
        assert ("uvloop" in type(asyncio.get_running_loop()).__module__) == \
            (event_loop == "uvloop")
        guacd = FakeGuacd()
        async with gateway(tmp_path, await guacd.start()) as (parts, port):
            ws = await open_tunnel(parts, port)
            await ws.read_message()
            await asyncio.wait_for(guacd.connected.wait(), 5)
            ws.write_message(protocol.encode("key", 65307, 1) + protocol.encode("", "ping", 42))
            echoed = await asyncio.wait_for(ws.read_message(), 5)
            guacd.writer.write(protocol.encode("sync", 1).encode())
            synced = await asyncio.wait_for(ws.read_message(), 5)
            await asyncio.sleep(0.1)
            ws.close()
            return echoed, synced, bytes(guacd.received)
    echoed, synced, received = loops.run(scenario(), event_loop)
    assert echoed == protocol.encode("", "ping", 42) and synced == protocol.encode("sync", 1)
    assert received == protocol.encode("key", 65307, 1).encode()


def test_auto_takes_uvloop_when_installed_and_asyncio_otherwise(monkeypatch):
    assert loops.chosen("auto") == "uvloop" and loops.chosen("asyncio") == "asyncio"
    monkeypatch.setattr(loops, "uvloop_installed", lambda: False)
    assert loops.chosen("auto") == "asyncio"
    with pytest.raises(SystemExit, match="uvloop is not installed"):
        loops.chosen("uvloop")
