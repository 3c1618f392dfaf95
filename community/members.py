"""The members list a community's committee and workers read, with sensitive data only for those allowed it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import Mapped
from sqlmodel import col, select

from community.communities import get_community
from community.errors import ValidationFailed
from community.models import Household, Membership, MembershipRole, Person
from community.permissions import require
from community.roles import ROLE_ORDER, Action, Role, SensitiveField
from community.unit_of_work import UnitOfWork
from community.viewers import viewer_in
from i18n import N_

MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class MemberRow:
    person_id: int
    display_name: str
    household: str | None
    roles: tuple[Role, ...]
    phone: str | None  # None also when the reader may not see phone numbers


@dataclass(frozen=True, slots=True)
class MemberPage:
    community_id: int
    community_name: str
    items: tuple[MemberRow, ...]
    total: int
    page: int  # zero-based; clamped to the pages that exist
    page_size: int
    shows_sensitive: bool  # the reader may see phone numbers

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def has_previous(self) -> bool:
        return self.page > 0

    @property
    def has_next(self) -> bool:
        return self.page + 1 < self.pages


def _bytewise(uow: UnitOfWork, column: Mapped[str]) -> Mapped[str] | ColumnElement[str]:
    """Order text by code point on every database, so a page holds the same people on SQLite and PostgreSQL
    whatever collation the PostgreSQL database was created with."""
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return column.collate("C")
    return column


async def list_members(
    uow: UnitOfWork, *, actor_id: int, community_id: int, page: int = 0, page_size: int = 20
) -> MemberPage:
    """One page of a community's members, ordered by household label (members without one last), then name.

    Masked for the reader: phone numbers and sensitive roles (party membership) only where the permission table's
    SENSITIVE_FIELDS let the reader see them."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationFailed(N_("A page holds 1 to %(limit)s members."), limit=MAX_PAGE_SIZE)
    community = await get_community(uow, community_id)
    viewer = await viewer_in(uow, actor_id, community_id)
    require(viewer.roles, Action.LIST_MEMBERS)
    session = uow.session

    total = int(
        (
            await session.exec(
                select(func.count()).select_from(Membership).where(Membership.community_id == community_id)
            )
        ).one()
    )
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)

    label = col(Household.label)
    rows = (
        await session.exec(
            select(Membership, Person, Household)
            .join(Person, col(Person.id) == col(Membership.person_id))
            .outerjoin(Household, col(Household.id) == col(Membership.household_id))
            .where(Membership.community_id == community_id)
            .order_by(
                label.is_(None),
                _bytewise(uow, label),
                _bytewise(uow, col(Person.display_name)),
                col(Person.id),
            )
            .offset(page * page_size)
            .limit(page_size)
        )
    ).all()

    held: dict[int, set[Role]] = defaultdict(set)
    if rows:
        membership_ids = [m.id for m, _, _ in rows]
        for mr in (
            await session.exec(select(MembershipRole).where(col(MembershipRole.membership_id).in_(membership_ids)))
        ).all():
            held[mr.membership_id].add(Role(mr.role))

    def shown(member_roles: set[Role]) -> tuple[Role, ...]:
        return tuple(sorted(viewer.shown_roles(member_roles), key=ROLE_ORDER.__getitem__))

    return MemberPage(
        community_id=community_id,
        community_name=community.name,
        items=tuple(
            MemberRow(
                person_id=p.id or 0,
                display_name=p.display_name,
                household=h.label if h is not None else None,
                roles=shown(held[m.id or 0]),
                phone=viewer.shown(SensitiveField.PHONE, p.phone),
            )
            for m, p, h in rows
        ),
        total=total,
        page=page,
        page_size=page_size,
        shows_sensitive=viewer.sees(SensitiveField.PHONE),
    )
