"""What nobody planned for: a handler that raises, a database that refuses a write. The person is told that
something went wrong, with a short reference; the same reference is in the one log line that has the traceback,
and neither that line nor any other holds personal data; nothing half-written stays; the console session and the
Telegram bot go on with the next event. On both databases."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import pytest
from sqlalchemy import func, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.callbacks import CallbackData
from bot.channels.console import ConsoleSession, ConsoleUser, run_console
from bot.context import BotInfo, Context
from bot.conversation import Conversation
from bot.events import Command, ContactShared, TextInput
from bot.rendering import Localizers
from bot.replies import Button, Reply, SendText
from bot.router import Router
from community.communities import add_community, add_member
from community.models import JoinRequest, Person
from community.people import identify
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from tests.support.fake_bot_api import FakeBotApi, parse_telegram_html
from tests.support.telegram import running_bot

NAME = "王芳"
HOME = "12号楼 3单元 501"
PHONE = "13800000000"
GHOST = "幽灵"  # the name a broken handler writes before it fails: it must not stay
FAILED = re.compile(
    r"^Something went wrong on our side and nothing was saved\. Please try again\. "
    r"If it happens again, tell the community worker the reference (?P<reference>[0-9a-f]{8})\.$"
)
ME = ConsoleUser(key="me", name="Wang Fang", language_code="en")


@dataclass(frozen=True)
class Explode(CallbackData):
    prefix: ClassVar[str] = "xx"
    n: int


def broken_router() -> Router:
    """/boom and the Explode button write a person, then fail with personal data in the exception's message;
    anything typed is echoed."""
    router = Router()

    async def boom(ctx: Context, _: object) -> Sequence[Reply]:
        ctx.uow.session.add(Person(display_name=GHOST, phone=PHONE, created_at=ctx.uow.clock.now()))
        await ctx.uow.session.flush()
        raise RuntimeError(f"a bug that quotes {NAME}, {HOME}, {PHONE}")

    async def menu(ctx: Context, _: Command) -> Sequence[Reply]:
        return (SendText("menu", buttons=((Button("explode", Explode(1).pack()),),)),)

    async def echo(ctx: Context, payload: TextInput | ContactShared) -> Sequence[Reply]:
        assert isinstance(payload, TextInput)
        return (SendText(f"echo: {payload.text}"),)

    router.command("boom", boom)
    router.command("menu", menu)
    router.button(Explode, boom)
    router.fallback(echo)
    return router


@pytest.fixture
def broken(uows: UnitOfWorkFactory, localizers: Localizers) -> Conversation:
    return Conversation(uows, broken_router(), localizers, BotInfo("linli_test_bot"))


async def _ghosts(uows: UnitOfWorkFactory) -> int:
    async with uows() as uow:
        return (await uow.session.exec(select(func.count()).where(col(Person.display_name) == GHOST))).one()


def _failure_lines(caplog: pytest.LogCaptureFixture, reference: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if reference in record.getMessage()]


def _assert_no_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    for fragment in (NAME, HOME, PHONE, "138-0000"):
        assert fragment not in caplog.text


async def test_a_handler_that_fails_is_answered_with_a_reference_logged_once_and_rolled_back(
    broken: Conversation, localizers: Localizers, uows: UnitOfWorkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    session = ConsoleSession(broken, [ME], localizers.get("en"))
    with caplog.at_level(logging.INFO):
        (said,) = await session.feed("/boom")
    matched = FAILED.match(said)
    assert matched is not None, said
    reference = matched["reference"]
    (record,) = _failure_lines(caplog, reference)
    assert record.levelno == logging.ERROR
    logged = record.getMessage()
    assert "RuntimeError" in logged and "in boom" in logged  # the traceback, to find the bug by
    _assert_no_personal_data(caplog)
    assert await _ghosts(uows) == 0  # nothing half-written

    # The session goes on; a second failure gets a reference of its own.
    assert await session.feed("hello") == ["echo: hello"]
    await session.feed("/menu")
    (again,) = await session.feed("1")  # the button that fails
    matched_again = FAILED.match(again)
    assert matched_again is not None and matched_again["reference"] != reference
    assert await _ghosts(uows) == 0


async def test_the_reference_is_in_the_readers_language(broken: Conversation, localizers: Localizers) -> None:
    zh_me = ConsoleUser(key="zh", name="王芳", language_code="zh-hans")
    session = ConsoleSession(broken, [zh_me], localizers.get("zh_Hans"))
    (said,) = await session.feed("/boom")
    assert re.search(r"[0-9a-f]{8}", said) and "出错" in said, said


async def test_the_console_loop_goes_on_after_a_failure(broken: Conversation, localizers: Localizers) -> None:
    session = ConsoleSession(broken, [ME], localizers.get("en"))
    stdout = io.StringIO()
    await run_console(session, io.StringIO("/boom\nstill here\n"), stdout, prompt=False)
    printed = stdout.getvalue().splitlines()
    assert any(FAILED.match(line) for line in printed), printed
    assert printed[-1] == "echo: still here"


async def test_the_telegram_bot_answers_a_failure_and_goes_on(
    broken: Conversation, uows: UnitOfWorkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeBotApi() as fake, running_bot(broken, fake):
        with caplog.at_level(logging.INFO):
            fake.push_message(42, "/boom", first_name=NAME, language_code="en")
            (failed,) = await fake.wait_for_messages(42, 1)
        assert failed.text is not None
        matched = FAILED.match(parse_telegram_html(failed.text)[0])
        assert matched is not None, failed.text
        assert _failure_lines(caplog, matched["reference"])
        fake.push_message(42, "/menu", language_code="en")
        _, menu = await fake.wait_for_messages(42, 2)
        fake.push_callback(42, Explode(1).pack(), menu.message_id, language_code="en")
        _, _, pressed = await fake.wait_for_messages(42, 3)
        assert pressed.text is not None and FAILED.match(parse_telegram_html(pressed.text)[0])
        await fake.wait_for(lambda _: len(fake.callback_answers) == 1)  # the spinner stops
        fake.push_message(42, "still here", language_code="en")
        *_, echoed = await fake.wait_for_messages(42, 4)
        assert echoed.text == "echo: still here"
    _assert_no_personal_data(caplog)
    assert await _ghosts(uows) == 0


# --- a database error -----------------------------------------------------------------------------------------


@pytest.fixture
async def join_requests_refused(engine: AsyncEngine) -> AsyncIterator[None]:
    """The database refuses every new join request, as a full disk or a broken constraint would."""
    if engine.dialect.name == "sqlite":
        create = [
            "CREATE TRIGGER refuse_join_request BEFORE INSERT ON join_request "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ]
        drop = ["DROP TRIGGER refuse_join_request"]
    else:
        create = [
            "CREATE FUNCTION refuse_join_request() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse_join_request BEFORE INSERT ON join_request "
            "FOR EACH ROW EXECUTE FUNCTION refuse_join_request()",
        ]
        drop = ["DROP TRIGGER refuse_join_request ON join_request", "DROP FUNCTION refuse_join_request()"]
    async with engine.begin() as conn:
        for statement in create:
            await conn.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            for statement in drop:
                await conn.execute(text(statement))


@pytest.mark.usefixtures("join_requests_refused")
async def test_a_database_error_in_a_join_request_logs_no_name_household_or_phone(
    uows: UnitOfWorkFactory,
    console: Callable[[Sequence[ConsoleUser]], ConsoleSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with uows() as uow:
        community = await add_community(uow, name="康乐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        worker = await identify(uow, channel="console", external_id="worker", chat_id="worker", display_name="李娜")
        await add_member(
            uow, person_id=worker.person_id, community_id=community.id, roles={Role.COMMUNITY_WORKER}, reason="test"
        )
        await uow.commit()
    session = console([ME])
    await session.feed("/start")
    await session.feed("2")  # Ask to join
    await session.feed(NAME)
    await session.feed(HOME)
    out = await session.feed("/contact +86 138-0000-0000")
    assert "Phone: +8613800000000" in out
    with caplog.at_level(logging.DEBUG):
        out = await session.feed("1")  # Send the request
    matched = FAILED.match(out[-1])
    assert matched is not None, out
    assert _failure_lines(caplog, matched["reference"])
    _assert_no_personal_data(caplog)
    assert "+8613800000000" not in caplog.text
    async with uows() as uow:
        assert not (await uow.session.exec(select(JoinRequest))).all()


async def test_a_database_error_does_not_show_the_statements_parameters(engine: AsyncEngine) -> None:
    row = {"id": 1, "display_name": NAME, "phone": PHONE, "created_at": func.now()}
    async with engine.begin() as conn:
        await conn.execute(insert(Person).values(row))
    with pytest.raises(IntegrityError) as caught:
        async with engine.begin() as conn:
            await conn.execute(insert(Person).values(row))
    assert PHONE not in str(caught.value) and NAME not in str(caught.value)
