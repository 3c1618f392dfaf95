"""Per-community settings (community.settings): defaults, changing them with validation and an audit entry, and
what each changes: the digest goes out at each community's own time in its own zone, k can only be raised, the
map refresh interval and the composer's closing-day choices. On both databases (the engine fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from typer.testing import CliRunner, Result

from bot.cli import create_cli
from bot.notices.jobs import DIGEST_JOB, DIGEST_KEY, register_notice_jobs
from bot.rendering import Localizers
from bot.scheduling import JobRegistry
from community import settings
from community.clock import FakeClock
from community.communities import add_member
from community.errors import NotFound, ValidationFailed
from community.models import AuditEntry, ChannelAccount, Community
from community.notice_models import DeliveryStatus, NoticeCategory, OutboxMessage
from community.notices import (
    NotificationSettings,
    notification_settings,
    set_daily_digest,
    set_muted,
)
from community.scope import Scope
from community.unit_of_work import UnitOfWorkFactory
from consultation import consultations
from consultation.consultations import MAP_MIN_VOTES, VoteValue, record_vote
from consultation.errors import AudienceTooSmall
from consultation.models import Eligibility
from consultation.settings import CLOSING_DAYS, MAP_REFRESH, default_closing_days
from tests.support.fake_scheduler import FakeScheduler
from tests.test_consultations import B3, _open, _statements
from tests.test_consultations import _cast as _consultation_cast
from tests.test_notices import Cast, _cast, _draft, _fan_out, _publish, _someone


async def _set(uows: UnitOfWorkFactory, community_id: int, setting: settings.Setting[Any], text: str) -> object:
    async with uows() as uow:
        new = await settings.change(uow, community_id, setting, text)
        await uow.commit()
    return new


async def _value(uows: UnitOfWorkFactory, community_id: int, setting: settings.Setting[Any]) -> object:
    async with uows() as uow:
        return await settings.value(uow, community_id, setting)


# --- the service -------------------------------------------------------------------------------------------------


async def test_a_community_reads_the_defaults_until_it_sets_its_own(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    assert await _value(uows, cast.wutong, settings.DIGEST_TIME) == time(19, 0)
    assert await _value(uows, cast.wutong, settings.TIMEZONE) == "Asia/Shanghai"
    assert await _value(uows, cast.wutong, CLOSING_DAYS) == (3, 7, 14)
    assert await _value(uows, cast.wutong, MAP_REFRESH) == timedelta(minutes=5)

    assert await _set(uows, cast.wutong, settings.DIGEST_TIME, " 8:05 ") == time(8, 5)
    assert await _set(uows, cast.wutong, CLOSING_DAYS, "14，5,5") == (5, 14)  # a Chinese comma, a repeat
    assert await _set(uows, cast.wutong, settings.TIMEZONE, "Asia/Urumqi") == "Asia/Urumqi"
    assert await _value(uows, cast.wutong, settings.DIGEST_TIME) == time(8, 5)
    assert await _value(uows, cast.wutong, CLOSING_DAYS) == (5, 14)
    async with uows() as uow:
        community = await uow.session.get(Community, cast.wutong)
        assert community is not None and community.timezone == "Asia/Urumqi"  # where the zone always was
        listed = {item.key: item for item in await settings.shown(uow, cast.wutong, settings.SETTINGS)}
    assert listed["notice.digest_time"].value == "08:05" and not listed["notice.digest_time"].is_default
    assert listed["min_group_size"].value == "site" and listed["min_group_size"].is_default
    # The other community keeps the defaults; "default" gives one back.
    assert await _value(uows, cast.yinxing, settings.DIGEST_TIME) == time(19, 0)
    assert await _set(uows, cast.wutong, settings.DIGEST_TIME, "DEFAULT") == time(19, 0)
    assert await _value(uows, cast.wutong, settings.DIGEST_TIME) == time(19, 0)

    async with uows() as uow:
        changes = (
            await uow.session.exec(
                select(AuditEntry.data)
                .where(AuditEntry.action == "community.setting_changed")
                .order_by(col(AuditEntry.id))
            )
        ).all()
    assert len(changes) == 4
    assert '"setting":"notice.digest_time"' in changes[0] and '"value":"08:05"' in changes[0]
    assert '"default":true' in changes[-1]


@pytest.mark.parametrize(
    ("setting", "text", "message"),
    [
        (settings.DIGEST_TIME, "25:00", "A time of day is HH:MM, from 00:00 to 23:59; got %(value)s."),
        (settings.DIGEST_TIME, "七点", "A time of day is HH:MM, from 00:00 to 23:59; got %(value)s."),
        (settings.TIMEZONE, "Mars/Olympus", "Unknown time zone: %(timezone)s"),
        (CLOSING_DAYS, "0,7", "It takes a whole number from %(min)s to %(max)s; got %(value)s."),
        (CLOSING_DAYS, "1,2,3,4,5,6", "Give 1 to %(count)s numbers of days, separated by commas, as in 3,7,14."),
        (MAP_REFRESH, "٣", "It takes a whole number from %(min)s to %(max)s; got %(value)s."),  # not ASCII digits
        (
            settings.MIN_GROUP_SIZE,
            "3",
            "A community can only raise k, never lower it below the site's %(k)s (LINLI_MIN_GROUP_SIZE).",
        ),
    ],
)
async def test_a_value_the_setting_does_not_take_is_refused_and_nothing_changes(
    uows: UnitOfWorkFactory, setting: settings.Setting[Any], text: str, message: str
) -> None:
    cast = await _cast(uows)
    with pytest.raises(ValidationFailed) as refused:
        await _set(uows, cast.wutong, setting, text)
    assert refused.value.message == message
    assert await _value(uows, cast.wutong, setting) == setting.default


async def test_an_unknown_setting_or_community_is_refused(uows: UnitOfWorkFactory) -> None:
    with pytest.raises(ValidationFailed) as refused:
        settings.find(settings.SETTINGS, "digest")
    assert refused.value.params["keys"] == "timezone, notice.digest_time, min_group_size"
    with pytest.raises(NotFound):
        await _set(uows, 999, settings.DIGEST_TIME, "08:00")


async def test_a_community_may_raise_k_for_itself_but_never_lower_it(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        # Enough residents in 梧桐社区 at the site's k of 5.
        residents = await consultations.check_audience(uow, cast.wutong, Scope(), Eligibility.RESIDENTS)
        assert residents >= 5 and (await settings.anonymity(uow, cast.wutong)).min_group_size == 5
    await _set(uows, cast.wutong, settings.MIN_GROUP_SIZE, str(residents + 1))
    async with uows() as uow:
        assert (await settings.anonymity(uow, cast.wutong)).min_group_size == residents + 1
        assert (await settings.anonymity(uow, cast.yinxing)).min_group_size == 5  # only that community's
        with pytest.raises(AudienceTooSmall) as refused:
            await consultations.check_audience(uow, cast.wutong, Scope(), Eligibility.RESIDENTS)
    assert refused.value.params == {"audience": residents, "k": residents + 1}


async def test_a_raised_k_withholds_a_consultations_figures_until_that_many_voted(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _consultation_cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        statement = (await _statements(uow, consultation_id))[0].id or 0
        community_id = (await consultations.get_consultation(uow, consultation_id)).community_id
        neighbour = (
            await uow.session.exec(select(ChannelAccount.person_id).where(ChannelAccount.external_id == f"{B3}-0"))
        ).one()
    for person in (cast.wang, cast.liu, cast.chen, cast.committee, neighbour or 0):
        async with uows() as uow:
            await record_vote(uow, person, statement, VoteValue.AGREE)
            await uow.commit()
    async with uows() as uow:
        shown = await consultations.figures(uow, consultation_id)
    assert (shown.voters, shown.agree, shown.min_group_size) == (5, 5, 5)
    await _set(uows, community_id, settings.MIN_GROUP_SIZE, "6")
    async with uows() as uow:
        withheld = await consultations.figures(uow, consultation_id)
    assert (withheld.voters, withheld.agree, withheld.min_group_size) == (5, None, 6)


async def test_the_map_refresh_interval_is_the_communitys(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _consultation_cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        statements = [s.id or 0 for s in await _statements(uow, consultation_id)]
        community_id = (await consultations.get_consultation(uow, consultation_id)).community_id
    await _set(uows, community_id, MAP_REFRESH, "1")

    async def due(person: int, statement_id: int, value: VoteValue = VoteValue.AGREE) -> bool:
        async with uows() as uow:
            recorded = await record_vote(uow, person, statement_id, value)
            await uow.commit()
        return recorded.map_due

    votes = [(cast.wang, statements[0]), (cast.liu, statements[0]), (cast.chen, statements[0])]
    votes += [(cast.committee, statements[0]), (cast.wang, statements[1])]
    assert [await due(person, statement) for person, statement in votes[:MAP_MIN_VOTES]][-1]
    clock.advance(timedelta(seconds=61))  # past this community's minute, well before the default five
    assert await due(cast.liu, statements[1])
    assert not await due(cast.chen, statements[1])


def test_the_composer_starts_on_the_middle_closing_choice() -> None:
    assert default_closing_days(CLOSING_DAYS.default) == 7  # as before settings existed
    assert default_closing_days((5, 10)) == 10
    assert default_closing_days((30,)) == 30


def test_the_latest_digest_time_is_todays_once_it_came_else_yesterdays() -> None:
    shanghai_19 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert settings.latest_time_of_day(shanghai_19, time(19, 0), "Asia/Shanghai") == shanghai_19
    earlier = datetime(2026, 3, 1, 10, 59, tzinfo=UTC)
    assert settings.latest_time_of_day(earlier, time(19, 0), "Asia/Shanghai") == shanghai_19 - timedelta(days=1)
    # Berlin on the day its clocks go forward: 08:30 is 06:30 UTC.
    berlin = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert settings.latest_time_of_day(berlin, time(8, 30), "Europe/Berlin") == datetime(2026, 3, 29, 6, 30, tzinfo=UTC)


# --- the digest at each community's time ---------------------------------------------------------------------------


async def _statuses(uows: UnitOfWorkFactory, notice_id: int) -> list[DeliveryStatus]:
    async with uows() as uow:
        rows = (
            await uow.session.exec(
                select(OutboxMessage.status).where(OutboxMessage.notice_id == notice_id).order_by(col(OutboxMessage.id))
            )
        ).all()
    return [DeliveryStatus(status) for status in rows]


async def _held_notice(uows: UnitOfWorkFactory, cast: Cast, community_id: int, key: str, body: str) -> int:
    notice = await _publish(uows, key, _draft(cast, community_id=community_id, audience=Scope(), body=body))
    await _fan_out(uows, notice.id or 0)
    return notice.id or 0


async def test_each_communitys_digest_goes_out_at_its_own_time_in_its_own_zone(
    uows: UnitOfWorkFactory, clock: FakeClock, localizers: Localizers
) -> None:
    cast = await _cast(uows)
    clock.set(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai, 02:00 in Berlin
    await _set(uows, cast.yinxing, settings.TIMEZONE, "Europe/Berlin")
    await _set(uows, cast.yinxing, settings.DIGEST_TIME, "08:30")  # 07:30 UTC
    async with uows() as uow:
        for person in (cast.wang, cast.neighbour):
            await set_daily_digest(uow, person, True)
        await uow.commit()
    wutong = await _held_notice(uows, cast, cast.wutong, "worker", "明天上午九点停水。")
    yinxing = await _held_notice(uows, cast, cast.yinxing, "street", "银杏社区周六义诊。")
    assert DeliveryStatus.HELD in await _statuses(uows, wutong)
    assert await _statuses(uows, yinxing) == [DeliveryStatus.HELD]  # 吴邻, the one resident there
    async with uows() as uow:
        # What /notifications tells each of them: their own community's time.
        assert (await notification_settings(uow, cast.neighbour)).digest_times == (time(8, 30),)
        assert (await notification_settings(uow, cast.wang)).digest_times == (time(19, 0),)

    registry = JobRegistry()
    register_notice_jobs(registry, uows, localizers)
    scheduler = FakeScheduler(clock, registry)
    await scheduler.start()
    assert scheduler.jobs[DIGEST_KEY].job == DIGEST_JOB

    clock.set(datetime(2026, 3, 2, 7, 29, tzinfo=UTC))
    await scheduler.run_due()
    assert await _statuses(uows, yinxing) == [DeliveryStatus.HELD]
    clock.set(datetime(2026, 3, 2, 7, 30, 30, tzinfo=UTC))  # 08:30 in Berlin
    await scheduler.run_due()
    assert await _statuses(uows, yinxing) == [DeliveryStatus.DIGESTED]
    assert DeliveryStatus.HELD in await _statuses(uows, wutong)  # 15:30 in Shanghai: not yet

    clock.set(datetime(2026, 3, 2, 11, 0, 30, tzinfo=UTC))  # 19:00 in Shanghai
    await scheduler.run_due()
    assert DeliveryStatus.HELD not in await _statuses(uows, wutong)
    assert DeliveryStatus.DIGESTED in await _statuses(uows, wutong)

    # Held after today's digest time: it waits for tomorrow's, however often the tick runs.
    clock.set(datetime(2026, 3, 2, 11, 5, tzinfo=UTC))
    late = await _held_notice(uows, cast, cast.wutong, "worker", "晚上的通知。")
    for minutes in (1, 60, 600):
        clock.set(datetime(2026, 3, 2, 11, 5, tzinfo=UTC) + timedelta(minutes=minutes))
        await scheduler.run_due()
        assert DeliveryStatus.DIGESTED not in await _statuses(uows, late)
    # Linli was down for two days: the first tick after the start sends it, once.
    clock.set(datetime(2026, 3, 4, 12, 0, tzinfo=UTC))
    await scheduler.run_due()
    assert DeliveryStatus.HELD not in await _statuses(uows, late)
    async with uows() as uow:
        digests = (
            await uow.session.exec(
                select(OutboxMessage.chat_id).where(
                    col(OutboxMessage.notice_id).is_(None), col(OutboxMessage.text).contains("晚上的通知。")
                )
            )
        ).all()
    assert sorted(digests) == ["wang", "wang-console"]


# --- the command line ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("localizers", "restore_logging")
async def test_notification_settings_come_in_one_statement(uows: UnitOfWorkFactory, engine: AsyncEngine) -> None:
    """/notifications reads a person's mutes, digest choice and digest times together: one statement, the same
    answers as each read on its own gave."""
    cast = await _cast(uows)
    await _set(uows, cast.yinxing, settings.DIGEST_TIME, "08:30")
    async with uows() as uow:
        # 王 in both neighbourhoods: 梧桐 keeps the default time, 银杏 has its own.
        await add_member(uow, person_id=cast.wang, community_id=cast.yinxing, roles=set(), reason="test")
        await set_muted(uow, cast.wang, NoticeCategory.EVENTS, True)
        await set_muted(uow, cast.wang, NoticeCategory.SERVICES, True)
        await set_daily_digest(uow, cast.wang, True)
        await set_daily_digest(uow, cast.liu, False)
        outsider = (await _someone(uow, "outsider", "路人")).person_id  # in no community
        await uow.commit()

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with uows() as uow:
            wang = await notification_settings(uow, cast.wang)
            liu = await notification_settings(uow, cast.liu)
            stranger = await notification_settings(uow, outsider)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 3
    assert wang == NotificationSettings(
        muted=frozenset({NoticeCategory.EVENTS, NoticeCategory.SERVICES}),
        daily_digest=True,
        digest_times=(time(8, 30), time(19, 0)),
    )
    assert liu == NotificationSettings(muted=frozenset(), daily_digest=False, digest_times=(time(19, 0),))
    assert stranger == NotificationSettings(muted=frozenset(), daily_digest=False, digest_times=(time(19, 0),))


def test_an_operator_lists_and_changes_a_communitys_settings(tmp_path: Path) -> None:
    env = {"LINLI_DATA_DIR": str(tmp_path / "data"), "LINLI_LANGUAGE": "en"}

    def linli(*args: str, language: str = "en") -> Result:
        return CliRunner().invoke(create_cli({**env, "LINLI_LANGUAGE": language}), list(args))

    assert linli("db", "upgrade").exit_code == 0
    assert linli("community", "add", "梧桐社区", "--kind", "neighbourhood").exit_code == 0

    changed = linli("community", "set-setting", "1", "notice.digest_time", "20:30")
    assert changed.exit_code == 0, changed.output
    assert changed.stdout == "梧桐社区: notice.digest_time is now 20:30.\n"
    listed = linli("community", "show-settings", "1")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0] == "Settings of 梧桐社区 (id 1):"
    assert "  notice.digest_time = 20:30  (set for this community)" in lines
    assert "  consultation.closing_days = 3,7,14  (default)" in lines
    assert "      Default 19:00: Early evening: most people are home from work and read the day's news." in lines

    # Refusals are one translated line and exit code 1; nothing changes.
    wrong = linli("community", "set-setting", "1", "notice.digest_time", "25:00", language="zh_Hans")
    assert wrong.exit_code == 1
    assert wrong.stderr == "linli: 时间格式为 HH:MM，从 00:00 到 23:59；收到的是 25:00。\n"
    lower = linli("community", "set-setting", "1", "min_group_size", "2")
    assert lower.exit_code == 1
    assert lower.stderr == (
        "linli: A community can only raise k, never lower it below the site's 5 (LINLI_MIN_GROUP_SIZE).\n"
    )
    unknown = linli("community", "set-setting", "1", "digest", "20:00")
    assert unknown.exit_code == 1 and "There is no setting digest. The settings: timezone, " in unknown.stderr
    nowhere = linli("community", "set-setting", "7", "notice.digest_time", "20:00")
    assert nowhere.exit_code == 1 and nowhere.stderr == "linli: There is no community with id 7.\n"
    assert "  notice.digest_time = 20:30  (set for this community)" in linli("community", "show-settings", "1").stdout
