"""The scheduler: community.scheduling.Scheduler on APScheduler 3 (AsyncIOScheduler), with its jobs persisted in
Linli's own database, and the JobRegistry that says what each job name does.

Exactly one process runs the jobs: `linli run` starts the scheduler before its channel and shuts it down after.
`linli deliver` (the delivery engine alone) and every other command never start it in that mode: two processes
running jobs from one table would both run each due job. A process that only needs to add or cancel jobs can
start it with ``run_jobs=False``; the running process picks such jobs up at its next poll (``poll_interval``).
Features do not call the scheduler: their use cases write schedule rows, which the relay (bot/relay.py) of the
process running the jobs hands over.

Jobs:
- A stored job refers to ``run_job`` in this module (``JOB_FUNCTION``, kept textually in every job row: moving
  or renaming run_job needs a data migration) with the keyword arguments ``key``, ``job`` (the name), ``args``
  (plain ints and strings) and ``row`` (the schedule_request row it came from, if any). run_job looks the name
  up in the running scheduler's JobRegistry, which tells the relay once the job has run.
- A job missed while no process ran the scheduler runs at the next start (no misfire grace time), once even if
  it was due several times (coalesce).
- An unknown name (a job renamed or removed since it was scheduled) is logged and dropped; an exception from a
  job is logged and the scheduler goes on."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from types import MappingProxyType
from typing import Any, ParamSpec, Protocol, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    EVENT_SCHEDULER_SHUTDOWN,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from community.db import async_url
from community.errors import LinliError
from community.scheduling import JOB_TABLE, JobArgs, JobSpec, Scheduler

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
A = TypeVar("A")

JobFunction = Callable[[JobArgs], Awaitable[None]]
DoneHook = Callable[[int], Awaitable[None]]
BeforeJobs = Callable[[], Awaitable[object]]

# The reference every stored job holds; APScheduler imports it when it loads a job from the table.
JOB_FUNCTION = "bot.scheduling:run_job"
# How often the running scheduler looks at the table even when it expects nothing: it then sees jobs that
# another process added, and it recovers should a job store error have stopped its timer.
DEFAULT_POLL_SECONDS = 30.0
# How long shutdown waits for jobs that are running to finish before cancelling them.
DEFAULT_DRAIN_SECONDS = 10.0
# SQLite: how long the job store waits for another connection's write lock (the app's engine waits as long).
SQLITE_BUSY_SECONDS = 10.0


def sync_url(url: str) -> URL:
    """The synchronous URL for the job store, from the app's URL (APScheduler 3 only speaks synchronous
    SQLAlchemy): sqlite+aiosqlite:///f -> sqlite:///f, postgresql+asyncpg://... -> postgresql+psycopg://..."""
    parsed = make_url(async_url(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        # asyncpg's ssl=... is libpq's sslmode=...
        query = dict(parsed.query)
        ssl = query.pop("ssl", None)
        if ssl is not None and "sslmode" not in query:
            query["sslmode"] = "require" if ssl in ("true", "1", "on") else ssl
        return parsed.set(drivername="postgresql+psycopg", query=query)
    raise ValueError(f"no job store for the database backend {backend!r}")


def job_store_engine(url: str) -> Engine:
    """A synchronous engine on the app's database for the job store. It connects only when first used."""
    target = sync_url(url)
    if target.get_backend_name() == "sqlite":
        return create_engine(target, connect_args={"timeout": SQLITE_BUSY_SECONDS})
    return create_engine(target, pool_size=2, max_overflow=2, pool_pre_ping=True)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {name!r}") from err


@dataclass(frozen=True, slots=True)
class DailyJob:
    """A job a feature wants every day as long as Linli runs, (re)scheduled at every start."""

    key: str
    at: time
    timezone: str
    job: str
    args: JobArgs


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """A job a feature wants every ``interval`` as long as Linli runs (a tick that looks whether some community's
    time has come), (re)scheduled at every start: its first run is one interval after the start."""

    key: str
    interval: timedelta
    job: str
    args: JobArgs


class JobRegistry:
    """What each job does. Built in the composition root and filled there by every feature's
    ``register_jobs(registry, app)``, by the JobSpec its use cases schedule (the function gets the arguments
    back typed); the scheduler looks names up here when a job comes due.

    A feature that wants a job every day (a daily digest, say) declares it with every_day(): the scheduler
    schedules it at each start, so changing its time in the code changes the stored job too; every() is the same
    for a job at a fixed interval (a tick that finds which communities' time has come). Catching up after a
    crash is no feature's business: the relay replays the schedule rows at start (bot/relay.py)."""

    def __init__(self) -> None:
        self._functions: dict[str, JobFunction] = {}
        self._daily: dict[str, DailyJob] = {}
        self._done: DoneHook | None = None
        self._periodic: dict[str, PeriodicJob] = {}

    @overload
    def register(self, job: JobSpec[A], function: Callable[[A], Awaitable[None]]) -> None: ...

    @overload
    def register(self, job: str, function: JobFunction) -> None: ...

    def register(self, job: JobSpec[Any] | str, function: Callable[[Any], Awaitable[None]]) -> None:
        name = job if isinstance(job, str) else job.name
        if name in self._functions:
            raise ValueError(f"the job {name!r} is registered twice")
        if isinstance(job, str):
            self._functions[name] = function
            return
        spec = job

        async def typed(args: JobArgs) -> None:
            await function(spec.decode(args))

        self._functions[name] = typed

    def when_done(self, hook: DoneHook) -> None:
        """``hook(row)`` once a job that came from a schedule row has run (or was refused, or is unknown)."""
        self._done = hook

    def every_day(self, key: str, at: time, timezone: str, job: str, args: JobArgs | None = None) -> None:
        zone(timezone)  # a typo fails here, at start-up, not at the first run
        self._daily[key] = DailyJob(key, at, timezone, job, MappingProxyType(dict(args or {})))

    def every(self, key: str, interval: timedelta, job: str, args: JobArgs | None = None) -> None:
        if interval <= timedelta(0):
            raise ValueError(f"the periodic job {key!r} needs a positive interval")
        self._periodic[key] = PeriodicJob(key, interval, job, MappingProxyType(dict(args or {})))

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._functions)

    @property
    def daily_jobs(self) -> tuple[DailyJob, ...]:
        return tuple(self._daily.values())

    @property
    def periodic_jobs(self) -> tuple[PeriodicJob, ...]:
        return tuple(self._periodic.values())

    async def run(self, key: str, job: str, args: JobArgs, row: int | None = None) -> bool:
        """Run the job registered as ``job``; False, logged, if there is none. Exceptions reach the caller.
        Logs name the job and its key, never its arguments. row: the schedule row the job came from, done once
        the job ran, was refused or is unknown; kept after any other failure, so the next start runs it again."""
        function = self._functions.get(job)
        if function is None:
            log.error("no job is registered as %r (scheduled under %r): dropped", job, key)
            await self._finished(row)
            return False
        try:
            await function(args)
        except LinliError:
            await self._finished(row)  # refused: it would be refused again
            raise
        await self._finished(row)
        return True

    async def _finished(self, row: int | None) -> None:
        if row is not None and self._done is not None:
            await self._done(row)


class ManagedScheduler(Scheduler, Protocol):
    """A Scheduler the composition root starts and stops: DatabaseScheduler, or the tests' FakeScheduler."""

    async def start(self, *, run_jobs: bool = True, before_jobs: BeforeJobs | None = None) -> None:
        """run_jobs=False: only add and cancel jobs in the store; another process runs them. before_jobs: awaited
        once the store is open and before any job runs (the relay's replay, so a job due at start runs once)."""
        ...

    async def shutdown(self) -> None:
        """Stop; nothing happens if not started."""
        ...


# How a stored job finds the registry: run_job is a plain module-level function (APScheduler stores a textual
# reference to it), so the registry cannot travel with the job, and a module-level variable holding it would be
# mutable global state. Instead the registry is the value of this context variable in a context each
# DatabaseScheduler owns. asyncio runs every callback and task in a copy of the context it was scheduled from,
# and APScheduler schedules everything (its wake-up timer, the task of each due job) from inside its own
# callbacks, which run in the context of whoever called into it. So DatabaseScheduler makes every call into
# APScheduler inside its own context, and each job's task inherits that context, hence the registry. Calling in
# from elsewhere would not do: a job added from a handler's task would run in the handler's context, without the
# registry (tests/test_scheduling.py holds both). Two schedulers in one process (the tests) each keep their own.
_REGISTRY: contextvars.ContextVar[JobRegistry] = contextvars.ContextVar("linli_job_registry")


def _first_line(err: SQLAlchemyError) -> str:
    # SQLAlchemy appends the statement and its parameters, which may hold personal data: the driver's first line.
    original = err.orig if isinstance(err, DBAPIError) else err
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


async def run_job(*, key: str, job: str, args: Mapping[str, int | str], row: int | None = None) -> None:
    """What every stored job runs (see JOB_FUNCTION): the registered function for ``job``.

    Errors we expect are logged here without what could be personal: a domain refusal by its message id (its
    parameters may name people), a database error by the driver's first line. Anything else is a bug:
    APScheduler logs it with its traceback and goes on."""
    registry = _REGISTRY.get(None)
    if registry is None:
        log.error("the job %r (%r) ran outside a Linli scheduler: dropped", job, key)
        return
    try:
        await registry.run(key, job, args, row)
    except LinliError as err:
        log.warning("the job %r (%r) was refused: %s", job, key, err.message)
    except SQLAlchemyError as err:
        log.error("the job %r (%r) failed on the database: %s", job, key, _first_line(err))


def _plain_args(args: JobArgs) -> dict[str, int | str]:
    plain: dict[str, int | str] = {}
    for name, value in args.items():
        if not isinstance(name, str) or not isinstance(value, int | str):
            raise TypeError(f"job arguments are strings and integers; {name!r} is a {type(value).__name__}")
        plain[name] = value
    return plain


class DatabaseScheduler:
    """community.scheduling.Scheduler on APScheduler 3's AsyncIOScheduler, with an SQLAlchemyJobStore on the
    app's database (table community.scheduling.JOB_TABLE, which the job store creates).

    Calls that touch the job store (start, at, daily, cancel) run in a worker thread, since the job store is
    synchronous SQL; APScheduler's own wake-ups query it on the event loop, a few small statements each."""

    def __init__(
        self,
        database_url: str,
        registry: JobRegistry,
        *,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        drain_timeout: float = DEFAULT_DRAIN_SECONDS,
    ) -> None:
        self._registry = registry
        self._engine = job_store_engine(database_url)
        self._poll_interval = poll_interval
        self._drain_timeout = drain_timeout
        # The context every call into APScheduler runs in; see _REGISTRY. Empty but for the registry, so jobs
        # do not inherit whatever context the scheduler happened to be built in.
        self._context = contextvars.Context()
        self._context.run(_REGISTRY.set, registry)
        self._aps: Any = None  # the AsyncIOScheduler while started
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False
        self._running_jobs = 0
        # Made at each start, on the loop that runs the scheduler.
        self._idle = asyncio.Event()
        self._stopped = asyncio.Event()

    @property
    def registry(self) -> JobRegistry:
        return self._registry

    async def _call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # A copy each time: one Context cannot be entered by two threads at once.
        context = self._context.copy()

        def call() -> T:
            return context.run(function, *args, **kwargs)

        return await asyncio.to_thread(call)

    def _started(self) -> Any:
        if self._aps is None:
            raise RuntimeError("the scheduler is not started")
        return self._aps

    async def start(self, *, run_jobs: bool = True, before_jobs: BeforeJobs | None = None) -> None:
        """Open the job store (creating its table if need be). run_jobs: await before_jobs, schedule the
        registry's daily jobs, then run due jobs, now (those missed while down) and as they come due; else only
        add and cancel jobs."""
        if self._aps is not None:
            raise RuntimeError("the scheduler is already started")
        declared = [(d.key, d.job) for d in self._registry.daily_jobs]
        declared += [(p.key, p.job) for p in self._registry.periodic_jobs]
        for key, job in declared:
            if job not in self._registry:
                raise ValueError(f"the recurring job {key!r} names the unregistered job {job!r}")
        aps = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self._engine, tablename=JOB_TABLE)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
            event_loop=asyncio.get_running_loop(),
        )
        aps.add_listener(
            self._on_job_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        )
        aps.add_listener(self._on_shutdown, EVENT_SCHEDULER_SHUTDOWN)
        self._running_jobs = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = asyncio.Event()
        # Set before it starts: jobs missed while down run at once, and may schedule more.
        self._aps = aps
        try:
            await self._call(aps.start, paused=True)
        except BaseException:
            self._aps = None
            raise
        if not run_jobs:
            return
        if before_jobs is not None:
            await before_jobs()
        for daily in self._registry.daily_jobs:
            await self.daily(daily.key, daily.at, daily.timezone, daily.job, daily.args)
        for periodic in self._registry.periodic_jobs:
            trigger = IntervalTrigger(seconds=periodic.interval.total_seconds(), timezone=UTC)
            await self._add(periodic.key, trigger, periodic.job, periodic.args)
        await self._call(aps.resume)
        self._poller = asyncio.get_running_loop().create_task(self._poll(aps), context=self._context.copy())

    async def _poll(self, aps: Any) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            aps.wakeup()

    def _on_job_event(self, event: Any) -> None:
        # APScheduler calls its listeners on the event loop's thread for these events.
        if event.code == EVENT_JOB_SUBMITTED:
            self._running_jobs += 1
            self._idle.clear()
        else:
            self._running_jobs = max(0, self._running_jobs - 1)
            if self._running_jobs == 0:
                self._idle.set()

    def _on_shutdown(self, _event: Any) -> None:
        self._stopped.set()

    async def shutdown(self) -> None:
        """Stop taking due jobs, give those running up to drain_timeout to finish, then stop. Jobs that come
        due from now on stay in the store for the next start. Jobs still running may schedule and cancel."""
        aps = self._aps
        if aps is None or self._stopping:
            return
        self._stopping = True
        try:
            if self._poller is not None:
                self._poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._poller
                self._poller = None
            aps.pause()
            try:
                await asyncio.wait_for(self._idle.wait(), self._drain_timeout)
            except TimeoutError:
                log.warning("%d scheduled job(s) still running at shutdown: cancelled", self._running_jobs)
            self._aps = None
            self._context.copy().run(aps.shutdown, wait=False)
            # AsyncIOScheduler shuts down in a callback on the loop; wait for it, so the job store is closed.
            await self._stopped.wait()
        finally:
            self._stopping = False

    async def at(self, key: str, when: datetime, job: str, args: JobArgs, *, row: int | None = None) -> None:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("a job's time must be timezone-aware")
        await self._add(key, DateTrigger(run_date=when), job, args, row)

    async def daily(self, key: str, at: time, timezone: str, job: str, args: JobArgs) -> None:
        trigger = CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone=zone(timezone))
        await self._add(key, trigger, job, args)

    async def _add(self, key: str, trigger: Any, job: str, args: JobArgs, row: int | None = None) -> None:
        aps = self._started()
        kwargs: dict[str, Any] = {"key": key, "job": job, "args": _plain_args(args)}
        if row is not None:
            kwargs["row"] = row
        await self._call(
            aps.add_job,
            JOB_FUNCTION,
            trigger=trigger,
            id=key,
            name=job,  # what APScheduler's log lines show: the name, not the arguments
            kwargs=kwargs,
            replace_existing=True,
        )

    async def cancel(self, key: str) -> None:
        aps = self._started()
        with contextlib.suppress(JobLookupError):
            await self._call(aps.remove_job, key)

    async def next_run(self, key: str) -> datetime | None:
        """When the job under ``key`` runs next; None if there is no such job."""
        aps = self._started()
        found = await self._call(aps.get_job, key)
        if found is None:
            return None
        when: datetime | None = found.next_run_time
        return when
