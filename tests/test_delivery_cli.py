"""The delivery engine as the app wires it: its settings, the transports build_app picks, the console transport,
`linli run` in the console showing deliveries, `linli deliver` as a process of its own, and
`linli notices status ID`. On an SQLite file (the command line's default database)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner, Result

from bot.app import build_app
from bot.channels.console import ConsoleSession, ConsoleUser
from bot.channels.console_delivery import ConsoleTransport
from bot.channels.telegram_delivery import TelegramTransport
from bot.cli import create_cli, progress_bar
from bot.config import ConfigError, load_settings
from bot.delivery.sender import Sender, SenderOptions
from bot.notices.progress_editor import ProgressEditor
from community import outbox
from community.clock import SystemClock
from community.communities import add_community
from community.db import create_engine, session_factory, sqlite_url_for
from community.demo import WUTONG
from community.keys import KEY_FILE_NAME, SiteKey
from community.migrate import upgrade
from community.models import ChannelAccount, Community
from community.notice_models import DeliveryStatus, MessageKind, Notice, NoticeStatus, OutboxMessage
from community.outbox import OutboxButton, Outcomes, Outgoing
from community.roles import CommunityKind
from community.unit_of_work import UnitOfWorkFactory
from tests.support.demo_people import WANG, WORKER
from tests.support.fake_bot_api import FakeBotApi

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

pytestmark = pytest.mark.usefixtures("localizers", "restore_logging")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"LINLI_DATA_DIR": str(tmp_path / "data"), "LINLI_LANGUAGE": "en"}


def linli(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(create_cli(env), list(args), input=stdin)


def on_database(env: dict[str, str], work: Callable[[UnitOfWorkFactory], Awaitable[T]]) -> T:
    """Run some work on the command line's database (migrated first), outside the command line."""
    assert linli(env, "db", "upgrade").exit_code == 0
    url = sqlite_url_for(Path(env["LINLI_DATA_DIR"]).absolute())

    async def run() -> T:
        engine = create_engine(url)
        try:
            return await work(
                UnitOfWorkFactory(
                    session_factory(engine), SystemClock(), SiteKey.in_file(Path(env["LINLI_DATA_DIR"]) / KEY_FILE_NAME)
                )
            )
        finally:
            await engine.dispose()

    return asyncio.run(run())


# ---- settings and wiring ---------------------------------------------------------------------------------


def test_the_send_rate_and_paid_broadcasts_come_from_the_environment() -> None:
    default = load_settings({})
    assert default.send_rate == 30 and not default.paid_broadcast
    paid = load_settings({"LINLI_SEND_RATE": "1000", "LINLI_PAID_BROADCAST": "true"})
    assert paid.send_rate == 1000 and paid.paid_broadcast
    assert not load_settings({"LINLI_PAID_BROADCAST": "0"}).paid_broadcast
    for bad in ("0", "1001", "fast", "nan"):
        with pytest.raises(ConfigError) as raised:
            load_settings({"LINLI_SEND_RATE": bad})
        assert raised.value.setting == "LINLI_SEND_RATE"
    with pytest.raises(ConfigError) as flag:
        load_settings({"LINLI_PAID_BROADCAST": "maybe"})
    assert flag.value.setting == "LINLI_PAID_BROADCAST"


def test_a_bad_send_rate_stops_the_command_line_naming_it(env: dict[str, str]) -> None:
    result = linli({**env, "LINLI_SEND_RATE": "5000"}, "run")
    assert result.exit_code == 2
    assert "LINLI_SEND_RATE must be a number of messages a second from 1 to 1000" in result.output


async def test_the_app_delivers_through_the_channel_it_runs(tmp_path: Path) -> None:
    settings = load_settings(
        {"LINLI_DATA_DIR": str(tmp_path), "TELEGRAM_BOT_TOKEN": "123456:TEST", "LINLI_PAID_BROADCAST": "1"}
    )
    async with await build_app(settings) as app:
        (telegram,) = app.delivery.transports.values()
        assert isinstance(telegram, TelegramTransport) and telegram.paid_broadcast
        assert "123456:TEST" not in repr(telegram)
        assert app.delivery.options.rate == 30
        assert isinstance(app.delivery.on_progress, ProgressEditor)
    console = load_settings({"LINLI_DATA_DIR": str(tmp_path), "LINLI_SEND_RATE": "12"})
    async with await build_app(console) as app:
        assert [type(t) for t in app.delivery.transports.values()] == [ConsoleTransport]
        assert app.delivery.options.rate == 12


# ---- the console -------------------------------------------------------------------------------------------


async def test_the_console_shows_deliveries_and_keeps_others_in_their_inbox(
    uows: UnitOfWorkFactory, console: Callable[[Sequence[ConsoleUser]], ConsoleSession]
) -> None:
    session = console([WORKER, WANG])
    printed: list[str] = []
    transport = ConsoleTransport()
    transport.attach(session, printed.extend)
    ack = ((OutboxButton("确认收到", data="na:7"),),)
    async with uows() as uow:
        await outbox.enqueue(
            uow,
            [
                Outgoing("console", "wang", "<b>停水通知</b>", buttons=ack),
                Outgoing("console", "worker", "Your notice is going out"),
                Outgoing("console", "wang", "图片说明", kind=MessageKind.PHOTO, file_ref="console:water.jpg"),
            ],
            not_before=uow.clock.now(),
        )
        await uow.commit()
    sender = Sender(uows, {"console": transport}, SenderOptions(chat_interval=0.01))
    await asyncio.wait_for(sender.run(until_idle=True), timeout=10)

    assert printed == ["→ a message was sent to 王芳", "Your notice is going out", "→ a message was sent to 王芳"]
    assert await session.feed("/as wang") == [
        "— you are now 王芳 (wang) —",
        "停水通知",
        "  [1] 确认收到",
        "📎 water.jpg",
        "图片说明",
    ]
    async with uows() as uow:
        rows = (await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    assert [row.status for row in rows] == [DeliveryStatus.SENT] * 3
    worker_message = rows[1].external_id
    assert worker_message is not None

    # An edit (a progress message) shows at once to the person you are, else waits in their inbox.
    printed.clear()
    await transport.edit_text("worker", worker_message, "Delivered: 2 of 2")
    assert printed == []
    assert (await session.feed("/as worker"))[1:] == ["(the message above was changed)", "Delivered: 2 of 2"]
    await transport.edit_text("worker", worker_message, "Delivered: 3 of 3")
    assert printed == ["(the message above was changed)", "Delivered: 3 of 3"]


def test_run_in_the_console_shows_what_was_delivered_before_reading_on(env: dict[str, str]) -> None:
    """Messages already queued (as a notice queues them) reach the console's people while it runs; each line's
    deliveries are shown before the next line is read."""
    assert linli(env, "db", "upgrade").exit_code == 0
    assert linli(env, "demo", "seed").exit_code == 0

    async def queue(uows: UnitOfWorkFactory) -> None:
        async with uows() as uow:
            messages = [Outgoing("console", "wang", "<b>停水通知</b> 3号楼"), Outgoing("console", "chen", "Water")]
            await outbox.enqueue(uow, messages, not_before=uow.clock.now())
            await uow.commit()

    on_database(env, queue)
    result = linli(env, "run", stdin="/as wang\n/as chen\n")
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    became_wang = out.index("— you are now 王芳 (wang) —")
    assert out[became_wang + 1 : became_wang + 3] == ["停水通知 3号楼", "→ a message was sent to 陈晓"]
    assert out[out.index("— you are now 陈晓 (chen) —") + 1] == "Water"


# ---- linli notices status ------------------------------------------------------------------------------------


def test_notices_status_draws_the_progress_and_the_counts(env: dict[str, str]) -> None:
    async def seed(uows: UnitOfWorkFactory) -> int:
        async with uows() as uow:
            community = await add_community(uow, name="梧桐社区", kind=CommunityKind.NEIGHBOURHOOD)
            assert community.id is not None
            notice = Notice(community_id=community.id, body="停水", language="zh_Hans", created_at=uow.clock.now())
            uow.session.add(notice)
            await uow.session.flush()
            assert notice.id is not None
            messages = [Outgoing("telegram", str(100 + n), "停水", notice_id=notice.id) for n in range(10)]
            await outbox.enqueue(uow, messages, not_before=uow.clock.now())
            await uow.commit()
        async with uows() as uow:
            now = uow.clock.now()
            claimed = await outbox.claim(uow, "cli-test", now, 5, now, ["telegram"])
            sent = [(int(m.id or 0), "1", now) for m in claimed[:4]]
            await outbox.record(uow, "cli-test", Outcomes(sent=sent, failed=[(int(claimed[4].id or 0), "x")]), now)
            await uow.commit()
        return notice.id

    notice_id = on_database(env, seed)
    result = linli(env, "notices", "status", str(notice_id))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Notice {notice_id}: {'█' * 15}{'░' * 15} 4 of 10 sent",
        "  queued: 5   sent: 4   failed: 1",
    ]


def test_notices_status_of_an_unknown_notice_fails_with_its_id(env: dict[str, str]) -> None:
    linli(env, "db", "upgrade")
    result = linli(env, "notices", "status", "4242")
    assert result.exit_code == 1
    assert "There is no notice with id 4242." in result.output


def test_the_bar() -> None:
    assert progress_bar(0, 0, 4) == "░░░░"
    assert progress_bar(1, 4, 4) == "█░░░"
    assert progress_bar(4, 4, 4) == "████"


# ---- linli deliver -------------------------------------------------------------------------------------------


def test_deliver_needs_telegram(env: dict[str, str]) -> None:
    linli(env, "db", "upgrade")
    result = linli(env, "deliver")
    assert result.exit_code == 2
    assert "TELEGRAM_BOT_TOKEN" in result.output


@pytest.mark.e2e
async def test_deliver_is_a_process_that_sends_the_queue_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    engine = create_engine(sqlite_url_for(data.absolute()))
    await upgrade(engine)
    uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.in_file(data / KEY_FILE_NAME))
    async with uows() as uow:
        messages = [Outgoing("telegram", str(500 + n), f"通知 {n}") for n in range(20)]
        await outbox.enqueue(uow, messages, not_before=uow.clock.now())
        await uow.commit()
    async with FakeBotApi() as fake:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "deliver",
            cwd=ROOT,
            env={
                **os.environ,
                "LINLI_DATA_DIR": str(data),
                "LINLI_LANGUAGE": "en",
                "TELEGRAM_BOT_TOKEN": fake.token,
                "TELEGRAM_API_BASE": fake.base_url,
                "LINLI_SEND_RATE": "200",
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line.decode().startswith("Linli is delivering messages, at most 200 a second.")
            await fake.wait_for(lambda sent: len(sent) >= 20, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=60)
        errors = (await process.stderr.read()).decode()
    assert code == 0, errors
    assert fake.token not in errors
    async with uows() as uow:
        rows = (await uow.session.exec(select(OutboxMessage))).all()
    assert {row.status for row in rows} == {DeliveryStatus.SENT}
    await engine.dispose()


def test_demo_seed_with_a_token_adds_the_console_people_only_when_asked(tmp_path: Path) -> None:
    async def console_accounts(uows: UnitOfWorkFactory) -> int:
        async with uows() as uow:
            return len((await uow.session.exec(select(ChannelAccount))).all())

    telegram_env = {"LINLI_DATA_DIR": str(tmp_path / "tg"), "LINLI_LANGUAGE": "en", "TELEGRAM_BOT_TOKEN": "1:x"}
    assert linli(telegram_env, "db", "upgrade").exit_code == 0
    result = linli(telegram_env, "demo", "seed")
    assert result.exit_code == 0, result.output
    assert "without the console's people" in result.stdout
    assert on_database(telegram_env, console_accounts) == 0

    asked = {**telegram_env, "LINLI_DATA_DIR": str(tmp_path / "asked")}
    assert linli(asked, "db", "upgrade").exit_code == 0
    result = linli(asked, "demo", "seed", "--console-people")
    assert result.exit_code == 0, result.output
    assert on_database(asked, console_accounts) == 14  # one for each of the demo's people


@pytest.mark.e2e
async def test_linli_run_on_telegram_ends_the_console_rows_of_a_database_first_run_in_the_console(
    tmp_path: Path,
) -> None:
    """Issue 9: `make run` without a token seeded the console's people; a notice to 梧桐社区 queued rows for them
    and for one Telegram resident. `linli run` with a token sends the Telegram one and ends the five console ones
    as not reachable on this channel, so the notice is over and `linli notices status` says so."""
    env = {"LINLI_DATA_DIR": str(tmp_path / "data"), "LINLI_LANGUAGE": "en"}
    # The command line runs an event loop of its own: here, in a thread.
    assert (await asyncio.to_thread(linli, env, "db", "upgrade")).exit_code == 0
    assert (await asyncio.to_thread(linli, env, "demo", "seed")).exit_code == 0

    async def queue(uows: UnitOfWorkFactory) -> int:
        async with uows() as uow:
            community_id = (await uow.session.exec(select(Community.id).where(Community.name == WUTONG))).one()
            assert community_id is not None
            now = uow.clock.now()
            notice = Notice(
                community_id=community_id,
                body="停水",
                language="zh_Hans",
                status=NoticeStatus.SENDING,
                queued_at=now,
                created_at=now,
            )
            uow.session.add(notice)
            await uow.session.flush()
            assert notice.id is not None
            people = ("worker", "committee", "wang", "liu", "chen")
            rows = [Outgoing("console", key, "停水", notice_id=notice.id) for key in people]
            rows.append(Outgoing("telegram", "4242", "停水", notice_id=notice.id))
            await outbox.enqueue(uow, rows, not_before=now)
            await uow.commit()
            return notice.id

    notice_id = await asyncio.to_thread(on_database, env, queue)
    async with FakeBotApi() as fake:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            cwd=ROOT,
            env={
                **os.environ,
                **env,
                "TELEGRAM_BOT_TOKEN": fake.token,
                "TELEGRAM_API_BASE": fake.base_url,
                "LINLI_POLLING_TIMEOUT": "1",
            },
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        try:
            await asyncio.wait_for(process.stdout.readline(), 60)
            await fake.wait_for(lambda sent: len(sent) >= 1, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 60)
        errors = (await process.stderr.read()).decode()
    assert code == 0, errors

    result = await asyncio.to_thread(linli, env, "notices", "status", str(notice_id))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Notice {notice_id}: {'█' * 30} 1 of 6 sent",
        "  queued: 0   sent: 1   not reachable on this channel: 5",
    ]

    async def notice_status(uows: UnitOfWorkFactory) -> NoticeStatus:
        async with uows() as uow:
            notice = await uow.session.get(Notice, notice_id)
            assert notice is not None
            return notice.status

    assert await asyncio.to_thread(on_database, env, notice_status) == NoticeStatus.SENT
