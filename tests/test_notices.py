"""Notices: who receives one, what they may choose, and how it went; on both databases.

The cast lives in 梧桐社区 (buildings 3号楼, 7号楼, 12号楼; residents' groups 一组 and 二组) under 示范街道; the
neighbouring 银杏社区 has a 3号楼 of its own, whose residents must never get 梧桐's notices."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import SQLModel, col, select

from bot.rendering import Localizers
from community import audit, outbox
from community.clock import FakeClock
from community.communities import add_community, add_member, household
from community.errors import (
    EmptyNotice,
    LinliError,
    NoRecipients,
    NoticeAlreadySent,
    NoticeNotAllowed,
    NoticeNotFound,
    NoticeTooLong,
    SendTimePassed,
    SensitiveAudienceNotAllowed,
    UnknownBuilding,
    UnknownResidentGroup,
    ValidationFailed,
)
from community.models import AuditEntry, ChannelAccount, Person
from community.notice_messages import publish_or_schedule
from community.notice_models import (
    AttachmentKind,
    DeliveryStatus,
    Notice,
    NoticeAck,
    NoticeCategory,
    NoticeMute,
    NoticePreference,
    NoticeStatus,
    NoticeTranslation,
    OutboxMessage,
)
from community.notices import (
    MAX_BODY,
    MAX_CAPTION,
    Attachment,
    NoticeDraft,
    acknowledge,
    audience_options,
    begin_sending,
    cancel,
    count_recipients,
    digest_batches,
    figures,
    finish_if_settled,
    get_notice,
    language_versions,
    mark_digested,
    mark_fanned_out,
    notification_settings,
    publish,
    recent,
    recipients,
    segment_roles_for,
    set_daily_digest,
    set_muted,
    set_progress_message,
    set_progress_target,
)
from community.people import Identity, identify, set_language
from community.privacy import forget, personal_data
from community.roles import CommunityKind, Role
from community.scope import Scope
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory

B3, B7, B12 = "3号楼", "7号楼", "12号楼"
G1, G2 = "一组", "二组"


@dataclass(frozen=True)
class Cast:
    wutong: int
    yinxing: int
    worker: int
    committee: int
    street: int
    wang: int  # 3号楼, 一组, household representative; Telegram and console
    liu: int  # 3号楼, 一组, volunteer
    sun: int  # 3号楼, 二组, party member
    chen: int  # 7号楼, 一组, reads English
    zhang: int  # 12号楼, 二组, volunteer
    nobody: int  # a member without a household
    neighbour: int  # 银杏社区's 3号楼


async def _someone(
    uow: UnitOfWork, key: str, name: str, *, language_code: str | None = "zh-hans", channel: str = "telegram"
) -> Identity:
    return await identify(
        uow, channel=channel, external_id=key, chat_id=key, display_name=name, language_code=language_code
    )


async def _join(
    uow: UnitOfWork,
    person_id: int,
    community_id: int,
    roles: set[Role],
    home: tuple[str, str, str] | None = None,
) -> None:
    """home: (label, building, residents' group)."""
    household_id = None
    if home is not None:
        found = await household(uow, community_id, home[0])
        found.building, found.resident_group = home[1], home[2]
        uow.session.add(found)
        household_id = found.id
    await add_member(
        uow, person_id=person_id, community_id=community_id, roles=roles, household_id=household_id, reason="test"
    )


async def _cast(uows: UnitOfWorkFactory) -> Cast:
    async with uows() as uow:
        street = await add_community(uow, name="示范街道", kind=CommunityKind.STREET)
        assert street.id is not None
        wutong = await add_community(uow, name="梧桐社区", kind=CommunityKind.NEIGHBOURHOOD, parent_id=street.id)
        yinxing = await add_community(uow, name="银杏社区", kind=CommunityKind.NEIGHBOURHOOD, parent_id=street.id)
        assert wutong.id is not None and yinxing.id is not None
        ids: dict[str, int] = {}
        for key, name in [
            ("worker", "李娜"),
            ("committee", "周敏"),
            ("street", "赵强"),
            ("wang", "王芳"),
            ("liu", "刘洋"),
            ("sun", "孙丽"),
            ("zhang", "张伟"),
            ("nobody", "钱多"),
            ("neighbour", "吴邻"),
        ]:
            ids[key] = (await _someone(uow, key, name)).person_id
        chen = await _someone(uow, "chen", "陈晓", language_code="en")
        await set_language(uow, chen.person, "en")
        ids["chen"] = chen.person_id
        # 王芳 also uses Linli from the console: two accounts, two messages.
        await _someone(uow, "wang-console", "王芳", channel="console")
        account = (
            await uow.session.exec(select(ChannelAccount).where(ChannelAccount.external_id == "wang-console"))
        ).one()
        account.person_id = ids["wang"]
        uow.session.add(account)

        await _join(uow, ids["worker"], wutong.id, {Role.COMMUNITY_WORKER})
        await _join(uow, ids["committee"], wutong.id, {Role.COMMITTEE_MEMBER, Role.RESIDENT}, ("12号楼 101", B12, G2))
        await _join(uow, ids["street"], street.id, {Role.STREET_ADMINISTRATOR})
        home = ("3号楼 501", B3, G1)
        await _join(uow, ids["wang"], wutong.id, {Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}, home)
        await _join(uow, ids["liu"], wutong.id, {Role.RESIDENT, Role.VOLUNTEER}, home)
        await _join(uow, ids["sun"], wutong.id, {Role.RESIDENT, Role.PARTY_MEMBER}, ("3号楼 502", B3, G2))
        await _join(uow, ids["chen"], wutong.id, {Role.RESIDENT}, ("7号楼 302", B7, G1))
        await _join(uow, ids["zhang"], wutong.id, {Role.RESIDENT, Role.VOLUNTEER}, ("12号楼 1102", B12, G2))
        await _join(uow, ids["nobody"], wutong.id, {Role.RESIDENT})
        await _join(uow, ids["neighbour"], yinxing.id, {Role.RESIDENT, Role.VOLUNTEER}, ("3号楼 101", B3, G1))
        await uow.commit()
    return Cast(wutong=wutong.id, yinxing=yinxing.id, **ids)


async def _identity(uow: UnitOfWork, key: str) -> Identity:
    """Who is acting, as the chat knows them (without touching their account, as identify() may)."""
    account = (
        await uow.session.exec(
            select(ChannelAccount).where(ChannelAccount.channel == "telegram", ChannelAccount.external_id == key)
        )
    ).one()
    person = await uow.session.get(Person, account.person_id)
    assert person is not None
    return Identity(person=person, account=account)


def _draft(cast: Cast, **changes: object) -> NoticeDraft:
    draft = NoticeDraft(community_id=cast.wutong, body="明天上午九点停水，请提前储水。", language="zh_Hans")
    return replace(draft, **changes)  # type: ignore[arg-type]


async def _publish(uows: UnitOfWorkFactory, key: str, draft: NoticeDraft) -> Notice:
    async with uows() as uow:
        notice = await publish(uow, await _identity(uow, key), draft)
        await uow.commit()
    return notice


async def _fan_out(uows: UnitOfWorkFactory, notice_id: int) -> None:
    """What the sending job does: one outbox row per recipient, in their language, held ones held."""
    async with uows() as uow:
        notice = await get_notice(uow, notice_id)
        versions = await language_versions(uow, notice)
        found = await recipients(uow, notice)
        await outbox.enqueue(
            uow,
            (
                outbox.Outgoing(
                    channel=r.channel,
                    chat_id=r.chat_id,
                    text=versions.get(r.language, notice.body),
                    person_id=r.person_id,
                    account_id=r.account_id,
                    notice_id=notice_id,
                    hold=r.held,
                )
                for r in found
            ),
            not_before=uow.clock.now(),
        )
        await mark_fanned_out(uow, notice_id, len(found))
        await uow.commit()


async def _set_status(uows: UnitOfWorkFactory, notice_id: int, person_id: int, status: DeliveryStatus) -> None:
    async with uows() as uow:
        for row in (
            await uow.session.exec(
                select(OutboxMessage).where(OutboxMessage.notice_id == notice_id, OutboxMessage.person_id == person_id)
            )
        ).all():
            row.status = status
            uow.session.add(row)
        await uow.commit()


async def _recipient_people(uows: UnitOfWorkFactory, notice_id: int) -> list[int]:
    async with uows() as uow:
        return sorted({r.person_id for r in await recipients(uow, await get_notice(uow, notice_id))})


async def _count(uow: UnitOfWork, model: type[SQLModel]) -> int:
    return int((await uow.session.exec(select(func.count()).select_from(model))).one())


async def _actions(uow: UnitOfWork) -> list[str]:
    return list((await uow.session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id)))).all())


# --- who receives a notice -------------------------------------------------------------------------------------


async def test_a_worker_confirms_a_notice_sent_now_or_scheduled_with_its_progress_chat(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    later = clock.now() + timedelta(hours=2)
    async with uows() as uow:
        worker = await _identity(uow, "worker")
        now = (await publish_or_schedule(uow, worker, _draft(cast), ("telegram", "worker"))).notice
        scheduled = (await publish_or_schedule(uow, worker, _draft(cast, send_at=later))).notice
        await uow.commit()
    assert (now.status, scheduled.status) == (NoticeStatus.SENDING, NoticeStatus.SCHEDULED)
    async with uows() as uow:
        sent_now = await get_notice(uow, now.id or 0)
        assert (sent_now.progress_channel, sent_now.progress_chat_id) == ("telegram", "worker")
        assert (await get_notice(uow, scheduled.id or 0)).progress_chat_id is None


async def test_a_notice_to_building_3_reaches_only_building_3(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    notice = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3,))))
    assert notice.status == NoticeStatus.SENDING  # no send time: out at once
    assert notice.id is not None

    async with uows() as uow:
        found = await recipients(uow, notice)
    # 王芳 has two accounts and gets the notice on both; 银杏社区's 3号楼 is another community's building.
    assert sorted((r.person_id, r.channel) for r in found) == sorted(
        [(cast.wang, "telegram"), (cast.wang, "console"), (cast.liu, "telegram"), (cast.sun, "telegram")]
    )
    assert {r.building for r in found} == {B3}
    assert all(r.language == "zh_Hans" and not r.held for r in found)


async def test_groups_and_role_segments_narrow_the_audience(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    volunteers = await _publish(uows, "worker", _draft(cast, audience=Scope(roles=(Role.VOLUNTEER,))))
    group_one = await _publish(uows, "worker", _draft(cast, audience=Scope(groups=(G1,))))
    # Across kinds all must hold: volunteers of building 3; within a kind any: building 3 or 7.
    both = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3,), roles=(Role.VOLUNTEER,))))
    either = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3, B7))))
    everyone = await _publish(uows, "worker", _draft(cast))

    assert await _recipient_people(uows, volunteers.id or 0) == sorted([cast.liu, cast.zhang])
    assert await _recipient_people(uows, group_one.id or 0) == sorted([cast.wang, cast.liu, cast.chen])
    assert await _recipient_people(uows, both.id or 0) == [cast.liu]
    assert await _recipient_people(uows, either.id or 0) == sorted([cast.wang, cast.liu, cast.sun, cast.chen])
    # The whole community: every member, the worker and the resident without a household included.
    assert await _recipient_people(uows, everyone.id or 0) == sorted(
        [cast.worker, cast.committee, cast.wang, cast.liu, cast.sun, cast.chen, cast.zhang, cast.nobody]
    )


async def test_the_preview_counts_what_the_fan_out_makes(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        options = await audience_options(uow, cast.wutong)
        three = await count_recipients(
            uow, cast.wutong, Scope(buildings=(B3,)), category=NoticeCategory.GENERAL, important=False
        )
    assert options.buildings == (B3, B7, B12)  # natural order: 3 before 12
    assert options.groups == (G1, G2)
    assert three == 4  # 王芳 twice, 刘洋, 孙丽

    notice = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3,))))
    await _fan_out(uows, notice.id or 0)
    async with uows() as uow:
        assert (await figures(uow, notice.id or 0)).total == three
        assert (await get_notice(uow, notice.id or 0)).recipients == three


async def test_a_muted_category_is_skipped_but_important_notices_still_arrive(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        await set_muted(uow, cast.liu, NoticeCategory.VOLUNTEERING, True)
        await set_muted(uow, cast.liu, NoticeCategory.VOLUNTEERING, True)  # twice is the same as once
        await set_muted(uow, cast.liu, NoticeCategory.EVENTS, True)
        await set_muted(uow, cast.liu, NoticeCategory.EVENTS, False)
        await uow.commit()
    async with uows() as uow:
        assert (await notification_settings(uow, cast.liu)).muted == {NoticeCategory.VOLUNTEERING}

    audience = Scope(buildings=(B3,))
    call = await _publish(uows, "worker", _draft(cast, audience=audience, category=NoticeCategory.VOLUNTEERING))
    urgent = await _publish(
        uows, "worker", _draft(cast, audience=audience, category=NoticeCategory.VOLUNTEERING, important=True)
    )
    event = await _publish(uows, "worker", _draft(cast, audience=audience, category=NoticeCategory.EVENTS))

    assert cast.liu not in await _recipient_people(uows, call.id or 0)
    assert await _recipient_people(uows, call.id or 0) == sorted([cast.wang, cast.sun])
    assert cast.liu in await _recipient_people(uows, urgent.id or 0)
    assert cast.liu in await _recipient_people(uows, event.id or 0)


async def test_digest_readers_get_ordinary_notices_held_and_important_ones_at_once(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        assert not (await notification_settings(uow, cast.chen)).daily_digest
        await set_daily_digest(uow, cast.chen, True)
        await set_daily_digest(uow, cast.sun, True)
        await set_daily_digest(uow, cast.sun, False)  # changed their mind
        await uow.commit()
    async with uows() as uow:
        assert (await notification_settings(uow, cast.chen)).daily_digest
        assert not (await notification_settings(uow, cast.sun)).daily_digest

    audience = Scope(buildings=(B3, B7))
    ordinary = await _publish(uows, "worker", _draft(cast, audience=audience))
    urgent = await _publish(uows, "worker", _draft(cast, audience=audience, important=True))
    # Its Acknowledge button needs a message of its own, so a notice asking for one is not held either.
    to_confirm = await _publish(uows, "worker", _draft(cast, audience=audience, ack_requested=True))
    async with uows() as uow:
        held = {r.person_id: r.held for r in await recipients(uow, ordinary)}
        urgent_held = {r.person_id: r.held for r in await recipients(uow, urgent)}
        to_confirm_held = {r.person_id: r.held for r in await recipients(uow, to_confirm)}
    assert held == {cast.wang: False, cast.liu: False, cast.sun: False, cast.chen: True}
    assert not any(urgent_held.values())
    assert not any(to_confirm_held.values())


async def test_unreachable_accounts_are_left_out(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        # 王芳 blocked the bot on Telegram but still has the console; 刘洋 blocked it on his only account.
        for key in ("wang", "liu"):
            account = (await uow.session.exec(select(ChannelAccount).where(ChannelAccount.external_id == key))).one()
            account.unreachable_since = clock.now()
            uow.session.add(account)
        await uow.commit()
    notice = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3,))))
    async with uows() as uow:
        found = await recipients(uow, notice)
        count = await count_recipients(
            uow, cast.wutong, Scope(buildings=(B3,)), category=NoticeCategory.GENERAL, important=True
        )
    assert sorted((r.person_id, r.channel) for r in found) == sorted([(cast.wang, "console"), (cast.sun, "telegram")])
    assert count == 2


async def test_each_recipient_reads_the_version_in_their_language(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    draft = _draft(
        cast,
        audience=Scope(buildings=(B3, B7)),
        translations={"en": "No water tomorrow from 9 am; please store some."},
    )
    notice = await _publish(uows, "worker", draft)
    async with uows() as uow:
        versions = await language_versions(uow, notice)
        languages = {r.person_id: r.language for r in await recipients(uow, notice)}
    assert versions == {"zh_Hans": draft.body, "en": "No water tomorrow from 9 am; please store some."}
    assert languages[cast.chen] == "en" and languages[cast.wang] == "zh_Hans"

    await _fan_out(uows, notice.id or 0)
    async with uows() as uow:
        texts = dict(
            (
                await uow.session.exec(
                    select(OutboxMessage.person_id, OutboxMessage.text).where(OutboxMessage.notice_id == notice.id)
                )
            ).all()
        )
    assert texts[cast.chen].startswith("No water")
    assert texts[cast.sun] == draft.body


async def test_someone_without_a_language_of_their_own_gets_their_apps_or_the_communitys(
    uows: UnitOfWorkFactory,
) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        ids = [
            (await _someone(uow, "newcomer", "新来的", language_code="en-GB")).person_id,
            (await _someone(uow, "quiet", "不说的", language_code=None)).person_id,
        ]
        await _join(uow, ids[0], cast.wutong, {Role.RESIDENT}, ("7号楼 303", B7, G1))
        await _join(uow, ids[1], cast.wutong, {Role.RESIDENT}, ("7号楼 304", B7, G1))
        await uow.commit()
    notice = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B7,))))
    async with uows() as uow:
        languages = {r.person_id: r.language for r in await recipients(uow, notice)}
    assert languages == {cast.chen: "en", ids[0]: "en", ids[1]: "zh_Hans"}


# --- who may publish, and what is refused ------------------------------------------------------------------------


async def test_staff_committee_and_the_street_may_publish_and_a_resident_may_not(
    uows: UnitOfWorkFactory, localizers: Localizers
) -> None:
    cast = await _cast(uows)
    for key in ("worker", "committee", "street"):
        notice = await _publish(uows, key, _draft(cast))
        assert notice.author_id == getattr(cast, key)

    async with uows() as uow:
        before = (await _count(uow, Notice), await _count(uow, AuditEntry))
        with pytest.raises(NoticeNotAllowed) as refused:
            await publish(uow, await _identity(uow, "wang"), _draft(cast))
        # A worker of the neighbouring community is nobody in 梧桐社区.
        with pytest.raises(NoticeNotAllowed):
            await publish(uow, await _identity(uow, "neighbour"), _draft(cast))
        await uow.commit()
    async with uows() as uow:
        assert (await _count(uow, Notice), await _count(uow, AuditEntry)) == before
    # The refusal is a message id the front end translates for the resident.
    assert refused.value.message == NoticeNotAllowed.message
    assert localizers.get("zh_Hans").text(refused.value.message) == "你在本社区的身份不能发送通知。"


async def test_party_members_are_addressed_only_by_those_who_may_see_party_membership(
    uows: UnitOfWorkFactory,
) -> None:
    cast = await _cast(uows)
    party = _draft(cast, audience=Scope(roles=(Role.PARTY_MEMBER,)))
    with pytest.raises(SensitiveAudienceNotAllowed):
        await _publish(uows, "committee", party)
    notice = await _publish(uows, "worker", party)
    assert await _recipient_people(uows, notice.id or 0) == [cast.sun]
    assert Role.PARTY_MEMBER in segment_roles_for({Role.COMMUNITY_WORKER})
    assert Role.PARTY_MEMBER not in segment_roles_for({Role.COMMITTEE_MEMBER})
    assert Role.VOLUNTEER in segment_roles_for({Role.COMMITTEE_MEMBER})


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"body": "   \n "}, EmptyNotice),
        ({"body": "水" * (MAX_BODY + 1)}, NoticeTooLong),
        # With a photo the text is its caption, which is shorter.
        (
            {"body": "水" * (MAX_CAPTION + 1), "attachment": Attachment(AttachmentKind.PHOTO, "telegram", "f1")},
            NoticeTooLong,
        ),
        ({"translations": {"en": " "}}, EmptyNotice),
        ({"translations": {"fr": "Pas d'eau"}}, ValidationFailed),
        ({"audience": Scope(buildings=("99号楼",))}, UnknownBuilding),
        ({"audience": Scope(groups=("九组",))}, UnknownResidentGroup),
        ({"audience": Scope(buildings=(B7,), roles=(Role.VOLUNTEER,))}, NoRecipients),
        ({"send_at": "past"}, SendTimePassed),
        ({"send_at": "now"}, SendTimePassed),
    ],
)
async def test_a_notice_that_cannot_go_out_is_refused_and_nothing_is_written(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    localizers: Localizers,
    changes: dict[str, object],
    error: type[LinliError],
) -> None:
    cast = await _cast(uows)
    if changes.get("send_at") == "past":
        changes = {"send_at": clock.now() - timedelta(minutes=1)}
    elif changes.get("send_at") == "now":
        changes = {"send_at": clock.now()}
    async with uows() as uow:
        before = [await _count(uow, model) for model in (Notice, NoticeTranslation, AuditEntry)]
    with pytest.raises(error) as refused:
        await _publish(uows, "worker", _draft(cast, **changes))
    async with uows() as uow:
        assert [await _count(uow, model) for model in (Notice, NoticeTranslation, AuditEntry)] == before
    if error is NoticeTooLong:
        limit = MAX_CAPTION if "attachment" in changes else MAX_BODY
        assert refused.value.params == {"limit": limit, "length": limit + 1}  # the worker is told the limit
        assert f"{limit:,}" in localizers.get("zh_Hans").text(refused.value.message, **refused.value.params)
    if error is UnknownBuilding:
        assert refused.value.params == {"building": "99号楼"}


# --- scheduled and immediate; cancelling --------------------------------------------------------------------------


async def test_a_scheduled_notice_waits_and_starts_sending_once(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    later = clock.now() + timedelta(hours=3)
    notice = await _publish(uows, "worker", _draft(cast, send_at=later))
    assert notice.status == NoticeStatus.SCHEDULED and notice.send_at == later
    async with uows() as uow:
        assert await _count(uow, OutboxMessage) == 0
        assert [n.id for n in await recent(uow, cast.wutong)] == [notice.id]

    clock.advance(timedelta(hours=3))
    async with uows() as uow:
        started = await begin_sending(uow, notice.id or 0)
        assert started is not None and started.status == NoticeStatus.SENDING
        await uow.commit()
    await _fan_out(uows, notice.id or 0)
    async with uows() as uow:
        # The job running a second time (a restart, a second process) finds nothing to do.
        assert await begin_sending(uow, notice.id or 0) is None
        assert (await get_notice(uow, notice.id or 0)).queued_at == clock.now()
        # A job left by a transaction that was rolled back finds no notice, and does nothing.
        assert await begin_sending(uow, 9999) is None


async def test_cancelling_a_scheduled_notice(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    notice = await _publish(uows, "worker", _draft(cast, send_at=clock.now() + timedelta(days=1)))
    async with uows() as uow:
        with pytest.raises(NoticeNotAllowed):
            await cancel(uow, await _identity(uow, "wang"), notice.id or 0)
    async with uows() as uow:
        # Any sender of the community may cancel, not only the author.
        cancelled = await cancel(uow, await _identity(uow, "committee"), notice.id or 0)
        await uow.commit()
    assert cancelled.status == NoticeStatus.CANCELLED and cancelled.cancelled_at == clock.now()
    async with uows() as uow:
        assert await begin_sending(uow, notice.id or 0) is None  # the job finds it cancelled
        again = await cancel(uow, await _identity(uow, "worker"), notice.id or 0)  # a second tap changes nothing
        assert again.status == NoticeStatus.CANCELLED
        await uow.commit()
        assert (await _actions(uow)).count("notice.cancelled") == 1
        with pytest.raises(NoticeNotFound):
            await cancel(uow, await _identity(uow, "worker"), 9999)


async def test_cancelling_while_sending_stops_only_what_has_not_gone(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        await set_daily_digest(uow, cast.chen, True)
        await uow.commit()
    notice = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3, B7))))
    await _fan_out(uows, notice.id or 0)
    await _set_status(uows, notice.id or 0, cast.liu, DeliveryStatus.SENT)
    await _set_status(uows, notice.id or 0, cast.sun, DeliveryStatus.SENDING)  # on the wire right now

    async with uows() as uow:
        await cancel(uow, await _identity(uow, "worker"), notice.id or 0)
        await uow.commit()
    async with uows() as uow:
        statuses = {
            (person, channel): status
            for person, channel, status in (
                await uow.session.exec(
                    select(OutboxMessage.person_id, OutboxMessage.channel, OutboxMessage.status).where(
                        OutboxMessage.notice_id == notice.id
                    )
                )
            ).all()
        }
        assert (await get_notice(uow, notice.id or 0)).status == NoticeStatus.CANCELLED
    assert statuses == {
        (cast.wang, "telegram"): DeliveryStatus.CANCELLED,
        (cast.wang, "console"): DeliveryStatus.CANCELLED,
        (cast.liu, "telegram"): DeliveryStatus.SENT,
        (cast.sun, "telegram"): DeliveryStatus.SENDING,
        (cast.chen, "telegram"): DeliveryStatus.CANCELLED,  # held for the digest: it will not come
    }


async def test_a_notice_that_went_out_is_finished_once_and_cannot_be_cancelled(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    notice = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B7,))))
    await _fan_out(uows, notice.id or 0)
    async with uows() as uow:
        assert not await finish_if_settled(uow, notice.id or 0)  # still queued
    await _set_status(uows, notice.id or 0, cast.chen, DeliveryStatus.SENT)
    async with uows() as uow:
        assert await finish_if_settled(uow, notice.id or 0)
        assert not await finish_if_settled(uow, notice.id or 0)
        await uow.commit()
    async with uows() as uow:
        assert (await get_notice(uow, notice.id or 0)).status == NoticeStatus.SENT
        with pytest.raises(NoticeAlreadySent):
            await cancel(uow, await _identity(uow, "worker"), notice.id or 0)
        assert (await _actions(uow))[-2:] == ["notice.published", "notice.sent"]
        assert (await audit.verify(uow)).ok


# --- acknowledgements and figures -----------------------------------------------------------------------------


async def test_a_recipient_acknowledges_once(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    asked = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3,)), ack_requested=True))
    plain = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3,))))
    for notice in (asked, plain):
        await _fan_out(uows, notice.id or 0)

    async with uows() as uow:
        assert await acknowledge(uow, cast.wang, asked.id or 0)
        assert not await acknowledge(uow, cast.wang, asked.id or 0)  # the second tap
        assert not await acknowledge(uow, cast.chen, asked.id or 0)  # 7号楼: never sent to him
        assert not await acknowledge(uow, cast.liu, plain.id or 0)  # no confirmation asked
        assert not await acknowledge(uow, cast.liu, 9999)
        await uow.commit()

    # Two taps at the same moment, from two processes: one counts.
    async def tap() -> bool:
        async with uows() as uow:
            done = await acknowledge(uow, cast.sun, asked.id or 0)
            await uow.commit()
            return done

    taps = await asyncio.gather(tap(), tap())
    assert sorted(taps) == [False, True]
    async with uows() as uow:
        assert await _count(uow, NoticeAck) == 2
        assert (await figures(uow, asked.id or 0)).acknowledged == 2


async def test_figures_by_outcome_and_building(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    notice = await _publish(uows, "worker", _draft(cast, ack_requested=True))
    async with uows() as uow:
        empty = await figures(uow, notice.id or 0)
    assert (empty.total, empty.by_building) == (0, ())
    await _fan_out(uows, notice.id or 0)
    await _set_status(uows, notice.id or 0, cast.wang, DeliveryStatus.SENT)  # both accounts
    await _set_status(uows, notice.id or 0, cast.liu, DeliveryStatus.UNREACHABLE)
    await _set_status(uows, notice.id or 0, cast.sun, DeliveryStatus.FAILED)
    await _set_status(uows, notice.id or 0, cast.chen, DeliveryStatus.SENT)
    await _set_status(uows, notice.id or 0, cast.worker, DeliveryStatus.SENDING)
    async with uows() as uow:
        assert await acknowledge(uow, cast.wang, notice.id or 0)
        assert await acknowledge(uow, cast.chen, notice.id or 0)
        await uow.commit()
        shown = await figures(uow, notice.id or 0)

    # worker (sending), committee, zhang and nobody (queued), wang x2, liu, sun, chen.
    assert (shown.total, shown.queued, shown.sent, shown.failed, shown.unreachable, shown.held) == (9, 4, 3, 1, 1, 0)
    assert (shown.cancelled, shown.acknowledged) == (0, 2)
    rows = {b.building: (b.total, b.sent, b.failed, b.unreachable, b.acknowledged) for b in shown.by_building}
    assert [b.building for b in shown.by_building] == [B3, B7, B12, None]  # natural order, no household last
    assert rows == {
        B3: (4, 2, 1, 1, 1),
        B7: (1, 1, 0, 0, 1),
        B12: (2, 0, 0, 0, 0),
        None: (2, 0, 0, 0, 0),
    }


# --- the daily digest -------------------------------------------------------------------------------------------


async def test_held_messages_are_gathered_per_account_for_the_digest(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        for person in (cast.chen, cast.wang):
            await set_daily_digest(uow, person, True)
        await uow.commit()
    first = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3, B7))))
    second = await _publish(uows, "worker", _draft(cast, audience=Scope(groups=(G1,)), body="周六义诊。"))
    urgent = await _publish(uows, "worker", _draft(cast, important=True))
    for notice in (first, second, urgent):
        await _fan_out(uows, notice.id or 0)

    async with uows() as uow:
        batches = await digest_batches(uow)
        waiting = await figures(uow, first.id or 0)
    assert (waiting.held, waiting.queued) == (3, 2)  # wang twice and chen wait; liu and sun get it now
    assert [(b.person_id, b.channel, b.language) for b in batches] == sorted(
        [(cast.wang, "telegram", "zh_Hans"), (cast.wang, "console", "zh_Hans"), (cast.chen, "telegram", "en")],
        key=lambda item: (item[0], item[1] != "telegram"),
    )
    assert all([n.id for n in b.notices] == [first.id, second.id] for b in batches)
    assert all(len(b.row_ids) == 2 for b in batches)

    async with uows() as uow:
        await mark_digested(uow, [row for b in batches for row in b.row_ids])
        await uow.commit()
    async with uows() as uow:
        assert await digest_batches(uow) == []
        assert (await figures(uow, first.id or 0)).sent == 3  # wang twice and chen, inside their digests


# --- the audience's stored form ----------------------------------------------------------------------------------


def test_an_audience_is_stored_canonically() -> None:
    assert Scope().is_everyone() and Scope().to_json() == "{}"
    audience = Scope(buildings=("12号楼", "3号楼", "3号楼"), roles=(Role.UNIT_CONTACT, Role.VOLUNTEER))
    assert audience == Scope(buildings=("3号楼", "12号楼"), roles=(Role.VOLUNTEER, Role.UNIT_CONTACT))
    assert not audience.is_everyone()
    assert Scope.from_json(audience.to_json()) == audience
    assert audience.to_json() == '{"buildings":["3号楼","12号楼"],"roles":["volunteer","unit_contact"]}'


# --- the audit log and erasure ----------------------------------------------------------------------------------


async def test_publishing_and_cancelling_are_audited(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    notice = await _publish(
        uows,
        "worker",
        _draft(cast, audience=Scope(buildings=(B3,)), send_at=clock.now() + timedelta(hours=1), important=True),
    )
    async with uows() as uow:
        await cancel(uow, await _identity(uow, "worker"), notice.id or 0)
        await uow.commit()
    async with uows() as uow:
        entries = (
            await uow.session.exec(
                select(AuditEntry).where(AuditEntry.subject_type == "notice").order_by(col(AuditEntry.id))
            )
        ).all()
        assert (await audit.verify(uow)).ok
    assert [(e.action, e.subject_id, e.actor_id, e.community_id) for e in entries] == [
        ("notice.published", notice.id, cast.worker, cast.wutong),
        ("notice.cancelled", notice.id, cast.worker, cast.wutong),
    ]
    assert '"audience":{"buildings":["3号楼"]}' in entries[0].data
    assert '"status":"scheduled"' in entries[0].data
    assert notice.body not in entries[0].data  # the text itself is not kept forever


async def test_forget_erases_a_residents_notice_data(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        await set_muted(uow, cast.wang, NoticeCategory.EVENTS, True)
        await set_daily_digest(uow, cast.wang, True)
        await uow.commit()
        data = await personal_data(uow, cast.wang)
    assert data.muted_categories == (NoticeCategory.EVENTS,) and data.daily_digest
    exported = data.as_json()["notices"]
    assert exported == {"muted_categories": ["events"], "daily_digest": True, "acknowledged": 0, "written": 0}

    asked = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3,)), ack_requested=True))
    await _fan_out(uows, asked.id or 0)
    await _set_status(uows, asked.id or 0, cast.wang, DeliveryStatus.SENT)
    async with uows() as uow:
        assert await acknowledge(uow, cast.wang, asked.id or 0)
        await uow.commit()
    # A later notice is still held for 王芳's digest when she leaves.
    later = await _publish(uows, "worker", _draft(cast, audience=Scope(buildings=(B3,)), body="下周体检。"))
    await _fan_out(uows, later.id or 0)

    async with uows() as uow:
        await forget(uow, cast.wang)
        await uow.commit()
    async with uows() as uow:
        for model, column in ((NoticeMute, NoticeMute.person_id), (NoticeAck, NoticeAck.person_id)):
            assert (await uow.session.exec(select(model).where(column == cast.wang))).all() == []
        assert await uow.session.get(NoticePreference, cast.wang) is None
        assert (await uow.session.exec(select(OutboxMessage).where(OutboxMessage.person_id == cast.wang))).all() == []
        unlinked = (await uow.session.exec(select(OutboxMessage).where(col(OutboxMessage.person_id).is_(None)))).all()
        # Her four messages stay as counts of the notices, leading to no one; the held ones will not go out.
        assert len(unlinked) == 4
        assert all((m.account_id, m.chat_id, m.text) == (None, "", "") for m in unlinked)
        assert sorted(m.status for m in unlinked if m.notice_id == later.id) == [DeliveryStatus.CANCELLED] * 2
        assert (await figures(uow, asked.id or 0)).sent == 2


async def test_forget_keeps_an_authors_notices_without_the_author(uows: UnitOfWorkFactory) -> None:
    cast = await _cast(uows)
    notice = await _publish(uows, "worker", _draft(cast))
    async with uows() as uow:
        await set_progress_target(uow, notice.id or 0, "telegram", "worker")
        await set_progress_message(uow, notice.id or 0, "77")
        await uow.commit()
        row = await get_notice(uow, notice.id or 0)
        assert (row.progress_channel, row.progress_chat_id, row.progress_message_id) == ("telegram", "worker", "77")
        assert (await personal_data(uow, cast.worker)).notices_written == 1
    async with uows() as uow:
        await forget(uow, cast.worker)
        await uow.commit()
    async with uows() as uow:
        kept = await get_notice(uow, notice.id or 0)
    assert kept.body == notice.body
    assert (kept.author_id, kept.progress_chat_id, kept.progress_message_id) == (None, None, None)
