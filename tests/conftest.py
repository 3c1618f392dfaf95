"""Shared fixtures. Every database test runs twice: on an SQLite file and on the PostgreSQL server
(LINLI_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test). A missing PostgreSQL fails
the run; it is never skipped."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

# The tables to truncate, registered on SQLModel.metadata by importing them.
import community.export_models
import community.models
import community.notice_models  # noqa: F401
import consultation.models  # noqa: F401
from bot.app import build_router, localized_commands, register_renderers
from bot.channels.console import ConsoleSession, ConsoleUser
from bot.channels.telegram_delivery import TelegramTransport
from bot.context import BotInfo
from bot.conversation import Conversation
from bot.delivery.sender import Sender, SenderOptions
from bot.rendering import Localizer, Localizers
from community.anonymity import Anonymity
from community.clock import FakeClock
from community.db import async_url, create_engine, session_factory
from community.demo import seed_demo
from community.keys import SiteKey
from community.migrate import upgrade
from community.notify import Renderers
from community.unit_of_work import UnitOfWorkFactory
from i18n import Catalogs
from i18n.catalog import compile_all
from tests.support.fake_bot_api import FakeBotApi
from tests.support.telegram import running_bot

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run set-up work on a loop of its own, in a thread, so it works whether or not a loop is running."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - handed back to the calling thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _pg_base_url() -> str:
    return async_url(os.environ.get("LINLI_TEST_DATABASE_URL", DEFAULT_PG))


async def _create_pg_database(base: str, name: str) -> None:
    admin = create_engine(base)
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


async def _drop_pg_database(base: str, name: str) -> None:
    admin = create_engine(base)
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this run's own on the PostgreSQL server, migrated to head, dropped at the end."""
    base = _pg_base_url()
    name = f"linli_test_{uuid.uuid4().hex[:12]}"
    try:
        _run(_create_pg_database(base, name))
    except (OSError, Exception) as exc:  # noqa: BLE001 - any failure to reach the server ends the run loudly
        pytest.fail(f"PostgreSQL is required for the tests and could not be reached at {base}: {exc}")
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    _run(_migrate(url))
    yield url
    _run(_drop_pg_database(base, name))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy, which is much faster than migrating again."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    _run(_migrate(f"sqlite:///{path}"))
    return path


async def _truncate(engine: AsyncEngine) -> None:
    names = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "linli.sqlite3"
        shutil.copyfile(template, path)
        engine = create_engine(f"sqlite:///{path}")
    else:
        engine = create_engine(request.getfixturevalue("postgres_url"))
        await _truncate(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def site_key() -> SiteKey:
    """A site key of this test's own (community.keys): nothing keyed may depend on a fixed key."""
    return SiteKey.generate()


@pytest.fixture
def anonymity() -> Anonymity:
    """k (community.anonymity) for the test's units of work: the default, 5, which a consultation for the whole of
    the demo's 梧桐社区 (seven residents) or 稻香村 (five) reaches. A test module about something else whose
    audiences are smaller (a building or two of the demo) overrides this fixture with its own k."""
    return Anonymity()


@pytest.fixture
def uows(
    engine: AsyncEngine, clock: FakeClock, site_key: SiteKey, anonymity: Anonymity, localizers: Localizers
) -> UnitOfWorkFactory:
    """Units of work as the composition root makes them, with the notification renderers registered."""
    renderers = register_renderers(Renderers(), localizers)
    return UnitOfWorkFactory(session_factory(engine), clock, site_key, anonymity, renderers=renderers)


@pytest.fixture(scope="session")
def localizers() -> Localizers:
    """Catalogs compiled from the .po files in the tree, so a test never runs on stale .mo files."""
    compile_all()
    return Localizers(Catalogs())


@pytest.fixture
def zh(localizers: Localizers) -> Localizer:
    """The Chinese reader's localizer, for tests that compare with what a Chinese reader sees."""
    return localizers.get("zh_Hans")


@pytest.fixture
def en(localizers: Localizers) -> Localizer:
    return localizers.get("en")


@pytest.fixture
def bot_info() -> BotInfo:
    return BotInfo(username="linli_test_bot")


@pytest.fixture
def conversation(uows: UnitOfWorkFactory, localizers: Localizers, bot_info: BotInfo) -> Conversation:
    return Conversation(uows, build_router(), localizers, bot_info)


@pytest.fixture
def console(
    conversation: Conversation, localizers: Localizers, tmp_path: Path
) -> Callable[[Sequence[ConsoleUser]], ConsoleSession]:
    """Make a console session over the test database with these people in it."""

    def make(users: Sequence[ConsoleUser]) -> ConsoleSession:
        return ConsoleSession(conversation, users, localizers.get("en"), files_dir=tmp_path / "files")

    return make


@pytest.fixture
async def telegram(conversation: Conversation, localizers: Localizers) -> AsyncIterator[FakeBotApi]:
    """The bot as production runs it, for the Telegram end-to-end tests: the full router, the command menu from
    the catalogs, long polling against the fake Bot API (tests.support.telegram)."""
    commands = localized_commands(localizers, conversation.router)
    async with FakeBotApi() as fake, running_bot(conversation, fake, commands=commands, polling_timeout=1):
        yield fake


@pytest.fixture
async def telegram_delivery(telegram: FakeBotApi, uows: UnitOfWorkFactory) -> AsyncIterator[Sender]:
    """The delivery engine beside the bot, as `linli run` runs it: messages to people other than the one in the
    chat (a join request to the workers, a decision to the requester) go out through the outbox."""
    transport = TelegramTransport(telegram.token, api_base=telegram.base_url)
    sender = Sender(uows, {transport.channel: transport}, SenderOptions(flush_interval=0.01, poll_interval=0.05))
    task = asyncio.create_task(sender.run(), name="test-delivery")
    try:
        yield sender
    finally:
        await sender.aclose()
        await task


@pytest.fixture
async def demo(uows: UnitOfWorkFactory) -> None:
    """The demo's communities and people (community.demo, as `linli demo seed` makes them), for transcripts."""
    async with uows() as uow:
        await seed_demo(uow)
        await uow.commit()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests of code that configures logging (the CLI): put the loggers back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    others = {name: logging.getLogger(name).level for name in ("sqlalchemy", "aiosqlite", "asyncpg", "alembic")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, other_level in others.items():
        logging.getLogger(name).setLevel(other_level)
