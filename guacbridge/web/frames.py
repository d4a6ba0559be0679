"""The browser's WebSocket frames, read a socket's worth at a time.

Tornado's own frame loop reads each frame in three or four awaited reads (header, length,
mask, payload). Each one that the stream's buffer satisfies leaves the buffer non-empty,
so the stream stops listening, and the next header read, finding it empty, starts
listening again: two changes to the event loop's registration and four futures for every
browser message. An idle console's page sends two of those a second (guacamole-common-js's
ping), so at a few thousand consoles that churn was most of the service's CPU.

:class:`BatchedFrames` reads whatever the socket holds in one partial read, which empties
the stream's buffer, so the stream keeps listening (Tornado's IOStream leaves its reader
registered while its buffer is empty), and takes all the frames it finds out of it; a frame
larger than a read has its rest read in one exact read, not joined read by read. The
frames themselves are handled by Tornado's own ``_handle_message`` (text decoding, close,
ping, pong, the handler's ``on_message``), with Tornado's checks: a frame over
``max_message_size`` closes with 1009, reserved bits or a fragmented or oversized control
frame abort. A message's returned awaitable (the tunnel's back-pressure towards guacd) is
awaited before the next frame is looked at.

Tornado's loop is kept where this one would not be the same: with compression on, or a
Tornado without the parts it relies on.
"""
from __future__ import annotations

import asyncio
import struct

from tornado.iostream import StreamClosedError
from tornado.util import _websocket_mask
from tornado.websocket import WebSocketProtocol13

READ_SIZE = 65536          # at most this much of the browser's stream is read ahead
_YIELD_AFTER = 256 * 1024  # bytes handled without waiting before the loop lets others run
_FRAME_COST = 1024         # what a frame counts for that, beside its bytes (as Tornado's)
_LENGTH16 = struct.Struct("!H")
_LENGTH64 = struct.Struct("!Q")
_USABLE = all(hasattr(WebSocketProtocol13, name) for name in (
    "_receive_frame_loop", "_handle_message", "_abort", "close"))


class BatchedFrames(WebSocketProtocol13):
    """A server-side RFC 6455 protocol whose frame loop reads in batches (module doc)."""

    _fragment_opcode = 0          # the opcode of the fragmented message being joined

    async def _receive_frame_loop(self) -> None:
        if not _USABLE or self._decompressor is not None:
            return await super()._receive_frame_loop()
        try:
            await self._batched_loop()
        except StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    async def _batched_loop(self) -> None:
        read = self.stream.read_bytes
        rest = b""
        work = 0
        while not self.client_terminated:
            chunk = await read(READ_SIZE, partial=True)
            self._wire_bytes_in += len(chunk)
            data = rest + chunk if rest else chunk
            end = len(data)
            pos = 0
            while end - pos >= 2:
                b0, b1 = data[pos], data[pos + 1]
                length = b1 & 0x7F
                head = pos + 2
                if length == 126:
                    if end - pos < 4:
                        break
                    length = _LENGTH16.unpack_from(data, head)[0]
                    head += 2
                elif length == 127:
                    if end - pos < 10:
                        break
                    length = _LENGTH64.unpack_from(data, head)[0]
                    head += 8
                opcode = b0 & 0x0F
                if b0 & 0x70 or (opcode & 0x8 and ((b1 & 0x7F) >= 126 or not b0 & 0x80)):
                    return self._abort()     # reserved bits; a long or fragmented control
                pending = self._fragmented_message_buffer
                total = length + (len(pending) if pending is not None else 0)
                if total > self.params.max_message_size:
                    self.close(1009, "message too big")
                    return self._abort()
                stop = head + (4 if b1 & 0x80 else 0) + length
                if stop > end:
                    if stop - end <= READ_SIZE:
                        break                # the rest comes with the next read
                    # A large frame: the rest of it in one read, not in many joined ones.
                    more = await read(stop - end)
                    self._wire_bytes_in += len(more)
                    data, head, stop = data[pos:] + more, head - pos, stop - pos
                    pos, end = 0, len(data)
                if b1 & 0x80:
                    payload = _websocket_mask(data[head:head + 4], data[head + 4:stop])
                else:
                    payload = data[head:stop]
                pos = stop
                work += length + _FRAME_COST
                handled = self._frame(b0, opcode, payload)
                if handled is not None:
                    await handled            # the handler's back-pressure
                if self.client_terminated:
                    return
            rest = data[pos:] if pos < end else b""
            if work >= _YIELD_AFTER:       # a flood does not starve the other consoles
                work = 0
                await asyncio.sleep(0)

    def _frame(self, b0: int, opcode: int, payload: bytes) -> asyncio.Future[None] | None:
        """One frame: fragments are joined as Tornado does, whole messages handled by it."""
        if not opcode & 0x8:
            pending = self._fragmented_message_buffer
            if opcode == 0:                       # a continuation
                if pending is None:
                    self._abort()
                    return None
                pending.extend(payload)
                if not b0 & 0x80:
                    return None
                opcode = self._fragment_opcode
                payload = bytes(pending)
                self._fragmented_message_buffer = None
            elif pending is not None:             # a new message before the last one ended
                self._abort()
                return None
            elif not b0 & 0x80:
                self._fragment_opcode = opcode
                self._fragmented_message_buffer = bytearray(payload)
                return None
        return self._handle_message(opcode, payload)
