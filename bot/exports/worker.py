"""Making an export's file away from the conversation: produce() is what bot.worker.Worker runs, in a process of
its own, reading the votes on a connection of its own (bot.worker says why both). The jobs' process records the
requester's file and the request's status afterwards, in a short unit of work of its own (bot.exports.jobs).

The heavy libraries (numpy, xlsxwriter, WeasyPrint, matplotlib) load in the worker, when an export
is made, never when this module is imported."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from bot.worker import Reading, reading
from community.errors import LinliError

# The export kinds this worker makes (community.exports.ExportRequest.kind).
CONSULTATION_OUTCOME = "consultation.outcome"
CONSULTATION_MAP = "consultation.map"  # the current opinion map of an open consultation, as a picture


@dataclass(frozen=True, slots=True)
class ExportTask:
    """Everything the worker needs, as plain values: it crosses into another process."""

    reading: Reading  # the database, k, and "computed at" in the file: the moment the job started
    kind: str
    subject_id: int
    format: str
    actor_id: int | None  # checked once more by the export itself; None: the operator
    language: str
    folder: str  # the directory to write the file into (made if missing)


@dataclass(frozen=True, slots=True)
class Produced:
    file_name: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Refused:
    """The export refused (the permission, fewer than k voted): a message id and its parameters, not the
    exception, which need not survive the trip between processes."""

    message: str
    params: tuple[tuple[str, str | int], ...]


def produce(task: ExportTask) -> Produced | Refused:
    """Make the file (a plain function at module level, so a process pool can call it by name)."""
    if task.kind == CONSULTATION_MAP:
        from bot.consultations.pictures import current_map

        return current_map(task)
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
    partial = folder / ".export.part"
    try:
        with partial.open("wb") as stream:
            async with reading(task.reading) as uow:
                exported = await export_consultation(
                    uow, task.actor_id, task.subject_id, ExportFormat(task.format), reader, stream
                )
        target = folder / exported.filename
        partial.replace(target)  # under its name only once whole
        return Produced(exported.filename, target.stat().st_size)
    except LinliError as err:
        return Refused(err.message, tuple(sorted(err.params.items())))
    finally:
        partial.unlink(missing_ok=True)
