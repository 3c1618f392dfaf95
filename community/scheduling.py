"""Time-triggered work, as the domain asks for it: "at time T run job J", "every day at 19:00 run job J".

Domain code depends only on this Protocol. The implementation (bot/scheduling.py, APScheduler 3 with its jobs
persisted in the database) runs in exactly one process and maps job names to what they do; tests use a fake
driven by a FakeClock. A job is named, its arguments are plain values, and scheduling the same key again
replaces the earlier job, so a service can reschedule without first cancelling."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Protocol

JobArgs = Mapping[str, int | str]


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
