"""CSV files streamed row by row from iterators (sync or async): a few thousand rows in memory at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import IO

from bot.exports.rows import Rows, batches


async def write_csv(
    stream: IO[bytes],
    header: Sequence[str],
    rows: Rows,
    *,
    bom: bool = False,
    lineterminator: str = "\r\n",
) -> int:
    """Write a header and the rows as UTF-8 CSV to ``stream``; returns the number of rows.

    bom: start with a byte-order mark, so that Excel opens Chinese text as UTF-8 (machine formats go without).
    None is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    if bom:
        stream.write("\ufeff".encode())
    writer.writerow(header)
    count = 0
    async for batch in batches(rows):
        writer.writerows(batch)
        count += len(batch)
        stream.write(buffer.getvalue().encode("utf-8"))
        buffer.seek(0)
        buffer.truncate()
    stream.write(buffer.getvalue().encode("utf-8"))  # the header, when there is no row
    return count
