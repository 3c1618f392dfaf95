"""Numbers, percentages, dates and times for one reader, with Babel, in the reader's locale and a time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from bot.rendering import Localizer

NO_VALUE = "–"


class Formats:
    """What a report needs beyond Localizer.text(): every figure formatted the reader's way."""

    def __init__(self, l: Localizer) -> None:  # noqa: E741 - the codebase's name for a localizer
        self.l = l
        self.locale = l.t.locale
        self.zone = ZoneInfo(l.timezone)

    def number(self, value: int | float) -> str:
        return self.l.t.format_number(value)

    def decimal(self, value: float, digits: int = 2) -> str:
        return str(format_decimal(value, format="#,##0." + "0" * digits, locale=self.locale))

    def percent(self, value: float) -> str:
        return str(format_percent(value, format="#,##0%", locale=self.locale))

    def share(self, part: int, whole: int) -> str:
        """part of whole as a percentage, or a dash when there is no whole."""
        return self.percent(part / whole) if whole else NO_VALUE

    def date(self, day: dt.date, fmt: str = "medium") -> str:
        return str(format_date(day, format=fmt, locale=self.locale))

    def datetime(self, moment: dt.datetime | None, fmt: str = "medium") -> str:
        return self.l.datetime(moment, fmt) if moment is not None else NO_VALUE

    def local(self, moment: dt.datetime) -> dt.datetime:
        """The moment in the time zone, without it (what a spreadsheet cell holds)."""
        return moment.astimezone(self.zone).replace(tzinfo=None)
