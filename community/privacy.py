"""A person's own data: everything Linli holds about them (/privacy), and erasing it (/forget).

What stays after erasure is only what no longer leads to the person: the audit log keeps bare person ids and
never a name, phone, address or household id (community.audit), so its chain stays verifiable and an id in it
leads nowhere; invitations they created and join requests they decided stay with their author cleared. A
household the person was the last member of loses its address (label and parts), since for a one-person
household the address is the person: the row stays, blank, so ids in older audit entries never come to name
another household, and invitations no one has used yet for that address move to a fresh row with it. A
household that still has members keeps its address: it is theirs."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, delete, exists, func, update
from sqlalchemy import Select as CoreSelect
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.sql.expression import Select, SelectOfScalar

from community import audit
from community.errors import NotFound
from community.export_models import ExportRequest
from community.features import PersonalDataProvider, PersonalSection
from community.join_messages import request_topic
from community.models import (
    ChannelAccount,
    CodeThrottle,
    Community,
    ConversationState,
    Household,
    Invitation,
    JoinRequest,
    JoinRequestStatus,
    Membership,
    MembershipRole,
    Person,
)
from community.notice_models import (
    FINAL_STATUSES,
    DeliveryStatus,
    Notice,
    NoticeAck,
    NoticeCategory,
    NoticeMute,
    NoticePreference,
    OutboxMessage,
)
from community.roles import Role
from community.unit_of_work import UnitOfWork

_KEY_SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class AccountData:
    channel: str
    username: str | None
    language_code: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class MembershipData:
    community: str
    household: str | None
    roles: tuple[Role, ...]
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class JoinRequestData:
    community: str
    name: str
    household: str
    phone: str | None
    status: JoinRequestStatus
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class DialogueData:
    """A multi-step form the person is in the middle of, with what they typed so far."""

    channel: str
    step: str
    data: dict[str, Any]
    updated_at: datetime


# The export file's own sections (PersonalData.as_json); a feature's provider takes a key of its own beside them.
KERNEL_SECTIONS = frozenset(
    {"person", "accounts", "memberships", "join_requests", "invitations_created", "dialogues_in_progress", "notices"}
)


@dataclass(frozen=True, slots=True)
class FeatureData:
    """What one feature's personal-data provider holds about the person (community.features)."""

    key: str  # the provider's key: its section in the export file
    section: PersonalSection


@dataclass(frozen=True, slots=True)
class PersonalData:
    person_id: int
    display_name: str
    phone: str | None
    language: str | None
    created_at: datetime
    accounts: tuple[AccountData, ...]
    memberships: tuple[MembershipData, ...]
    join_requests: tuple[JoinRequestData, ...]
    invitations_created: int
    dialogues: tuple[DialogueData, ...]
    muted_categories: tuple[NoticeCategory, ...] = ()  # notices the person chose not to receive
    daily_digest: bool = False  # non-urgent notices gathered into one message a day
    notices_acknowledged: int = 0
    notices_written: int = 0
    features: tuple[FeatureData, ...] = ()  # from the features' providers, in the order they were given

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values: dates in ISO 8601 (UTC), roles and statuses by their stable names."""

        def when(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "person": {
                "id": self.person_id,
                "name": self.display_name,
                "phone": self.phone,
                "language": self.language,
                "created_at": when(self.created_at),
            },
            "accounts": [
                {
                    "channel": a.channel,
                    "username": a.username,
                    "language_code": a.language_code,
                    "since": when(a.since),
                }
                for a in self.accounts
            ],
            "memberships": [
                {
                    "community": m.community,
                    "household": m.household,
                    "roles": [role.value for role in m.roles],
                    "joined_at": when(m.joined_at),
                }
                for m in self.memberships
            ],
            "join_requests": [
                {
                    "community": r.community,
                    "name": r.name,
                    "household": r.household,
                    "phone": r.phone,
                    "status": r.status.value,
                    "reason": r.reason,
                    "created_at": when(r.created_at),
                    "decided_at": when(r.decided_at),
                }
                for r in self.join_requests
            ],
            "invitations_created": self.invitations_created,
            "dialogues_in_progress": [
                {"channel": d.channel, "step": d.step, "data": d.data, "updated_at": when(d.updated_at)}
                for d in self.dialogues
            ],
            "notices": {
                "muted_categories": [category.value for category in self.muted_categories],
                "daily_digest": self.daily_digest,
                "acknowledged": self.notices_acknowledged,
                "written": self.notices_written,
            },
            **{found.key: found.section.as_json() for found in self.features},
        }

    def to_json_bytes(self) -> bytes:
        """The export file: UTF-8, Chinese kept readable, indented for people who open it in an editor."""
        return json.dumps(self.as_json(), ensure_ascii=False, indent=2).encode()


def _one_part(chat_id: str) -> bool:
    return bool(chat_id) and _KEY_SEPARATOR not in chat_id


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _dialogue_rows(uow: UnitOfWork, accounts: list[ChannelAccount]) -> list[ConversationState]:
    """Conversation state rows of these accounts. Keys are "channel:chat_id:account_id" (see bot.context), so a
    person's state in any chat (private or group) is found by channel prefix and account suffix."""
    found: list[ConversationState] = []
    for account in accounts:
        prefix = f"{account.channel}{_KEY_SEPARATOR}"
        suffix = f"{_KEY_SEPARATOR}{account.external_id}"
        pattern = f"{_escape_like(prefix)}%{_escape_like(suffix)}"
        rows = (await uow.session.exec(_statements().dialogues, params={"pattern": pattern})).all()
        # LIKE only narrows (SQLite's ignores case): the key must match exactly, with one chat id in the middle.
        found.extend(
            row
            for row in rows
            if row.key.startswith(prefix)
            and row.key.endswith(suffix)
            and _one_part(row.key[len(prefix) : len(row.key) - len(suffix)])
        )
    return found


@dataclass(frozen=True, slots=True)
class _Statements:
    """The reads of personal_data, built once: building a select cost about as much as SQLite took to run it."""

    accounts: SelectOfScalar[ChannelAccount]
    memberships: CoreSelect[int | None, datetime, str, str, Role]  # label and role: None when outer-joined
    requests: Select[JoinRequest, Community]
    scalars: CoreSelect[Any]
    dialogues: SelectOfScalar[ConversationState]


@functools.cache
def _statements() -> _Statements:
    person_id: BindParameter[int] = bindparam("person_id")
    return _Statements(
        accounts=select(ChannelAccount)
        .where(col(ChannelAccount.person_id) == person_id)
        .order_by(col(ChannelAccount.id)),
        # Memberships with their roles in one read: a membership comes once per role (once, with None, if it
        # has none), in membership order and then in the roles' own order, as they were read apart before.
        memberships=sa_select(
            col(Membership.id),
            col(Membership.joined_at),
            col(Community.name),
            col(Household.label),
            col(MembershipRole.role),
        )
        .join(Community, col(Community.id) == col(Membership.community_id))
        .outerjoin(Household, col(Household.id) == col(Membership.household_id))
        .outerjoin(MembershipRole, col(MembershipRole.membership_id) == col(Membership.id))
        .where(col(Membership.person_id) == person_id)
        .order_by(col(Membership.id), col(MembershipRole.id)),
        requests=select(JoinRequest, Community)
        .join(Community, col(Community.id) == col(JoinRequest.community_id))
        .where(col(JoinRequest.person_id) == person_id)
        .order_by(col(JoinRequest.id)),
        # Every one-value read in one statement, a round of ORM work instead of one each. A muted category is
        # one EXISTS per category; whether there are join requests decides if they are read at all.
        scalars=sa_select(
            select(func.count())
            .select_from(Invitation)
            .where(col(Invitation.created_by) == person_id)
            .scalar_subquery(),
            select(NoticePreference.daily_digest).where(col(NoticePreference.person_id) == person_id).scalar_subquery(),
            select(func.count()).select_from(NoticeAck).where(col(NoticeAck.person_id) == person_id).scalar_subquery(),
            select(func.count()).select_from(Notice).where(col(Notice.author_id) == person_id).scalar_subquery(),
            exists().where(col(JoinRequest.person_id) == person_id),
            *(
                exists().where(col(NoticeMute.person_id) == person_id, col(NoticeMute.category) == category)
                for category in NoticeCategory
            ),
        ),
        dialogues=select(ConversationState)
        .where(col(ConversationState.key).like(bindparam("pattern"), escape="\\"))
        .order_by(col(ConversationState.key)),
    )


async def _person(uow: UnitOfWork, person_id: int) -> Person:
    person = await uow.session.get(Person, person_id)
    if person is None:
        raise NotFound()
    return person


async def _accounts(uow: UnitOfWork, person_id: int) -> list[ChannelAccount]:
    return list((await uow.session.exec(_statements().accounts, params={"person_id": person_id})).all())


async def personal_data(
    uow: UnitOfWork, person_id: int, providers: Sequence[PersonalDataProvider] = ()
) -> PersonalData:
    """Everything Linli holds that leads to this person, for them to read and take away: the kernel's own rows,
    and what each feature's provider holds (the composition root passes every feature's)."""
    session = uow.session
    person = await _person(uow, person_id)
    accounts = await _accounts(uow, person_id)

    params = {"person_id": person_id}
    memberships: dict[int, tuple[datetime, str, str | None]] = {}  # in membership order
    roles: dict[int, list[Role]] = defaultdict(list)
    # sqlmodel types exec() for four columns at most, hence the ignores.
    membership_rows = await session.exec(_statements().memberships, params=params)  # type: ignore[call-overload]
    for membership_id, joined_at, community, household, role in membership_rows.all():
        memberships.setdefault(membership_id, (joined_at, community, household))
        if role is not None:
            roles[membership_id].append(Role(role))

    scalars = (await session.exec(_statements().scalars, params=params)).one()  # type: ignore[call-overload]
    invitations, digest, acknowledged, written, has_requests, *muted = scalars

    request_rows = (await session.exec(_statements().requests, params=params)).all() if has_requests else []

    dialogues = [
        DialogueData(
            channel=row.key.split(_KEY_SEPARATOR, 1)[0],
            step=row.name,
            data=json.loads(row.data),
            updated_at=row.updated_at,
        )
        for row in await _dialogue_rows(uow, accounts)
    ]

    features: list[FeatureData] = []
    for provider in providers:
        section = await provider.collect(uow, person_id)
        if section is not None:
            features.append(FeatureData(provider.key, section))

    return PersonalData(
        person_id=person_id,
        display_name=person.display_name,
        phone=person.phone,
        language=person.language,
        created_at=person.created_at,
        accounts=tuple(
            AccountData(channel=a.channel, username=a.username, language_code=a.language_code, since=a.created_at)
            for a in accounts
        ),
        memberships=tuple(
            MembershipData(community=community, household=household, roles=tuple(roles[mid]), joined_at=joined_at)
            for mid, (joined_at, community, household) in memberships.items()
        ),
        join_requests=tuple(
            JoinRequestData(
                community=c.name,
                name=r.name,
                household=r.household_label,
                phone=r.phone,
                status=JoinRequestStatus(r.status),
                reason=r.reason,
                created_at=r.created_at,
                decided_at=r.decided_at,
            )
            for r, c in request_rows
        ),
        invitations_created=int(invitations),
        dialogues=tuple(dialogues),
        muted_categories=tuple(category for category, is_muted in zip(NoticeCategory, muted, strict=True) if is_muted),
        daily_digest=bool(digest),
        notices_acknowledged=int(acknowledged),
        notices_written=int(written),
        features=tuple(features),
    )


async def _forget_join_request_messages(uow: UnitOfWork, person_id: int) -> None:
    """The workers' copies of their join requests (community.join_messages) name them, their household and
    phone: those not yet sent are cancelled, and every copy loses its text and buttons."""
    session = uow.session
    request_ids = (await session.exec(select(JoinRequest.id).where(JoinRequest.person_id == person_id))).all()
    topics = [
        request_topic(request_id, with_phone=with_phone)
        for request_id in request_ids
        if request_id is not None
        for with_phone in (True, False)
    ]
    if not topics:
        return
    about = col(OutboxMessage.topic).in_(topics)
    unsent = col(OutboxMessage.status).not_in([*FINAL_STATUSES, DeliveryStatus.SENDING])
    await session.exec(update(OutboxMessage).where(about, unsent).values(status=DeliveryStatus.CANCELLED))
    await session.exec(update(OutboxMessage).where(about).values(text="", buttons=None))


async def _forget_notice_data(uow: UnitOfWork, person_id: int, account_ids: list[int]) -> None:
    """Their notice choices and acknowledgements go; messages to them stay as the notice's counts, without
    recipient, chat or text, and those not yet sent are cancelled. Notices they wrote stay with the community,
    without their author and the author's progress message."""
    session = uow.session
    await session.exec(delete(NoticeMute).where(col(NoticeMute.person_id) == person_id))
    await session.exec(delete(NoticePreference).where(col(NoticePreference.person_id) == person_id))
    await session.exec(delete(NoticeAck).where(col(NoticeAck.person_id) == person_id))
    theirs = col(OutboxMessage.person_id) == person_id
    if account_ids:
        theirs = theirs | col(OutboxMessage.account_id).in_(account_ids)
    # A message in flight (SENDING) keeps its status for the sender to record; every other unsent one stops.
    unsent = col(OutboxMessage.status).not_in([*FINAL_STATUSES, DeliveryStatus.SENDING])
    await session.exec(update(OutboxMessage).where(theirs, unsent).values(status=DeliveryStatus.CANCELLED))
    await session.exec(
        update(OutboxMessage).where(theirs).values(person_id=None, account_id=None, chat_id="", text="", buttons=None)
    )
    await session.exec(
        update(Notice)
        .where(col(Notice.author_id) == person_id)
        .values(author_id=None, progress_channel=None, progress_chat_id=None, progress_message_id=None)
    )


# A household's label once its address is erased. The leading blank keeps it apart from every label a person
# can give: typed labels are stripped (communities.clean_text), so none can ever name an erased household.
ERASED_HOUSEHOLD_LABEL = " erased {id}"


async def _erase_left_households(uow: UnitOfWork, household_ids: list[int]) -> None:
    """Blank the address of each of these households that has no member left; see the module's docstring."""
    session = uow.session
    now = uow.clock.now()
    for household_id in household_ids:
        members = select(func.count()).select_from(Membership).where(col(Membership.household_id) == household_id)
        # Locked first (PostgreSQL): a join into it that is under way finishes before the count, and is counted.
        home = await session.get(Household, household_id, with_for_update=True)
        if home is None or (await session.exec(members)).one():
            continue
        unused = (
            await session.exec(
                select(Invitation.id).where(
                    col(Invitation.household_id) == household_id,
                    col(Invitation.uses) == 0,
                    col(Invitation.revoked_at).is_(None),
                    col(Invitation.expires_at).is_(None) | (col(Invitation.expires_at) > now),
                )
            )
        ).all()
        address = Household(
            community_id=home.community_id,
            label=home.label,
            building=home.building,
            unit=home.unit,
            room=home.room,
            resident_group=home.resident_group,
        )
        home.label = ERASED_HOUSEHOLD_LABEL.format(id=household_id)
        home.building = home.unit = home.room = home.resident_group = None
        session.add(home)
        await session.flush()
        await session.exec(
            update(Invitation).where(col(Invitation.household_id) == household_id).values(household_id=None)
        )
        if unused:
            session.add(address)
            await session.flush()
            await session.exec(update(Invitation).where(col(Invitation.id).in_(unused)).values(household_id=address.id))


# What a feature erases of a person when they use /forget: called with the unit of work and the person's id,
# before the kernel's own rows go (so the feature can still follow its links from the person). The kernel
# never imports a feature: the front ends hand forget() each feature's provider's erase (PersonalDataProvider.erase,
# gathered from the manifests by bot.manifest.Features.erasers).
Eraser = Callable[[UnitOfWork, int], Awaitable[None]]


async def forget(uow: UnitOfWork, person_id: int, erasers: Sequence[Eraser] = ()) -> None:
    """Erase the person: memberships and their roles, channel accounts with their code throttles and dialogue
    state, their join requests, their notice choices and acknowledgements, and the person row; clear their name
    from invitations they created, join requests they decided, notices they wrote and messages sent to them;
    blank the address of a household they leave without members. One transaction (the caller's): erased whole or
    not at all.

    A feature that adds a table pointing at person.id must erase or detach its rows here too, or through an
    eraser of its own (erasers, run first); the foreign key makes the final delete fail loudly if it does not."""
    session = uow.session
    await _person(uow, person_id)
    uow.people_changed.add(person_id)  # no roles left: the front end shows them what a stranger sees
    for erase in erasers:
        await erase(uow, person_id)
    accounts = await _accounts(uow, person_id)
    account_ids = [a.id for a in accounts if a.id is not None]

    for row in await _dialogue_rows(uow, accounts):
        await session.delete(row)
    if account_ids:
        await session.exec(delete(CodeThrottle).where(col(CodeThrottle.account_id).in_(account_ids)))

    homes = select(col(Membership.household_id)).where(col(Membership.person_id) == person_id)
    home_ids = sorted({home for home in (await session.exec(homes)).all() if home is not None})
    membership_ids = select(Membership.id).where(Membership.person_id == person_id).scalar_subquery()
    await session.exec(delete(MembershipRole).where(col(MembershipRole.membership_id).in_(membership_ids)))
    await session.exec(delete(Membership).where(col(Membership.person_id) == person_id))
    await _erase_left_households(uow, home_ids)

    await _forget_join_request_messages(uow, person_id)
    await session.exec(delete(JoinRequest).where(col(JoinRequest.person_id) == person_id))
    await _forget_notice_data(uow, person_id, account_ids)
    # Files they asked for: the requests go (a file still being made then finds none, and is not sent).
    await session.exec(delete(ExportRequest).where(col(ExportRequest.person_id) == person_id))
    await session.exec(update(JoinRequest).where(col(JoinRequest.decided_by) == person_id).values(decided_by=None))
    await session.exec(update(Invitation).where(col(Invitation.created_by) == person_id).values(created_by=None))

    await session.exec(delete(ChannelAccount).where(col(ChannelAccount.person_id) == person_id))
    await session.exec(delete(Person).where(col(Person.id) == person_id))
    await session.flush()

    await audit.record(
        uow,
        action="person.forgotten",
        subject_type="person",
        subject_id=person_id,
        actor_id=person_id,
    )
