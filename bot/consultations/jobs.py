"""The scheduled work of consultations: "consultation.open" (the opening time has come: open it and invite
everyone eligible in its scope) and "consultation.close" (the closing time: close it, compute the opinion map
and tell every participant the outcome), "consultation.outcome" and "consultation.map". Nothing catches up at
start here: the relay replays every schedule row a crash may have left (bot/relay.py).

Both transitions are idempotent in the domain (consultations.open_consultation / close_consultation let one
caller through), so only the call that opened a consultation invites, in the same transaction: an invitation
goes out once, with the opening, or not at all. The outcome's figures, votes and opinion map are read and
computed by a worker (bot.worker: a process of its own, reading on a connection of its own) with no unit of work
open, as the map of a large consultation takes seconds and `linli run` serves the chat in the same process: on
SQLite a unit of work held meanwhile would make every resident's tap wait, and so would the computing on the
chat's event loop. The outcome is then queued in a short unit of work that first checks, under the consultation's
row lock, that it was not queued already (consultation.reach.outcome_sent): a close by a person ("Close now") and
the job can never both send it. While fewer than k voted (community.anonymity) the outcome tells no finding of
the opinion map, only how many took part.

Closing, whoever closes (the job, or a person: "Close now"), asks in its transaction for OUTCOME at once
(consultation.consultations.close_consultation): the jobs' process computes and sends it.

With the outcome goes each participant's own picture of the opinion map, "you are here" on their position
(bot.consultations.pictures, bot.consultations.outcome_pictures). The same worker that computes the findings draws
them, from the same map (computed once), into files of its own folder, and hands back only which file is whose; the
short unit of work queues each person's picture right after their outcome message, in the transaction that queues
the outcome: both go once, together, or not at all. Nothing is drawn while fewer than k voted.

While a consultation is open, the vote that takes the interval's map request (at most one per
consultations.MAP_REFRESH) asks in its transaction for MAP: the job has a worker read the votes and compute the
opinion map, again with no unit of work open, and stores, in a short one, each statement's Polis importance as
the priority that orders the statements residents see next (only while the consultation is open). Running it
twice stores the same priorities."""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bot.consultations.outcome_pictures import SWEEP_PICTURES_JOB, OutcomePictures, QueuedPictures
from bot.consultations.pictures import PersonPicture, Viewer, draw_outcome_pictures
from bot.exports.files import exports_dir
from bot.exports.jobs import SWEEP_EVERY
from bot.worker import Reading, Worker, reading
from community.anonymity import Anonymity
from community.communities import get_community
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory
from consultation import consultations, reach
from consultation.consultations import CLOSE, MAP, OPEN, OUTCOME, ConsultationJob
from consultation.map_memory import ClusteringMemory
from consultation.messages import ConsultationOutcome, reached

if TYPE_CHECKING:
    from bot.app import App
    from bot.scheduling import JobRegistry
    from community.scheduling import JobArgs
    from consultation.opinion_map import OpinionMap

log = logging.getLogger(__name__)

CONSENSUS_SHOWN = 3  # statements most agreed on, in the outcome message


# --- the outcome ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Findings:
    participants: int
    voters: int
    votes: int
    groups: int
    consensus: tuple[int, ...]
    divisive: int | None
    withheld_below: int | None = None  # k, when fewer than k voted and the map's findings are not told


def map_findings(
    matrix: consultations.VoteMatrix | None,
    figures: consultations.ConsultationFigures,
    anonymity: Anonymity,
    found: OpinionMap | None = None,
) -> Findings:
    """The opinion map's findings the participants are told: CPU only, no database. Nothing of it while fewer
    than k voted (figures.withheld, matrix None); the statement the groups split on most only when every group
    has at least k members, as it tells how each group voted. found: the matrix's map, when computed already."""
    if figures.withheld or matrix is None:
        return Findings(
            figures.participants, figures.voters, figures.votes, 0, (), None, withheld_below=anonymity.min_group_size
        )
    groups, divisive = 0, None
    consensus: tuple[int, ...] = ()
    if found is None:
        found = _opinion_map(matrix)
    if found is not None:
        groups = len(found.groups)
        consensus = tuple(int(s.statement_id) for s in found.consensus_agree[:CONSENSUS_SHOWN])
        every_group_large = all(anonymity.shows(len(group.participant_ids)) for group in found.groups)
        divisive = int(found.divisive[0].statement_id) if found.divisive and every_group_large else None
    return Findings(figures.participants, figures.voters, figures.votes, groups, consensus, divisive)


def _opinion_map(matrix: consultations.VoteMatrix, memory: ClusteringMemory | None = None) -> OpinionMap | None:
    """The map of the votes, None without any; in the worker. It starts from what the last map remembers (memory):
    the outcome's is the last refresh of the live map, as Pol.is's last update."""
    if not matrix.participants or not matrix.statement_ids:
        return None
    # numpy (and scipy for a large map) load here, on the first map, not at start-up (tests/test_startup_imports.py).
    return matrix.opinion_map(previous=memory)


async def _queue_outcome(
    uow: UnitOfWork, consultation_id: int, counted: Findings, pictures: QueuedPictures | None = None
) -> int | None:
    """Queue the outcome for every participant unless it was queued already, each person's own picture of the map
    right after it (pictures); the caller commits. Returns how many outcome messages (the pictures not counted)."""
    consultation = await reach.lock_consultation(uow, consultation_id)
    if consultation is None or await reach.outcome_sent(uow, consultation_id):
        return None
    community = await get_community(uow, consultation.community_id)
    texts = await reach.statement_texts(
        uow, [*counted.consensus, *([counted.divisive] if counted.divisive is not None else [])]
    )
    outcome = ConsultationOutcome(
        community=community.name,
        timezone=community.timezone,
        title=consultation.title,
        participants=counted.participants,
        voters=counted.voters,
        votes=counted.votes,
        groups=counted.groups,
        consensus=tuple(texts[sid] for sid in counted.consensus if sid in texts),
        divisive=texts.get(counted.divisive) if counted.divisive is not None else None,
        withheld_below=counted.withheld_below,
    )
    recipients = reached(await reach.participants_reached(uow, consultation))
    follow = partial(pictures.messages, consultation.title) if pictures is not None and pictures.by_person else None
    rows = await uow.notify(recipients, outcome, followed_by=follow)
    count = rows - (pictures.queued if pictures is not None else 0)
    await reach.mark_outcome_sent(uow, consultation, count)
    return count


@dataclass(frozen=True, slots=True)
class Counted:
    """What a worker's read of the votes brings back: the outcome's findings, or the map's priorities (None
    without votes), and the votes counted, which the staff's figures screen shows "as of" the read
    (consultations.staff_figures)."""

    tally: consultations.VoteTally
    findings: Findings | None = None
    priorities: Priorities | None = None
    pictures: tuple[PersonPicture, ...] = ()  # the outcome's: which file in MapTask.pictures_folder is whose
    # What the map computed remembers, for the next (None when no map was computed).
    memory: ClusteringMemory | None = None


@dataclass(frozen=True, slots=True)
class MapTask:
    """What a worker needs to compute a consultation's map, as plain values: it crosses into another process."""

    reading: Reading
    consultation_id: int
    pictures_folder: str | None = None  # the outcome's: draw each participant's picture of the map into it


@dataclass(frozen=True, slots=True)
class Priorities:
    """Each approved statement's importance in the opinion map, in statement id order."""

    statement_ids: tuple[int, ...]
    importance: tuple[float, ...]


def outcome_findings(task: MapTask) -> Counted:
    """In the worker (bot.worker): the figures, the votes and the map's findings of a closed consultation."""
    return asyncio.run(_outcome_findings(task))


async def _outcome_findings(task: MapTask) -> Counted:
    viewers: list[Viewer] = []
    pseudonyms: dict[int, str] = {}
    texts: dict[int, str] = {}
    async with reading(task.reading) as uow:
        # One pass over the votes, not two: the matrix gives the counts too (matrix_tally). While fewer than k
        # voted it is as small as the few who voted, and the map does not use it.
        read = await consultations.vote_matrix(uow, task.consultation_id)
        # What the last map remembers, in the same snapshot as the votes: this map starts from it.
        remembered = await consultations.map_memory(uow, task.consultation_id)
        tally = consultations.matrix_tally(read)
        figures = await consultations.figures(uow, task.consultation_id, tally)
        consultation = await consultations.find_consultation(uow, task.consultation_id)
        if task.pictures_folder is not None and not figures.withheld and consultation is not None:
            # Whom the outcome reaches, in which languages, and each one's own pseudonym: in the same read.
            people = await reach.participants_reached(uow, consultation)
            viewers = list(dict.fromkeys(Viewer(p.person_id, p.language) for p in people))
            pseudonyms = await reach.own_pseudonyms(uow, task.consultation_id)
            texts = await reach.statement_texts(uow, read.statement_ids)
    matrix = None if figures.withheld else read
    # The read transaction ended: the map needs only the matrix, and k, which the figures carry (no second read).
    found = _opinion_map(matrix, remembered) if matrix is not None else None
    findings = map_findings(matrix, figures, Anonymity(figures.min_group_size), found)
    memory = found.memory if found is not None else None
    if found is None or task.pictures_folder is None or not viewers:
        return Counted(tally, findings=findings, memory=memory)
    assert consultation is not None  # viewers come from it
    folder = Path(task.pictures_folder)
    pictures = draw_outcome_pictures(
        found, texts, figures.min_group_size, consultation.title, viewers, pseudonyms, folder
    )
    return Counted(tally, findings=findings, pictures=pictures, memory=memory)


def map_priorities(task: MapTask) -> Counted:
    """In the worker (bot.worker): the statements' importance in the map of the votes so far (None without
    votes), and the votes counted from the same read."""
    return asyncio.run(_map_priorities(task))


async def _map_priorities(task: MapTask) -> Counted:
    async with reading(task.reading) as uow:
        matrix = await consultations.vote_matrix(uow, task.consultation_id)
        remembered = await consultations.map_memory(uow, task.consultation_id)
    tally = consultations.matrix_tally(matrix)
    found = _opinion_map(matrix, remembered)
    if found is None:
        return Counted(tally)
    # The statements still shown: one moderated out is in the map (as Pol.is keeps it) but has no priority to keep.
    shown = [j for j, sid in enumerate(found.statement_ids) if sid not in found.moderated_out]
    statement_ids = tuple(int(found.statement_ids[j]) for j in shown)
    importance = tuple(float(found.statement_importance[j]) for j in shown)
    return Counted(tally, priorities=Priorities(statement_ids, importance), memory=found.memory)


async def send_outcome(
    uows: UnitOfWorkFactory, consultation_id: int, worker: Worker, pictures: OutcomePictures | None = None
) -> int | None:
    """For a closed consultation: read the votes, compute the map and draw each participant's picture of it
    (pictures: where, and in whose words; None: the outcome without pictures) in the worker, with no unit of work
    open, then queue the outcome and the pictures in a short one. None when it was queued already (or the
    consultation is gone); the pictures drawn then are removed."""
    async with uows() as uow:
        if await reach.outcome_sent(uow, consultation_id):
            return None  # a cheap look first: a worker's process costs seconds to start
        # A folder of this run's own: a second run at the same time (a close by a person, and the job) draws apart.
        folder = pictures.folder_for(consultation_id) if pictures is not None else None
        task = MapTask(Reading.like(uow), consultation_id, str(folder) if folder is not None else None)
        counted_at = task.reading.now  # the read starts after this: its count is at least as new
    queued = False
    try:
        counted = await worker.run(outcome_findings, task)
        assert counted.findings is not None
        async with uows() as uow:
            # The final count for the staff's figures screen, kept whether or not this call queues the outcome.
            await consultations.store_tally(uow, consultation_id, counted.tally, counted_at)
            if counted.memory is not None:
                # The groups the outcome tells: the exports show these (consultation.outcome.compute_outcome).
                await consultations.store_map_memory(uow, consultation_id, counted.memory, counted_at)
            own = pictures.queued_pictures(counted.pictures, folder) if pictures is not None and folder else None
            # Checks outcome_sent again, locked: the outcome and the pictures are queued together, once, or not.
            count = await _queue_outcome(uow, consultation_id, counted.findings, own)
            await uow.commit()
        queued = count is not None and own is not None and own.queued > 0
    finally:
        if folder is not None and not queued:
            await asyncio.to_thread(shutil.rmtree, folder, True)  # nobody gets them: not kept
    return count


# --- the priorities ------------------------------------------------------------------------------------------


async def refresh_priorities(uows: UnitOfWorkFactory, consultation_id: int, worker: Worker) -> bool:
    """For an open consultation: read the votes and compute the map in the worker, with no unit of work open (it
    takes seconds on a large one, which no resident should wait for), then store the priorities in a short one,
    where the service checks the consultation is still open, and the votes counted from the same read (the staff's
    figures screen shows them, consultations.staff_figures). False when no priority was stored."""
    async with uows() as uow:
        if not await consultations.is_open(uow, consultation_id):
            return False
        task = MapTask(Reading.like(uow), consultation_id)
        counted_at = task.reading.now  # the read starts after this: its count is at least as new
    counted = await worker.run(map_priorities, task)
    found = counted.priorities
    async with uows() as uow:
        # The count, free from the map's read, for the staff's figures screen (consultations.staff_figures).
        await consultations.store_tally(uow, consultation_id, counted.tally, counted_at)
        if counted.memory is not None and await consultations.is_open(uow, consultation_id):
            # The next refresh, and the close, start from these clusters. Once closed, only the outcome's count.
            await consultations.store_map_memory(uow, consultation_id, counted.memory, counted_at)
        stored = found is not None and await consultations.store_priorities(
            uow, consultation_id, found.statement_ids, found.importance
        )
        await uow.commit()
    return stored


# --- the jobs ------------------------------------------------------------------------------------------------


class ConsultationJobs:
    """What the jobs do; the composition root registers them under their names. pictures: where the outcome's
    pictures of the map are written, and the captions' words; None sends the outcome without them."""

    def __init__(
        self, uows: UnitOfWorkFactory, worker: Worker | None = None, pictures: OutcomePictures | None = None
    ) -> None:
        self.uows = uows
        self.worker = worker or Worker()
        self.pictures = pictures

    async def open(self, job: ConsultationJob) -> None:
        async with self.uows() as uow:
            invited = await consultations.open_now(uow, job.consultation_id)
            await uow.commit()
        if invited is None:
            log.debug("consultation %s was open or closed already: nobody invited again", job.consultation_id)
        else:
            log.info("consultation %s opened: %s invitations queued", job.consultation_id, invited)

    async def close(self, job: ConsultationJob) -> None:
        async with self.uows() as uow:
            closed = await consultations.close_consultation(uow, job.consultation_id)
            await uow.commit()
        if not closed:
            log.info("consultation %s was closed already", job.consultation_id)

    async def outcome(self, job: ConsultationJob) -> None:
        count = await send_outcome(self.uows, job.consultation_id, self.worker, self.pictures)
        if count is not None:
            log.info("consultation %s: the outcome went to %s accounts", job.consultation_id, count)

    async def map(self, job: ConsultationJob) -> None:
        if await refresh_priorities(self.uows, job.consultation_id, self.worker):
            log.debug("consultation %s: the statements' priorities are refreshed", job.consultation_id)

    async def sweep_pictures(self, _: JobArgs) -> None:
        if self.pictures is not None:
            await self.pictures.sweep(self.uows)


def register_jobs(registry: JobRegistry, app: App) -> None:
    """The consultations' manifest's job registrar (bot.consultations.manifest)."""
    pictures = OutcomePictures(exports_dir(app.settings.data_dir), app.localizers)
    register_consultation_jobs(registry, app.uows, pictures=pictures)


def register_consultation_jobs(
    registry: JobRegistry,
    uows: UnitOfWorkFactory,
    worker: Worker | None = None,
    *,
    pictures: OutcomePictures | None = None,
) -> None:
    """worker: where the maps are computed; by default a process of its own for each (tests pass a thread one).
    pictures: the outcome's pictures of the map (None: the outcome without them)."""
    jobs = ConsultationJobs(uows, worker, pictures)
    registry.register(OPEN, jobs.open)
    registry.register(CLOSE, jobs.close)
    registry.register(OUTCOME, jobs.outcome)
    registry.register(MAP, jobs.map)
    if pictures is not None:
        registry.register(SWEEP_PICTURES_JOB, jobs.sweep_pictures)
        registry.every(SWEEP_PICTURES_JOB, SWEEP_EVERY, SWEEP_PICTURES_JOB)
