"""The local real parts: guacd and a demo VNC desktop, as plain processes on 127.0.0.1.

``guacbridge demo`` runs them for a newcomer, and the test fixtures start them the same way,
so there is one way to start each part. Every process gets its own session and log file and
is stopped by its pid; a desktop's VNC password goes through a file, never a command line.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time


class PartMissing(RuntimeError):
    """A program is not installed; the message names its Debian package."""


class PartFailed(RuntimeError):
    """A program started but did not become ready; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just had free: parts bind their own, so tests never collide on one."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _which(program: str, package: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise PartMissing(f"{program} is not installed (Debian package {package}); "
                          "run deploy/install.sh")
    return path


@dataclasses.dataclass
class Part:
    """A process we started in its own session; we stop it by its pid, never by its name."""

    name: str
    process: subprocess.Popen
    log_path: pathlib.Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; a second call does nothing.

        A reaped process is never signalled, so a recycled pid cannot be hit.
        """
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _spawn(name: str, argv: list[str], workdir: pathlib.Path, env: dict | None = None,
           stdin: bytes | None = None) -> Part:
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=workdir,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
    return Part(name, process, log_path)


def wait_for_port(host: str, port: int, timeout: float, part: Part | None = None) -> None:
    """Return once ``host:port`` accepts; fail early, with its log, if ``part`` has exited."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        if part is not None and part.process.poll() is not None:
            raise PartFailed(f"{part.name} exited with status {part.process.returncode}:\n"
                             f"{part.log_tail()}")
        if time.monotonic() > deadline:
            tail = part.log_tail() if part else ""
            raise PartFailed(f"nothing listens on {host}:{port} after {timeout:.0f} s\n{tail}")
        time.sleep(0.05)


@dataclasses.dataclass
class Guacd:
    host: str
    port: int
    part: Part

    def stop(self) -> None:
        self.part.stop()


def start_guacd(workdir: pathlib.Path, port: int | None = None, host: str = "127.0.0.1",
                log_level: str = "info") -> Guacd:
    """guacd in the foreground; HOME is ours because its RDP plug-in writes ~/.config."""
    binary = _which("guacd", "guacd")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    part = _spawn("guacd", [binary, "-f", "-b", host, "-l", str(port), "-L", log_level],
                  workdir, env={"HOME": str(home)})
    try:
        wait_for_port(host, port, 10, part)
    except PartFailed:
        part.stop()
        raise
    return Guacd(host, port, part)


@dataclasses.dataclass
class Desktop:
    """Xvnc and the X clients on it, stopped in reverse order (clients before their server)."""

    host: str
    port: int
    password: str = dataclasses.field(repr=False)   # kept out of reprs, and so out of logs
    display: int
    parts: list[Part]
    workdir: pathlib.Path

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": f":{self.display}"}

    def run(self, name: str, argv: list[str]) -> Part:
        """Another X client on this desktop, stopped with it."""
        part = _spawn(name, argv, self.workdir, self.env)
        self.parts.append(part)
        return part

    def stop(self) -> None:
        for part in reversed(self.parts):
            part.stop()


TWMRC = """\
RandomPlacement
UsePPosition "on"
NoGrabServer
DecorateTransients
"""


def _free_display() -> int:
    for n in range(20, 200):
        if not (pathlib.Path(f"/tmp/.X11-unix/X{n}").exists()
                or pathlib.Path(f"/tmp/.X{n}-lock").exists()):
            return n
    raise PartFailed("no free X display number between :20 and :199")


def start_desktop(workdir: pathlib.Path, password: str, geometry: str = "1024x768",
                  port: int | None = None, display: int | None = None) -> Desktop:
    """Xvnc (VNC auth, loopback only) with twm and one xterm (a plain bash, in *workdir*)
    at the top left."""
    xvnc = _which("Xvnc", "tigervnc-standalone-server")
    vncpasswd = _which("vncpasswd", "tigervnc-tools")
    twm = _which("twm", "twm")
    xterm = _which("xterm", "xterm")
    xwininfo = _which("xwininfo", "x11-utils")
    workdir.mkdir(parents=True, exist_ok=True)
    # The password goes to vncpasswd on stdin and to Xvnc as an obfuscated file, readable by us.
    obfuscated = subprocess.run([vncpasswd, "-f"], input=password.encode() + b"\n",
                                capture_output=True, check=True).stdout
    passwd = workdir / "passwd"
    fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)
        f.write(obfuscated)
    (workdir / "twmrc").write_text(TWMRC)
    display = display if display is not None else _free_display()
    port = port or free_port()
    parts: list[Part] = []
    try:
        xvnc_part = _spawn("xvnc", [xvnc, f":{display}", "-geometry", geometry, "-depth", "24",
                                    "-rfbport", str(port), "-localhost", "-interface",
                                    "127.0.0.1", "-SecurityTypes", "VncAuth", "-PasswordFile",
                                    str(passwd), "-nolisten", "tcp", "-desktop",
                                    "guacbridge-demo"], workdir)
        parts.append(xvnc_part)
        wait_for_port("127.0.0.1", port, 10, xvnc_part)
        env = {"DISPLAY": f":{display}", "SHELL": "/bin/bash"}
        parts.append(_spawn("twm", [twm, "-f", str(workdir / "twmrc")], workdir, env))
        # A plain bash, not the user's rc files: one that waits (a version manager's lock
        # left behind) would leave what is typed in the first minute to a shell not reading.
        parts.append(_spawn("xterm", [xterm, "-geometry", "100x30+0+0", "-title",
                                      "guacbridge-demo", "-e", "/bin/bash", "--norc",
                                      "--noprofile"], workdir, env))
        _wait_for_window(xwininfo, env, "guacbridge-demo", 10, parts[1:])
    except BaseException:
        for part in reversed(parts):
            part.stop()
        raise
    return Desktop("127.0.0.1", port, password, display, parts, workdir)


def _wait_for_window(xwininfo: str, env: dict, title: str, timeout: float,
                     clients: list[Part]) -> None:
    """Ready means the xterm is mapped, so keystrokes sent now have somewhere to go.

    An open RFB port only says Xvnc is up; twm or xterm may still be starting or have died.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([xwininfo, "-root", "-tree"], env={**os.environ, **env},
                             capture_output=True, text=True).stdout
        if f'"{title}"' in out:
            return
        if any(part.process.poll() is not None for part in clients):
            break
        time.sleep(0.1)
    logs = "\n".join(f"--- {part.name} (exit status {part.process.poll()}):\n{part.log_tail(800)}"
                     for part in clients)
    raise PartFailed(f"the {title} window did not appear within {timeout:.0f} s:\n{logs}")
