"""A small oVirt engine emulator: exactly the REST calls ovirt-engine-sdk-python 4.6 makes for
a VM's VNC console (SSO login and logout, the VM by id or name search, its host, its current
graphics consoles, a console ticket), so the real SDK can be tested here. Stdlib only.

VMs are plain dicts (``serial``: its VirtIO serial console is enabled, the ``<console>``
a serial console through the vmconsole proxy needs); ``on_ticket(vm, value, expiry)`` lets a
test make the ticket the VNC password of a real Xvnc. ``enforce_tickets(vm, passwd_file)``
does that the way a hypervisor does: the VM's Xvnc (started with ``-PasswordFile
passwd_file``, which it reads again at every authentication) accepts a ticket only for its
expiry, a new ticket replaces the one before, and otherwise a random password nobody knows
is in the file. ``migrate(vm, address, port,
passwd_file)`` moves a VM to another Xvnc (another host); ``vnc_login()`` tries a VNC
password against an Xvnc the way a client does. ``revoke_tokens()`` makes the next API call
answer 401, which the SDK must handle by logging in again once. ``hang()`` makes every
request wait without an answer (an engine that stopped answering) until ``release()``.
"""
from __future__ import annotations

import base64
import json
import pathlib
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

API = "/ovirt-engine/api"
RUNNING = {"up", "paused", "powering_up", "powering_down", "reboot_in_progress"}


class Engine:
    def __init__(self, username: str = "admin@internal", password: str = "secret") -> None:
        self.username, self.password = username, password
        self.tokens: set[str] = set()
        self.vms: dict[str, dict] = {}
        self.hosts: dict[str, str] = {}           # host id → management address
        self.requests: list[dict] = []
        self.power_calls: list[tuple[str, str]] = []
        self.on_ticket: Callable[[dict, str, int], None] | None = None
        self.tickets: list[str] = []              # every ticket value handed out
        self.expired = 0                          # tickets whose expiry has passed
        self._lock = threading.Lock()
        self.answering = threading.Event()
        self.answering.set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    def agent_config(self, location: str = "ams1", **more: str | int) -> str:
        """The guacbridge.toml table of an oVirt agent location on this engine, with its
        login, and *more* of the location's settings (strings quoted, numbers not)."""
        lines = [f"[agents.ovirt.{location}]", f'url = "{self.url}"',
                 f'username = "{self.username}"', f'password = "{self.password}"']
        lines += [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}"
                  for k, v in more.items()]
        return "\n".join(lines) + "\n"

    def add_vm(self, name: str, status: str = "up", address: str = "192.0.2.10",
               port: int = 5900, host: str | None = None, serial: bool = False) -> dict:
        vm = {"id": str(__import__("uuid").uuid4()), "name": name, "status": status,
              "address": address, "port": port, "host": host, "serial": serial}
        self.vms[vm["id"]] = vm
        return vm

    def enforce_tickets(self, vm: dict, passwd_file: pathlib.Path) -> None:
        """The VM's console is the Xvnc reading *passwd_file*: from now on it takes the
        newest ticket only until that ticket expires; no ticket yet: a random password."""
        with self._lock:
            vm["passwd"] = pathlib.Path(passwd_file)
            vm["ticket"] = None
            _write_vnc_password(vm["passwd"], secrets.token_hex(4))

    def migrate(self, vm: dict, address: str, port: int, passwd_file: pathlib.Path) -> None:
        """The VM runs on another host now: its console is another Xvnc; the one it left
        keeps no password anyone has."""
        with self._lock:
            if vm.get("passwd") is not None:
                _write_vnc_password(vm["passwd"], secrets.token_hex(4))
            vm.update(address=address, port=port, passwd=pathlib.Path(passwd_file),
                      ticket=None)
            _write_vnc_password(vm["passwd"], secrets.token_hex(4))

    def wait_expired(self, count: int, timeout: float = 30.0) -> None:
        """Until *count* tickets have expired (each one's timer has run)."""
        deadline = time.monotonic() + timeout
        while self.expired < count:
            assert time.monotonic() < deadline, f"only {self.expired} tickets expired"
            time.sleep(0.05)

    def _ticket(self, vm: dict, value: str, seconds: int) -> None:
        """A ticket set on the VM's console: its VNC password until it expires or the next
        one replaces it."""
        with self._lock:
            self.tickets.append(value)
            if vm.get("passwd") is None:
                return
            vm["ticket"] = value
            _write_vnc_password(vm["passwd"], value)
        timer = threading.Timer(seconds, self._expire, (vm, value, vm["passwd"]))
        timer.daemon = True
        timer.start()

    def _expire(self, vm: dict, value: str, passwd: pathlib.Path) -> None:
        with self._lock:
            if vm.get("ticket") == value and vm.get("passwd") == passwd:
                vm["ticket"] = None
                _write_vnc_password(passwd, secrets.token_hex(4))
            self.expired += 1

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def hang(self) -> None:
        """Requests from now on wait, unanswered, until release() (or 120 s)."""
        self.answering.clear()

    def release(self) -> None:
        self.answering.set()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: str = "", kind: str = "xml") -> None:
                data = body.encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json" if kind == "json"
                                     else "application/xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> str:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()

            def do_POST(self) -> None:
                self._route("POST")

            def do_GET(self) -> None:
                self._route("GET")

            def _route(self, method: str) -> None:
                body = self._body()
                engine.answering.wait(120)
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                engine.requests.append({"method": method, "path": url.path, "query": query,
                                        "body": body})
                if url.path == "/ovirt-engine/sso/oauth/token" and method == "POST":
                    form = urllib.parse.parse_qs(body)
                    if (form.get("username") == [engine.username]
                            and form.get("password") == [engine.password]):
                        token = secrets.token_urlsafe(16)
                        engine.tokens.add(token)
                        return self._send(200, json.dumps({
                            "access_token": token, "scope": "ovirt-app-api",
                            "exp": str(int(time.time() * 1000) + 3600000),
                            "token_type": "bearer"}), "json")
                    user = form.get("username", [""])[0]
                    return self._send(400, json.dumps({
                        "error_code": "access_denied",
                        "error": f"Cannot authenticate user '{user}': The username or password"
                                 " is incorrect."}), "json")
                if url.path == "/ovirt-engine/services/sso-logout" and method == "POST":
                    engine.tokens.discard(urllib.parse.parse_qs(body).get("token", [""])[0])
                    return self._send(200, "{}", "json")
                if not url.path.startswith(API):
                    return self._send(404)
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in engine.tokens:
                    return self._send(401)
                self._api(method, url.path[len(API):], query, body)

            def _api(self, method: str, path: str, query: dict, body: str) -> None:
                if path == "" and method == "GET":
                    return self._send(200, "<api><product_info><name>oVirt Engine"
                                           "</name></product_info></api>")
                if path == "/vms" and method == "GET":
                    search = query.get("search", [""])[0]
                    m = re.fullmatch(r"name=(.+)", search)
                    vms = [vm for vm in engine.vms.values() if m and vm["name"] == m[1]]
                    return self._send(200, "<vms>" + "".join(map(_vm_xml, vms)) + "</vms>")
                m = re.fullmatch(r"/hosts/([\w-]+)", path)
                if m and method == "GET" and m[1] in engine.hosts:
                    return self._send(200, f'<host id="{m[1]}"><address>'
                                           f'{escape(engine.hosts[m[1]])}</address></host>')
                m = re.fullmatch(r"/vms/([\w-]+)(/.*)?", path)
                vm = engine.vms.get(m[1]) if m else None
                if vm is None:
                    return self._send(404)
                rest = m[2] or ""
                if rest == "" and method == "GET":
                    return self._send(200, _vm_xml(vm))
                if rest == "/graphicsconsoles" and method == "GET":
                    if query.get("current") != ["true"] or vm["status"] not in RUNNING:
                        return self._send(200, "<graphics_consoles/>")
                    return self._send(200, "<graphics_consoles>" + _console_xml(vm)
                                      + "</graphics_consoles>")
                if rest == "/graphicsconsoles/766e63/ticket" and method == "POST":
                    # A VM that stops between our look and the ticket: the engine's 409.
                    if vm["status"] not in RUNNING or vm.get("stops_before_ticket"):
                        return self._send(409, "<fault><detail>[Cannot set Virtual Machine"
                                               " Ticket because the VM is in Down"
                                               " status.]</detail><reason>Operation Failed"
                                               "</reason></fault>")
                    expiry = re.search(r"<expiry>(\d+)</expiry>", body)
                    seconds = int(expiry[1]) if expiry else 7200
                    value = base64.b64encode(secrets.token_bytes(6)).decode()
                    engine._ticket(vm, value, seconds)
                    if engine.on_ticket:
                        engine.on_ticket(vm, value, seconds)
                    return self._send(200, f"<action><ticket><expiry>{seconds}</expiry>"
                                           f"<value>{escape(value)}</value></ticket>"
                                           "<status>complete</status></action>")
                power = re.fullmatch(r"/(start|shutdown|stop|reboot|reset)", rest)
                if power and method == "POST":
                    return self._power(vm, power[1], body)
                return self._send(404)

            def _power(self, vm: dict, call: str, body: str) -> None:
                running = vm["status"] in RUNNING
                if (call == "start") == running or not body.startswith("<action"):
                    status = vm["status"].capitalize()
                    return self._send(409, "<fault><detail>[Cannot "
                                           f"{'run' if call == 'start' else call} VM. VM"
                                           f" {escape(vm['name'])} is {status}.]</detail>"
                                           "<reason>Operation Failed</reason></fault>")
                engine.power_calls.append((vm["name"], call))
                if call == "start":
                    vm["status"] = "up"
                elif call in ("shutdown", "stop"):
                    vm["status"] = "down"
                return self._send(200, "<action><status>complete</status></action>")

        return Handler


def _vm_xml(vm: dict) -> str:
    running = vm["status"] in RUNNING
    display = (f"<display><address>{escape(vm['address'])}</address><port>{vm['port']}</port>"
               "<type>vnc</type></display>" if running else "<display><type>vnc</type></display>")
    host = f'<host href="{API}/hosts/{vm["host"]}" id="{vm["host"]}"/>' if running and vm["host"] \
        else ""
    return (f'<vm href="{API}/vms/{vm["id"]}" id="{vm["id"]}"><name>{escape(vm["name"])}</name>'
            f"<console><enabled>{str(vm.get('serial', False)).lower()}</enabled></console>"
            f"{display}<status>{vm['status']}</status>{host}</vm>")


def _console_xml(vm: dict) -> str:
    return (f'<graphics_console href="{API}/vms/{vm["id"]}/graphicsconsoles/766e63" id="766e63">'
            f"<address>{escape(vm['address'])}</address><port>{vm['port']}</port>"
            f'<protocol>vnc</protocol><vm href="{API}/vms/{vm["id"]}" id="{vm["id"]}"/>'
            "</graphics_console>")


# The fixed DES key VNC obfuscates stored passwords with ({23,82,107,6,35,78,88,7} in
# TigerVNC's d3des order, which reverses each byte's bits), as a standard DES key.
_VNC_FILE_KEY = bytes.fromhex("e84ad660c4721ae0")


def _des(key: bytes, block: bytes) -> bytes:
    """Single DES (three equal keys), ECB."""
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def vnc_password_file(password: str) -> bytes:
    """What ``vncpasswd -f`` writes for *password* (its first 8 bytes)."""
    return _des(_VNC_FILE_KEY, password.encode()[:8].ljust(8, b"\0"))


def _write_vnc_password(path: pathlib.Path, password: str) -> None:
    """Replace the file in one step: Xvnc never reads half of it."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(vnc_password_file(password))
    fresh.chmod(0o600)
    fresh.replace(path)


def vnc_login(host: str, port: int, password: str, timeout: float = 5.0) -> bool:
    """Whether a VNC server takes *password* (RFB 3.8, VNC authentication), as a client's
    login would: the server's challenge encrypted with the password as a DES key, each
    byte's bits reversed (RFB's rule)."""
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode()[:8].ljust(8, b"\0"))
    with socket.create_connection((host, port), timeout) as sock:
        reader = sock.makefile("rb")
        reader.read(12)
        sock.sendall(b"RFB 003.008\n")
        types = reader.read(reader.read(1)[0])
        assert 2 in types, f"the server offers no VNC authentication: {list(types)}"
        sock.sendall(b"\x02")
        challenge = reader.read(16)
        sock.sendall(_des(key, challenge[:8]) + _des(key, challenge[8:]))
        return reader.read(4) == b"\0\0\0\0"
