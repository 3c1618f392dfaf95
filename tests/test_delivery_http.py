"""The delivery engine's small HTTP client (bot/channels/json_post.py) against a server that answers exactly the
bytes a test gives it: the ways real servers frame an answer, broken connections, and timeouts."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from bot.channels.json_post import HttpError, JsonPoster

# (the request's bytes, its number on its connection from 0) -> the pieces to answer with; None: hang up
Script = Callable[[bytes, int], list[bytes] | None]


class Server:
    """Reads one request at a time (head and Content-Length body) and answers it with the script's pieces."""

    def __init__(self, script: Script, *, close_after: bool = False) -> None:
        self.script = script
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for number in itertools.count():
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                pieces = self.script(head + body, number)
                if pieces is None:
                    break
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.001)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(script: Script, *, close_after: bool = False) -> AsyncIterator[Server]:
    server = Server(script, close_after=close_after)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


def ok(body: bytes = b'{"ok":true}', *extra: bytes) -> list[bytes]:
    return [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body),
        *extra,
        b"\r\n",
        body,
    ]


async def test_posts_json_and_keeps_the_connection_alive() -> None:
    async with serving(lambda _, __: ok(b'{"ok":true,"result":{"message_id":7}}')) as server:
        client = JsonPoster(f"http://127.0.0.1:{server.port}/base/", connections=4)
        for n in range(3):
            answer = await client.post(f"bot1:T/sendMessage?n={n}", b'{"chat_id":1}')
            assert answer.status == 200 and json.loads(answer.body)["result"]["message_id"] == 7
        await client.aclose()
    assert server.connections == 1
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /base/bot1:T/sendMessage?n=0 HTTP/1.1\r\n")
    assert b"Content-Type: application/json" in head and f"Host: 127.0.0.1:{server.port}".encode() in head
    assert body == b'{"chat_id":1}'


async def test_answers_split_anywhere_and_chunked_with_trailers() -> None:
    body = b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3"}'

    def chunked(_: bytes, __: int) -> list[bytes]:
        head = b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n"
        framed = b"%x;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
        whole = head + framed
        return [whole[i : i + 7] for i in range(0, len(whole), 7)]  # in pieces of 7 bytes

    async with serving(chunked) as server:
        client = JsonPoster(f"http://127.0.0.1:{server.port}")
        first = await client.post("m", b"{}")
        second = await client.post("m", b"{}")  # the connection is still usable after a chunked answer
        await client.aclose()
    assert first.status == second.status == 429 and first.body == body
    assert server.connections == 1


async def test_interim_answers_are_skipped_and_close_delimited_bodies_read() -> None:
    def script(_: bytes, __: int) -> list[bytes]:
        return [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.0 502 Bad Gateway\r\n\r\n", b"<html>bad gateway</html>"]

    async with serving(script, close_after=True) as server:
        client = JsonPoster(f"http://127.0.0.1:{server.port}")
        answer = await client.post("m", b"{}")
        again = await client.post("m", b"{}")  # the first connection ended with its answer: a new one
        await client.aclose()
    assert answer.status == 502 and answer.body == b"<html>bad gateway</html>"
    assert again.status == 502 and server.connections == 2


async def test_connection_close_is_honoured() -> None:
    async with serving(lambda _, __: ok(b"{}", b"Connection: close\r\n"), close_after=True) as server:
        client = JsonPoster(f"http://127.0.0.1:{server.port}")
        await client.post("m", b"{}")
        await client.post("m", b"{}")
        await client.aclose()
    assert server.connections == 2


async def test_a_kept_connection_the_server_dropped_is_retried_once_afresh() -> None:
    """The server hangs up on the second request of a connection without a word, as one does whose keep-alive
    timeout ran out just as the request came: the client sends it again on a new connection."""

    def script(_: bytes, number: int) -> list[bytes] | None:
        return ok() if number == 0 else None

    async with serving(script) as server:
        client = JsonPoster(f"http://127.0.0.1:{server.port}")
        await client.post("m", b"{}")
        assert (await client.post("m", b"{}")).status == 200
        await client.aclose()
    assert server.connections == 2 and len(server.requests) == 3


async def test_a_server_that_hangs_up_or_talks_nonsense_is_an_error() -> None:
    async with serving(lambda _, __: None) as server:
        client = JsonPoster(f"http://127.0.0.1:{server.port}")
        with pytest.raises(HttpError):
            await client.post("m", b"{}")
        await client.aclose()
    async with serving(lambda _, __: [b"SMTP ready\r\n\r\n"]) as server:
        client = JsonPoster(f"http://127.0.0.1:{server.port}")
        with pytest.raises(HttpError):
            await client.post("m", b"{}")
        await client.aclose()


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_dropped() -> None:
    async with serving(lambda _, __: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"]) as server:
        client = JsonPoster(f"http://127.0.0.1:{server.port}", timeout=0.2)
        with pytest.raises(TimeoutError):
            await client.post("m", b"{}")
        await client.aclose()
    assert server.connections == 1


async def test_nothing_listening_is_an_os_error_without_the_url() -> None:
    client = JsonPoster("http://127.0.0.1:9/secret-token/")
    with pytest.raises(OSError) as raised:
        await client.post("bot123:SECRET/sendMessage", b"{}")
    assert "SECRET" not in str(raised.value)
    await client.aclose()


def test_only_http_urls() -> None:
    with pytest.raises(ValueError):
        JsonPoster("ftp://example.org")
