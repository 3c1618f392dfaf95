"""Input that used to crash Linli or lock a person out, through the real handlers on both databases: button data
with numbers no column can hold, NUL bytes, lone surrogates and over-long values from a person or their client,
bytes that are not UTF-8 at the console, and dates in the year 9999."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any, get_type_hints

import pytest
from sqlmodel import col, select

from bot.app import build_router
from bot.callbacks import CallbackData, CallbackDataError
from bot.channels.console import ConsoleSession, ConsoleUser, run_console
from bot.conversation import Conversation
from bot.events import ButtonPress, Event, Sender, clean_input, clean_language_code
from bot.rendering import Localizer
from bot.replies import AnswerButton
from community.clock import FakeClock
from community.demo import WUTONG, demo_people
from community.models import ChannelAccount, Community, JoinRequest, Person
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import ConsultationDraft, add_statement, create, open_consultation
from tests.support.console import buttons, has, script, tap
from tests.support.demo_people import CHEN, WORKER
from tests.support.fake_bot_api import FakeBotApi, parse_telegram_html

STALE = "This button is out of date. Send /menu to start again."
OUT_OF_RANGE = (2**63, 2**31, -1, 10**30)


def _forged(data_type: type[CallbackData], field: str, number: int) -> str:
    """The type's callback data with every field plausible, except ``field``, which is ``number``."""
    parts = [data_type.prefix]
    for f, kind in ((f, get_type_hints(data_type)[f.name]) for f in dataclasses.fields(data_type)):
        value: Any
        if f.name == field:
            value = number
        elif kind is bool:
            value = "0"
        elif kind is int:
            value = 1
        elif isinstance(kind, type) and issubclass(kind, StrEnum):
            value = next(iter(kind)).value
        else:
            value = "x"
        parts.append(str(value))
    return ":".join(parts)


def _int_fields() -> list[tuple[type[CallbackData], str]]:
    return [
        (data_type, f.name)
        for data_type in build_router().button_types
        for f in dataclasses.fields(data_type)
        if get_type_hints(data_type)[f.name] is int
    ]


def test_every_integer_a_button_carries_is_checked() -> None:
    assert len(_int_fields()) > 20  # ids, pages and counts of every feature


@pytest.mark.usefixtures("demo")
async def test_a_forged_button_with_a_number_out_of_range_is_out_of_date(conversation: Conversation) -> None:
    worker = Sender("console", WORKER.key, WORKER.key, WORKER.name, WORKER.language_code)
    for data_type, field in _int_fields():
        for number in OUT_OF_RANGE:
            data = _forged(data_type, field, number)
            replies = await conversation.handle(Event(worker, ButtonPress(data, message_id="1", callback_id="1")))
            assert replies == (AnswerButton(STALE, alert=True),), data


@pytest.mark.parametrize("raw", ["+1", " 1", "1_0", "١", "²", "-0", "2147483648", "0" * 40 + "1"])
def test_a_number_in_button_data_is_plain_ascii_digits_in_range(raw: str) -> None:
    @dataclasses.dataclass(frozen=True)
    class Page(CallbackData):
        prefix = "pg"
        n: int

    with pytest.raises(CallbackDataError):
        Page.unpack(f"pg:{raw}")
    assert Page.unpack("pg:2147483647").n == 2**31 - 1
    assert Page.unpack("pg:0").n == 0
    with pytest.raises(CallbackDataError):
        Page(2**31).pack()


# --- text a person types -----------------------------------------------------------------------------------------

HOSTILE = "\x00\ud800"


def _failed(out: Sequence[str]) -> bool:
    return any("Something went wrong" in line for line in out)


@pytest.mark.usefixtures("demo")
async def test_nul_and_lone_surrogates_are_taken_at_every_prompt(
    console: Callable[[Sequence[ConsoleUser]], ConsoleSession], uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    stranger = ConsoleUser("stranger", f"Mei{HOSTILE}", "en")
    session = console([WORKER, CHEN, stranger])
    async with uows() as uow:
        worker = (await demo_people(uow))[0]
        assert worker.key == WORKER.key
        community_id = (await uow.session.exec(select(Community.id).where(Community.name == WUTONG))).one()
        assert community_id is not None
        consultation = await create(
            uow,
            worker.person_id,
            ConsultationDraft(
                community_id=community_id,
                title="Street lights",
                background="Are the lights bright enough?",
                language="en",
                opens_at=clock.now(),
                closes_at=clock.now() + timedelta(days=7),
            ),
        )
        assert consultation.id is not None
        await add_statement(uow, worker.person_id, consultation.id, "The lights are too dim.")
        assert await open_consultation(uow, consultation.id)
        await uow.commit()

    # Joining: the name and the household.
    out = await script(session, "/as stranger", "/start")
    out = await tap(session, out, "Ask to join")
    if "梧桐社区" in buttons(out):
        out = await tap(session, out, "梧桐社区")
    assert out[-1].startswith("What is your name?"), out
    out = await session.feed(f"Mei{HOSTILE} Li")
    assert out[0] == "Where do you live? Write your building, unit and room.", out
    out = await session.feed(f"3号楼{HOSTILE} 101")
    assert has(out, "Share my phone number"), out
    out = await tap(session, out, "Skip")
    assert "Name: Mei\ufffd Li" in out and "Household: 3号楼\ufffd 101" in out, out
    out = await tap(session, out, "Send the request")
    assert has(out, "has been sent"), out

    # A statement of one's own.
    out = await script(session, "/as chen", "/consult")
    out = await tap(session, out, "Street lights")
    out = await tap(session, out, "✍️ Add a statement")
    out = await session.feed(f"Brighter{HOSTILE} lights, please.")
    assert not _failed(out) and has(out, "Your statement waits for a moderator"), out

    # A notice's text.
    out = await script(session, "/as worker", "/notice")
    out = await session.feed(f"Water off{HOSTILE} on Friday.")
    assert out[0] == "Who should receive the notice?", out

    async with uows() as uow:
        request = (await uow.session.exec(select(JoinRequest))).one()
        assert (request.name, request.household_label) == ("Mei\ufffd Li", "3号楼\ufffd 101")
        stored = (await uow.session.exec(select(Person).where(col(Person.display_name).like("Mei%")))).one()
        assert stored.display_name == "Mei\ufffd"


async def test_bytes_that_are_not_utf8_at_the_console_are_read_as_replacement_characters(
    console: Callable[[Sequence[ConsoleUser]], ConsoleSession],
) -> None:
    session = console([ConsoleUser("me", "Me", "en")])
    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9 \xff\xfe\n/help\n"), encoding="utf-8")
    stdout = io.StringIO()
    await run_console(session, stdin, stdout, prompt=False)
    printed = stdout.getvalue()
    assert not _failed(printed.splitlines())
    assert "/menu" in printed  # /help answered after the line that was not UTF-8


def test_clean_input_drops_controls_and_replaces_lone_surrogates() -> None:
    assert clean_input("a\x00b\x1bc\x7fd\te\nf\r", 100) == "abcd\te\nf"
    assert clean_input("x\ud800y\udfffz", 100) == "x\ufffdy\ufffdz"
    assert clean_input("邻里" * 10, 5) == "邻里邻里邻"
    assert clean_language_code("x" * 40) is None
    assert clean_language_code("zh-hans") == "zh-hans"
    assert clean_language_code("en\x00") is None


# --- what a Telegram client sends --------------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_a_telegram_user_with_a_nul_in_the_name_and_a_long_language_code_can_start_and_go_on(
    telegram: FakeBotApi, uows: UnitOfWorkFactory, zh: Localizer
) -> None:
    fake = telegram
    fake.push_message(501, "/start", first_name="A\x00B", language_code="x" * 40)
    (welcome,) = await fake.wait_for_messages(501, 1)
    assert welcome.text is not None and parse_telegram_html(welcome.text)[0].startswith("AB"), welcome.text
    # Unknown language: the community's default, Chinese. The person goes on: asks to join.
    ask = next(b for b in welcome.buttons() if b["text"] == zh.label("Ask to join"))
    fake.push_callback(501, ask["callback_data"], welcome.message_id, language_code="x" * 40)
    await fake.wait_for(lambda _: len(fake.callback_answers) == 1)
    fake.push_message(501, "/help", first_name="A\x00B", language_code="x" * 40)
    *_, helped = await fake.wait_for_messages(501, 3)
    assert helped.text is not None and "出错" not in helped.text

    async with uows() as uow:
        rows = (
            await uow.session.exec(
                select(Person.display_name, ChannelAccount.language_code)
                .join(ChannelAccount, col(ChannelAccount.person_id) == col(Person.id))
                .where(col(ChannelAccount.external_id) == "501")
            )
        ).all()
    assert [tuple(row) for row in rows] == [("AB", None)]


# --- dates at the end of the calendar ----------------------------------------------------------------------------

FAR_AHEAD = ("9999-12-31 23:59", "9999-12-25 09:00", "９９９９－１２－３１ ２３：５９")
TOO_FAR = "Please give a time before the year 3000."


@pytest.mark.usefixtures("demo")
async def test_a_notice_scheduled_in_the_year_9999_is_refused_with_the_reason(
    console: Callable[[Sequence[ConsoleUser]], ConsoleSession],
) -> None:
    session = console([WORKER])
    out = await script(session, "/notice", "Water off on Friday.")
    out = await tap(session, out, "Buildings ›", "3号楼", "‹ Back", "Next ›", "Send later…")
    for typed in FAR_AHEAD:
        assert await session.feed(typed) == [TOO_FAR]
    assert await session.feed("0001-01-01 00:00") == [
        "That time has already passed. Choose a later time to send the notice."
    ]
    out = await session.feed("2026-03-02 08:30")
    assert "Goes out: Mar 2, 2026, 8:30\u202fAM" in out


@pytest.mark.usefixtures("demo")
async def test_a_consultation_opening_or_closing_in_the_year_9999_is_refused_with_the_reason(
    console: Callable[[Sequence[ConsoleUser]], ConsoleSession],
) -> None:
    session = console([WORKER])
    out = await script(session, "/newconsultation", "Street lights", "Are they bright enough?")
    out = await tap(session, out, "Next ›", "Open later…")
    for typed in FAR_AHEAD:
        assert await session.feed(typed) == [TOO_FAR]
    assert await session.feed("0001-01-01 00:00") == [
        "That opening time has already passed. Choose a later one, or open it now."
    ]
    out = await session.feed("2026-03-02 09:00")
    assert "Opens: Mar 2, 2026, 9:00\u202fAM" in out
    out = await tap(session, out, "Close at…")
    for typed in FAR_AHEAD:
        assert await session.feed(typed) == [TOO_FAR]
    assert await session.feed("0001-01-01 00:00") == ["The closing time must be after the opening time."]
    out = await session.feed("2026-03-09 09:00")
    assert not _failed(out) and has(out, "Closes: Mar 9, 2026, 9:00\u202fAM"), out
