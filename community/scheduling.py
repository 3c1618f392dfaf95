"""Time-triggered work, as the domain asks for it: "at time T run job J", "every day at 19:00 run job J".

Domain code depends only on this Protocol. The implementation (bot/scheduling.py, APScheduler 3 with its jobs
persisted in the database) runs in exactly one process and maps job names to what they do; tests use a fake
driven by a FakeClock. A job is named, its arguments are plain values, and scheduling the same key again
replaces the earlier job, so a service can reschedule without first cancelling.

Two things a service must know:
- Schedule after the transaction that decided it has committed. The job store writes on a connection of its
  own; on SQLite it would wait for the write lock that the caller's open transaction holds.
- A job is taken from the store when it comes due, before it runs: if the process dies while the job runs,
  it is not run again. A job's work therefore keeps its own state in the database (a notice's status, say),
  is idempotent, and a service that must not miss one can also catch up at start."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Protocol

JobArgs = Mapping[str, int | str]

# The table the implementation keeps its jobs in. Its job store creates and owns it, so the migrations leave it
# alone (migrations/env.py filters it out of autogenerate); it is named here because nothing may import bot/.
JOB_TABLE = "scheduled_job"


class Scheduler(Protocol):
    async def at(self, key: str, when: datetime, job: str, args: JobArgs) -> None:
        """Run ``job`` with ``args`` once at ``when`` (aware), or at the next start if the process was down."""
        ...

    async def daily(self, key: str, at: time, timezone: str, job: str, args: JobArgs) -> None:
        """Run ``job`` with ``args`` every day at ``at`` in ``timezone`` (an IANA name)."""
        ...

    async def cancel(self, key: str) -> None:
        """Forget the job scheduled under ``key``; nothing happens if there is none."""
        ...
