"""Exports asked for in a console chat and made as `linli run` makes them: the conversation schedules the job on a
FakeScheduler, the job (bot.exports.jobs) makes the file through a worker, and the delivery engine's console
transport brings it to the chat, which saves it under files/KEY/.

    rig = ExportRig(uows, localizers, clock, engine, tmp_path, [COMMITTEE])
    out = await rig.session.feed("1")        # "Preparing the file…"
    printed = await rig.finish()             # runs the job, then delivers: "📎 … saved to …"

The worker runs in a thread by default (the same function as the production process, without a process's start-up
time); ``processes=True`` runs it as production does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.console import ConsoleSession, ConsoleUser
from bot.exports.jobs import UPLOAD_LIMIT_BYTES, ExportJobs, register_export_jobs
from bot.rendering import Localizers
from bot.scheduling import JobRegistry
from bot.worker import Worker
from community.clock import FakeClock
from community.unit_of_work import UnitOfWorkFactory
from tests.support.console import ConsoleDelivery, scheduled_session
from tests.support.fake_scheduler import FakeScheduler


class ExportRig:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        localizers: Localizers,
        clock: FakeClock,
        engine: AsyncEngine,
        tmp_path: Path,
        people: Sequence[ConsoleUser],
        *,
        worker: Worker | None = None,
        upload_limit: int = UPLOAD_LIMIT_BYTES,
    ) -> None:
        self.registry = JobRegistry()
        self.scheduler = FakeScheduler(clock, self.registry, uows)
        self.exports_dir = tmp_path / "exports"
        self.files_dir = tmp_path / "files"
        self.jobs = ExportJobs(
            uows,
            localizers,
            self.exports_dir,
            worker=worker or Worker(processes=False),
            upload_limit=upload_limit,
        )
        register_export_jobs(self.registry, self.jobs)
        self.session: ConsoleSession = scheduled_session(uows, localizers, people, self.files_dir)
        self.delivery = ConsoleDelivery(uows, self.session, files_dir=self.exports_dir)

    async def finish(self) -> list[str]:
        """Run the due export jobs, then deliver what they queued; what the terminal printed meanwhile."""
        await self.scheduler.run_due()
        return await self.delivery()

    def saved(self, key: str, name: str) -> Path:
        return self.files_dir / key / name
