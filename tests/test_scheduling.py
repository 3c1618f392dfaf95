"""The scheduler: jobs persisted in the database (SQLite and PostgreSQL) run once with their arguments, survive a
restart, run at start when they came due while no process ran them; and the FakeScheduler that other tests use.

Real time, in fractions of a second: every wait is on an event with a timeout, and "did not run" is shown by a
later job that did run, never by waiting long enough."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.app import build_app
from bot.config import load_settings
from bot.relay import Relay
from bot.scheduling import JOB_FUNCTION, DatabaseScheduler, JobRegistry, run_job, sync_url
from community.clock import FakeClock
from community.errors import LinliError
from community.migrate import alembic_config, upgrade
from community.models import ScheduleRequest
from community.scheduling import JOB_TABLE, JobArgs, JobSpec, Scheduler
from community.unit_of_work import UnitOfWorkFactory
from tests.support.fake_scheduler import FakeScheduler

SOON = timedelta(seconds=0.3)  # room for the scheduling calls before it that must land first
AFTER = SOON + timedelta(seconds=0.05)  # due after SOON, so run after what is due at SOON
TIMEOUT = 10.0  # only reached when something is broken
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = "13800001111"  # an argument that must never reach a log line


class Ledger:
    """A registry whose "remember" job notes its arguments; tests wait for a given tag to come by."""

    def __init__(self) -> None:
        self.seen: list[dict[str, int | str]] = []
        self._arrived = asyncio.Event()
        self.registry = JobRegistry()
        self.registry.register("remember", self.remember)

    async def remember(self, args: JobArgs) -> None:
        self.seen.append(dict(args))
        self._arrived.set()

    def tags(self) -> list[int | str]:
        return [args["tag"] for args in self.seen]

    async def wait_for(self, tag: str) -> None:
        async def arrived() -> None:
            while tag not in self.tags():
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(arrived(), TIMEOUT)


def later(delta: timedelta = SOON) -> datetime:
    return datetime.now(UTC) + delta


@pytest.fixture
async def database_url(engine: AsyncEngine) -> str:
    """The test database's URL. The job table is not one of SQLModel's, which the fixtures empty between tests
    on the run's PostgreSQL database, so it is dropped here: every test starts without jobs."""
    async with engine.begin() as connection:
        await connection.execute(text(f'DROP TABLE IF EXISTS "{JOB_TABLE}"'))
    return engine.url.render_as_string(hide_password=False)


Make = Callable[..., DatabaseScheduler]


@pytest.fixture
async def make_scheduler(database_url: str) -> AsyncIterator[Make]:
    """Schedulers on the test database, shut down at the end whatever happened."""
    made: list[DatabaseScheduler] = []

    def make(registry: JobRegistry, **options: float) -> DatabaseScheduler:
        scheduler = DatabaseScheduler(database_url, registry, **options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        await scheduler.shutdown()


# ---- the real scheduler, on both databases -----------------------------------------------------------------


async def test_a_job_runs_once_with_its_arguments(make_scheduler: Make) -> None:
    ledger = Ledger()
    scheduler = make_scheduler(ledger.registry)
    await scheduler.start()
    await scheduler.at("job:1", later(), "remember", {"tag": "first", "notice_id": 7})
    await scheduler.at("job:2", later(AFTER), "remember", {"tag": "after"})
    await ledger.wait_for("after")
    assert ledger.seen == [{"tag": "first", "notice_id": 7}, {"tag": "after"}]
    assert await scheduler.next_run("job:1") is None


async def test_scheduling_the_same_key_again_replaces_the_job(make_scheduler: Make) -> None:
    ledger = Ledger()
    scheduler = make_scheduler(ledger.registry)
    await scheduler.start()
    await scheduler.at("notice:1:send", later(), "remember", {"tag": "old"})
    await scheduler.at("notice:1:send", later(), "remember", {"tag": "new"})
    await scheduler.at("sentinel", later(AFTER), "remember", {"tag": "sentinel"})
    await ledger.wait_for("sentinel")
    assert ledger.tags() == ["new", "sentinel"]


async def test_a_cancelled_job_does_not_run_and_cancelling_nothing_is_fine(make_scheduler: Make) -> None:
    ledger = Ledger()
    scheduler = make_scheduler(ledger.registry)
    await scheduler.start()
    await scheduler.at("notice:1:send", later(), "remember", {"tag": "cancelled"})
    await scheduler.at("sentinel", later(AFTER), "remember", {"tag": "sentinel"})
    await scheduler.cancel("notice:1:send")
    await scheduler.cancel("notice:1:send")
    await scheduler.cancel("never-scheduled")
    await ledger.wait_for("sentinel")
    assert ledger.tags() == ["sentinel"]


async def test_a_job_survives_a_restart(make_scheduler: Make) -> None:
    first = Ledger()
    before = make_scheduler(first.registry)
    await before.start()
    await before.at("notice:1:send", later(), "remember", {"tag": "persisted"})
    await before.shutdown()

    second = Ledger()
    after = make_scheduler(second.registry)
    await after.start()
    await second.wait_for("persisted")
    assert first.seen == []
    assert second.seen == [{"tag": "persisted"}]


async def test_a_job_that_came_due_while_no_process_ran_jobs_runs_at_start(make_scheduler: Make) -> None:
    ledger = Ledger()
    runner = make_scheduler(ledger.registry)

    async def follow_up(args: JobArgs) -> None:
        await ledger.remember(args)
        await runner.at("follow-up", datetime.now(UTC), "remember", {"tag": "follow-up"})

    ledger.registry.register("follow_up", follow_up)
    # A process that only stores jobs (run_jobs=False) leaves them for the one that runs them.
    store_only = make_scheduler(ledger.registry)
    await store_only.start(run_jobs=False)
    await store_only.at("notice:1:send", datetime.now(UTC) - timedelta(hours=3), "follow_up", {"tag": "overdue"})
    await store_only.shutdown()
    assert ledger.seen == []

    await runner.start()
    await ledger.wait_for("follow-up")  # the overdue job ran at start, and could schedule another
    assert ledger.tags() == ["overdue", "follow-up"]


async def test_the_running_scheduler_picks_up_a_job_another_process_added(make_scheduler: Make) -> None:
    ledger = Ledger()
    runner = make_scheduler(ledger.registry, poll_interval=0.1)
    await runner.start()
    other = make_scheduler(JobRegistry())
    await other.start(run_jobs=False)
    await other.at("from-elsewhere", later(), "remember", {"tag": "elsewhere"})
    await ledger.wait_for("elsewhere")
    assert ledger.tags() == ["elsewhere"]


async def test_a_job_scheduled_from_any_task_finds_the_registry(make_scheduler: Make) -> None:
    """A handler's task need not descend from the one that started the scheduler."""
    ledger = Ledger()
    scheduler = make_scheduler(ledger.registry)
    await scheduler.start()

    async def handler() -> None:
        await scheduler.at("from-a-handler", later(), "remember", {"tag": "handler"})

    await asyncio.get_running_loop().create_task(handler(), context=contextvars.Context())
    await ledger.wait_for("handler")


async def test_daily_runs_at_the_time_of_day_in_its_zone(make_scheduler: Make) -> None:
    ledger = Ledger()
    ledger.registry.every_day("notice.digest", time(19, 0), "Asia/Shanghai", "remember", {"tag": "digest"})
    scheduler = make_scheduler(ledger.registry)
    before = datetime.now(SHANGHAI)
    await scheduler.start()
    await scheduler.daily("morning", time(7, 30), "Asia/Shanghai", "remember", {"tag": "morning"})

    def expected(at: time) -> datetime:
        today = datetime.combine(before.date(), at, tzinfo=SHANGHAI)
        return today if today >= before else today + timedelta(days=1)

    digest = await scheduler.next_run("notice.digest")
    morning = await scheduler.next_run("morning")
    assert digest == expected(time(19, 0))
    assert morning == expected(time(7, 30))
    assert morning is not None and morning.astimezone(SHANGHAI).hour == 7


@dataclass(frozen=True, slots=True)
class Tagged:
    tag: str


TAGGED = JobSpec("tagged", Tagged, "tagged:{tag}")


async def _rows(uows: UnitOfWorkFactory) -> list[tuple[str, bool]]:
    async with uows() as uow:
        found = await uow.session.exec(select(ScheduleRequest).order_by(col(ScheduleRequest.id)))
        return [(row.key, row.handed) for row in found.all()]


class WatchedRelay(Relay):
    """A relay that says when a job's row is gone (just after the job returned)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished_one = asyncio.Event()

    async def finished(self, row_id: int) -> None:
        await super().finished(row_id)
        self.finished_one.set()

    async def drained(self) -> None:
        async def gone() -> None:
            while True:
                self.finished_one.clear()
                if not await _rows(self.uows):
                    return
                await self.finished_one.wait()

        await asyncio.wait_for(gone(), TIMEOUT)


async def test_the_relay_hands_committed_rows_to_the_scheduler_at_start_and_at_once_after_a_commit(
    make_scheduler: Make, uows: UnitOfWorkFactory
) -> None:
    """Consequences as rows: what a transaction scheduled runs once it has committed, never if it rolled back;
    rows written before the start (another process, a crash) are replayed; a row is gone once its job ran."""
    ledger = Ledger()
    typed: list[Tagged] = []

    async def remember(args: Tagged) -> None:
        typed.append(args)
        await ledger.remember({"tag": args.tag})

    ledger.registry.register(TAGGED, remember)
    async with uows() as uow:
        uow.schedule(TAGGED, later(), Tagged("before the start"))
        await uow.commit()
    async with uows() as uow:
        uow.schedule(TAGGED, later(), Tagged("rolled back"))
        await uow.rollback()
    scheduler = make_scheduler(ledger.registry)
    relay = WatchedRelay(uows, scheduler, ledger.registry, poll_interval=TIMEOUT * 10)  # only a commit wakes it
    await scheduler.start()
    await relay.start()
    try:
        await ledger.wait_for("before the start")
        async with uows() as uow:
            uow.schedule(TAGGED, later(), Tagged("cancelled"))
            uow.schedule(TAGGED, later(AFTER), Tagged("after a commit"))  # due after the cancelled one
            uow.unschedule(TAGGED, Tagged("cancelled"))
            await uow.commit()
        await ledger.wait_for("after a commit")
        await relay.drained()
    finally:
        await relay.stop()
    assert ledger.tags() == ["before the start", "after a commit"]
    assert typed == [Tagged("before the start"), Tagged("after a commit")]


async def test_a_row_whose_job_did_not_finish_is_replayed_at_the_next_start(
    make_scheduler: Make, uows: UnitOfWorkFactory
) -> None:
    """Handed but not run (the process stopped first): the row stays, and the next start hands it again."""
    ledger = Ledger()
    ledger.registry.register(TAGGED, lambda args: ledger.remember({"tag": args.tag}))
    async with uows() as uow:
        uow.schedule(TAGGED, later(timedelta(hours=1)), Tagged("in an hour"))
        await uow.commit()
    first = make_scheduler(ledger.registry)
    relay = Relay(uows, first, ledger.registry)
    await first.start()
    await relay.start()
    await relay.stop()
    await first.shutdown()
    assert await _rows(uows) == [("tagged:in an hour", True)]
    async with uows() as uow:
        uow.schedule(TAGGED, later(), Tagged("in an hour"))  # moved: the same key replaces the job
        await uow.commit()
    second = make_scheduler(ledger.registry)
    await second.start()
    relay = WatchedRelay(uows, second, ledger.registry)
    await relay.start()
    try:
        await ledger.wait_for("in an hour")
        await relay.drained()
    finally:
        await relay.stop()
    assert ledger.tags() == ["in an hour"]


async def test_a_job_due_at_start_runs_once_though_its_row_is_replayed(
    make_scheduler: Make, uows: UnitOfWorkFactory
) -> None:
    """Handed to the store, then the process stopped before it came due: at the next start both the store and the
    replayed row hold it. The replay comes before any job runs (App.start_jobs), so it runs once."""
    ledger = Ledger()
    ledger.registry.register(TAGGED, lambda args: ledger.remember({"tag": args.tag}))
    async with uows() as uow:
        uow.schedule(TAGGED, datetime.now(UTC), Tagged("due"))
        await uow.commit()
    store_only = make_scheduler(ledger.registry)
    await store_only.start(run_jobs=False)
    await Relay(uows, store_only, ledger.registry).hand_over()
    await store_only.shutdown()
    assert await _rows(uows) == [("tagged:due", True)]

    runner = make_scheduler(ledger.registry)
    relay = WatchedRelay(uows, runner, ledger.registry)
    await runner.start(before_jobs=relay.replay)
    await relay.start(replay=False)
    try:
        await ledger.wait_for("due")
        async with uows() as uow:
            uow.schedule(TAGGED, later(), Tagged("after"))
            await uow.commit()
        await ledger.wait_for("after")
        await relay.drained()
    finally:
        await relay.stop()
    assert ledger.tags() == ["due", "after"]


def test_a_job_spec_takes_a_frozen_dataclass_of_ints_and_strings() -> None:
    assert TAGGED.key(Tagged("x")) == "tagged:x"
    assert TAGGED.decode(TAGGED.encode(Tagged("x"))) == Tagged("x")
    with pytest.raises(TypeError):
        TAGGED.decode({"tag": 3})

    @dataclass(slots=True)
    class Loose:
        tag: str

    @dataclass(frozen=True, slots=True)
    class Floating:
        share: float

    with pytest.raises(TypeError):
        JobSpec("loose", Loose, "loose:{tag}")
    with pytest.raises(TypeError):
        JobSpec("floating", Floating, "floating:{share}")
    with pytest.raises(KeyError):
        JobSpec("typo", Tagged, "typo:{tga}")


async def test_an_unknown_job_is_logged_and_dropped_and_the_others_run(
    make_scheduler: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # Scheduled by a version of Linli that had the job "notice.old", run by one that has it no more.
    before = make_scheduler(JobRegistry())
    await before.start(run_jobs=False)
    await before.at("notice:1:old", later(), "notice.old", {"phone": PHONE})
    await before.shutdown()

    ledger = Ledger()
    scheduler = make_scheduler(ledger.registry)
    await scheduler.start()
    await scheduler.at("sentinel", later(AFTER), "remember", {"tag": "sentinel"})
    await ledger.wait_for("sentinel")
    assert ledger.tags() == ["sentinel"]
    assert "notice.old" in caplog.text
    assert PHONE not in caplog.text
    assert await scheduler.next_run("notice:1:old") is None


async def test_a_failing_job_is_logged_and_the_scheduler_goes_on(
    make_scheduler: Make, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger()

    async def refused(args: JobArgs) -> None:
        raise LinliError("Refused for %(phone)s.", phone=args["phone"])

    async def broken(args: JobArgs) -> None:
        raise RuntimeError("a bug")

    ledger.registry.register("refused", refused)
    ledger.registry.register("broken", broken)
    scheduler = make_scheduler(ledger.registry)
    await scheduler.start()
    await scheduler.at("a", later(), "refused", {"phone": PHONE})
    await scheduler.at("b", later(), "broken", {"phone": PHONE})
    await scheduler.at("sentinel", later(AFTER), "remember", {"tag": "sentinel"})
    await ledger.wait_for("sentinel")
    assert "Refused for %(phone)s." in caplog.text
    assert "a bug" in caplog.text
    assert PHONE not in caplog.text


async def test_shutdown_lets_a_running_job_finish(make_scheduler: Make) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def slow(args: JobArgs) -> None:
        started.set()
        await release.wait()
        finished.append("done")

    registry = JobRegistry()
    registry.register("slow", slow)
    scheduler = make_scheduler(registry)
    await scheduler.start()
    await scheduler.at("slow", later(), "slow", {})
    await asyncio.wait_for(started.wait(), TIMEOUT)
    stopping = asyncio.ensure_future(scheduler.shutdown())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, TIMEOUT)
    assert finished == ["done"]


async def test_scheduling_needs_a_started_scheduler_and_an_aware_time(make_scheduler: Make) -> None:
    scheduler = make_scheduler(JobRegistry())
    with pytest.raises(RuntimeError):
        await scheduler.at("k", later(), "remember", {})
    await scheduler.start(run_jobs=False)
    with pytest.raises(ValueError):
        await scheduler.at("k", datetime.now(), "remember", {})
    with pytest.raises(ValueError):
        await scheduler.daily("k", time(19), "Asia/Nowhere", "remember", {})


# ---- without a database ------------------------------------------------------------------------------------


async def test_a_job_run_outside_a_scheduler_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    await asyncio.get_running_loop().create_task(
        run_job(key="k", job="remember", args={"phone": PHONE}), context=contextvars.Context()
    )
    assert "outside a Linli scheduler" in caplog.text
    assert PHONE not in caplog.text


def test_the_stored_reference_is_run_job() -> None:
    module, name = JOB_FUNCTION.split(":")
    assert (module, name) == (run_job.__module__, run_job.__name__)


@pytest.mark.parametrize(
    ("app_url", "job_store_url"),
    [
        ("sqlite+aiosqlite:///var/linli.sqlite3", "sqlite:///var/linli.sqlite3"),
        ("sqlite:////srv/linli.sqlite3", "sqlite:////srv/linli.sqlite3"),
        ("postgresql+asyncpg://linli:pw@db:5432/linli", "postgresql+psycopg://linli:pw@db:5432/linli"),
        ("postgresql://linli@db/linli", "postgresql+psycopg://linli@db/linli"),
        ("postgresql+asyncpg://linli@db/linli?ssl=require", "postgresql+psycopg://linli@db/linli?sslmode=require"),
    ],
)
def test_the_job_store_speaks_the_apps_database_synchronously(app_url: str, job_store_url: str) -> None:
    assert sync_url(app_url).render_as_string(hide_password=False) == job_store_url


def test_a_job_name_is_registered_once_and_a_daily_zone_must_exist() -> None:
    registry = JobRegistry()
    ledger = Ledger()
    registry.register("remember", ledger.remember)
    with pytest.raises(ValueError):
        registry.register("remember", ledger.remember)
    with pytest.raises(ValueError):
        registry.every_day("digest", time(19), "Mars/Olympus", "remember")


async def test_the_app_runs_the_scheduler_it_is_given(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = load_settings({"LINLI_DATA_DIR": str(tmp_path)})
    async with await build_app(settings, clock, scheduler=lambda jobs: FakeScheduler(clock, jobs)) as app:
        assert isinstance(app.scheduler, FakeScheduler)
        assert app.scheduler.registry is app.jobs
        await upgrade(app.engine)  # as `linli run` does before starting: the relay reads its rows
        await app.start_jobs()
        assert app.scheduler.started
    assert not app.scheduler.started


# ---- the FakeScheduler -------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[tuple[FakeClock, FakeScheduler, Ledger]]:
    clock = FakeClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))  # 17:00 in Shanghai
    ledger = Ledger()
    yield clock, FakeScheduler(clock, ledger.registry), ledger


async def test_the_fake_runs_a_job_when_the_clock_reaches_it(fake: tuple[FakeClock, FakeScheduler, Ledger]) -> None:
    clock, scheduler, ledger = fake
    fake_scheduler: Scheduler = scheduler  # it is a Scheduler
    await fake_scheduler.at("notice:1:send", clock.now() + timedelta(hours=1), "remember", {"tag": "send"})
    clock.advance(timedelta(minutes=59))
    assert await scheduler.run_due() == 0
    assert ledger.seen == []
    clock.advance(timedelta(minutes=1))
    assert await scheduler.run_due() == 1
    assert ledger.seen == [{"tag": "send"}]
    clock.advance(timedelta(days=1))
    assert await scheduler.run_due() == 0


async def test_the_fake_replaces_by_key_and_cancels(fake: tuple[FakeClock, FakeScheduler, Ledger]) -> None:
    clock, scheduler, ledger = fake
    await scheduler.at("a", clock.now() + timedelta(minutes=5), "remember", {"tag": "old"})
    await scheduler.at("a", clock.now() + timedelta(minutes=10), "remember", {"tag": "new"})
    await scheduler.at("b", clock.now() + timedelta(minutes=1), "remember", {"tag": "cancelled"})
    await scheduler.cancel("b")
    await scheduler.cancel("b")
    clock.advance(timedelta(minutes=5))
    assert await scheduler.run_due() == 0
    clock.advance(timedelta(minutes=5))
    assert await scheduler.run_due() == 1
    assert ledger.tags() == ["new"]


async def test_the_fake_runs_a_daily_job_once_a_day_in_its_zone(fake: tuple[FakeClock, FakeScheduler, Ledger]) -> None:
    clock, scheduler, ledger = fake
    ledger.registry.every_day("notice.digest", time(19), "Asia/Shanghai", "remember", {"tag": "digest"})
    await scheduler.start()
    assert await scheduler.next_run("notice.digest") == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    clock.advance(timedelta(hours=1, minutes=59))  # 18:59 in Shanghai
    assert await scheduler.run_due() == 0
    clock.advance(timedelta(minutes=1))
    assert await scheduler.run_due() == 1
    assert await scheduler.next_run("notice.digest") == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    clock.advance(timedelta(days=3, hours=2))  # three days without a run: one run, then the next evening
    assert await scheduler.run_due() == 1
    assert await scheduler.next_run("notice.digest") == datetime(2026, 3, 5, 11, 0, tzinfo=UTC)
    assert ledger.tags() == ["digest", "digest"]


async def test_the_fake_hands_schedule_rows_over_and_replays_them_at_start(uows: UnitOfWorkFactory) -> None:
    clock = uows.clock
    assert isinstance(clock, FakeClock)
    ledger = Ledger()
    ledger.registry.register(TAGGED, lambda args: ledger.remember({"tag": args.tag}))
    scheduler = FakeScheduler(clock, ledger.registry, uows)
    async with uows() as uow:
        uow.schedule(TAGGED, clock.now() + timedelta(hours=1), Tagged("send"))
        await uow.commit()
    assert scheduler.jobs == {}  # nothing looked yet
    assert await scheduler.next_run("tagged:send") == clock.now() + timedelta(hours=1)
    restarted = FakeScheduler(clock, ledger.registry, uows)  # a new process, its store empty
    await restarted.start(run_jobs=False)
    assert restarted.jobs == {}
    await restarted.start()
    assert await restarted.next_run("tagged:send") == clock.now() + timedelta(hours=1)
    clock.advance(timedelta(hours=1))
    assert await restarted.run_due() == 1
    assert ledger.tags() == ["send"]
    assert await _rows(uows) == []


async def test_the_fake_drops_an_unknown_job_and_runs_jobs_that_jobs_schedule(
    fake: tuple[FakeClock, FakeScheduler, Ledger], caplog: pytest.LogCaptureFixture
) -> None:
    clock, scheduler, ledger = fake

    async def chain(args: JobArgs) -> None:
        await scheduler.at("next", clock.now(), "remember", {"tag": "chained"})

    ledger.registry.register("chain", chain)
    await scheduler.at("gone", clock.now(), "notice.old", {"phone": PHONE})
    await scheduler.at("first", clock.now(), "chain", {})
    assert await scheduler.run_due() == 3
    assert ledger.tags() == ["chained"]
    assert "notice.old" in caplog.text
    assert PHONE not in caplog.text


async def test_migrations_leave_the_job_table_to_the_job_store(engine: AsyncEngine, make_scheduler: Make) -> None:
    """Autogenerate sees the models and the migrated schema agree, though the job store added its table."""
    scheduler = make_scheduler(JobRegistry())
    await scheduler.start(run_jobs=False)  # creates the job table

    def check(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.check(config)  # raises AutogenerateDiffsDetected, naming the differences

    async with engine.connect() as connection:
        await connection.run_sync(check)
