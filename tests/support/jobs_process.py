"""The jobs' process in a process of its own, for the crash test (tests/test_consequence_crash.py):

    python -m tests.support.jobs_process DATABASE_URL API_BASE TOKEN SECRET_KEY [--crash-before JOB]

What `linli run` runs beside its channel, built by bot.app.build_app: the scheduler running jobs, the relay (its
poll every 0.2 s, so rows another process writes arrive at once) and the delivery engine through Telegram. With
--crash-before JOB it kills itself with SIGKILL when the relay, woken after a commit or by its poll, finds a row
of JOB not yet handed over: the moment between a commit that scheduled and the hand-over. Prints "ready" once
it runs; SIGTERM stops it cleanly."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from sqlmodel import col, select

from bot.app import build_app
from bot.config import load_settings
from bot.relay import Relay
from bot.scheduling import JobRegistry
from community.models import ScheduleRequest
from community.scheduling import Scheduler
from community.unit_of_work import UnitOfWorkFactory

POLL = 0.2


class CrashingRelay(Relay):
    def __init__(
        self, uows: UnitOfWorkFactory, scheduler: Scheduler, registry: JobRegistry, *, crash_before: str | None
    ) -> None:
        super().__init__(uows, scheduler, registry, poll_interval=POLL)
        self.crash_before = crash_before

    async def hand_over(self, *, replay: bool = False) -> int:
        if self.crash_before is not None and not replay:
            async with self.uows() as uow:
                pending = (
                    await uow.session.exec(
                        select(ScheduleRequest.id).where(
                            col(ScheduleRequest.job) == self.crash_before, col(ScheduleRequest.handed).is_(False)
                        )
                    )
                ).first()
            if pending is not None:
                os.kill(os.getpid(), signal.SIGKILL)
        return await super().hand_over(replay=replay)


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("api_base")
    parser.add_argument("token")
    parser.add_argument("secret_key")
    parser.add_argument("--crash-before")
    args = parser.parse_args(argv)
    settings = load_settings(
        {
            "LINLI_DATABASE_URL": args.database_url,
            "TELEGRAM_BOT_TOKEN": args.token,
            "TELEGRAM_API_BASE": args.api_base,
            "LINLI_SECRET_KEY": args.secret_key,
            "LINLI_SEND_RATE": "100",
        }
    )
    app = await build_app(settings)
    app.relay = CrashingRelay(app.uows, app.scheduler, app.jobs, crash_before=args.crash_before)
    async with app:
        await app.start_jobs()
        stopping: list[asyncio.Task[None]] = []
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGTERM, lambda: stopping.append(asyncio.ensure_future(app.delivery.stop()))
        )
        running = asyncio.ensure_future(app.delivery.run())
        print("ready", flush=True)
        await running
        if stopping:
            await asyncio.gather(*stopping)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
