"""A Socket.IO client at the byte level, for what real client libraries will not do: stop
reading altogether (a phone whose app froze), or send a frame larger than the server allows.

It opens a WebSocket to ``/socket.io/?EIO=4&transport=websocket`` over a plain TCP stream with
a small receive buffer, connects the default namespace with a token, and from then on reads
only when told to.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time

HANDSHAKE_TIMEOUT_SECONDS = 10.0


def _frame(text: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455 5.2)."""
    mask = os.urandom(4)
    length = len(text)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    return header + mask + masked


class RawSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, host: str, port: int, token: str, receive_buffer: int = 4096
    ) -> RawSocket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        raw = cls(reader, writer)
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_SECONDS):
            status = await reader.readuntil(b"\r\n\r\n")
            if b" 101 " not in status.split(b"\r\n", 1)[0]:
                raise ConnectionError(f"no WebSocket upgrade: {status[:200]!r}")
            await raw.read_text()  # engine.io OPEN
            raw.send_text(b"40" + json.dumps({"token": token}).encode())
            while not (text := await raw.read_text()).startswith(b"40"):
                if text.startswith(b"44"):
                    raise ConnectionError(f"refused: {text!r}")
        return raw

    def send_text(self, text: bytes) -> None:
        self.writer.write(_frame(text))

    async def read_text(self) -> bytes:
        """The payload of the next data frame (the server's frames are not masked)."""
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(length)
        if first & 0x0F == 0x9:  # ping: answer, then the next frame
            self.writer.write(_frame(payload, opcode=0xA))
            return await self.read_text()
        return payload

    async def closed_by_server(self, within: float) -> bool:
        """Read (and discard) everything until the server closes, or ``within`` runs out."""
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline:
                chunk = await asyncio.wait_for(
                    self.reader.read(1 << 16), max(deadline - time.monotonic(), 0.01)
                )
                if not chunk:
                    return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return False

    def close(self) -> None:
        self.writer.close()
