"""Conversation transcripts of a person's own view: the menu, /language, /privacy, /forget and /members,
driven like the console channel (buttons pressed by number), on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.channels.console import ConsoleSession, ConsoleUser
from bot.conversation import Conversation
from bot.events import ButtonPress, Event, Sender
from bot.handlers.privacy import ForgetChoice
from bot.rendering import Localizers
from bot.replies import AnswerButton
from community import notices
from community.communities import add_community, add_member, household
from community.models import Community, Person
from community.notice_models import NoticeCategory
from community.people import identify
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from tests.support.console import buttons as _buttons
from tests.support.console import has as _has

WORKER = ConsoleUser(key="worker", name="李娜", language_code="en")
RESIDENT = ConsoleUser(key="resident", name="王芳", language_code="en")
CHINESE_RESIDENT = ConsoleUser(key="zh", name="陈建国", language_code="zh-hans")
STRANGER = ConsoleUser(key="stranger", name="孙丽", language_code="en")
PEOPLE = (WORKER, RESIDENT, CHINESE_RESIDENT, STRANGER)

MakeSession = Callable[[Sequence[ConsoleUser]], ConsoleSession]


@pytest.fixture
async def session(uows: UnitOfWorkFactory, console: MakeSession) -> ConsoleSession:
    """梧桐社区 with a worker and two residents (one reading Chinese), and a stranger who belongs nowhere."""
    async with uows() as uow:
        wutong = await add_community(uow, name="梧桐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert wutong.id is not None
        roles = {
            WORKER.key: {Role.COMMUNITY_WORKER},
            RESIDENT.key: {Role.RESIDENT},
            CHINESE_RESIDENT.key: {Role.RESIDENT},
        }
        for n, user in enumerate((WORKER, RESIDENT, CHINESE_RESIDENT)):
            me = await identify(uow, channel="console", external_id=user.key, chat_id=user.key, display_name=user.name)
            me.person.phone = f"+861380000000{n}"
            home = await household(uow, wutong.id, f"3号楼 2单元 50{n}")
            await add_member(
                uow,
                person_id=me.person_id,
                community_id=wutong.id,
                roles=roles[user.key],
                household_id=home.id,
                reason="test",
            )
        await uow.commit()
    return console(PEOPLE)


async def test_a_residents_menu_lacks_the_staff_entries_a_workers_has(session: ConsoleSession) -> None:
    await session.feed("/as worker")
    worker = await session.feed("/menu")
    assert _has(worker, "梧桐社区")
    assert _has(worker, "Your roles: community worker")
    assert _buttons(worker) == [
        "Invite residents",
        "Join requests",
        "Members",
        "Send a notice",
        "Notices sent",
        "New consultation",
        "Run consultations",
        "Consultations",
        "Notifications",
        "Language",
        "Privacy",
        "Help",
    ]

    await session.feed("/as resident")
    resident = await session.feed("/menu")
    assert _has(resident, "Your roles: resident")
    assert _has(resident, "Household: 3号楼 2单元 501")
    assert _buttons(resident) == ["Consultations", "Notifications", "Language", "Privacy", "Help"]


async def test_a_menu_button_runs_its_command(session: ConsoleSession) -> None:
    await session.feed("/as resident")
    await session.feed("/menu")
    out = await session.feed("4")  # Privacy
    assert _has(out, "What Linli holds about you")


async def test_someone_in_no_community_is_told_how_to_join(session: ConsoleSession) -> None:
    await session.feed("/as stranger")
    out = await session.feed("/menu")
    assert _has(out, "You are not a member of a community yet.")
    assert _buttons(out) == ["Join a community", "Language", "Privacy", "Help"]


async def test_switching_to_english_answers_in_english_at_once(
    session: ConsoleSession, localizers: Localizers, uows: UnitOfWorkFactory
) -> None:
    await session.feed("/as zh")
    out = await session.feed("/language")
    assert _buttons(out) == ["中文", "English"]  # each language named in itself, whatever the reader's language

    out = await session.feed("2")
    assert _has(out, "Done: Linli will write to you in this language from now on.")
    assert _has(out, "What would you like to do, 陈建国?")
    assert _buttons(out) == ["Consultations", "Notifications", "Language", "Privacy", "Help"]
    out = await session.feed("/menu")
    assert _has(out, "Your roles: resident")

    # And back: the confirmation comes in Chinese, whatever the catalog says by now.
    out = await session.feed("/language")
    assert _buttons(out) == ["中文", "✓ English"]
    out = await session.feed("1")
    chinese = localizers.get("zh_Hans")
    assert _has(out, chinese.text("Done: Linli will write to you in this language from now on."))
    assert _has(out, chinese.label("Privacy"))
    async with uows() as uow:
        person = (await uow.session.exec(select(Person).where(Person.display_name == "陈建国"))).one()
    assert person.language == "zh_Hans"


async def test_chinese_reader_gets_chinese_role_names(session: ConsoleSession, localizers: Localizers) -> None:
    await session.feed("/as zh")
    out = await session.feed("/menu")
    chinese = localizers.get("zh_Hans")
    assert _has(out, chinese.text("Your roles: %(roles)s", roles=chinese.label("resident")))


async def test_privacy_shows_the_data_and_hands_over_a_file(session: ConsoleSession, tmp_path: Path) -> None:
    await session.feed("/as resident")
    out = await session.feed("/privacy")
    assert _has(out, "What Linli holds about you")
    assert _has(out, "Name: 王芳")
    assert _has(out, "Phone: +8613800000001")
    assert _has(out, "梧桐社区")
    assert _has(out, "Your roles: resident")
    assert _has(out, "linli-my-data.json")
    assert _buttons(out) == ["Erase my data"]

    exported = json.loads((tmp_path / "files" / "resident" / "linli-my-data.json").read_text(encoding="utf-8"))
    assert exported["person"]["name"] == "王芳"
    assert exported["memberships"][0]["community"] == "梧桐社区"
    assert exported["accounts"] == [
        {"channel": "console", "username": None, "language_code": "en", "since": exported["accounts"][0]["since"]}
    ]


async def test_privacy_shows_the_notices_the_person_muted_and_their_digest_choice(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    await session.feed("/as resident")
    out = await session.feed("/privacy")
    assert _has(out, "Daily digest: off") and not any(line.startswith("Muted:") for line in out)

    async with uows() as uow:
        person_id = (await uow.session.exec(select(Person.id).where(Person.display_name == "王芳"))).one()
        assert person_id is not None
        await notices.set_muted(uow, person_id, NoticeCategory.EVENTS, muted=True)
        await notices.set_muted(uow, person_id, NoticeCategory.VOLUNTEERING, muted=True)
        await notices.set_daily_digest(uow, person_id, True)
        await uow.commit()
    out = await session.feed("/privacy")
    assert _has(out, "Muted: Events and Volunteering")
    assert _has(out, "Daily digest: on")


async def test_forget_cancelled_keeps_everything_and_confirmed_erases(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    await session.feed("/as resident")
    out = await session.feed("/forget")
    assert _has(out, "Erase everything Linli holds about you?")
    assert _has(out, "This stays, with no link to you:")
    assert _buttons(out) == ["Erase my data", "Cancel"]

    out = await session.feed("2")  # Cancel
    assert _has(out, "Nothing was erased.")
    out = await session.feed("/privacy")
    assert _has(out, "Name: 王芳") and _has(out, "梧桐社区")

    await session.feed("/forget")
    out = await session.feed("1")  # Erase my data
    assert _has(out, "Everything Linli held about you has been erased. Send /start any time to begin again.")
    async with uows() as uow:
        names = (await uow.session.exec(select(Person.display_name).order_by(col(Person.id)))).all()
    assert names == ["李娜", "陈建国"]

    # The same account writes again: a new, empty person, in no community.
    out = await session.feed("/menu")
    assert _has(out, "You are not a member of a community yet.")
    out = await session.feed("/privacy")
    assert _has(out, "Phone: none")
    assert not _has(out, "梧桐社区")

    # The worker's members list no longer has them.
    await session.feed("/as worker")
    out = await session.feed("/members")
    assert not _has(out, "王芳")
    assert _has(out, "陈建国")


async def test_an_old_erase_button_erases_nobody(
    session: ConsoleSession, conversation: Conversation, uows: UnitOfWorkFactory
) -> None:
    async with uows() as uow:
        old_id = (await uow.session.exec(select(Person.id).where(Person.display_name == "王芳"))).one()
    assert old_id is not None
    await session.feed("/as resident")
    await session.feed("/forget")
    await session.feed("1")
    await session.feed("/menu")  # the account comes back as someone new
    # The erase button of the earlier message, pressed again (a client that still shows it).
    press = ButtonPress(ForgetChoice(old_id, confirm=True).pack(), message_id="2")
    replies = await conversation.handle(Event(Sender("console", "resident", "resident", "王芳", "en"), press))
    assert replies == (AnswerButton("This button is out of date. Send /menu to start again.", alert=True),)
    async with uows() as uow:
        assert len((await uow.session.exec(select(Person))).all()) == 3


async def test_nobody_can_confirm_someone_elses_erasure(
    session: ConsoleSession, conversation: Conversation, uows: UnitOfWorkFactory
) -> None:
    """In a group chat everyone sees the buttons: another member's press must not erase anyone."""
    async with uows() as uow:
        resident = (await uow.session.exec(select(Person.id).where(Person.display_name == "王芳"))).one()
    assert resident is not None
    press = ButtonPress(ForgetChoice(resident, confirm=True).pack(), message_id="7")
    worker = Sender("console", WORKER.key, "group", WORKER.name, "en")
    replies = await conversation.handle(Event(worker, press))
    assert replies[0] == AnswerButton("This button is out of date. Send /menu to start again.", alert=True)
    async with uows() as uow:
        assert len((await uow.session.exec(select(Person))).all()) == 3


async def test_members_page_by_page_for_a_worker_and_refused_to_a_resident(
    session: ConsoleSession, uows: UnitOfWorkFactory
) -> None:
    async with uows() as uow:
        community_id = (await uow.session.exec(select(Community.id).where(Community.name == "梧桐社区"))).one()
        assert community_id is not None
        for n in range(25):
            me = await identify(
                uow, channel="console", external_id=f"r{n}", chat_id=f"r{n}", display_name=f"居民{n:02d}"
            )
            home = await household(uow, community_id, f"9号楼 {n:02d}")
            await add_member(
                uow,
                person_id=me.person_id,
                community_id=community_id,
                roles={Role.RESIDENT},
                household_id=home.id,
                reason="test",
            )
        await uow.commit()

    await session.feed("/as worker")
    out = await session.feed("/members")
    assert _has(out, "Members of 梧桐社区")
    assert _has(out, "Page 1 of 2, 28 members in all")
    assert _has(out, "李娜 · 3号楼 2单元 500 · community worker · +8613800000000")
    assert _has(out, "王芳 · 3号楼 2单元 501 · resident · +8613800000001")
    assert _has(out, "居民16 · 9号楼 16 · resident")
    assert not _has(out, "居民17")
    assert _buttons(out) == ["Next →"]

    out = await session.feed("1")
    assert _has(out, "(the message above was changed)")
    assert _has(out, "Page 2 of 2, 28 members in all")
    assert _has(out, "居民17 · 9号楼 17 · resident")
    assert _has(out, "居民24")
    assert not _has(out, "王芳")
    assert _buttons(out) == ["← Previous"]

    out = await session.feed("1")
    assert _has(out, "Page 1 of 2")

    await session.feed("/as resident")
    out = await session.feed("/members")
    assert out == ["Your role in this community does not allow that."]
