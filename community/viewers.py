"""Who is looking: a person with the roles they hold where they look, and so what they may do and see there.

Services that return data about other people take the viewer and return it masked for them (a phone number the
viewer may not see is None), so a handler renders what it gets and decides nothing; menus ask the viewer which
actions to offer. Both read the one permission table (community.permissions) through effective_roles, the one
place that knows how roles reach down from a street to its communities."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from community.communities import effective_roles
from community.features import AnyAction
from community.people import Identity
from community.permissions import allows, hidden_roles, may_see, permitted_actions
from community.roles import Action, Role, SensitiveField
from community.unit_of_work import UnitOfWork

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Viewer:
    person_id: int | None  # None: no one in particular (a stranger)
    community_id: int | None  # where they look; None: outside every community
    roles: frozenset[Role]  # their effective roles there (inherited ones included)

    @property
    def actions(self) -> frozenset[Action]:
        return permitted_actions(self.roles)

    def may(self, action: AnyAction) -> bool:
        return allows(self.roles, action)

    def sees(self, field: SensitiveField) -> bool:
        return may_see(self.roles, field)

    def shown(self, field: SensitiveField, value: T | None) -> T | None:
        """``value`` if this viewer may see ``field``, else None."""
        return value if self.sees(field) else None

    def shown_roles(self, held: Iterable[Role]) -> frozenset[Role]:
        """Someone's roles without those whose holding this viewer may not see (party membership)."""
        return frozenset(held) - hidden_roles(self.roles)


async def viewer_in(uow: UnitOfWork, person_id: int, community_id: int) -> Viewer:
    """The person as a viewer in the community: with their own roles there and those reaching down from above."""
    roles = await effective_roles(uow, person_id, community_id)
    return Viewer(person_id=person_id, community_id=community_id, roles=roles)


async def home_viewer(uow: UnitOfWork, identity: Identity, *, read_now: bool = False) -> Viewer:
    """The person in the community they mostly act in (Identity.primary): what their menus offer. Someone who
    belongs nowhere has no roles, so only what needs none.

    read_now: the identity's memberships were read in this transaction after every change to them
    (community.people.identities_of), so its roles are taken as they are instead of read again."""
    primary = identity.primary
    if primary is None or primary.community.id is None:
        return Viewer(person_id=identity.person_id, community_id=None, roles=frozenset())
    held_in = {view.community.id: view.roles for view in identity.memberships if view.community.id is not None}
    roles = await effective_roles(uow, identity.person_id, primary.community.id, held_in=held_in if read_now else None)
    return Viewer(person_id=identity.person_id, community_id=primary.community.id, roles=roles)
