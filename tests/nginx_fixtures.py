"""nginx as a real part, running deploy/nginx-guacbridge.conf itself: the example's ports
and certificate paths are swapped for the test's, nothing else, and nginx runs as a plain
process on loopback with its files in a temp dir, stopped by pid."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import socket
import subprocess
import time

from guacbridge.demo import free_port
from parts import require, stop_process

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "deploy" / "nginx-guacbridge.conf"


def render_example(upstreams: list[int], listen_port: int, cert: pathlib.Path,
                   key: pathlib.Path, log: pathlib.Path) -> str:
    """The example with the test's values; fails if the example no longer has the lines
    this replaces (the test would then test something else)."""
    text = EXAMPLE.read_text()
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstreams)
    swaps = [("    server 127.0.0.1:8080;\n    # server 127.0.0.1:8081;\n", servers),
             ("listen 443 ssl;", f"listen 127.0.0.1:{listen_port} ssl;"),
             ("/etc/ssl/guacbridge/fullchain.pem", str(cert)),
             ("/etc/ssl/guacbridge/privkey.pem", str(key)),
             ("/var/log/nginx/guacbridge.access.log", str(log)),
             ("/var/log/nginx/guacbridge.error.log",
              str(log.with_name("guacbridge.error.log")))]
    for old, new in swaps:
        assert old in text, f"deploy/nginx-guacbridge.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


@dataclasses.dataclass
class Nginx:
    port: int
    process: subprocess.Popen
    workdir: pathlib.Path

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def logs(self) -> dict[str, str]:
        """Every log nginx wrote, by file name: the example's access and error logs, and the
        test's own nginx-wide error log."""
        return {path.name: path.read_text(errors="replace")
                for path in sorted(self.workdir.glob("*.log"))}

    def stop(self) -> None:
        stop_process(self.process)


def start_nginx(workdir: pathlib.Path, upstreams: list[int], cert: pathlib.Path,
                key: pathlib.Path) -> Nginx:
    require("nginx", "nginx")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "guacbridge.conf").write_text(render_example(upstreams, port, cert, key,
                                                                workdir / "access.log"))
    user = "user root;\n" if os.geteuid() == 0 else ""    # workers read our temp dir
    (workdir / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {workdir}/guacbridge.conf;
}}
""")
    process = subprocess.Popen(["nginx", "-p", str(workdir), "-e", str(workdir / "error.log"),
                                "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               start_new_session=True)
    nginx = Nginx(port, process, workdir)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return nginx
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                nginx.stop()
                log = (workdir / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nginx did not start:\n{log}")
            time.sleep(0.05)
