"""The scheduled work of consultations: "consultation.open" (the opening time has come: open it and invite
everyone eligible in its scope) and "consultation.close" (the closing time: close it, compute the opinion map
and tell every participant the outcome), and what a start catches up on.

Both transitions are idempotent in the domain (consultations.open_consultation / close_consultation let one
caller through), so only the call that opened a consultation invites, in the same transaction: an invitation
goes out once, with the opening, or not at all. The outcome is computed outside any transaction (the opinion map
takes a while on a large consultation, and on SQLite an open transaction holds the one write lock), then queued
in a short one that first checks, under the consultation's row lock, that it was not queued already
(consultation.reach.outcome_sent): a close by a person ("Close now") and the job can never both send it. While
fewer than k voted (community.anonymity) the outcome tells no finding of the opinion map, only how many took part.

A person closing a consultation early ("Close now") calls, once the close has committed,
``request_outcome(scheduler, consultation_id, now)``: the jobs' process does the same work as after a scheduled
close ("consultation.outcome", due at once), and a start sends an outcome that a crash lost in between.

While a consultation is open, the vote that takes the interval's map request (RecordedVote.map_due, at most one
per consultations.MAP_REFRESH) calls ``request_map(scheduler, consultation_id, now)`` after its commit: the job
"consultation.map" computes the opinion map, again outside any transaction, and stores each statement's Polis
importance as the priority that orders the statements residents see next. Running it twice stores the same
priorities; a map lost to a crash is asked for again by a vote after the next interval."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.consultations.render import ConsultationLook, Outcome, render_invitation, render_outcome
from bot.notices.fanout import outbox_buttons
from bot.rendering import Localizers
from community import outbox
from community.anonymity import Anonymity
from community.communities import get_community
from community.notice_models import AttachmentKind, MessageKind
from community.outbox import Outgoing
from community.scheduling import JobArgs, Scheduler
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory
from consultation import consultations, reach
from consultation.consultations import CLOSE_JOB, MAP_JOB, OPEN_JOB
from consultation.models import Consultation, ConsultationStatus
from consultation.opinion_map import compute_opinion_map

if TYPE_CHECKING:
    from bot.app import App
    from bot.scheduling import JobRegistry

log = logging.getLogger(__name__)

OUTCOME_JOB = "consultation.outcome"
CONSENSUS_SHOWN = 3  # statements most agreed on, in the outcome message

_KINDS = {AttachmentKind.PHOTO: MessageKind.PHOTO, AttachmentKind.DOCUMENT: MessageKind.DOCUMENT}


def outcome_key(consultation_id: int) -> str:
    return f"consultation:{consultation_id}:outcome"


async def request_outcome(scheduler: Scheduler, consultation_id: int, now: datetime) -> None:
    """After a commit that closed a consultation: have the jobs' process send its outcome at once."""
    await scheduler.at(outcome_key(consultation_id), now, OUTCOME_JOB, {"consultation_id": consultation_id})


def map_key(consultation_id: int) -> str:
    return f"consultation:{consultation_id}:map"


async def request_map(scheduler: Scheduler, consultation_id: int, now: datetime) -> None:
    """After a commit whose vote found the map due: have the jobs' process refresh the statements' priorities."""
    await scheduler.at(map_key(consultation_id), now, MAP_JOB, {"consultation_id": consultation_id})


# --- the invitation ------------------------------------------------------------------------------------------


async def invite(uow: UnitOfWork, localizers: Localizers, consultation: Consultation) -> int:
    """Queue the invitation for everyone eligible in scope, one row per reachable account, rendered once per
    language (and once more where the account's channel can show the attachment); the caller commits. Call it
    only when this transaction opened the consultation."""
    community = await get_community(uow, consultation.community_id)
    look = ConsultationLook.of(consultation, community.name)
    kind = _KINDS[consultation.attachment_kind] if consultation.attachment_kind is not None else MessageKind.TEXT
    rendered: dict[tuple[str, bool], tuple[str, tuple[tuple[outbox.OutboxButton, ...], ...]]] = {}
    messages: list[Outgoing] = []
    for person in await reach.invitees(uow, consultation):
        with_file = kind is not MessageKind.TEXT and person.channel == consultation.attachment_channel
        key = (person.language, with_file)
        if key not in rendered:
            shown = render_invitation(localizers.get(person.language, community.timezone), look, with_file=with_file)
            rendered[key] = (shown.text, outbox_buttons(shown.buttons))
        text, buttons = rendered[key]
        messages.append(
            Outgoing(
                channel=person.channel,
                chat_id=person.chat_id,
                text=text,
                person_id=person.person_id,
                account_id=person.account_id,
                kind=kind if with_file else MessageKind.TEXT,
                buttons=buttons,
                file_ref=consultation.attachment_ref if with_file else None,
                file_name=consultation.attachment_name if with_file else None,
            )
        )
    return await outbox.enqueue(uow, messages, not_before=uow.clock.now())


async def open_now(uow: UnitOfWork, localizers: Localizers, consultation_id: int) -> int | None:
    """Open the consultation and, when this call opened it, invite; the caller commits. None: it was open or
    closed already, and nobody is invited again."""
    if not await consultations.open_consultation(uow, consultation_id):
        return None
    return await invite(uow, localizers, await consultations.get_consultation(uow, consultation_id))


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
    matrix: consultations.VoteMatrix | None, figures: consultations.ConsultationFigures, anonymity: Anonymity
) -> Findings:
    """The opinion map's findings the participants are told: CPU only, no database. Nothing of it while fewer
    than k voted (figures.withheld, matrix None); the statement the groups split on most only when every group
    has at least k members, as it tells how each group voted."""
    if figures.withheld or matrix is None:
        return Findings(
            figures.participants, figures.voters, figures.votes, 0, (), None, withheld_below=anonymity.min_group_size
        )
    groups, divisive = 0, None
    consensus: tuple[int, ...] = ()
    if matrix.participants and matrix.statement_ids:
        found = compute_opinion_map(matrix.votes, matrix.participants, matrix.statement_ids)
        groups = len(found.groups)
        consensus = tuple(int(s.statement_id) for s in found.consensus_agree[:CONSENSUS_SHOWN])
        every_group_large = all(anonymity.shows(len(group.participant_ids)) for group in found.groups)
        divisive = int(found.divisive[0].statement_id) if found.divisive and every_group_large else None
    return Findings(figures.participants, figures.voters, figures.votes, groups, consensus, divisive)


async def _queue_outcome(
    uow: UnitOfWork, localizers: Localizers, consultation_id: int, counted: Findings
) -> int | None:
    """Queue the outcome for every participant unless it was queued already; the caller commits."""
    consultation = await reach.lock_consultation(uow, consultation_id)
    if consultation is None or await reach.outcome_sent(uow, consultation_id):
        return None
    community = await get_community(uow, consultation.community_id)
    texts = await reach.statement_texts(
        uow, [*counted.consensus, *([counted.divisive] if counted.divisive is not None else [])]
    )
    outcome = Outcome(
        community=community.name,
        title=consultation.title,
        participants=counted.participants,
        voters=counted.voters,
        votes=counted.votes,
        groups=counted.groups,
        consensus=tuple(texts[sid] for sid in counted.consensus if sid in texts),
        divisive=texts.get(counted.divisive) if counted.divisive is not None else None,
        withheld_below=counted.withheld_below,
    )
    rendered: dict[str, str] = {}
    messages: list[Outgoing] = []
    for person in await reach.participants_reached(uow, consultation):
        if person.language not in rendered:
            rendered[person.language] = render_outcome(localizers.get(person.language, community.timezone), outcome)
        messages.append(
            Outgoing(
                channel=person.channel,
                chat_id=person.chat_id,
                text=rendered[person.language],
                person_id=person.person_id,
                account_id=person.account_id,
            )
        )
    count = await outbox.enqueue(uow, messages, not_before=uow.clock.now()) if messages else 0
    await reach.mark_outcome_sent(uow, consultation, count)
    return count


async def send_outcome(uows: UnitOfWorkFactory, localizers: Localizers, consultation_id: int) -> int | None:
    """For a closed consultation: read the votes, compute the map outside any transaction, then queue the
    outcome in a short one. None when it was queued already (or the consultation is gone)."""
    async with uows() as uow:
        if await reach.outcome_sent(uow, consultation_id):
            return None
        figures = await consultations.figures(uow, consultation_id)
        matrix = None if figures.withheld else await consultations.vote_matrix(uow, consultation_id)
        anonymity = uow.anonymity
    counted = map_findings(matrix, figures, anonymity)
    async with uows() as uow:
        count = await _queue_outcome(uow, localizers, consultation_id, counted)
        await uow.commit()
    return count


# --- the priorities ------------------------------------------------------------------------------------------


async def refresh_priorities(uows: UnitOfWorkFactory, consultation_id: int) -> bool:
    """For an open consultation: read the votes, compute the map outside any transaction (it takes a while on
    a large one, and on SQLite an open transaction holds the one write lock), then store the priorities in a
    short one, where the service checks the consultation is still open. False when nothing was stored."""
    async with uows() as uow:
        consultation = await uow.session.get(Consultation, consultation_id)
        if consultation is None or consultation.status is not ConsultationStatus.OPEN:
            return False
        matrix = await consultations.vote_matrix(uow, consultation_id)
    if not matrix.participants or not matrix.statement_ids:
        return False
    found = compute_opinion_map(matrix.votes, matrix.participants, matrix.statement_ids)
    async with uows() as uow:
        stored = await consultations.store_priorities(
            uow, consultation_id, matrix.statement_ids, found.statement_importance
        )
        await uow.commit()
    return stored


# --- the jobs ------------------------------------------------------------------------------------------------


class ConsultationJobs:
    """What the jobs do; the composition root registers them under their names."""

    def __init__(self, uows: UnitOfWorkFactory, localizers: Localizers) -> None:
        self.uows = uows
        self.localizers = localizers

    async def open(self, args: JobArgs) -> None:
        consultation_id = int(args["consultation_id"])
        async with self.uows() as uow:
            invited = await open_now(uow, self.localizers, consultation_id)
            await uow.commit()
        if invited is None:
            log.debug("consultation %s was open or closed already: nobody invited again", consultation_id)
        else:
            log.info("consultation %s opened: %s invitations queued", consultation_id, invited)

    async def close(self, args: JobArgs) -> None:
        consultation_id = int(args["consultation_id"])
        async with self.uows() as uow:
            closed = await consultations.close_consultation(uow, consultation_id)
            await uow.commit()
        if not closed:
            log.info("consultation %s was closed already", consultation_id)
            return
        await self.outcome(args)

    async def outcome(self, args: JobArgs) -> None:
        consultation_id = int(args["consultation_id"])
        count = await send_outcome(self.uows, self.localizers, consultation_id)
        if count is not None:
            log.info("consultation %s: the outcome went to %s accounts", consultation_id, count)

    async def map(self, args: JobArgs) -> None:
        consultation_id = int(args["consultation_id"])
        if await refresh_priorities(self.uows, consultation_id):
            log.debug("consultation %s: the statements' priorities are refreshed", consultation_id)

    async def on_start(self, scheduler: Scheduler) -> None:
        """Open and close what came due while no process ran the jobs (inviting for what this opened), send the
        outcome where a close was not followed by one, and schedule every open and close again (the same keys
        replace the jobs: harmless)."""
        async with self.uows() as uow:
            caught = await consultations.catch_up(uow)
            for consultation_id in caught.opened:
                await invite(uow, self.localizers, await consultations.get_consultation(uow, consultation_id))
            await uow.commit()
        async with self.uows() as uow:
            pending = await reach.closed_without_outcome(uow)
            waiting = await reach.awaiting_transitions(uow)
        for consultation_id in pending:
            await send_outcome(self.uows, self.localizers, consultation_id)
        for consultation in waiting:
            await consultations.schedule_transitions(scheduler, consultation)
        if caught.opened or caught.closed:
            log.info("consultations caught up at start: %s opened, %s closed", len(caught.opened), len(caught.closed))


def register_jobs(registry: JobRegistry, app: App) -> None:
    """The consultations' manifest's job registrar (bot.consultations.manifest)."""
    register_consultation_jobs(registry, app.uows, app.localizers)


def register_consultation_jobs(registry: JobRegistry, uows: UnitOfWorkFactory, localizers: Localizers) -> None:
    jobs = ConsultationJobs(uows, localizers)
    registry.register(OPEN_JOB, jobs.open)
    registry.register(CLOSE_JOB, jobs.close)
    registry.register(OUTCOME_JOB, jobs.outcome)
    registry.register(MAP_JOB, jobs.map)
    registry.on_start(jobs.on_start)
