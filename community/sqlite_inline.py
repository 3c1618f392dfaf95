"""An aiosqlite-shaped connection that runs each SQLite call in the calling thread, for SQLAlchemy's
aiosqlite dialect (passed as ``async_creator``).

Why: aiosqlite sends every call (execute, fetch, commit…) to a thread of its own and back. SQLite answers
most of them in microseconds, but each trip back waits its turn on a busy event loop, and a unit of work of
15 statements then holds the database for far longer than SQLite needs. Units of work on SQLite already take
turns inside a process (community.unit_of_work), so running the calls inline costs the loop microseconds.
The trade-off: while another *process* holds SQLite's write lock, a statement waits up to the busy timeout
in the loop's thread. The embedded database is for one Linli process; PostgreSQL is for more."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        if parameters is None:
            self._cursor.execute(operation)
        else:
            self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(operation, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _ImmediateQueue:
    """SQLAlchemy sets the isolation level through aiosqlite's private queue; here the call runs at once."""

    def __init__(self) -> None:
        pass

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except sqlite3.Error as error:
            future.set_exception(error)


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection  # SQLAlchemy checks it before commit/rollback
        self._tx = _ImmediateQueue()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_connector(database: Path | str, timeout: float = 10.0) -> Callable[[], Any]:
    """The ``async_creator`` for create_async_engine: opens the file in the calling thread."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may hand the connection to another loop's thread in tests.
        return InlineConnection(sqlite3.connect(str(database), timeout=timeout, check_same_thread=False))

    return connect
