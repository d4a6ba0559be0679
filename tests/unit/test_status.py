"""The status table (Guacamole code, HTTP status, WebSocket close code), the protocol
versions guacd offers with what each lets the handshake send, and the page's side: it names
statuses and states as guacamole-common-js does, and takes guacbridge's own notices in one
module."""
from __future__ import annotations

import asyncio
import http
import re

import pytest

from guacbridge import guacd, protocol, resources
from guacbridge.guacd import Capabilities, Protocol
from guacbridge.status import Status
from guacbridge.web import idle, tunnel, tunnel_input

# Close codes an endpoint may not send (RFC 6455 section 7.4.1): no status, abnormal, TLS.
_RESERVED = {1004, 1005, 1006, 1015}


def test_every_status_has_an_http_status_and_a_close_code_a_server_may_send():
    assert len(Status) == 21
    for status in Status:
        assert 0x0000 <= status <= 0x03FF, status
        assert status.http in {s.value for s in http.HTTPStatus}, status
        assert 1000 <= status.websocket <= 1011 and status.websocket not in _RESERVED, status


@pytest.mark.parametrize(("status", "code", "http_status", "close"), [
    (Status.SUCCESS, 0x0000, 200, 1000),
    (Status.SERVER_ERROR, 0x0200, 500, 1011),
    (Status.UPSTREAM_ERROR, 0x0203, 502, 1011),      # 0x0203, not 0x0200
    (Status.RESOURCE_NOT_FOUND, 0x0204, 404, 1002),
    (Status.UPSTREAM_NOT_FOUND, 0x0207, 502, 1011),
    (Status.UPSTREAM_UNAVAILABLE, 0x0208, 502, 1011),
    (Status.SESSION_TIMEOUT, 0x020A, 408, 1002),
    (Status.SESSION_CLOSED, 0x020B, 404, 1002),
    (Status.CLIENT_UNAUTHORIZED, 0x0301, 403, 1008),
    (Status.CLIENT_OVERRUN, 0x030D, 413, 1009),
    (Status.CLIENT_BAD_TYPE, 0x030F, 415, 1003),
    (Status.CLIENT_TOO_MANY, 0x031D, 429, 1008),
])
def test_known_pairs_from_guacamoles_status_table(status, code, http_status, close):
    assert (status, status.http, status.websocket) == (code, http_status, close)


def test_the_names_and_codes_are_those_the_page_reads_from_guacamole_common_js():
    try:
        source = resources.guacamole_js().read_text(encoding="utf-8")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    body = re.search(r"Guacamole\.Status\.Code = \{(.*?)\};", source, re.S)
    assert body is not None
    theirs = {name: int(value, 16)
              for name, value in re.findall(r'"(\w+)"\s*:\s*(0x[0-9A-Fa-f]+)', body[1])}
    assert theirs == {status.name: status.value for status in Status}


def test_a_member_is_the_number_on_the_wire():
    assert Status.SESSION_CLOSED == 0x020B and str(Status.SESSION_CLOSED) == "523"
    assert protocol.encode("error", "gone", Status.SESSION_CLOSED) == "5.error,4.gone,3.523;"


@pytest.mark.parametrize("code", [0x0210, 0x03FF, 0x0101, 0x4701, -1, 99999])
def test_a_code_the_table_does_not_know_is_a_server_error(code):
    assert Status.of(code) is Status.SERVER_ERROR
    assert tunnel.websocket_code(code) == 1011
    assert guacd.GuacdError(code, "odd").status is Status.SERVER_ERROR


def test_a_known_code_from_guacd_is_its_member():
    assert Status.of(0x0207) is Status.UPSTREAM_NOT_FOUND
    assert guacd.GuacdError(769, "Authentication failure").status is Status.CLIENT_UNAUTHORIZED


@pytest.mark.parametrize("status", list(Status))
def test_the_tunnel_closes_with_the_tables_close_code(status):
    assert tunnel.websocket_code(status) == status.websocket
    assert tunnel.websocket_code(int(status)) == status.websocket


def test_guacds_error_in_the_stream_closes_the_tunnel_as_the_table_says():
    text = protocol.encode("sync", 1) + protocol.encode("error", "Aborted.", 519)
    status, message = tunnel_input.error_in(text)
    assert (status, message) == (Status.UPSTREAM_NOT_FOUND, "Aborted.")
    assert (tunnel.websocket_code(status), str(status)) == (1011, "519")
    assert tunnel_input.error_in(protocol.encode("error", "odd", 528))[0] is Status.SERVER_ERROR
    assert tunnel_input.error_in(protocol.encode("sync", 1)) == (Status.SUCCESS, "")


# -- protocol versions -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "version"), [
    ("VERSION_1_0_0", Protocol.VERSION_1_0_0),
    ("VERSION_1_1_0", Protocol.VERSION_1_1_0),
    ("VERSION_1_3_0", Protocol.VERSION_1_3_0),
    ("VERSION_1_5_0", Protocol.VERSION_1_5_0),
    ("VERSION_1_6_0", Protocol.VERSION_1_5_0),   # newer than we know: the newest we know
    ("VERSION_2_0_0", Protocol.VERSION_1_5_0),
    ("VERSION_1_2_0", Protocol.VERSION_1_1_0),   # in between: the one below it
    ("VERSION_1_4_3", Protocol.VERSION_1_3_0),
])
def test_version_strings(text, version):
    assert Protocol.parse(text) is version


@pytest.mark.parametrize("text", ["", "hostname", "VERSION", "VERSION_1_5", "VERSION_1_5_0_0",
                                  "version_1_5_0", "VERSION_a_b_c", "VERSION_1__0",
                                  "VERSION_-1_5_0", "VERSION_\uff11_5_0", "VERSION_0_9_0"])
def test_garbage_is_not_a_version(text):
    with pytest.raises(ValueError):
        Protocol.parse(text)


def test_the_capabilities_of_each_version():
    table = {v: (v.negotiated, v.supports_timezone, v.supports_required, v.supports_msg,
                 v.supports_name) for v in Protocol}
    assert table == {
        Protocol.VERSION_1_0_0: (False, False, False, False, False),
        Protocol.VERSION_1_1_0: (True, True, False, False, False),
        Protocol.VERSION_1_3_0: (True, True, True, False, False),
        Protocol.VERSION_1_5_0: (True, True, True, True, True),
    }
    assert Protocol.VERSION_1_3_0.number == "1.3.0"


def test_args_without_a_version_are_guacd_1_0_and_all_parameter_names():
    assert Protocol.offered(["hostname", "port"]) == (Protocol.VERSION_1_0_0, ["hostname", "port"])
    assert Protocol.offered([]) == (Protocol.VERSION_1_0_0, [])
    assert Protocol.offered(["VERSION_1_3_0", "hostname"]) == (Protocol.VERSION_1_3_0,
                                                                ["hostname"])


async def _handshake_with(offer: list[str]) -> tuple[guacd.GuacdConnection, list[list[str]]]:
    """A guacd stand-in offering *offer* in ``args``; what the client sent it, up to connect."""
    received: list[list[str]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = protocol.Parser()
        while data := await reader.read(65536):
            for elements in parser.feed(data):
                received.append(elements)
                if elements[0] == "select":
                    writer.write(protocol.encode("args", *offer).encode())
                elif elements[0] == "connect":
                    writer.write(protocol.encode("ready", "$id").encode())
                    await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        conn = await guacd.connect(server.sockets[0].getsockname()[:2], "vnc",
                                   {"hostname": "h", "port": "5900"},
                                   Capabilities(timezone="Europe/Berlin", name="alice"), 5)
        conn.close()
    finally:
        server.close()
    return conn, received


@pytest.mark.parametrize(("offer", "version", "connect", "extra"), [
    (["hostname", "port"], Protocol.VERSION_1_0_0, ["h", "5900"], set()),
    (["VERSION_1_1_0", "hostname", "port"], Protocol.VERSION_1_1_0,
     ["VERSION_1_1_0", "h", "5900"], {"timezone"}),
    (["VERSION_1_3_0", "hostname", "port"], Protocol.VERSION_1_3_0,
     ["VERSION_1_3_0", "h", "5900"], {"timezone"}),
    (["VERSION_1_5_0", "hostname", "port"], Protocol.VERSION_1_5_0,
     ["VERSION_1_5_0", "h", "5900"], {"timezone", "name"}),
    (["VERSION_1_6_0", "port", "hostname"], Protocol.VERSION_1_5_0,
     ["VERSION_1_5_0", "5900", "h"], {"timezone", "name"}),
])
def test_the_handshake_sends_what_the_offered_version_takes(offer, version, connect, extra):
    conn, received = asyncio.run(_handshake_with(offer))
    assert conn.version is version and conn.connection_id == "$id"
    opcodes = [elements[0] for elements in received]
    assert set(opcodes) - {"select", "size", "audio", "video", "image", "connect"} == extra
    assert received[-1] == ["connect", *connect]
    if "name" in extra:
        assert ["name", "alice"] in received
    if "timezone" in extra:
        assert ["timezone", "Europe/Berlin"] in received


# -- the page ----------------------------------------------------------------------------------

def _page_scripts() -> dict[str, str]:
    html = resources.folder("html")
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(html.glob("*.js"))}


def test_the_page_names_guacamoles_statuses_and_states_instead_of_numbers():
    for name, source in _page_scripts().items():
        code = re.sub(r"//.*", "", source)
        assert not re.findall(r"\b0x0[0-3][0-9A-Fa-f]{2}\b", code), name
        assert not re.search(r"\bstate\s*(?:===?|<|>)\s*\d", code), name


def test_guacbridges_own_notices_reach_the_page_through_one_module():
    from guacbridge.web.drain import RESTART_OPCODE
    scripts = _page_scripts()
    notices = scripts.pop("notices.js")
    assert f"export const RESTART_OPCODE = '{RESTART_OPCODE}';" in notices
    assert f"export const MSG_IDLE_WARNING = 0x{idle.MSG_IDLE_WARNING:04X};" in notices
    for name, source in scripts.items():
        assert RESTART_OPCODE not in source and "4701" not in source, name
        assert ".onmsg" not in source and ".oninstruction" not in source, name
