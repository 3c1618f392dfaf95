"""Making an export's file away from the conversation: in a process of its own, with its own database connection.

Why a process, not a task on the bot's event loop nor a thread: on SQLite every statement runs inline in the
calling thread (community.sqlite_inline), so reading the 2.5 million votes of a large consultation on the bot's
loop would stall every other chat for each batch; and the work after the reading (the opinion map, laying out a
workbook, WeasyPrint's PDF) is seconds to minutes of Python holding the GIL, which in a thread still makes every
other resident's reply wait its turn for the interpreter (measured: bench/bench_export.py). In a process of its
own the export takes another core, and the bot's process only awaits the result.

Why its own connection, outside the app's unit-of-work gate (community.unit_of_work): on SQLite the gate lets one
unit of work of a process run at a time, so an export reading inside one would make every resident wait the whole
read. The export only reads, in one read transaction on its own connection: SQLite in WAL mode lets writers go on
while a reader reads (the reader sees the database as it was when it began, which is what an export should show),
and PostgreSQL's MVCC does the same. Nothing is written on that connection: the requester's file and the request's
status are recorded by the jobs' process afterwards, in a short unit of work of its own (bot.exports.jobs).

``ExportWorker(processes=False)`` runs the same function in a thread instead, for tests that must watch the export
while it runs; nothing in production uses it.

The heavy libraries (numpy, scikit-learn, xlsxwriter, WeasyPrint, matplotlib) load in the worker, when an export
is made, never when this module is imported."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from community.anonymity import Anonymity
from community.db import create_engine, session_factory
from community.errors import LinliError
from community.keys import SiteKey
from community.unit_of_work import UnitOfWorkFactory

# The export kinds this worker makes (community.exports.ExportRequest.kind).
CONSULTATION_OUTCOME = "consultation.outcome"


@dataclass(frozen=True, slots=True)
class ExportTask:
    """Everything the worker needs, as plain values: it crosses into another process."""

    database_url: str
    kind: str
    subject_id: int
    format: str
    actor_id: int | None  # checked once more by the export itself; None: the operator
    language: str
    min_group_size: int  # k (community.anonymity), as the app's settings have it
    now: datetime  # "computed at" in the file: the moment the job started, by the app's clock
    folder: str  # the directory to write the file into (made if missing)


@dataclass(frozen=True, slots=True)
class Produced:
    file_name: str
    mime_type: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Refused:
    """The export refused (the permission, fewer than k voted): a message id and its parameters, not the
    exception, which need not survive the trip between processes."""

    message: str
    params: tuple[tuple[str, str | int], ...]


class _At:
    """The clock of a worker: the moment the job started, held still."""

    def __init__(self, moment: datetime) -> None:
        self._moment = moment

    def now(self) -> datetime:
        return self._moment


def _no_key() -> bytes:
    raise RuntimeError("an export only reads: it hashes nothing and needs no site key")


def produce(task: ExportTask) -> Produced | Refused:
    """Make the file (a plain function at module level, so a process pool can call it by name)."""
    return asyncio.run(_produce(task))


async def _produce(task: ExportTask) -> Produced | Refused:
    if task.kind != CONSULTATION_OUTCOME:
        raise ValueError(f"no export of the kind {task.kind!r}")
    from bot.consultations.buttons import ExportFormat
    from bot.exports.consultation import export_consultation
    from bot.rendering import Localizers
    from i18n import Catalogs

    reader = Localizers(Catalogs()).get(task.language)
    folder = Path(task.folder)
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - this loop is the worker's own: nobody waits on it
    engine = create_engine(task.database_url)
    uows = UnitOfWorkFactory(session_factory(engine), _At(task.now), SiteKey(_no_key), Anonymity(task.min_group_size))
    partial = folder / ".export.part"
    try:
        with partial.open("wb") as stream:
            async with uows() as uow:
                exported = await export_consultation(
                    uow, task.actor_id, task.subject_id, ExportFormat(task.format), reader, stream
                )
        target = folder / exported.filename
        partial.replace(target)  # under its name only once whole
        return Produced(exported.filename, exported.mime_type, target.stat().st_size)
    except LinliError as err:
        return Refused(err.message, tuple(sorted(err.params.items())))
    finally:
        partial.unlink(missing_ok=True)
        await engine.dispose()


class ExportWorker:
    """Runs produce() away from the event loop: each export in a fresh process (spawned: the bot's process has
    an event loop and threads a fork would copy), which ends with it and gives its memory back."""

    def __init__(
        self, *, processes: bool = True, function: Callable[[ExportTask], Produced | Refused] = produce
    ) -> None:
        self.processes = processes
        self._function = function

    async def run(self, task: ExportTask) -> Produced | Refused:
        if not self.processes:
            return await asyncio.to_thread(self._function, task)
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, self._function, task)
        finally:
            # Not waiting: the process has finished its one task (or, when this task was cancelled at shutdown,
            # is left to finish on its own; the request is still PREPARING and is made again at the next start).
            pool.shutdown(wait=False, cancel_futures=True)
