"""Time-triggered work, as the domain asks for it: "at time T run job J", "every day at 19:00 run job J".

A use case records such a consequence as a row, in its own transaction: ``uow.schedule(SPEC, at, args)`` and
``uow.unschedule(SPEC, args)`` (community.unit_of_work), where SPEC is a JobSpec declared next to the use case:
the job's name, its arguments' type (a frozen dataclass of ints and strings) and its key, derived from the
arguments. Rolled back, the row goes with everything else; committed, the relay in the jobs' process
(bot/relay.py) hands it to the Scheduler below. So nothing is scheduled for a change that was not saved, and
nothing saved is left unscheduled by a crash after the commit.

The Scheduler itself is the relay's: domain code never calls it. Its implementation (bot/scheduling.py,
APScheduler 3 with its jobs persisted in the database) runs in exactly one process and maps job names to what
they do; tests use a fake driven by a FakeClock. Scheduling the same key again replaces the earlier job, so a
use case can reschedule without first cancelling.

A job's work keeps its own state in the database (a notice's status, say) and is idempotent: the relay hands a
row again after a crash (before its hand-over was recorded, or while its job ran), and the job then finds its
work done or does it once."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Generic, Protocol, TypeVar

from community.models import ScheduleRequest

JobArgs = Mapping[str, int | str]
A = TypeVar("A")

# The table the implementation keeps its jobs in. Its job store creates and owns it, so the migrations leave it
# alone (migrations/env.py filters it out of autogenerate); it is named here because nothing may import bot/.
JOB_TABLE = "scheduled_job"


@dataclass(frozen=True, slots=True)
class JobSpec(Generic[A]):
    """A job as a use case names it: ``name`` (what the registry runs), ``args`` (a frozen dataclass whose fields
    are ints and strings) and ``key`` (a str.format template over those fields: scheduling the same key again
    replaces the job). Declared once, next to the use case that schedules it; the bot ring registers what it
    does by the same spec and gets the arguments back typed."""

    name: str
    args: type[A]
    key_format: str

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.args) or not self.args.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(f"the arguments of the job {self.name!r} are not a frozen dataclass")
        hints = typing.get_type_hints(self.args)
        for field in dataclasses.fields(self.args):
            if hints[field.name] not in (int, str):
                raise TypeError(f"the job {self.name!r} has an argument {field.name!r} that is not an int or a str")
        self.key_format.format(**{field.name: 0 for field in dataclasses.fields(self.args)})  # a typo fails here

    def encode(self, args: A) -> dict[str, int | str]:
        if not isinstance(args, self.args):
            raise TypeError(f"the job {self.name!r} takes {self.args.__name__}, not {type(args).__name__}")
        return {field.name: getattr(args, field.name) for field in dataclasses.fields(self.args)}  # type: ignore[arg-type]

    def decode(self, raw: JobArgs) -> A:
        hints = typing.get_type_hints(self.args)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(self.args):  # type: ignore[arg-type]
            value = raw[field.name]
            if type(value) is not hints[field.name]:
                raise TypeError(f"the job {self.name!r} got a {type(value).__name__} for {field.name!r}")
            values[field.name] = value
        return self.args(**values)

    def key(self, args: A) -> str:
        return self.key_format.format(**self.encode(args))


def request(spec: JobSpec[A], at: datetime | None, args: A, now: datetime) -> ScheduleRequest:
    """The row that asks for ``spec`` with ``args`` at ``at`` (aware), or, with ``at`` None, for its cancelling."""
    if at is not None and (at.tzinfo is None or at.utcoffset() is None):
        raise ValueError("a job's time must be timezone-aware")
    plain = spec.encode(args)
    return ScheduleRequest(
        key=spec.key(args),
        job=spec.name,
        args=json.dumps(plain, sort_keys=True, ensure_ascii=False),
        at=at,
        created_at=now,
    )


class Scheduler(Protocol):
    async def at(self, key: str, when: datetime, job: str, args: JobArgs, *, row: int | None = None) -> None:
        """Run ``job`` with ``args`` once at ``when`` (aware), or at the next start if the process was down.
        row: the schedule_request row this job comes from, deleted once the job has run (bot/relay.py)."""
        ...

    async def daily(self, key: str, at: time, timezone: str, job: str, args: JobArgs) -> None:
        """Run ``job`` with ``args`` every day at ``at`` in ``timezone`` (an IANA name)."""
        ...

    async def cancel(self, key: str) -> None:
        """Forget the job scheduled under ``key``; nothing happens if there is none."""
        ...
