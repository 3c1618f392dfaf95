"""XLSX workbooks written row by row, in constant memory, from iterators (sync or async).

xlsxwriter in ``constant_memory`` mode rather than openpyxl's write-only mode: both stream rows, but xlsxwriter
flushes each row to a temporary file as soon as the next one starts and writes strings inline instead of keeping a
shared-strings table, so its memory stays flat however many rows come (openpyxl's write-only workbook still holds
every distinct string); it is also several times faster, needs no lxml, and its rows-in-order rule is exactly how
rows come out of a database stream. openpyxl stays a test dependency, to read workbooks back.

A sheet longer than Excel's limit (1,048,576 rows) goes on in continuation sheets, "Name (2)" and so on, each with
the header again."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import IO

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from bot.exports.rows import Cell, Rows, batches

EXCEL_MAX_ROWS = 1_048_576
MAX_SHEET_NAME = 31
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


class Kind(StrEnum):
    TEXT = "text"  # wrapped text
    CODE = "code"  # an identifier: text, not wrapped
    INTEGER = "integer"
    DECIMAL = "decimal"  # two decimals
    PERCENT = "percent"  # a fraction shown as a percentage
    DATETIME = "datetime"  # naive, already in the reader's time zone (Formats.local)
    DATE = "date"


@dataclass(frozen=True, slots=True)
class Column:
    header: str  # already translated for the reader
    kind: Kind = Kind.TEXT
    width: float | None = None  # in characters; a default by kind otherwise


@dataclass(frozen=True, slots=True)
class Sheet:
    name: str  # already translated; cut to Excel's 31 characters
    columns: Sequence[Column]
    rows: Rows
    # Lines above the header (a title, a note), each in one merged cell across the columns.
    preface: Sequence[str] = field(default_factory=tuple)


_DEFAULT_WIDTH = {
    Kind.TEXT: 60.0,
    Kind.CODE: 18.0,
    Kind.INTEGER: 11.0,
    Kind.DECIMAL: 11.0,
    Kind.PERCENT: 10.0,
    Kind.DATETIME: 18.0,
    Kind.DATE: 12.0,
}
_NUMBER_FORMATS = {
    Kind.INTEGER: "#,##0",
    Kind.DECIMAL: "#,##0.00",
    Kind.PERCENT: "0%",
    Kind.DATETIME: "yyyy-mm-dd hh:mm:ss",
    Kind.DATE: "yyyy-mm-dd",
}


def sheet_name(name: str, used: set[str]) -> str:
    """A valid, unique sheet name: no []:*?/\\, at most 31 characters."""
    base = _BAD_SHEET_CHARS.sub(" ", name).strip()[:MAX_SHEET_NAME] or "Sheet"
    candidate, n = base, 2
    while candidate.casefold() in used:
        suffix = f" ({n})"
        candidate, n = base[: MAX_SHEET_NAME - len(suffix)] + suffix, n + 1
    used.add(candidate.casefold())
    return candidate


_EXCEL_EPOCH = datetime.combine(date(1899, 12, 30), time())
CellWriter = Callable[[int, int, Cell], None]


def excel_serial(value: datetime | date) -> float:
    """A date or naive datetime as Excel's serial number (days since 1899-12-30), what a date cell holds."""
    moment = value if isinstance(value, datetime) else datetime.combine(value, time())
    return (moment.replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86_400


class _Writer:
    def __init__(self, workbook: Workbook) -> None:
        self.workbook = workbook
        self.used: set[str] = set()
        self.header = workbook.add_format({"bold": True, "bg_color": "#E8EEF4", "border": 1, "text_wrap": True})
        self.preface = workbook.add_format({"bold": True, "font_size": 12})
        self.formats: dict[Kind, Format] = {
            kind: workbook.add_format({"num_format": f}) for kind, f in _NUMBER_FORMATS.items()
        }
        self.formats[Kind.TEXT] = workbook.add_format({"text_wrap": True, "valign": "top"})
        self.formats[Kind.CODE] = workbook.add_format({"valign": "top"})

    def start(self, sheet: Sheet, name: str) -> tuple[Worksheet, int]:
        worksheet = self.workbook.add_worksheet(sheet_name(name, self.used))
        for index, column in enumerate(sheet.columns):
            worksheet.set_column(index, index, column.width or _DEFAULT_WIDTH[column.kind])
        row = 0
        for line in sheet.preface:
            if len(sheet.columns) > 1:
                worksheet.merge_range(row, 0, row, len(sheet.columns) - 1, line, self.preface)
            else:
                worksheet.write_string(row, 0, line, self.preface)
            row += 1
        for index, column in enumerate(sheet.columns):
            worksheet.write_string(row, index, column.header, self.header)
        worksheet.freeze_panes(row + 1, 0)
        return worksheet, row + 1

    def writers(self, worksheet: Worksheet, columns: Sequence[Column]) -> list[CellWriter]:
        """One writer per column, chosen once per sheet rather than once per cell."""

        def number(cell_format: Format) -> CellWriter:
            def write(row: int, index: int, value: Cell) -> None:
                if isinstance(value, datetime | date):
                    value = excel_serial(value)
                if isinstance(value, int | float):
                    worksheet.write_number(row, index, value, cell_format)
                elif value is not None:
                    worksheet.write_string(row, index, str(value), cell_format)

            return write

        def text(cell_format: Format) -> CellWriter:
            def write(row: int, index: int, value: Cell) -> None:
                if isinstance(value, str):
                    worksheet.write_string(row, index, value, cell_format)
                elif isinstance(value, datetime | date):
                    worksheet.write_number(row, index, excel_serial(value), self.formats[Kind.DATETIME])
                elif value is not None:
                    worksheet.write_number(
                        row, index, value, self.formats[Kind.INTEGER if isinstance(value, int) else Kind.DECIMAL]
                    )

            return write

        return [
            text(self.formats[c.kind]) if c.kind in (Kind.TEXT, Kind.CODE) else number(self.formats[c.kind])
            for c in columns
        ]

    async def sheet(self, sheet: Sheet) -> None:
        worksheet, row = self.start(sheet, sheet.name)
        writers = self.writers(worksheet, sheet.columns)
        part = 1
        async for batch in batches(sheet.rows):
            for values in batch:
                if row >= EXCEL_MAX_ROWS:
                    part += 1
                    worksheet, row = self.start(sheet, f"{sheet.name[: MAX_SHEET_NAME - 5]} ({part})")
                    writers = self.writers(worksheet, sheet.columns)
                for index, value in enumerate(values):
                    if value is not None:
                        writers[index](row, index, value)
                row += 1


async def write_xlsx(stream: IO[bytes], sheets: Iterable[Sheet]) -> None:
    """Write the sheets, in order, as one workbook to ``stream`` (any writable binary file, seekable or not)."""
    workbook = Workbook(stream, {"constant_memory": True, "remove_timezone": True, "strings_to_numbers": False})
    try:
        writer = _Writer(workbook)
        for sheet in sheets:
            await writer.sheet(sheet)
    except BaseException:
        # The file is unusable anyway; close it so its temporary files go, and report the first error.
        with contextlib.suppress(Exception):
            workbook.close()
        raise
    workbook.close()
