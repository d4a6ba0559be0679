"""The ceiling: a WebSocket ⇄ TCP relay that forwards raw chunks without looking at them.

No framing, no token, no handshake of its own (it writes a canned ``select``/``connect``), so
no browser could use it: it is what moving the bytes alone costs on Tornado, for the relay
benchmark to compare against. The stand-in's mode comes from the ``hostname`` query argument.

Run: python bench/bare_relay.py PORT GUACD_PORT
"""
from __future__ import annotations

import asyncio
import socket
import sys

import tornado.ioloop
import tornado.web
import tornado.websocket


class Relay(tornado.websocket.WebSocketHandler):
    def select_subprotocol(self, subprotocols):
        return "guacamole" if "guacamole" in subprotocols else None

    async def open(self) -> None:
        self.set_nodelay(True)
        mode = self.get_query_argument("hostname", "idle")
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", int(sys.argv[2]), limit=65536)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP,
                                                        socket.TCP_NODELAY, 1)
        self.writer.write(f"6.select,3.vnc;7.connect,{len(mode)}.{mode},0.,0.;".encode())
        self.pump = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            while data := await self.reader.read(65536):
                await self.write_message(data, binary=True)
        except (tornado.websocket.WebSocketClosedError, ConnectionError):
            pass
        self.close()

    def on_message(self, message) -> None:
        self.writer.write(message.encode() if isinstance(message, str) else message)

    def on_close(self) -> None:
        if hasattr(self, "writer"):
            self.writer.close()
            self.pump.cancel()


async def main() -> None:
    app = tornado.web.Application([(r"/", Relay)])
    app.listen(int(sys.argv[1]), "127.0.0.1", backlog=4096)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
