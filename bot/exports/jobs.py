"""Exports asked for in a chat, made by the jobs' process and sent to the requester through the outbox: a
consultation's outcome as a file (CONSULTATION_OUTCOME), and the current opinion map of an open consultation as a
picture (CONSULTATION_MAP, bot.consultations.pictures), sent as a PHOTO.

The chat (bot.handlers.consult_export) checks the permission, records the request (community.exports.ask) and
answers "preparing…"; asking schedules community.exports.PRODUCE in the same transaction, which the jobs' process
runs at once once it has committed. The job:

1. checks again, in a short unit of work, that the request is still PREPARING and the requester may still have
   the file (a role taken away in between refuses it, and they are told why);
2. makes the file with no unit of work open: bot.worker reads on a connection of its own, outside the
   gate that makes units of work take turns on SQLite, and computes in a process of its own, so no other
   resident waits for it;
3. queues, in a second short unit of work, the file to the requester as an outbox DOCUMENT whose file_ref names
   the stored file (bot.exports.files: under the data directory's exports/ folder, which the transports read), and
   finishes the request in the same transaction: the file goes once, or not at all.

A file larger than Telegram lets a bot upload (UPLOAD_LIMIT_BYTES) is not attempted: the requester is told its size
and the command that writes it (`linli export consultation`). The request's schedule row stays until its job has
run (the relay, bot/relay.py), so a process that died between the request and the job, or during it, makes it at
the next start. Files made are swept every SWEEP_EVERY."""

from __future__ import annotations

import asyncio
import logging
import shutil
from concurrent.futures import BrokenExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bot.consultations.buttons import ExportFormat
from bot.exports.files import exports_dir, local_ref
from bot.exports.worker import CONSULTATION_MAP, CONSULTATION_OUTCOME, ExportTask, Produced, Refused, produce
from bot.rendering import Localizers
from bot.worker import Reading, Worker
from community import exports, outbox
from community.errors import LinliError
from community.export_models import ExportRequest, ExportStatus
from community.exports import PRODUCE, ExportJob
from community.notice_models import MessageKind
from community.outbox import Outgoing
from community.scheduling import JobArgs
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory
from consultation.errors import ExportNotAllowed
from i18n import N_

if TYPE_CHECKING:
    from bot.app import App
    from bot.scheduling import JobRegistry

log = logging.getLogger(__name__)

SWEEP_JOB: Final = "export.sweep"
SWEEP_EVERY: Final = timedelta(hours=1)  # how long a file past FILES_KEPT may stay on disk, at most
# The Bot API's limit on a file a bot uploads: "50 MB max size for other files" (sendDocument, multipart upload;
# https://core.telegram.org/bots/api#sending-files). Telegram is the only channel that sends files to people, and
# the console keeps to the same limit so that it shows what a Telegram user would get.
UPLOAD_LIMIT_BYTES: Final = 50 * 1024 * 1024

# How long a file made for a requester is kept once its request is finished: long enough for a delivery held back
# (a paused channel, a long queue) to send it; the requester can always ask for it again.
FILES_KEPT: Final = timedelta(days=7)
FORMATS: Final = {fmt.value: fmt for fmt in ExportFormat}  # a request's format, as recorded
MAP_FORMAT: Final = "png"  # the current opinion map (CONSULTATION_MAP), sent as a photo
KIND_FORMATS: Final = {CONSULTATION_OUTCOME: frozenset(FORMATS), CONSULTATION_MAP: frozenset({MAP_FORMAT})}

PREPARING = N_("Preparing the file… It will arrive in this chat when it is ready.")
ALREADY_PREPARING = N_("This file is already being prepared. It will arrive in this chat when it is ready.")
TOO_LARGE = N_(
    "The file is %(size)s MB, more than the %(limit)s MB Telegram lets a bot send. The community's operator can "
    "write it on the server with: <code>%(command)s</code>"
)
FAILED = N_("The file could not be made. Please try again later.")
CAPTION = N_("The outcome of “%(title)s”.")
MAP_CAPTION = N_("The opinion map of “%(title)s” as the votes stand now: its groups, no one's position.")
MAP_PREPARING = N_("Drawing the map… It will arrive in this chat when it is ready.")
MAP_ALREADY_PREPARING = N_("The map is already being drawn. It will arrive in this chat when it is ready.")


def linli_export_command(request: ExportRequest) -> str:
    return f"linli export consultation {request.subject_id} --format {request.format}"


class ExportJobs:
    """What the job does; the composition root registers it (register_jobs)."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        localizers: Localizers,
        files_dir: Path,
        *,
        worker: Worker | None = None,
        upload_limit: int = UPLOAD_LIMIT_BYTES,
    ) -> None:
        self.uows = uows
        self.localizers = localizers
        self.files_dir = files_dir
        self.worker = worker or Worker()
        self.upload_limit = upload_limit

    async def produce(self, job: ExportJob) -> None:
        request_id = job.request_id
        async with self.uows() as uow:
            task, title = await self._start(uow, request_id)
            await uow.commit()  # a refusal told and finished, or nothing
        if task is None:
            return
        folder = self.files_dir / str(request_id)
        made: Produced | Refused | None = None
        try:
            made = await self.worker.run(produce, task)
        except (OSError, BrokenExecutor) as err:
            # The worker could not run or write (a disk full, a process killed): the requester may try again.
            log.error("export %s failed: %s", request_id, type(err).__name__)
        finally:
            current = asyncio.current_task()
            if made is None and not (current is not None and current.cancelling()):
                # Failed, by the errors above or any other (which go on to the scheduler's log): never left
                # PREPARING, or every later tap would hear "already being prepared". A stop (cancelled) leaves it
                # PREPARING, for the next start.
                await self._finish(request_id, ExportStatus.FAILED, folder, text=FAILED)
        if isinstance(made, Refused):
            await self._finish(request_id, ExportStatus.REFUSED, folder, text=made.message, params=dict(made.params))
        elif isinstance(made, Produced):
            await self._deliver(request_id, folder, made, title)
        await self.sweep()

    async def sweep_job(self, _: JobArgs) -> None:
        await self.sweep()

    async def sweep(self) -> int:
        """Remove the files of requests finished more than FILES_KEPT ago, and of requests that are gone (the
        requester used /forget); returns how many folders went."""
        folders = await asyncio.to_thread(_request_folders, self.files_dir)
        if not folders:
            return 0
        async with self.uows() as uow:
            wanted = await exports.kept(uow, list(folders), uow.clock.now() - FILES_KEPT)
        gone = [folder for request_id, folder in folders.items() if request_id not in wanted]
        for folder in gone:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return len(gone)

    async def _start(self, uow: UnitOfWork, request_id: int) -> tuple[ExportTask | None, str]:
        request = await exports.get_request(uow, request_id)
        if request is None or request.status is not ExportStatus.PREPARING:
            return None, ""  # made already (the job ran twice), or the requester is gone
        if request.format not in KIND_FORMATS.get(request.kind, ()):
            log.error("export %s: no export of the kind %r as %r", request_id, request.kind, request.format)
            await self._tell(uow, request, ExportStatus.FAILED, FAILED)
            return None, ""
        # Here, not at the top: the consultation services bring numpy, which a bot start need not load.
        from consultation.outcome import require_export
        from consultation.participation import require_current_map

        try:
            # Asked when tapped, and again now: a role may have been taken away, the consultation closed.
            if request.kind == CONSULTATION_MAP:
                if request.person_id is None:
                    raise ExportNotAllowed()  # only asked for in a chat, by a person
                consultation = await require_current_map(uow, request.person_id, request.subject_id)
            else:
                per_vote = FORMATS[request.format].per_vote
                consultation = await require_export(uow, request.person_id, request.subject_id, per_vote=per_vote)
        except LinliError as err:
            await self._tell(uow, request, ExportStatus.REFUSED, err.message, err.params)
            return None, ""
        task = ExportTask(
            reading=Reading.like(uow),  # the database this unit of work reads (UnitOfWork.database_url)
            kind=request.kind,
            subject_id=request.subject_id,
            format=request.format,
            actor_id=request.person_id,
            language=request.language,
            folder=str(self.files_dir / str(request_id)),
        )
        return task, consultation.title

    async def _deliver(self, request_id: int, folder: Path, made: Produced, title: str) -> None:
        if made.size_bytes > self.upload_limit:
            await self._finish(
                request_id,
                ExportStatus.TOO_LARGE,
                folder,
                text=TOO_LARGE,
                params={"size": _megabytes(made.size_bytes), "limit": _megabytes(self.upload_limit)},
                size_bytes=made.size_bytes,
            )
            return
        async with self.uows() as uow:
            request = await exports.finish(
                uow, request_id, ExportStatus.SENT, file_name=made.file_name, size_bytes=made.size_bytes
            )
            if request is None:
                shutil.rmtree(folder, ignore_errors=True)
                return
            l = self.localizers.get(request.language)  # noqa: E741 - the house name for a localizer
            picture = request.kind == CONSULTATION_MAP
            await outbox.enqueue(
                uow,
                [
                    Outgoing(
                        channel=request.channel,
                        chat_id=request.chat_id,
                        text=l.text(MAP_CAPTION if picture else CAPTION, title=title),
                        person_id=request.person_id,
                        account_id=request.account_id,
                        kind=MessageKind.PHOTO if picture else MessageKind.DOCUMENT,
                        file_ref=local_ref(f"{request_id}/{made.file_name}"),
                        file_name=made.file_name,
                    )
                ],
                not_before=uow.clock.now(),
            )
            await uow.commit()
        log.info("export %s: %s bytes queued to the requester", request_id, made.size_bytes)

    async def _finish(
        self,
        request_id: int,
        status: ExportStatus,
        folder: Path,
        *,
        text: str,
        params: dict[str, object] | None = None,
        size_bytes: int | None = None,
    ) -> None:
        """Finish the request without a file, telling the requester why; the folder goes."""
        shutil.rmtree(folder, ignore_errors=True)
        async with self.uows() as uow:
            request = await exports.get_request(uow, request_id)
            if request is None or request.status is not ExportStatus.PREPARING:
                return
            if status is ExportStatus.TOO_LARGE:
                params = {**(params or {}), "command": linli_export_command(request)}
            await self._tell(uow, request, status, text, params or {}, size_bytes=size_bytes)
            await uow.commit()

    async def _tell(
        self,
        uow: UnitOfWork,
        request: ExportRequest,
        status: ExportStatus,
        text: str,
        params: dict[str, object] | None = None,
        *,
        size_bytes: int | None = None,
    ) -> None:
        assert request.id is not None
        l = self.localizers.get(request.language)  # noqa: E741
        message = l.text(text, **(params or {}))
        if await exports.finish(uow, request.id, status, size_bytes=size_bytes) is None:
            return
        await outbox.enqueue(
            uow,
            [
                Outgoing(
                    channel=request.channel,
                    chat_id=request.chat_id,
                    text=message,
                    person_id=request.person_id,
                    account_id=request.account_id,
                )
            ],
            not_before=uow.clock.now(),
        )


def _request_folders(files_dir: Path) -> dict[int, Path]:
    """The folders of files made, by request id (the folder's name)."""
    if not files_dir.is_dir():
        return {}
    return {int(path.name): path for path in files_dir.iterdir() if path.is_dir() and path.name.isdigit()}


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


def register_jobs(registry: JobRegistry, app: App) -> None:
    """The consultations manifest's job registrar for the files asked for in a chat (bot.consultations.manifest)."""
    jobs = ExportJobs(app.uows, app.localizers, exports_dir(app.settings.data_dir))
    register_export_jobs(registry, jobs)


def register_export_jobs(registry: JobRegistry, jobs: ExportJobs) -> None:
    registry.register(PRODUCE, jobs.produce)
    registry.register(SWEEP_JOB, jobs.sweep_job)
    registry.every(SWEEP_JOB, SWEEP_EVERY, SWEEP_JOB)
