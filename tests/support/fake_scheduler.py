"""A Scheduler for service and handler tests: it keeps its jobs in memory and runs them only when the test says
so, by the FakeClock.

    clock = FakeClock()
    scheduler = FakeScheduler(clock, registry, uows)
    ...                                # a use case writes schedule rows and commits
    clock.advance(timedelta(hours=1))
    await scheduler.run_due()          # the relay hands the rows over, the due jobs run

(build_app(settings, clock, scheduler=lambda jobs: FakeScheduler(clock, jobs)) makes one for the app's relay.)

Given the unit-of-work factory, it drives the path of the jobs' process: its own bot.relay.Relay hands the
schedule rows over before each look at the jobs (run_due, next_run, handed) and replays them all at start(),
and a job that ran tells the relay, as in `linli run`. Without one, it only holds what is scheduled on it.

Like the real one: the same key replaces a job, a job due long ago runs once, a daily job comes back the next
day in its zone, an unknown job name is logged and dropped. Unlike it: a job's exception reaches the test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from types import MappingProxyType

from bot.relay import Relay
from bot.scheduling import BeforeJobs, JobRegistry, zone
from community.clock import FakeClock
from community.scheduling import JobArgs
from community.unit_of_work import UnitOfWorkFactory

# Jobs that keep scheduling jobs due at once would never let run_due() return.
MAX_ROUNDS = 1000


def next_daily(after: datetime, at: time, timezone: str, *, inclusive: bool) -> datetime:
    """The first ``at`` in ``timezone`` at or after (inclusive) or strictly after ``after``, in UTC."""
    tz = zone(timezone)
    day = after.astimezone(tz).date()
    while True:
        candidate = datetime.combine(day, at.replace(tzinfo=None), tzinfo=tz)
        if candidate > after or (inclusive and candidate == after):
            return candidate.astimezone(UTC)
        day += timedelta(days=1)


@dataclass(frozen=True, slots=True)
class FakeJob:
    key: str
    job: str
    args: JobArgs
    when: datetime
    daily: tuple[time, str] | None = None  # (time of day, zone) for a daily job
    row: int | None = None  # the schedule row it came from


@dataclass(frozen=True, slots=True)
class Ran:
    key: str
    job: str
    args: JobArgs


class FakeScheduler:
    def __init__(
        self, clock: FakeClock, registry: JobRegistry | None = None, uows: UnitOfWorkFactory | None = None
    ) -> None:
        self.clock = clock
        self.registry = registry if registry is not None else JobRegistry()
        self.jobs: dict[str, FakeJob] = {}
        self.ran: list[Ran] = []  # every job run_due() ran, in order, unknown names included
        self.started = False
        self.relay = Relay(uows, self, self.registry) if uows is not None else None

    # ---- community.scheduling.Scheduler -----------------------------------------------------------------

    async def at(self, key: str, when: datetime, job: str, args: JobArgs, *, row: int | None = None) -> None:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("a job's time must be timezone-aware")
        self.jobs[key] = FakeJob(key, job, MappingProxyType(dict(args)), when, row=row)

    async def daily(self, key: str, at: time, timezone: str, job: str, args: JobArgs) -> None:
        when = next_daily(self.clock.now(), at, timezone, inclusive=True)
        self.jobs[key] = FakeJob(key, job, MappingProxyType(dict(args)), when, (at, timezone))

    async def cancel(self, key: str) -> None:
        self.jobs.pop(key, None)

    # ---- bot.scheduling.ManagedScheduler ----------------------------------------------------------------

    async def start(self, *, run_jobs: bool = True, before_jobs: BeforeJobs | None = None) -> None:
        self.started = True
        if run_jobs:
            if before_jobs is not None:
                await before_jobs()
            elif self.relay is not None:
                await self.relay.replay()  # as App.start_jobs has the relay replay the rows
            for daily in self.registry.daily_jobs:
                await self.daily(daily.key, daily.at, daily.timezone, daily.job, daily.args)

    async def shutdown(self) -> None:
        self.started = False

    # ---- for tests ---------------------------------------------------------------------------------------

    async def handed(self) -> dict[str, FakeJob]:
        """The jobs, once the relay has handed over the rows committed so far."""
        if self.relay is not None:
            await self.relay.hand_over()
        return self.jobs

    async def next_run(self, key: str) -> datetime | None:
        found = (await self.handed()).get(key)
        return None if found is None else found.when

    def due(self) -> list[FakeJob]:
        now = self.clock.now()
        return sorted((job for job in self.jobs.values() if job.when <= now), key=lambda job: (job.when, job.key))

    async def run_due(self) -> int:
        """Run every job whose time has come by the clock, earliest first, and those that jobs schedule for no
        later than now; a daily job runs once however many days passed, then waits for its next day.
        Returns how many ran."""
        count = 0
        for _ in range(MAX_ROUNDS):
            await self.handed()  # jobs schedule more (a close asks for the outcome)
            due = self.due()
            if not due:
                return count
            for job in due:
                if self.jobs.get(job.key) is not job:
                    continue  # an earlier job cancelled or replaced it
                if job.daily is None:
                    del self.jobs[job.key]
                else:
                    at, timezone = job.daily
                    later = next_daily(self.clock.now(), at, timezone, inclusive=False)
                    self.jobs[job.key] = FakeJob(job.key, job.job, job.args, later, job.daily)
                self.ran.append(Ran(job.key, job.job, job.args))
                count += 1
                await self.registry.run(job.key, job.job, job.args, job.row)
        raise RuntimeError(f"jobs still due after {MAX_ROUNDS} rounds: a job keeps scheduling itself for now")
