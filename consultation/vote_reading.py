"""A consultation's votes read in bulk for the opinion map, through the database driver itself.

A city-wide consultation holds ten million votes. Read as SQLAlchemy rows they would take about a microsecond
each in Python (Row objects, then numpy reading them back), some ten seconds; here they arrive as arrays:

- PostgreSQL (asyncpg): ``COPY (SELECT ...) TO STDOUT (FORMAT binary)``, whose rows have a fixed width for three
  non-null integer columns, parsed a megabyte at a time with numpy (a structured big-endian dtype). The server
  writing the rows is then most of the time (about 2 s for ten million on two cores).
- SQLite: the driver's cursor with fetchmany, its tuples flattened straight into numpy: no Row objects.

Both run on the unit of work's own connection, inside its transaction. Loaded where the votes are read, never at
start-up: it imports numpy (tests/test_startup_imports.py)."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncConnection

from consultation.models import Statement, Vote

# SQLite: the votes of the statements of one consultation in the given statuses: participant, statement, value.
_VOTES = (
    f"SELECT v.participant_id, v.statement_id, v.value FROM {Vote.__tablename__} v"
    f" JOIN {Statement.__tablename__} s ON s.id = v.statement_id"
    " WHERE s.consultation_id = ? AND s.status IN ({statuses})"
)
# PostgreSQL: the votes of the statements listed, as one array. Not a join: the plan then does not hang on the
# statements' statistics (with none yet, the planner chose a loop over the statements, each scanning the votes'
# pages anew: 25 s instead of 2 for ten million votes); one array is one scan, or one bitmap of the index. The
# casts fix each field's width, so that every row is the 24 bytes of _ROW.
_PG_VOTES = (
    f"SELECT participant_id::int4, statement_id::int4, value::int2 FROM {Vote.__tablename__}"
    " WHERE statement_id = ANY($1::int4[])"
)
# PostgreSQL's binary COPY: a signature, flags and a header extension (its length, then its bytes), then per row
# the number of fields (int16) and each field as its length (int32) and bytes, then a trailer of -1 (int16).
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = len(_SIGNATURE) + 8
_TRAILER = b"\xff\xff"
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("participant_length", ">i4"),
        ("participant", ">i4"),
        ("statement_length", ">i4"),
        ("statement", ">i4"),
        ("value_length", ">i4"),
        ("value", ">i2"),
    ]
)
# Bytes gathered before numpy parses them: large enough that the per-call cost is nothing, small enough that the
# raw bytes never weigh in memory beside the arrays.
_PARSE_BYTES = 1 << 20
FETCH_BATCH = 50_000  # rows per fetchmany on SQLite


@dataclass(frozen=True, slots=True)
class StoredVotes:
    """The votes as stored, one entry per vote, in no particular order: ids, not matrix positions (int32 from
    PostgreSQL's int4 columns, int64 from SQLite)."""

    participant_ids: NDArray[np.integer]
    statement_ids: NDArray[np.integer]
    values: NDArray[np.int8]


async def read_votes(
    connection: AsyncConnection, consultation_id: int, statuses: Sequence[str], statement_ids: Sequence[int]
) -> StoredVotes:
    """Every vote on the consultation's statements whose status is among ``statuses``, which are
    ``statement_ids`` (read just before in the same transaction), on ``connection`` (the unit of work's)."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if connection.dialect.name == "postgresql":
        return await _copy_votes(driver, statement_ids)
    return await _fetch_votes(driver, consultation_id, statuses)


async def _copy_votes(driver: Any, statement_ids: Sequence[int]) -> StoredVotes:
    """asyncpg's copy_from_query, its bytes parsed as they arrive (asyncpg sends the argument as a literal)."""
    parser = _BinaryRows()
    await driver.copy_from_query(_PG_VOTES, list(statement_ids), output=parser.write, format="binary")
    return parser.finish()


class _BinaryRows:
    """PostgreSQL's binary COPY of (int4, int4, int2) rows, parsed with numpy a megabyte at a time."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._header_read = False
        self._parts: list[tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int8]]] = []

    async def write(self, chunk: bytes) -> None:
        self._pending += chunk
        if len(self._pending) >= _PARSE_BYTES:
            self._parse()

    def finish(self) -> StoredVotes:
        self._parse()
        if not self._header_read or bytes(self._pending) != _TRAILER:
            raise ValueError("unexpected end of PostgreSQL's binary COPY")
        if not self._parts:
            empty = np.empty(0, dtype=np.int64)
            return StoredVotes(empty, empty, np.empty(0, dtype=np.int8))
        participants, statements, values = (np.concatenate(part) for part in zip(*self._parts, strict=True))
        self._parts.clear()
        return StoredVotes(participants, statements, values)

    def _parse(self) -> None:
        offset = 0
        if not self._header_read:
            if len(self._pending) < _HEADER or not self._pending.startswith(_SIGNATURE):
                return
            extension = int.from_bytes(self._pending[_HEADER - 4 : _HEADER], "big")
            if len(self._pending) < _HEADER + extension:
                return
            offset = _HEADER + extension
            self._header_read = True
        whole = (len(self._pending) - offset) // _ROW.itemsize
        if whole:
            rows = np.frombuffer(self._pending, dtype=_ROW, count=whole, offset=offset)
            # Every row three fields of 4, 4 and 2 bytes: anything else (a NULL, another type) would misread.
            if not (
                bool((rows["fields"] == 3).all())
                and bool((rows["participant_length"] == 4).all())
                and bool((rows["statement_length"] == 4).all())
                and bool((rows["value_length"] == 2).all())
            ):
                raise ValueError("unexpected row in PostgreSQL's binary COPY of the votes")
            self._parts.append(
                (
                    rows["participant"].astype(np.int32),
                    rows["statement"].astype(np.int32),
                    rows["value"].astype(np.int8),
                )
            )
            del rows  # the view must go before the buffer it looks into can shrink
        del self._pending[: offset + whole * _ROW.itemsize]


async def _fetch_votes(driver: Any, consultation_id: int, statuses: Sequence[str]) -> StoredVotes:
    """The driver's cursor (Linli's inline SQLite connection, or aiosqlite's), fetchmany after fetchmany."""
    query = _VOTES.format(statuses=", ".join("?" for _ in statuses))
    cursor = driver.cursor()
    if inspect.isawaitable(cursor):  # aiosqlite's cursor() is a coroutine, the inline connection's is not
        cursor = await cursor
    parts: list[NDArray[np.int64]] = []
    try:
        await cursor.execute(query, (consultation_id, *statuses))
        while rows := await cursor.fetchmany(FETCH_BATCH):
            parts.append(np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=3 * len(rows)))
    finally:
        await cursor.close()
    cells = np.concatenate(parts).reshape(-1, 3) if parts else np.empty((0, 3), dtype=np.int64)
    return StoredVotes(
        np.ascontiguousarray(cells[:, 0]), np.ascontiguousarray(cells[:, 1]), cells[:, 2].astype(np.int8)
    )
