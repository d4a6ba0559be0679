"""guapy 2.0 (from PyPI) as its README runs it: its ASGI app under uvicorn, pointed at the
guacd stand-in. The stand-in's mode comes from the ``hostname`` query argument, which the
resolver lets through (guapy's own whitelist resolver).

Run: python bench/guapy_server.py PORT GUACD_PORT
"""
from __future__ import annotations

import logging
import sys

import guapy
import uvicorn
from guapy.server.asgi import GuacamoleASGIApp


def main() -> None:
    port, guacd_port = int(sys.argv[1]), int(sys.argv[2])
    logging.getLogger("guapy").setLevel(logging.WARNING)
    resolver = guapy.QueryWhitelistResolver(
        guapy.GuacamoleConfiguration(protocol="vnc", parameters={"port": "5900"}),
        allowed={"hostname"})
    app = GuacamoleASGIApp(
        endpoint=guapy.GuacdEndpoint("127.0.0.1", guacd_port), resolver=resolver,
        max_connections=10000)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets",
                backlog=4096, ws_max_size=2**24)


if __name__ == "__main__":
    main()
