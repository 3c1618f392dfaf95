"""Consultations' per-community settings (community.settings): the closing-time choices of the composer and how
often votes ask for a fresh opinion map."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from community.errors import ValidationFailed
from community.settings import Setting, whole_number
from i18n import N_

MAX_CLOSING_DAYS = 365
MAX_CLOSING_CHOICES = 5  # buttons on one row of the composer


def parse_closing_days(text: str) -> tuple[int, ...]:
    parts = [part for part in text.replace("，", ",").split(",") if part.strip()]
    if not 1 <= len(parts) <= MAX_CLOSING_CHOICES:
        raise ValidationFailed(
            N_("Give 1 to %(count)s numbers of days, separated by commas, as in 3,7,14."), count=MAX_CLOSING_CHOICES
        )
    return tuple(sorted({whole_number(part, 1, MAX_CLOSING_DAYS) for part in parts}))


CLOSING_DAYS: Setting[tuple[int, ...]] = Setting(
    key="consultation.closing_days",
    description=N_("The choices of how many days a consultation stays open, in the chat's composer."),
    default=(3, 7, 14),
    reason=N_("Half a week, a week and two: long enough for residents who check their phone only now and then."),
    parse=parse_closing_days,
    show=lambda days: ",".join(str(day) for day in days),
)


def default_closing_days(choices: tuple[int, ...]) -> int:
    """The choice the composer starts on: the middle one (7 days of 3, 7 and 14, as before settings existed)."""
    return choices[len(choices) // 2]


MAP_REFRESH: Setting[timedelta] = Setting(
    key="consultation.map_refresh_minutes",
    description=N_("How often, at most, votes ask for a fresh opinion map to order the statements by (minutes)."),
    default=timedelta(minutes=5),
    reason=N_(
        "The map of a large consultation takes about a second, and the order moves slowly once a few dozen "
        "people have voted."
    ),
    parse=lambda text: timedelta(minutes=whole_number(text, 1, 24 * 60)),
    show=lambda interval: str(interval // timedelta(minutes=1)),
)

SETTINGS: tuple[Setting[Any], ...] = (CLOSING_DAYS, MAP_REFRESH)
