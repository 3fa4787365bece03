"""A keep-alive HTTP/1.1 connection to a local model server, for ``invoke_endpoint``.

Only our own server (``rl_provider.serving.server``) is on the other end, and it always answers
with ``Content-Length``, so a request is one ``sendall`` and a response is a status line, headers
and a counted body. That costs a fraction of ``http.client``'s per-request work (its header
parsing goes through ``email.parser``), which is most of the client's CPU time at this latency;
``bench/endpoint_latency.py`` measures the difference.
"""

from __future__ import annotations

import socket

_HEAD_LIMIT = 64 * 1024


class ServerClosedError(ConnectionError):
    """The server closed the connection before a whole response arrived (safe to retry)."""


class ServerConnection:
    """One persistent connection to ``127.0.0.1:port``; not thread-safe (one per thread)."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer.clear()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        # Small requests: without this Nagle's algorithm can hold the body back for 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buffer.clear()
        return sock

    def _fill(self, sock: socket.socket) -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise ServerClosedError(f"127.0.0.1:{self.port} closed the connection")
        self._buffer += chunk

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request and return ``(status, headers (lower-case names), body)``."""
        sock = self._sock or self._connect()
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        try:
            sock.sendall("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)
            buffer = self._buffer
            while (end := buffer.find(b"\r\n\r\n")) < 0:
                if len(buffer) > _HEAD_LIMIT:
                    raise ServerClosedError("the response head is too long")
                self._fill(sock)
            lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            del buffer[: end + 4]
            status = int(lines[0].split(" ", 2)[1])
            fields: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            length = int(fields.get("content-length", "0"))
            while len(buffer) < length:
                self._fill(sock)
            payload = bytes(buffer[:length])
            del buffer[:length]
        except (OSError, ValueError, IndexError):
            self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, fields, payload
