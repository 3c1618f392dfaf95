"""Rows for the writers: plain iterables, async iterables, or batches of rows (a database stream's partitions).

A writer takes them all through batches(): millions of rows then cost one await per batch, not one per row."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

Cell = str | int | float | datetime | date | None
Row = Sequence[Cell]
BATCH = 1_000  # rows per batch made of a plain iterable


@dataclass(frozen=True, slots=True)
class Batches:
    """Rows that come batch by batch, e.g. consultation.outcome.vote_batches turned into rows."""

    batches: AsyncIterable[Sequence[Row]]


Rows = Iterable[Row] | AsyncIterable[Row] | Batches


async def batches(rows: Rows) -> AsyncIterator[Sequence[Row]]:
    if isinstance(rows, Batches):
        async for batch in rows.batches:
            yield batch
    elif isinstance(rows, AsyncIterable):
        chunk: list[Row] = []
        async for row in rows:
            chunk.append(row)
            if len(chunk) >= BATCH:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    else:
        iterator = iter(rows)
        while chunk := list(itertools.islice(iterator, BATCH)):
            yield chunk
