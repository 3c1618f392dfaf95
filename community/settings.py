"""Per-community settings: numbers and times a community may set for itself, each with a default and the reason
for it, read by the services that use them.

A setting is declared once, as a typed ``Setting`` next to what it governs (the kernel's here, a feature's in its
own package: consultation.settings), with its default, why that default, how an operator writes it and what
makes a value valid. A community that changed it has a row in ``community_setting`` (its canonical text); any
other reads the default. Services ask ``await value(uow, community_id, SETTING)`` and get the typed value; only
``change()`` writes, after validating, with an audit entry. The time zone is the one setting kept elsewhere: in
``community.timezone``, where it always was.

k (community.anonymity) stays the site's (LINLI_MIN_GROUP_SIZE, ``uow.anonymity``); a community may only raise it
for itself (``MIN_GROUP_SIZE``), never lower it: ``anonymity()`` is the k a community's processes use."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from community import audit
from community.anonymity import HIGHEST_MIN_GROUP_SIZE, Anonymity
from community.communities import get_community
from community.errors import ValidationFailed
from community.models import CommunitySetting
from community.unit_of_work import UnitOfWork
from i18n import N_

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT = "default"  # what an operator writes to give a setting back its default
MAX_VALUE = 200  # characters of a setting's text: every valid one is far shorter


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """One setting. ``parse`` turns an operator's text into a value or raises ValidationFailed with a message id
    (it is also how a stored value is read back); ``show`` gives the canonical text, stored and printed.
    ``check`` refuses a value that is well-formed but not allowed here (k below the site's)."""

    key: str  # what `linli community set-setting` takes, and the stored name
    description: str  # message id: what it governs
    default: T
    reason: str  # message id: why the default is what it is
    parse: Callable[[str], T]
    show: Callable[[T], str]
    check: Callable[[UnitOfWork, T], None] | None = None
    on_community: bool = False  # kept in the community's own row (the time zone), not in community_setting


@dataclass(frozen=True, slots=True)
class Shown:
    """A setting as `linli community show-settings` lists it."""

    key: str
    description: str  # message id
    value: str
    is_default: bool
    default: str
    reason: str  # message id


# --- parsers --------------------------------------------------------------------------------------------------


def parse_timezone(text: str) -> str:
    name = text.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(N_("Unknown time zone: %(timezone)s"), timezone=name) from exc
    return name


_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def parse_time_of_day(text: str) -> time:
    found = _CLOCK.fullmatch(text.strip())
    if found is None:
        raise ValidationFailed(N_("A time of day is HH:MM, from 00:00 to 23:59; got %(value)s."), value=text.strip())
    return time(int(found[1]), int(found[2]))


def show_time_of_day(value: time) -> str:
    return value.strftime("%H:%M")


def whole_number(text: str, low: int, high: int) -> int:
    raw = text.strip()
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationFailed(
            N_("It takes a whole number from %(min)s to %(max)s; got %(value)s."), min=low, max=high, value=raw
        )
    return int(raw)


# --- the kernel's settings ------------------------------------------------------------------------------------

DEFAULT_TIMEZONE = "Asia/Shanghai"

TIMEZONE: Setting[str] = Setting(
    key="timezone",
    description=N_("The community's time zone: its times of day, dates and deadlines."),
    default=DEFAULT_TIMEZONE,
    reason=N_("China keeps one time zone, Beijing time."),
    parse=parse_timezone,
    show=str,
    on_community=True,
)

DIGEST_TIME: Setting[time] = Setting(
    key="notice.digest_time",
    description=N_("When the daily digest of non-urgent notices goes out, in the community's time zone."),
    default=time(19, 0),
    reason=N_("Early evening: most people are home from work and read the day's news."),
    parse=parse_time_of_day,
    show=show_time_of_day,
)


def _parse_min_group_size(text: str) -> int | None:
    if text.strip().lower() in ("", "site"):
        return None
    return whole_number(text, 1, HIGHEST_MIN_GROUP_SIZE)


def _check_min_group_size(uow: UnitOfWork, value: int | None) -> None:
    site = uow.anonymity.min_group_size
    if value is not None and value < site:
        raise ValidationFailed(
            N_("A community can only raise k, never lower it below the site's %(k)s (LINLI_MIN_GROUP_SIZE)."), k=site
        )


MIN_GROUP_SIZE: Setting[int | None] = Setting(
    key="min_group_size",
    description=N_(
        "k: the smallest audience of a consultation, and the fewest voters whose figures are shown; "
        "at least the site's."
    ),
    default=None,
    reason=N_("The site's k (LINLI_MIN_GROUP_SIZE, 5 unless set), the smallest cell statistics offices publish."),
    parse=_parse_min_group_size,
    show=lambda value: "site" if value is None else str(value),
    check=_check_min_group_size,
)

SETTINGS: tuple[Setting[Any], ...] = (TIMEZONE, DIGEST_TIME, MIN_GROUP_SIZE)


# --- reading and changing --------------------------------------------------------------------------------------


async def value(uow: UnitOfWork, community_id: int, setting: Setting[T]) -> T:
    """The community's value of the setting: its own if it set one, else the default."""
    if setting.on_community:
        community = await get_community(uow, community_id)
        return setting.parse(str(getattr(community, setting.key)))
    row = await uow.session.get(CommunitySetting, (community_id, setting.key))
    return stored_value(setting, None if row is None else row.value)


def stored_value(setting: Setting[T], text: str | None) -> T:
    """A setting's value from its stored text (None: no row, the default), for a service that reads the row in
    a query of its own (a vote reads the map refresh interval in the query that checks the vote)."""
    if text is None:
        return setting.default
    try:
        return setting.parse(text)
    except ValidationFailed:
        # A value valid when stored that no longer is (a limit tightened since): the default, said in the log,
        # rather than a community whose digest or form stops working.
        log.warning("a stored %s is no longer valid; using the default", setting.key)
        return setting.default


async def anonymity(uow: UnitOfWork, community_id: int) -> Anonymity:
    """k for this community's processes: the site's, or the community's own where it raised it."""
    own = await value(uow, community_id, MIN_GROUP_SIZE)
    site = uow.anonymity.min_group_size
    return uow.anonymity if own is None or own <= site else Anonymity(own)


async def change(
    uow: UnitOfWork, community_id: int, setting: Setting[T], text: str, *, actor_id: int | None = None
) -> T:
    """Set the community's value from an operator's text ("default" gives the default back); the caller commits.
    Refuses, with ValidationFailed, a value the setting does not take. actor_id None: the operator at the
    terminal."""
    community = await get_community(uow, community_id)
    if len(text) > MAX_VALUE:
        raise ValidationFailed(N_("That value is too long."))
    reset = text.strip().lower() == DEFAULT
    new = setting.default if reset else setting.parse(text)
    if setting.check is not None:
        setting.check(uow, new)
    shown = setting.show(new)
    if setting.on_community:
        setattr(community, setting.key, shown)
        uow.session.add(community)
    else:
        row = await uow.session.get(CommunitySetting, (community_id, setting.key))
        if reset:
            if row is not None:
                await uow.session.delete(row)
        elif row is None:
            uow.session.add(
                CommunitySetting(community_id=community_id, key=setting.key, value=shown, updated_at=uow.clock.now())
            )
        else:
            row.value, row.updated_at = shown, uow.clock.now()
            uow.session.add(row)
    await uow.session.flush()
    await audit.record(
        uow,
        action="community.setting_changed",
        subject_type="community",
        subject_id=community_id,
        community_id=community_id,
        actor_id=actor_id,
        data={"setting": setting.key, "value": shown, "default": reset},
    )
    return new


async def shown(uow: UnitOfWork, community_id: int, catalogue: Sequence[Setting[Any]]) -> list[Shown]:
    """Every setting of the catalogue with the community's value, for `linli community show-settings`."""
    listed: list[Shown] = []
    for setting in catalogue:
        current = await value(uow, community_id, setting)
        default = setting.show(setting.default)
        listed.append(
            Shown(
                setting.key,
                setting.description,
                setting.show(current),
                current == setting.default,
                default,
                setting.reason,
            )
        )
    return listed


def find(catalogue: Sequence[Setting[Any]], key: str) -> Setting[Any]:
    for setting in catalogue:
        if setting.key == key.strip():
            return setting
    raise ValidationFailed(
        N_("There is no setting %(key)s. The settings: %(keys)s."),
        key=key.strip(),
        keys=", ".join(setting.key for setting in catalogue),
    )


def latest_time_of_day(now: datetime, at: time, timezone: str) -> datetime:
    """The most recent moment, at or before now, when the clock in timezone showed at (for a daily deadline such
    as the digest): today's if it has come, else yesterday's. Aware, in now's zone."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    for days_back in (0, 1, 2):  # 2: a day a DST change skips the time entirely
        day = local.date() - timedelta(days=days_back)
        candidate = datetime.combine(day, at, tzinfo=zone)
        if candidate <= local:
            return candidate.astimezone(now.tzinfo)
    raise AssertionError("unreachable: a time of day comes at least once in three days")
