"""People and their channel accounts: who is writing, in which communities, with which roles."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from community.dialogue import DialogueState, dialogue_state, load_state
from community.models import (
    ChannelAccount,
    Community,
    ConversationState,
    Household,
    Membership,
    MembershipRole,
    Person,
)
from community.roles import Role
from community.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class MembershipView:
    membership_id: int
    community: Community
    household: Household | None
    roles: frozenset[Role]


@dataclass(slots=True)
class Identity:
    person: Person
    account: ChannelAccount
    memberships: list[MembershipView] = field(default_factory=list)
    is_new: bool = False

    @property
    def person_id(self) -> int:
        assert self.person.id is not None
        return self.person.id

    @property
    def primary(self) -> MembershipView | None:
        """The community a person mostly acts in: their first grassroots membership, else the first."""
        for view in self.memberships:
            if view.community.kind.is_grassroots:
                return view
        return self.memberships[0] if self.memberships else None

    def roles_in(self, community_id: int) -> frozenset[Role]:
        for view in self.memberships:
            if view.community.id == community_id:
                return view.roles
        return frozenset()


IdentityRow = tuple[ChannelAccount, Person, int | None, Community | None, Household | None, Role | None]


def _accounts_with_memberships() -> Select[ChannelAccount, Person, int | None, Community, Household, Role]:
    """Accounts with their person, and each of the person's memberships with its community, household and
    roles, one row per role. The membership comes as its id only: nothing reads the rest of it, and every
    entity loaded costs more than a column."""
    return (
        sa_select(ChannelAccount, Person, col(Membership.id), Community, Household, col(MembershipRole.role))
        .join(Person, col(Person.id) == col(ChannelAccount.person_id))
        .outerjoin(Membership, col(Membership.person_id) == col(Person.id))
        .outerjoin(Community, col(Community.id) == col(Membership.community_id))
        .outerjoin(Household, col(Household.id) == col(Membership.household_id))
        .outerjoin(MembershipRole, col(MembershipRole.membership_id) == col(Membership.id))
    )


@functools.cache
def _identity_statement() -> Select[ChannelAccount, Person, int | None, Community, Household, Role]:
    """Built once: composing this join costs more than SQLite takes to run it."""
    return (
        _accounts_with_memberships()
        .where(
            col(ChannelAccount.channel) == bindparam("channel"),
            col(ChannelAccount.external_id) == bindparam("external_id"),
        )
        .order_by(col(Membership.id))
    )


@functools.cache
def _identities_statement() -> Select[ChannelAccount, Person, int | None, Community, Household, Role]:
    return (
        _accounts_with_memberships()
        .where(
            col(ChannelAccount.channel) == bindparam("channel"),
            col(ChannelAccount.person_id).in_(bindparam("person_ids", expanding=True)),
        )
        .order_by(col(ChannelAccount.person_id), col(ChannelAccount.id), col(Membership.id))
    )


@functools.cache
def _arrival_statement() -> Select[Any]:
    """The identity's statement with the dialogue state of the chat the event came from alongside (one row per
    role, each with the same state: the state's key is the one row of conversation_state it can match)."""
    return (
        _identity_statement()
        .add_columns(col(ConversationState.name), col(ConversationState.data))
        .outerjoin_from(ChannelAccount, ConversationState, col(ConversationState.key) == bindparam("state_key"))
    )


@dataclass(frozen=True, slots=True)
class Arrival:
    """Who sent an event, and where they are in a dialogue in that chat (None: in none)."""

    identity: Identity
    state: DialogueState | None


@dataclass(frozen=True, slots=True)
class Arriving:
    """Who an event comes from, as the channel describes them (community.people knows no channel's types)."""

    channel: str
    external_id: str
    chat_id: str
    display_name: str
    language_code: str | None = None
    username: str | None = None


async def identify(
    uow: UnitOfWork,
    *,
    channel: str,
    external_id: str,
    chat_id: str,
    display_name: str,
    language_code: str | None = None,
    username: str | None = None,
) -> Identity:
    """Find the person behind a channel account, creating both on first contact."""
    sender = Arriving(channel, external_id, chat_id, display_name, language_code, username)
    rows = (
        await uow.session.exec(  # type: ignore[call-overload]  # sqlmodel types exec() for four entities at most
            _identity_statement(), params={"channel": channel, "external_id": external_id}
        )
    ).all()
    return await _identity(uow, sender, rows)


async def arrive(uow: UnitOfWork, sender: Arriving, state_key: str) -> Arrival:
    """identify(), and the dialogue state kept under state_key (community.dialogue), in one round trip: this
    runs for every event, and a statement costs more in SQLAlchemy than SQLite takes to answer it."""
    params = {"channel": sender.channel, "external_id": sender.external_id, "state_key": state_key}
    rows = (
        await uow.session.exec(_arrival_statement(), params=params)  # type: ignore[call-overload]  # see identify()
    ).all()
    identity = await _identity(uow, sender, rows)
    if not rows:
        # First contact: no account, so the join found no state either; a row could still have been left under
        # the key (it names the chat and the account's id on the channel), so it is read as before.
        return Arrival(identity, await load_state(uow, state_key))
    name, data = rows[0][-2], rows[0][-1]
    return Arrival(identity, dialogue_state(name, data) if name is not None else None)


async def _identity(uow: UnitOfWork, sender: Arriving, rows: Sequence[Any]) -> Identity:
    """The Identity the rows of _identity_statement (or _arrival_statement) describe; on first contact (no
    rows) a new person and account. The account's details are brought up to date with what the channel says."""
    session = uow.session
    channel, external_id, chat_id = sender.channel, sender.external_id, sender.chat_id
    display_name, language_code, username = sender.display_name, sender.language_code, sender.username
    now = uow.clock.now()
    if not rows:
        person = Person(display_name=display_name, created_at=now)
        session.add(person)
        await session.flush()
        assert person.id is not None
        account = ChannelAccount(
            person_id=person.id,
            channel=channel,
            external_id=external_id,
            chat_id=chat_id,
            language_code=language_code,
            username=username,
            created_at=now,
        )
        session.add(account)
        await session.flush()
        return Identity(person=person, account=account, is_new=True)
    account, person = rows[0][0], rows[0][1]
    if (account.language_code, account.username, account.chat_id) != (language_code, username, chat_id):
        account.language_code, account.username, account.chat_id = language_code, username, chat_id
        session.add(account)
    if account.unreachable_since is not None:
        # They blocked the bot once (the sender marked them), but someone who writes to it has unblocked it:
        # broadcasts reach them again.
        account.unreachable_since = None
        session.add(account)
    return Identity(person=person, account=account, memberships=_group_memberships(rows))


async def identities_of(uow: UnitOfWork, person_ids: Iterable[int], channel: str) -> list[Identity]:
    """Each account these people have on the channel, as the Identity its events would have, in one round trip
    (after a change to their roles, a front end redraws what each of their chats shows). People without an
    account there, or erased, have none."""
    wanted = sorted(set(person_ids))
    if not wanted:
        return []
    rows = (
        await uow.session.exec(  # type: ignore[call-overload]  # sqlmodel types exec() for four entities at most
            _identities_statement(), params={"channel": channel, "person_ids": wanted}
        )
    ).all()
    by_account: dict[int, list[IdentityRow]] = {}
    for row in rows:
        by_account.setdefault(row[0].id, []).append(row)
    return [
        Identity(person=found[0][1], account=found[0][0], memberships=_group_memberships(found))
        for found in by_account.values()
    ]


def _group_memberships(rows: Sequence[Sequence[Any]]) -> list[MembershipView]:
    """The memberships in rows shaped as IdentityRow (the arrival's rows carry the dialogue state after these)."""
    found: dict[int, tuple[Community, Household | None, set[Role]]] = {}
    for row in rows:
        membership_id, community, household, role = row[2], row[3], row[4], row[5]
        if membership_id is None or community is None:
            continue
        entry = found.setdefault(membership_id, (community, household, set()))
        if role is not None:
            entry[2].add(Role(role))
    return [
        MembershipView(membership_id=mid, community=community, household=household, roles=frozenset(roles))
        for mid, (community, household, roles) in found.items()
    ]


async def find_account(uow: UnitOfWork, channel: str, external_id: str) -> ChannelAccount | None:
    """A channel account, if it exists (identify() makes one on first contact; this never does)."""
    statement = select(ChannelAccount).where(
        ChannelAccount.channel == channel, ChannelAccount.external_id == external_id
    )
    return (await uow.session.exec(statement)).first()


async def memberships_of(uow: UnitOfWork, person_id: int) -> list[MembershipView]:
    session = uow.session
    rows = (
        await session.exec(
            select(Membership, Community, Household)
            .join(Community, col(Community.id) == col(Membership.community_id))
            .outerjoin(Household, col(Household.id) == col(Membership.household_id))
            .where(Membership.person_id == person_id)
            .order_by(col(Membership.id))
        )
    ).all()
    if not rows:
        return []
    roles: dict[int, set[Role]] = defaultdict(set)
    membership_ids = [m.id for m, _, _ in rows]
    for mr in (
        await session.exec(select(MembershipRole).where(col(MembershipRole.membership_id).in_(membership_ids)))
    ).all():
        roles[mr.membership_id].add(Role(mr.role))
    return [
        MembershipView(membership_id=m.id or 0, community=c, household=h, roles=frozenset(roles[m.id or 0]))
        for m, c, h in rows
    ]


async def set_language(uow: UnitOfWork, person: Person, language: str) -> None:
    person.language = language
    uow.session.add(person)
    if person.id is not None:
        uow.people_changed.add(person.id)
