"""Notices: what a community worker writes to residents, who receives it, and how it went.

A worker's draft is validated and published (SCHEDULED for later, with its job SEND recorded in the same
transaction, or SENDING at once); at send time the notice is fanned out into the outbox, one row per recipient
account (community.outbox), which the sender delivers.
This module decides who the recipients are: the verified members of the notice's community in its audience,
through every channel account that can still be reached, less those who muted the category (unless the notice
is important); people who chose the daily digest get the other notices held for it, except those asking for
an acknowledgement, whose button needs a message of its own.

Resolving recipients is a handful of set-based queries whatever the audience's size: the fan-out of a notice to
ten thousand people must not run a query per person."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from itertools import groupby
from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    CompoundSelect,
    Insert,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    null,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select

from community import audit, outbox, settings
from community.communities import effective_roles, get_community
from community.errors import (
    EmptyNotice,
    NoRecipients,
    NoticeAlreadySent,
    NoticeNotAllowed,
    NoticeNotFound,
    NoticeTooLong,
    SendTimePassed,
    SensitiveAudienceNotAllowed,
    ValidationFailed,
)
from community.models import ChannelAccount, Community, CommunitySetting, Household, Membership, Person
from community.notice_models import (
    AttachmentKind,
    DeliveryStatus,
    Notice,
    NoticeAck,
    NoticeCategory,
    NoticeMute,
    NoticePreference,
    NoticeStatus,
    NoticeTranslation,
    OutboxMessage,
)
from community.people import Identity
from community.permissions import allows, hidden_roles
from community.roles import Action, Role
from community.scheduling import JobSpec

# The options a composer offers are the scope's (community.scope); the composers read them from here.
from community.scope import Criteria, Scope, check_scope, natural_key
from community.scope import audience_options as audience_options
from community.unit_of_work import UnitOfWork
from community.verification import staff_community
from i18n import LANGUAGES, N_, negotiate_language

MAX_BODY = 4000  # Telegram's message limit is 4096 after entities; the rest is room for the rendered frame
MAX_CAPTION = 1000  # a body sent as a photo's or document's caption (Telegram: 1024)

# The role segments a worker can address, in the order the chat offers them.
SEGMENT_ROLES: tuple[Role, ...] = (
    Role.VOLUNTEER,
    Role.PARTY_MEMBER,
    Role.HOUSEHOLD_REPRESENTATIVE,
    Role.UNIT_CONTACT,
)


@dataclass(frozen=True, slots=True)
class NoticeJob:
    notice_id: int


# A scheduled notice's time has come: fan it out (publish schedules it, cancel unschedules it).
SEND = JobSpec("notice.send", NoticeJob, "notice:{notice_id}:send")
# What a worker can still cancel: a notice waiting for its time, or one going out (its unsent messages stop).
CANCELLABLE = (NoticeStatus.SCHEDULED, NoticeStatus.SENDING)
# A notice's story is over once it is out or cancelled: its figures move no more (but acknowledgements).
OVER = (NoticeStatus.SENT, NoticeStatus.CANCELLED)
# progress_message_id while one process is sending the author's first progress message (claim_progress_message).
PROGRESS_CLAIMED = "-"


def _building_key(building: str | None) -> tuple[bool, tuple[str | int, ...]]:
    return (building is None, natural_key(building or ""))


@dataclass(frozen=True, slots=True)
class Attachment:
    kind: AttachmentKind
    channel: str  # whose file reference ref is
    ref: str  # e.g. a Telegram file_id
    name: str | None = None


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    community_id: int
    body: str
    language: str  # the language body is written in
    category: NoticeCategory = NoticeCategory.GENERAL
    important: bool = False
    ack_requested: bool = False
    audience: Scope = field(default_factory=Scope)
    send_at: datetime | None = None  # aware; None: as soon as published
    translations: Mapping[str, str] = field(default_factory=dict)  # language -> the worker's own version
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """One message of a notice: a person through one of their channel accounts."""

    person_id: int
    account_id: int
    channel: str
    chat_id: str
    language: str  # the language to write to them in
    held: bool  # True: waits for their daily digest (never for an important notice, nor one to acknowledge)
    building: str | None


@dataclass(frozen=True, slots=True)
class BuildingFigures:
    building: str | None  # None: recipients without a household (or no longer members)
    total: int
    sent: int
    failed: int
    unreachable: int
    acknowledged: int


@dataclass(frozen=True, slots=True)
class NoticeFigures:
    """How a notice's messages stand. queued counts the ones on their way (queued or being sent); sent counts
    those delivered on their own or inside a digest; acknowledged counts people."""

    total: int
    queued: int
    sent: int
    failed: int
    unreachable: int
    held: int
    cancelled: int
    acknowledged: int
    by_building: tuple[BuildingFigures, ...]
    no_channel: int = 0  # not reachable on this channel: no process serves the recipient's channel


@dataclass(frozen=True, slots=True)
class DigestBatch:
    """The held messages of one recipient account, to be gathered into one digest message."""

    person_id: int
    account_id: int
    channel: str
    chat_id: str
    language: str
    notices: tuple[Notice, ...]
    row_ids: tuple[int, ...]


# --- validation and publishing -----------------------------------------------------------------------------


def _check_body(body: str, limit: int) -> None:
    text = body.strip()
    if not text:
        raise EmptyNotice()
    if len(text) > limit:
        raise NoticeTooLong(limit=limit, length=len(text))


def validate_draft(draft: NoticeDraft, now: datetime) -> None:
    """Refuse what cannot be sent, with a message for the worker. Checks that need the database (the
    community's buildings and groups, the audience's size, the worker's role) are publish's."""
    limit = MAX_CAPTION if draft.attachment is not None else MAX_BODY
    _check_body(draft.body, limit)
    for language in (draft.language, *draft.translations):
        if language not in LANGUAGES:
            raise ValidationFailed(N_("Unknown language: %(language)s"), language=language)
    for body in draft.translations.values():
        _check_body(body, limit)
    if draft.send_at is not None:
        if draft.send_at.tzinfo is None:
            raise ValueError("NoticeDraft.send_at must be timezone-aware")
        if draft.send_at <= now:
            raise SendTimePassed()


async def _require_sender(uow: UnitOfWork, person_id: int, community_id: int) -> frozenset[Role]:
    roles = await effective_roles(uow, person_id, community_id)
    if not allows(roles, Action.SEND_NOTICE):
        raise NoticeNotAllowed()
    return roles


def segment_roles_for(roles: Iterable[Role]) -> tuple[Role, ...]:
    """The role segments someone holding these roles may address (party members only for those who may see
    party membership): addressing a role tells the sender who holds it, since the preview counts the recipients."""
    hidden = hidden_roles(roles)
    return tuple(role for role in SEGMENT_ROLES if role not in hidden)


async def segment_roles(uow: UnitOfWork, person_id: int, community_id: int) -> tuple[Role, ...]:
    """The role segments this person may address in the community, by their roles there (inherited included)."""
    return segment_roles_for(await effective_roles(uow, person_id, community_id))


async def publish(uow: UnitOfWork, identity: Identity, draft: NoticeDraft) -> Notice:
    """Confirm a worker's notice: the one place that decides between now and later. With a send time in the
    future it is SCHEDULED, and its job SEND is recorded in this transaction; without one it is SENDING, and the
    caller fans it out in the same unit of work: recipients(), outbox.enqueue(), mark_fanned_out(). Everything
    is checked before anything is written."""
    community = await get_community(uow, draft.community_id)
    roles = await _require_sender(uow, identity.person_id, draft.community_id)
    now = uow.clock.now()
    validate_draft(draft, now)
    audience = draft.audience
    if hidden_roles(roles).intersection(audience.roles):
        raise SensitiveAudienceNotAllowed()
    await check_scope(uow, draft.community_id, audience)
    if not await count_recipients(
        uow, draft.community_id, audience, category=draft.category, important=draft.important
    ):
        raise NoRecipients()

    scheduled = draft.send_at is not None
    notice = Notice(
        community_id=draft.community_id,
        author_id=identity.person_id,
        category=draft.category,
        important=draft.important,
        ack_requested=draft.ack_requested,
        body=draft.body.strip(),
        language=draft.language,
        attachment_kind=draft.attachment.kind if draft.attachment else None,
        attachment_channel=draft.attachment.channel if draft.attachment else None,
        attachment_ref=draft.attachment.ref if draft.attachment else None,
        attachment_name=draft.attachment.name if draft.attachment else None,
        audience=audience.to_json(),
        status=NoticeStatus.SCHEDULED if scheduled else NoticeStatus.SENDING,
        send_at=draft.send_at.astimezone(UTC) if draft.send_at is not None else None,
        created_at=now,
    )
    uow.session.add(notice)
    await uow.session.flush()
    assert notice.id is not None
    if notice.send_at is not None:
        uow.schedule(SEND, notice.send_at, NoticeJob(notice.id))
    languages = sorted(language for language in draft.translations if language != draft.language)
    for language in languages:
        body = draft.translations[language].strip()
        uow.session.add(NoticeTranslation(notice_id=notice.id, language=language, body=body))
    await uow.session.flush()
    await audit.record(
        uow,
        action="notice.published",
        subject_type="notice",
        subject_id=notice.id,
        community_id=community.id,
        actor_id=identity.person_id,
        data={
            "status": notice.status.value,
            "category": notice.category.value,
            "important": notice.important,
            "ack_requested": notice.ack_requested,
            "audience": json.loads(notice.audience),
            "send_at": notice.send_at.isoformat() if notice.send_at is not None else None,
            "translations": languages,
            "attachment": notice.attachment_kind.value if notice.attachment_kind is not None else None,
        },
    )
    return notice


# --- audiences ---------------------------------------------------------------------------------------------


def _audience_filters(
    community_id: int, audience: Scope, category: NoticeCategory, important: bool
) -> list[ColumnElement[bool]]:
    """Conditions on Membership (joined with its Household and a reachable ChannelAccount) for an audience: the
    community's members in its scope (community.scope), reachable, and not muting the category."""
    filters: list[ColumnElement[bool]] = [
        *Criteria(community_id, audience).filters(),
        col(ChannelAccount.unreachable_since).is_(None),
    ]
    if not important:
        filters.append(
            ~exists().where(
                col(NoticeMute.person_id) == col(Membership.person_id),
                col(NoticeMute.category) == category,
            )
        )
    return filters


async def count_recipients(
    uow: UnitOfWork, community_id: int, audience: Scope, *, category: NoticeCategory, important: bool
) -> int:
    """How many messages a notice to this audience would make now: one per reachable account (a person with
    two channels counts twice), the same count the notice's figures later show as its total."""
    statement = (
        select(func.count())
        .select_from(Membership)
        .join(ChannelAccount, col(ChannelAccount.person_id) == col(Membership.person_id))
        .outerjoin(Household, col(Household.id) == col(Membership.household_id))
        .where(*_audience_filters(community_id, audience, category, important))
    )
    return int((await uow.session.exec(statement)).one())


async def recipients(uow: UnitOfWork, notice: Notice) -> list[Recipient]:
    """Who the notice goes to now, one entry per reachable channel account, ordered by person and account."""
    community = await get_community(uow, notice.community_id)
    audience = Scope.from_json(notice.audience)
    statement = (
        sa_select(
            col(Membership.person_id),
            col(ChannelAccount.id),
            col(ChannelAccount.channel),
            col(ChannelAccount.chat_id),
            col(Person.language),
            col(ChannelAccount.language_code),
            col(Household.building),
            col(NoticePreference.daily_digest),
        )
        .select_from(Membership)
        .join(Person, col(Person.id) == col(Membership.person_id))
        .join(ChannelAccount, col(ChannelAccount.person_id) == col(Membership.person_id))
        .outerjoin(Household, col(Household.id) == col(Membership.household_id))
        .outerjoin(NoticePreference, col(NoticePreference.person_id) == col(Membership.person_id))
        .where(*_audience_filters(notice.community_id, audience, notice.category, notice.important))
        .order_by(col(Membership.person_id), col(ChannelAccount.id))
    )
    rows = (await uow.session.exec(statement)).all()  # type: ignore[call-overload]
    default = community.default_language
    return [
        Recipient(
            person_id=person_id,
            account_id=account_id,
            channel=channel,
            chat_id=chat_id,
            language=negotiate_language(own, client, default),
            held=bool(digest) and not (notice.important or notice.ack_requested),
            building=building,
        )
        for person_id, account_id, channel, chat_id, own, client, building, digest in rows
    ]


async def language_versions(uow: UnitOfWork, notice: Notice) -> dict[str, str]:
    """The notice's body by language: the original, plus the worker's own versions in other languages.
    A recipient reads the version in their language if there is one, else the original."""
    versions = {notice.language: notice.body}
    rows = (
        await uow.session.exec(
            select(NoticeTranslation.language, NoticeTranslation.body)
            .where(NoticeTranslation.notice_id == notice.id)
            .order_by(col(NoticeTranslation.language))
        )
    ).all()
    for language, body in rows:
        versions.setdefault(language, body)
    return versions


# --- the notice's life ----------------------------------------------------------------------------------------


async def get_notice(uow: UnitOfWork, notice_id: int) -> Notice:
    found = await uow.session.get(Notice, notice_id)
    if found is None:
        raise NoticeNotFound()
    return found


async def _reloaded(uow: UnitOfWork, notice_id: int) -> Notice | None:
    return await uow.session.get(Notice, notice_id, populate_existing=True)


async def current_notice(uow: UnitOfWork, notice_id: int) -> Notice | None:
    """The notice as the database has it now (a conditional UPDATE elsewhere leaves a loaded row as it was);
    None for an id that does not exist."""
    return await _reloaded(uow, notice_id)


async def notice_for_sender(uow: UnitOfWork, person_id: int, notice_id: int) -> tuple[Notice, Community]:
    """A notice, with its community, for someone who may send notices there (and so see how it went and cancel
    it); refused as not found for anyone else, so an id reveals nothing of another community."""
    notice = await get_notice(uow, notice_id)
    community = await staff_community(uow, person_id, Action.SEND_NOTICE, notice.community_id)
    if community is None:
        raise NoticeNotFound()
    return notice, community


def cancellable(notice: Notice) -> bool:
    """Whether a worker can still cancel the notice (cancel() refuses or ignores the others)."""
    return notice.status in CANCELLABLE


def is_over(notice: Notice) -> bool:
    """Out or cancelled: nothing more goes out, so its progress message shows the summary."""
    return notice.status in OVER


def progress_message_shown(notice: Notice) -> str | None:
    """The id of the author's progress message, once it was sent (None while none is, or one is being sent)."""
    message_id = notice.progress_message_id
    return None if message_id is None or message_id == PROGRESS_CLAIMED else message_id


async def begin_sending(uow: UnitOfWork, notice_id: int) -> Notice | None:
    """At send time: SCHEDULED -> SENDING, returning the notice for the caller to fan out in the same unit of
        work. A notice that is SENDING but was never fanned out (published for "now" in a transaction that was
        rolled back after) is returned too. None for anything else (cancelled, already out, or another process
        got there first: the conditional update lets exactly one caller through), and for an id that does not exist
    (a job scheduled by a transaction that was rolled back)."""
    result = await uow.session.exec(
        update(Notice)
        .where(
            col(Notice.id) == notice_id,
            (col(Notice.status) == NoticeStatus.SCHEDULED)
            | and_(col(Notice.status) == NoticeStatus.SENDING, col(Notice.queued_at).is_(None)),
        )
        .values(status=NoticeStatus.SENDING)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return await _reloaded(uow, notice_id)


async def mark_fanned_out(uow: UnitOfWork, notice_id: int, recipients: int) -> None:
    """The notice's outbox rows are made: record how many, and when."""
    notice = await get_notice(uow, notice_id)
    notice.recipients = recipients
    notice.queued_at = uow.clock.now()
    uow.session.add(notice)
    await uow.session.flush()


async def set_progress_target(uow: UnitOfWork, notice_id: int, channel: str, chat_id: str) -> None:
    """Where the author follows the notice going out: the chat their progress message will be in."""
    notice = await get_notice(uow, notice_id)
    notice.progress_channel, notice.progress_chat_id, notice.progress_message_id = channel, chat_id, None
    uow.session.add(notice)
    await uow.session.flush()


async def set_progress_message(uow: UnitOfWork, notice_id: int, message_id: str) -> None:
    """The author's progress message was sent: later figures edit this message."""
    notice = await get_notice(uow, notice_id)
    notice.progress_message_id = message_id
    uow.session.add(notice)
    await uow.session.flush()


async def claim_progress_message(uow: UnitOfWork, notice_id: int) -> bool:
    """Take the right to send the author's first progress message, so two processes never both send one: True
    for exactly one caller while the notice has none. Committed by the caller at once, before it sends."""
    result = await uow.session.exec(
        update(Notice)
        .where(col(Notice.id) == notice_id, col(Notice.progress_message_id).is_(None))
        .values(progress_message_id=PROGRESS_CLAIMED)
    )
    return bool(result.rowcount)


async def release_progress_message(uow: UnitOfWork, notice_id: int) -> None:
    """The progress message was not sent, or is gone (the author deleted it): the next look sends a new one."""
    await uow.session.exec(update(Notice).where(col(Notice.id) == notice_id).values(progress_message_id=None))


async def author_language(uow: UnitOfWork, notice: Notice, community: Community) -> str:
    """The language the author reads their progress message in: their own choice, else their client's language
    in the chat that follows the notice, else the community's."""
    person = await uow.session.get(Person, notice.author_id) if notice.author_id is not None else None
    account = (
        await uow.session.exec(
            select(ChannelAccount).where(
                ChannelAccount.channel == notice.progress_channel,
                ChannelAccount.chat_id == notice.progress_chat_id,
                ChannelAccount.person_id == notice.author_id,
            )
        )
    ).first()
    return negotiate_language(
        person.language if person else None, account.language_code if account else None, community.default_language
    )


async def finish_if_settled(uow: UnitOfWork, notice_id: int) -> bool:
    """SENDING -> SENT once every message reached a final state (held ones wait for the digest, which does not
    keep the notice open). True when this call finished it, so exactly one caller records it."""
    notice = await get_notice(uow, notice_id)
    if notice.status != NoticeStatus.SENDING or notice.queued_at is None:
        return False
    if not await outbox.is_settled(uow, notice_id):
        return False
    now = uow.clock.now()
    result = await uow.session.exec(
        update(Notice)
        .where(col(Notice.id) == notice_id, col(Notice.status) == NoticeStatus.SENDING)
        .values(status=NoticeStatus.SENT, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    figures_now = await figures(uow, notice_id)
    await audit.record(
        uow,
        action="notice.sent",
        subject_type="notice",
        subject_id=notice_id,
        community_id=notice.community_id,
        data={
            "total": figures_now.total,
            "sent": figures_now.sent,
            "failed": figures_now.failed,
            "unreachable": figures_now.unreachable,
            "no_channel": figures_now.no_channel,
            "held": figures_now.held,
        },
    )
    await _reloaded(uow, notice_id)
    return True


async def cancel(uow: UnitOfWork, identity: Identity, notice_id: int) -> Notice:
    """Cancel a scheduled notice, or stop one that is going out: its messages not yet sent (queued or held for
    a digest) are cancelled, those in flight or sent stay as they are. A notice already out cannot be
    cancelled; cancelling a cancelled notice changes nothing."""
    notice = await get_notice(uow, notice_id)
    await _require_sender(uow, identity.person_id, notice.community_id)
    if notice.status == NoticeStatus.CANCELLED:
        return notice
    if notice.status == NoticeStatus.SENT:
        raise NoticeAlreadySent()
    was = notice.status
    cancelled_messages = await outbox.cancel_queued(uow, notice_id) if was == NoticeStatus.SENDING else 0
    if was == NoticeStatus.SCHEDULED:
        uow.unschedule(SEND, NoticeJob(notice_id))
    notice.status = NoticeStatus.CANCELLED
    notice.cancelled_at = uow.clock.now()
    uow.session.add(notice)
    await uow.session.flush()
    await audit.record(
        uow,
        action="notice.cancelled",
        subject_type="notice",
        subject_id=notice_id,
        community_id=notice.community_id,
        actor_id=identity.person_id,
        data={"was": was.value, "cancelled_messages": cancelled_messages},
    )
    return notice


async def recent(uow: UnitOfWork, community_id: int, limit: int = 10) -> list[Notice]:
    """A community's latest notices, newest first."""
    return list(
        (
            await uow.session.exec(
                select(Notice)
                .where(Notice.community_id == community_id)
                .order_by(col(Notice.created_at).desc(), col(Notice.id).desc())
                .limit(limit)
            )
        ).all()
    )


# --- acknowledgements and figures -----------------------------------------------------------------------------


def _insert(uow: UnitOfWork, model: type[Any]) -> Any:
    """INSERT with ON CONFLICT support, in the session's dialect (both have the same on_conflict_* methods)."""
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


async def acknowledge(uow: UnitOfWork, person_id: int, notice_id: int) -> bool:
    """A recipient confirms they read a notice that asked for it. True the first time; False when they already
    had (two taps at once count once: the unique constraint decides), when the notice asked for no
    confirmation, or when it was never sent to them."""
    notice = await uow.session.get(Notice, notice_id)
    if notice is None or not notice.ack_requested:
        return False
    was_recipient = (
        await uow.session.exec(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.notice_id == notice_id,
                OutboxMessage.person_id == person_id,
                col(OutboxMessage.status) != DeliveryStatus.CANCELLED,
            )
            .limit(1)
        )
    ).first()
    if was_recipient is None:
        return False
    statement: Insert = (
        _insert(uow, NoticeAck)
        .values(notice_id=notice_id, person_id=person_id, at=uow.clock.now())
        .on_conflict_do_nothing(index_elements=["notice_id", "person_id"])
        .returning(col(NoticeAck.id))
    )
    inserted = (await uow.session.exec(statement)).first()
    return inserted is not None


async def has_acknowledged(uow: UnitOfWork, person_id: int, notice_id: int) -> bool:
    found = await uow.session.exec(
        select(NoticeAck.id).where(NoticeAck.notice_id == notice_id, NoticeAck.person_id == person_id).limit(1)
    )
    return found.first() is not None


async def copy_in_chat(
    uow: UnitOfWork, notice_id: int, person_id: int, channel: str, chat_id: str
) -> OutboxMessage | None:
    """The latest message of this notice that went to this person in this chat: its text is what they see."""
    found = await uow.session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.notice_id == notice_id,
            OutboxMessage.person_id == person_id,
            OutboxMessage.channel == channel,
            OutboxMessage.chat_id == chat_id,
        )
        .order_by(col(OutboxMessage.id).desc())
        .limit(1)
    )
    return found.first()


async def figures(uow: UnitOfWork, notice_id: int) -> NoticeFigures:
    """Counts of the notice's messages by outcome, acknowledgements, and both by the recipients' building."""
    notice = await get_notice(uow, notice_id)
    by_status = (
        await uow.session.exec(
            sa_select(col(Household.building), col(OutboxMessage.status), func.count())
            .select_from(OutboxMessage)
            .outerjoin(
                Membership,
                and_(
                    col(Membership.person_id) == col(OutboxMessage.person_id),
                    col(Membership.community_id) == notice.community_id,
                ),
            )
            .outerjoin(Household, col(Household.id) == col(Membership.household_id))
            .where(col(OutboxMessage.notice_id) == notice_id)
            .group_by(col(Household.building), col(OutboxMessage.status))
        )  # type: ignore[call-overload]
    ).all()
    acks = (
        await uow.session.exec(
            sa_select(col(Household.building), func.count())
            .select_from(NoticeAck)
            .outerjoin(
                Membership,
                and_(
                    col(Membership.person_id) == col(NoticeAck.person_id),
                    col(Membership.community_id) == notice.community_id,
                ),
            )
            .outerjoin(Household, col(Household.id) == col(Membership.household_id))
            .where(col(NoticeAck.notice_id) == notice_id)
            .group_by(col(Household.building))
        )  # type: ignore[call-overload]
    ).all()

    totals: dict[DeliveryStatus, int] = {}
    buildings: dict[str | None, dict[DeliveryStatus, int]] = {}
    for building, status, count in by_status:
        status = DeliveryStatus(status)
        totals[status] = totals.get(status, 0) + count
        per = buildings.setdefault(building, {})
        per[status] = per.get(status, 0) + count
    acknowledged_by: dict[str | None, int] = {building: count for building, count in acks}
    for building in acknowledged_by:
        buildings.setdefault(building, {})

    def delivered(counts: Mapping[DeliveryStatus, int]) -> int:
        return counts.get(DeliveryStatus.SENT, 0) + counts.get(DeliveryStatus.DIGESTED, 0)

    return NoticeFigures(
        total=sum(totals.values()),
        queued=totals.get(DeliveryStatus.QUEUED, 0) + totals.get(DeliveryStatus.SENDING, 0),
        sent=delivered(totals),
        failed=totals.get(DeliveryStatus.FAILED, 0),
        unreachable=totals.get(DeliveryStatus.UNREACHABLE, 0),
        held=totals.get(DeliveryStatus.HELD, 0),
        cancelled=totals.get(DeliveryStatus.CANCELLED, 0),
        no_channel=totals.get(DeliveryStatus.NO_CHANNEL, 0),
        acknowledged=sum(acknowledged_by.values()),
        by_building=tuple(
            BuildingFigures(
                building=building,
                total=sum(counts.values()),
                sent=delivered(counts),
                failed=counts.get(DeliveryStatus.FAILED, 0),
                unreachable=counts.get(DeliveryStatus.UNREACHABLE, 0),
                acknowledged=acknowledged_by.get(building, 0),
            )
            for building, counts in sorted(buildings.items(), key=lambda item: _building_key(item[0]))
        ),
    )


# --- a resident's choices ----------------------------------------------------------------------------------


async def set_muted(uow: UnitOfWork, person_id: int, category: NoticeCategory, muted: bool) -> None:
    """Mute or unmute a category of notices for a person. Important notices reach them all the same."""
    if muted:
        await uow.session.exec(
            _insert(uow, NoticeMute)
            .values(person_id=person_id, category=category)
            .on_conflict_do_nothing(index_elements=["person_id", "category"])
        )
    else:
        await uow.session.exec(
            NoticeMute.__table__.delete().where(  # type: ignore[attr-defined]
                col(NoticeMute.person_id) == person_id, col(NoticeMute.category) == category
            )
        )


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """What /notifications shows a person: the categories they muted, whether they chose the daily digest, and
    when their digests come: the digest time of each community they belong to, earliest first, or the default
    for someone in none."""

    muted: frozenset[NoticeCategory]
    daily_digest: bool
    digest_times: tuple[time, ...]


# The kinds of row _settings_statement reads, in its first column.
_MUTE, _DIGEST, _DIGEST_TIME = 0, 1, 2


@functools.cache
def _settings_statement() -> CompoundSelect[int, str | None, bool | None]:
    """Built once, as one statement: /notifications shows all three at every visit, and each statement costs
    more in the ORM than in the database. A UNION ALL of the three reads, told apart by the first column: the
    mutes (one row each), the digest preference (none or one), and the digest time setting of each community the
    person belongs to (one row each, NULL where the community has none). The NULLs are cast so that PostgreSQL
    unites the columns whatever the branches' order; the category is read as text, the first branch's column type
    deciding how every row's value is read back."""
    person_id: BindParameter[int] = bindparam("person_id")
    no_text = cast(null(), String)
    no_flag = cast(null(), Boolean)
    return union_all(
        sa_select(
            literal_column(str(_MUTE), Integer),
            type_coerce(col(NoticeMute.category), String),
            no_flag,
        ).where(col(NoticeMute.person_id) == person_id),
        sa_select(literal_column(str(_DIGEST), Integer), no_text, col(NoticePreference.daily_digest)).where(
            col(NoticePreference.person_id) == person_id
        ),
        sa_select(literal_column(str(_DIGEST_TIME), Integer), col(CommunitySetting.value), no_flag)
        .select_from(Membership)
        .outerjoin(
            CommunitySetting,
            and_(
                col(CommunitySetting.community_id) == col(Membership.community_id),
                col(CommunitySetting.key) == settings.DIGEST_TIME.key,
            ),
        )
        .where(col(Membership.person_id) == person_id),
    )


async def notification_settings(uow: UnitOfWork, person_id: int) -> NotificationSettings:
    """The person's mutes, digest choice and digest times, in one statement."""
    rows = (
        await uow.session.exec(_settings_statement(), params={"person_id": person_id})  # type: ignore[call-overload]
    ).all()
    muted: set[NoticeCategory] = set()
    digest = False
    stored: set[time] = set()
    for kind, text, flag in rows:
        if kind == _MUTE:
            muted.add(NoticeCategory(text))
        elif kind == _DIGEST:
            digest = bool(flag)
        else:
            stored.add(settings.stored_value(settings.DIGEST_TIME, text))
    times = tuple(sorted(stored)) or (settings.DIGEST_TIME.default,)
    return NotificationSettings(muted=frozenset(muted), daily_digest=digest, digest_times=times)


async def set_daily_digest(uow: UnitOfWork, person_id: int, on: bool) -> None:
    """Gather non-important notices into one message a day (on), or receive each at once (off). Messages
    already held go out in the next digest either way."""
    await uow.session.exec(
        _insert(uow, NoticePreference)
        .values(person_id=person_id, daily_digest=on)
        .on_conflict_do_update(index_elements=["person_id"], set_={"daily_digest": on})
    )


# --- the daily digest --------------------------------------------------------------------------------------------


async def due_digests(uow: UnitOfWork) -> dict[int, datetime]:
    """The communities whose digest is due now, each with its cut-off: the latest digest time (the community's
    setting, community.settings.DIGEST_TIME, in its time zone) at or before now, when it holds messages from
    before it. A message held after the cut-off waits for the next day's. Asked every minute (the digest tick):
    one grouped query on the held messages, a setting look-up per community that has any."""
    now = uow.clock.now()
    held = (
        await uow.session.exec(
            sa_select(col(Notice.community_id), func.min(col(OutboxMessage.created_at)))
            .select_from(OutboxMessage)
            .join(Notice, col(Notice.id) == col(OutboxMessage.notice_id))
            .where(col(OutboxMessage.status) == DeliveryStatus.HELD)
            .group_by(col(Notice.community_id))
        )  # type: ignore[call-overload]
    ).all()
    due: dict[int, datetime] = {}
    for community_id, oldest in held:
        at = await settings.value(uow, community_id, settings.DIGEST_TIME)
        timezone = await settings.value(uow, community_id, settings.TIMEZONE)
        cutoff = settings.latest_time_of_day(now, at, timezone)
        if oldest <= cutoff:
            due[int(community_id)] = cutoff
    return due


async def digest_batches(uow: UnitOfWork, due: Mapping[int, datetime] | None = None) -> list[DigestBatch]:
    """Every held message, gathered per recipient account, each batch's notices in the order they were made.
    The language is the recipient's, negotiated as for the notices themselves (with the first notice's
    community's default). due (from due_digests): only the messages of these communities held by each one's
    cut-off; None: every held message."""
    if due is not None and not due:
        return []  # the digest tick's usual case: no community's time has come
    rows = (
        await uow.session.exec(
            sa_select(
                col(OutboxMessage.id),
                col(OutboxMessage.person_id),
                col(OutboxMessage.account_id),
                col(OutboxMessage.channel),
                col(OutboxMessage.chat_id),
                Notice,
                col(Person.language),
                col(ChannelAccount.language_code),
                col(Community.default_language),
                col(OutboxMessage.created_at),
            )
            .select_from(OutboxMessage)
            .join(Notice, col(Notice.id) == col(OutboxMessage.notice_id))
            .join(Community, col(Community.id) == col(Notice.community_id))
            .join(Person, col(Person.id) == col(OutboxMessage.person_id))
            .join(ChannelAccount, col(ChannelAccount.id) == col(OutboxMessage.account_id))
            .where(
                col(OutboxMessage.status) == DeliveryStatus.HELD,
                col(Notice.community_id).in_(list(due)) if due is not None else true(),
            )
            .order_by(col(OutboxMessage.person_id), col(OutboxMessage.account_id), col(OutboxMessage.id))
        )  # type: ignore[call-overload]
    ).all()
    if due is not None:
        rows = [row for row in rows if row[-1] <= due[row[5].community_id]]
    batches: list[DigestBatch] = []
    for (person_id, account_id), group in groupby(rows, key=lambda row: (row[1], row[2])):
        held = list(group)
        _, _, _, channel, chat_id, _, own, client, default, _ = held[0]
        batches.append(
            DigestBatch(
                person_id=person_id,
                account_id=account_id,
                channel=channel,
                chat_id=chat_id,
                language=negotiate_language(own, client, default),
                notices=tuple(row[5] for row in held),
                row_ids=tuple(row[0] for row in held),
            )
        )
    return batches


async def mark_digested(uow: UnitOfWork, row_ids: Sequence[int]) -> None:
    """These held messages went out inside a digest (the digest is its own outbox row)."""
    if not row_ids:
        return
    await uow.session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(row_ids)), col(OutboxMessage.status) == DeliveryStatus.HELD)
        .values(status=DeliveryStatus.DIGESTED, sent_at=uow.clock.now())
        .execution_options(synchronize_session=False)
    )
