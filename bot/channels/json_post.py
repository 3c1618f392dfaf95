"""A small HTTP/1.1 client that posts JSON over a pool of keep-alive connections: what the delivery engine's Telegram
transport needs, and nothing else (no redirects, cookies, proxies, compression or streaming).

Why not aiohttp: the engine's budget is under 1 ms of CPU per message for everything, and at 3,000 messages a
second the process also has to leave room for the database. Measured on this machine, 4,000 sendMessage posts 64 at
a time to the fake Bot API in its own process: aiohttp's ClientSession.post took 270-300 µs of CPU per request
(building its request and response objects, header multidicts, tracing hooks, the payload writer), this client
75-110 µs. aiohttp stays for everything else (the fake server, the chat adapter through aiogram).

What it does speak: http and https (the system's certificate store, with the host checked), Content-Length and
chunked responses, responses ended by closing the connection, ``Connection: close``, 1xx interim responses
(skipped). A request that does not get its whole answer within ``timeout`` fails with TimeoutError and its
connection is dropped. A reused connection the server had already closed is retried once on a fresh one, before
any byte of an answer came. Errors name what went wrong, never the URL: a Bot API URL holds the token."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 16 * 1024 * 1024
_HEAD_END: Final = b"\r\n\r\n"
JSON: Final = b"application/json"


class HttpError(Exception):
    """The connection broke, or the answer was not HTTP this client understands."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._status = 0
        self._length = -1  # bytes of body expected; -1: not known yet
        self._chunked = False
        self._until_close = False
        self._chunks: bytearray | None = None
        self._in_head = True
        self.received = False  # a byte of the current answer came

    # ---- asyncio.Protocol ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._fail(HttpError("data from the server with no request waiting"))
            return
        self.received = True
        self._buffer += data
        try:
            self._parse()
        except HttpError as error:
            self._fail(error)

    def eof_received(self) -> bool | None:
        return False  # close our end too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._until_close and not self._in_head:
            self._finish(bytes(self._buffer))
        else:
            waiter.set_exception(HttpError("the server closed the connection"))

    # ---- a request ---------------------------------------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._buffer.clear()
        self._in_head = True
        self._length = -1
        self._chunked = self._until_close = False
        self._chunks = None
        self.received = False
        self.transport.write(data)
        return waiter

    @property
    def busy(self) -> bool:
        """A request is waiting for its answer."""
        return self._waiter is not None

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()

    def _fail(self, error: HttpError) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def _finish(self, body: bytes) -> None:
        waiter = self._waiter
        self._waiter = None
        if self._until_close:
            self.reusable = False
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(self._status, body))

    # ---- parsing -----------------------------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self._buffer
        while True:
            if self._in_head:
                end = buffer.find(_HEAD_END)
                if end < 0:
                    if len(buffer) > _MAX_HEAD:
                        raise HttpError("the answer's header is too long")
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                if not self._head(head):
                    continue  # a 1xx interim answer: the real one follows
                self._in_head = False
            if self._chunked:
                if not self._chunk():
                    return
                continue
            if self._until_close:
                if len(buffer) > _MAX_BODY:
                    raise HttpError("the answer is too long")
                return
            if len(buffer) < self._length:
                return
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
            self._finish(body)
            return

    def _head(self, head: bytes) -> bool:
        """Read a status line and headers; False for a 1xx interim answer."""
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HttpError("not an HTTP/1.x answer")
        self._status = int(code)
        if 100 <= self._status < 200:
            return False
        length: int | None = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                value = value.strip()
                if not value.isdigit() or int(value) > _MAX_BODY:
                    raise HttpError("a bad Content-Length")
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                self._chunked = True
            elif name == "connection" and "close" in value.lower():
                self.reusable = False
        if version == "HTTP/1.0":
            self.reusable = False
        if self._chunked:
            self._chunks = bytearray()
        elif length is not None:
            self._length = length
        elif self._status in (204, 304):
            self._length = 0
        else:
            self._until_close = True
        return True

    def _chunk(self) -> bool:
        """Take one chunk from the buffer; False when more bytes are needed."""
        buffer = self._buffer
        chunks = self._chunks
        assert chunks is not None
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            if len(buffer) > _MAX_HEAD:
                raise HttpError("a bad chunk")
            return False
        size_text = bytes(buffer[:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError("a bad chunk size") from None
        if size == 0:
            # The last chunk, then optional trailers and an empty line.
            trailer_end = buffer.find(_HEAD_END, line_end)
            if trailer_end < 0:
                return False
            del buffer[: trailer_end + 4]
            self._finish(bytes(chunks))
            return False
        if len(buffer) < line_end + 2 + size + 2:
            return False
        chunks += buffer[line_end + 2 : line_end + 2 + size]
        if len(chunks) > _MAX_BODY:
            raise HttpError("the answer is too long")
        del buffer[: line_end + 2 + size + 2]
        return True


class JsonPoster:
    """Posts JSON bodies to paths under one base URL; at most ``connections`` requests at a time."""

    def __init__(self, base_url: str, *, connections: int = 100, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the base URL must be http:// or https:// with a host")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/") + "/"
        default_port = self._port == (443 if self._tls else 80)
        host_header = self._host if default_port else f"{self._host}:{self._port}"
        if ":" in self._host and not default_port:  # an IPv6 literal
            host_header = f"[{self._host}]:{self._port}"
        self._head = f"Host: {host_header}\r\nUser-Agent: Linli\r\nContent-Type: ".encode("ascii")
        self._head_rest = b"\r\nConnection: keep-alive\r\nContent-Length: "
        self._timeout = timeout
        self._slots = asyncio.Semaphore(connections)
        self._idle: deque[_Connection] = deque()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def post(self, path: str, body: bytes, content_type: bytes = JSON) -> Answer:
        """POST body to base URL + path. Raises TimeoutError, HttpError or OSError; never with the URL in it.
        content_type: JSON, or another (a multipart/form-data upload of a file)."""
        if self._closed:
            raise HttpError("the client is closed")
        data = b"".join(
            (
                b"POST ",
                (self._prefix + path).encode("utf-8"),
                b" HTTP/1.1\r\n",
                self._head,
                content_type,
                self._head_rest,
                str(len(body)).encode("ascii"),
                b"\r\n\r\n",
                body,
            )
        )
        async with self._slots:
            async with asyncio.timeout(self._timeout):
                connection, reused = await self._connection()
                try:
                    answer = await connection.request(data)
                except HttpError:
                    if not (reused and connection.closed and not connection.received):
                        raise
                    # The server had closed the idle connection before our request reached it: once, afresh.
                    connection, _ = await self._connect()
                    answer = await connection.request(data)
                finally:
                    if not connection.reusable or connection.closed or connection.busy:
                        connection.close()  # cut off mid-answer (a timeout, a cancel) or told to
            if connection.reusable and not connection.closed:
                self._idle.append(connection)
            return answer

    async def _connection(self) -> tuple[_Connection, bool]:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and connection.reusable:
                return connection, True
        return await self._connect()

    async def _connect(self) -> tuple[_Connection, bool]:
        loop = asyncio.get_running_loop()
        if self._tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
        _, connection = await loop.create_connection(
            _Connection,
            self._host,
            self._port,
            ssl=self._ssl if self._tls else None,
            server_hostname=self._host if self._tls else None,
        )
        return connection, False

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
