"""The relay: the one way consequences reach the scheduler. A use case writes schedule_request rows in its own
transaction (UnitOfWork.schedule / unschedule, community.scheduling); the relay, which runs in the jobs' process
only (started by `linli run` beside the scheduler, never by `linli deliver` or another command), hands them to
the scheduler in id order:

- a row asking for a job: scheduler.at(key, at, job, args, row=id), then the row is marked handed. It stays
  until its job has run (JobRegistry.run calls finished(row)), so a crash while the job runs loses nothing;
- a row cancelling one: scheduler.cancel(key), then it is deleted with every older row of that key;
- a row asking again for a key supersedes the older rows of that key, which are deleted once it is handed.

It wakes at once after a commit of this process that wrote rows (UnitOfWorkFactory.signal), every poll interval
(rows written by another process: `linli consultation create`), and at start, where it hands every row again,
handed or not: that one replay is the catch-up of every feature. A crash between a hand-over and its record
hands the row again; the same key replaces the job, and jobs are idempotent (community.scheduling)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from sqlalchemy.exc import SQLAlchemyError

from bot.failures import failure_reference, log_failure
from bot.scheduling import DEFAULT_POLL_SECONDS, JobRegistry
from community import schedule_requests
from community.models import ScheduleRequest
from community.scheduling import Scheduler
from community.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

BATCH = 500  # rows read and recorded per round


class Relay:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        scheduler: Scheduler,
        registry: JobRegistry,
        *,
        poll_interval: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.uows = uows
        self.scheduler = scheduler
        self.poll_interval = poll_interval
        registry.when_done(self.finished)
        # Hand-overs take turns: two interleaved ones could hand a job after the row that cancelled it.
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def hand_over(self, *, replay: bool = False) -> int:
        """Hand the rows not handed yet (replay: every row) to the scheduler, in id order; how many."""
        async with self._lock:
            handed = 0
            after = 0
            while True:
                async with self.uows() as uow:
                    rows = await schedule_requests.waiting(uow, after=after, limit=BATCH, handed_too=replay)
                if not rows:
                    return handed
                # No transaction is open while the scheduler writes its job store (on SQLite it would wait for us).
                for row in rows:
                    if row.at is None:
                        await self.scheduler.cancel(row.key)
                    else:
                        await self.scheduler.at(row.key, row.at, row.job, json.loads(row.args), row=row.id)
                await self._record(rows)
                handed += len(rows)
                after = rows[-1].id or after

    async def _record(self, rows: list[ScheduleRequest]) -> None:
        async with self.uows() as uow:
            await schedule_requests.record_handed(uow, rows)
            await uow.commit()

    async def finished(self, row_id: int) -> None:
        """The job of this row has run (or was refused, or is unknown): it is not to be replayed."""
        async with self.uows() as uow:
            await schedule_requests.finished(uow, row_id)
            await uow.commit()

    # ---- running in the jobs' process ------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def replay(self) -> int:
        """Hand every row over again, handed or not: the one catch-up at start. Best before the scheduler runs
        jobs (App.start_jobs passes it as the scheduler's before_jobs), so a job due at start runs once."""
        replayed = await self.hand_over(replay=True)
        if replayed:
            log.info("%s scheduled consequence(s) handed to the scheduler at start", replayed)
        return replayed

    async def start(self, *, replay: bool = True) -> None:
        """Replay every row (the catch-up; replay=False: it was done already), then hand new ones over as they
        are committed and at every poll. Call once the scheduler is started."""
        if self._task is not None:
            raise RuntimeError("the relay is already running")
        self._wake = asyncio.Event()
        self.uows.listen_for_schedules(self.wake)
        try:
            if replay:
                await self.replay()
            await self.hand_over()
        except BaseException:
            self.uows.stop_listening(self.wake)
            raise
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                await self.hand_over()
            except (SQLAlchemyError, OSError) as error:
                # The rows stay; the next wake or poll hands them.
                log_failure(log, failure_reference(), error, "handing scheduled consequences to the scheduler")

    async def stop(self) -> None:
        self.uows.stop_listening(self.wake)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
