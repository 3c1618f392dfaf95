"""How a resident becomes a verified member: with an invitation code from a community worker, or by asking to
join and having a worker approve the request in chat."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select, update
from sqlmodel.sql.expression import Select

from community import audit, codes
from community.communities import (
    MAX_LABEL,
    HouseholdHasRepresentative,
    add_member,
    clean_text,
    effective_roles,
    get_community,
    grant_role,
    grassroots_communities,
    household,
    household_representative,
    locked_household,
    membership,
)
from community.errors import (
    Conflict,
    ExpiredCode,
    InvalidCode,
    LinliError,
    NotFound,
    PermissionDenied,
    Throttled,
    UsedUpCode,
    ValidationFailed,
)

# Re-exported: the services and the tests read them from here; the CLI's help from the module that imports nothing.
from community.invitation_terms import INVITATION_LIFETIME as INVITATION_LIFETIME
from community.invitation_terms import MAX_USES as MAX_USES
from community.invitation_terms import STAFF_INVITATION_LIFETIME as STAFF_INVITATION_LIFETIME
from community.join_messages import JoinDecided, JoinRequestNotice, request_topic
from community.models import (
    ChannelAccount,
    Community,
    Household,
    Invitation,
    JoinRequest,
    JoinRequestStatus,
    Membership,
    MembershipRole,
    Person,
)
from community.notify import MessageRef, Recipient
from community.people import Identity, MembershipView, memberships_of
from community.permissions import INHERITED_ROLES, PERMISSIONS, allows, require
from community.roles import RESIDENT_ROLES, Action, Role, SensitiveField
from community.unit_of_work import UnitOfWork
from community.viewers import Viewer, viewer_in
from i18n import N_

MAX_PERSON_NAME = 100
MAX_REASON = 500

# Roles a worker can hand out with an invitation. Higher ones (party secretary, street administrator) only the
# operator at the terminal can give, so nobody can invite someone above themselves.
INVITABLE_ROLES: tuple[Role, ...] = (
    Role.RESIDENT,
    Role.HOUSEHOLD_REPRESENTATIVE,
    Role.VOLUNTEER,
    Role.PARTY_MEMBER,
    Role.UNIT_CONTACT,
    Role.COMMUNITY_WORKER,
    Role.COMMITTEE_MEMBER,
)
# A household representative speaks for a household, so their invitation must name it.
HOUSEHOLD_ROLES: frozenset[Role] = frozenset({Role.HOUSEHOLD_REPRESENTATIVE})
# Roles that act for the community: an invitation to one is single-use and short-lived, whoever makes it.
STAFF_ROLES: frozenset[Role] = frozenset(
    {Role.COMMUNITY_WORKER, Role.COMMITTEE_MEMBER, Role.PARTY_SECRETARY, Role.STREET_ADMINISTRATOR}
)


def single_use(role: Role) -> bool:
    """Invitations for this role admit one person: staff, and a household's one representative."""
    return role in STAFF_ROLES or role in HOUSEHOLD_ROLES


def standard_lifetime(role: Role) -> timedelta:
    return STAFF_INVITATION_LIFETIME if role in STAFF_ROLES else INVITATION_LIFETIME


class RevokedCode(InvalidCode):
    message = N_("This invitation has been withdrawn. Ask your community worker for a new one.")


class AlreadyMember(Conflict):
    message = N_("You are already a member of %(community)s.")


class RejectionReason(StrEnum):
    """The reasons a worker can pick with one tap; each is told to the requester in their own language."""

    NOT_RESIDENT = "not_resident"
    HOUSEHOLD_UNCONFIRMED = "household_unconfirmed"
    DUPLICATE = "duplicate"
    OTHER = "other"

    @property
    def message(self) -> str:
        return _REASON_MESSAGES[self]


_REASON_MESSAGES: dict[RejectionReason, str] = {
    RejectionReason.NOT_RESIDENT: N_("The community worker could not find you among the residents here."),
    RejectionReason.HOUSEHOLD_UNCONFIRMED: N_("The community worker could not confirm your household."),
    RejectionReason.DUPLICATE: N_("You are already registered, or asked before: this request was a duplicate."),
    RejectionReason.OTHER: N_("Please talk to your community worker in person."),
}


def as_reason(value: str | None) -> RejectionReason | None:
    """The tapped reason a stored reason is, or None for free text or no reason."""
    try:
        return RejectionReason(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------------------
# Input rules shared by the services and the forms that collect the input step by step


def clean_person_name(name: str) -> str:
    return clean_text(name, limit=MAX_PERSON_NAME, message=N_("A name needs 1 to %(limit)s characters."))


def clean_household_label(label: str) -> str:
    return clean_text(label, limit=MAX_LABEL, message=N_("A household label needs 1 to %(limit)s characters."))


_PHONE_SEPARATORS = re.compile(r"[\s\-().\u00a0]+")
_PHONE = re.compile(r"\+?[0-9]{5,20}")


def clean_phone(phone: str) -> str:
    """Digits with an optional leading +; the blanks, dashes and brackets people write are dropped."""
    cleaned = _PHONE_SEPARATORS.sub("", phone.strip())
    if not _PHONE.fullmatch(cleaned):
        raise ValidationFailed(N_("A phone number may only hold digits and a leading +."))
    return cleaned


# ---------------------------------------------------------------------------------------------------------------
# Invitations


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    invitation: Invitation
    code: str  # shown once; only its hash is stored
    household: Household | None = None  # the household it is bound to, if any


async def create_invitation(
    uow: UnitOfWork,
    *,
    actor_id: int | None,
    community_id: int,
    max_uses: int = 1,
    role: Role = Role.RESIDENT,
    household_label: str | None = None,
    valid_for: timedelta | None = None,
) -> IssuedInvitation:
    """Issue a code. actor_id None is the operator at the terminal; anyone else needs CREATE_INVITATION.

    The limits hold for every front end (chat buttons, which can be forged, and `linli invite create`): staff and
    household-representative invitations admit one person, others at most MAX_USES; valid_for (by default the
    role's standard lifetime) is at most STAFF_INVITATION_LIFETIME for staff."""
    await get_community(uow, community_id)
    if actor_id is not None:
        require(await effective_roles(uow, actor_id, community_id), Action.CREATE_INVITATION)
        if role not in INVITABLE_ROLES:
            raise PermissionDenied(action=Action.CREATE_INVITATION.value)
    if single_use(role) and max_uses != 1:
        raise ValidationFailed(N_("An invitation for this role is for one person: it can be used only once."))
    if not 1 <= max_uses <= MAX_USES:
        raise ValidationFailed(N_("An invitation can be used 1 to %(limit)s times."), limit=MAX_USES)
    if valid_for is None:
        valid_for = standard_lifetime(role)
    if valid_for <= timedelta(0):
        raise ValidationFailed(N_("An invitation must stay valid for some time."))
    if role in STAFF_ROLES and valid_for > STAFF_INVITATION_LIFETIME:
        raise ValidationFailed(
            N_("An invitation for a staff role stays valid at most %(hours)s hours."),
            hours=STAFF_INVITATION_LIFETIME // timedelta(hours=1),
        )
    if role in HOUSEHOLD_ROLES and household_label is None:
        raise ValidationFailed(N_("An invitation for a household representative must name the household."))
    bound: Household | None = None
    if household_label is not None:
        bound = await household(uow, community_id, clean_household_label(household_label))
    if role in HOUSEHOLD_ROLES and bound is not None and await household_representative(uow, bound) is not None:
        raise HouseholdHasRepresentative(household=bound.label)
    now = uow.clock.now()
    code = codes.new_code()
    invitation = Invitation(
        community_id=community_id,
        code_hash=codes.hash_code(uow.key, code),
        max_uses=max_uses,
        role=role,
        household_id=bound.id if bound else None,
        created_by=actor_id,
        created_at=now,
        expires_at=now + valid_for,
    )
    uow.session.add(invitation)
    await uow.session.flush()
    await audit.record(
        uow,
        action="invitation.created",
        subject_type="invitation",
        subject_id=invitation.id,
        community_id=community_id,
        actor_id=actor_id,
        data={
            "role": role.value,
            "max_uses": max_uses,
            "household_id": invitation.household_id,
            "expires_at": invitation.expires_at.isoformat() if invitation.expires_at else None,
        },
    )
    return IssuedInvitation(invitation=invitation, code=code, household=bound)


@dataclass(frozen=True, slots=True)
class Redemption:
    """The outcome of trying a code. A refusal is returned, not raised, so the attempt stays counted."""

    joined: MembershipView | None = None
    role: Role | None = None  # the role the invitation gave
    refused: LinliError | None = None
    locked_until: datetime | None = None  # set when this attempt locked the account, or it was locked already


def roles_for(role: Role) -> frozenset[Role]:
    return frozenset({role, Role.RESIDENT}) if role in RESIDENT_ROLES else frozenset({role})


async def _refuse(uow: UnitOfWork, account_id: int, error: LinliError) -> Redemption:
    state = await codes.record_wrong_code(uow, account_id)
    if not state.counted and state.locked_until is not None:
        # Another attempt locked the account while this one was looked up: this one is refused by the lock.
        return Redemption(refused=Throttled(state.locked_until), locked_until=state.locked_until)
    return Redemption(refused=error, locked_until=state.locked_until)


@functools.cache
def _invitation_by_hash() -> Select[Invitation, Community]:
    """Built once: every code typed or opened from a link is looked up with it, and its community with it
    (every answer but an unknown code names the community)."""
    return (
        select(Invitation, Community)
        .join(Community, col(Community.id) == col(Invitation.community_id))
        .where(col(Invitation.code_hash) == bindparam("code_hash"))
    )


async def redeem_invitation(uow: UnitOfWork, *, identity: Identity, code: str) -> Redemption:
    account_id = identity.account.id
    assert account_id is not None
    now = uow.clock.now()
    # An account made by this event has typed no code before (a count row must name an existing account).
    throttle = None if identity.is_new else await codes.throttle_of(uow, account_id)
    locked = codes.locked_until(throttle, now)
    if locked is not None:
        return Redemption(refused=Throttled(locked), locked_until=locked)
    found = None
    if codes.looks_like_code(code):
        found = (
            await uow.session.exec(_invitation_by_hash(), params={"code_hash": codes.hash_code(uow.key, code)})
        ).first()
    if found is None or found[0].id is None:
        return await _refuse(uow, account_id, InvalidCode())
    invitation, community = found
    if any(view.community.id == invitation.community_id for view in identity.memberships):
        # A real code, so no guess: nothing is counted, and no use is spent. Checked first, because a member
        # opening their own (now used) link again should hear that they are in, not that the code is used.
        return Redemption(refused=AlreadyMember(community=community.name))
    if invitation.revoked_at is not None:
        return await _refuse(uow, account_id, RevokedCode())
    if invitation.expires_at is not None and invitation.expires_at <= now:
        return await _refuse(uow, account_id, ExpiredCode())
    if invitation.uses >= invitation.max_uses:
        return await _refuse(uow, account_id, UsedUpCode())
    if Role(invitation.role) in HOUSEHOLD_ROLES and invitation.household_id is not None:
        home = await locked_household(uow, invitation.household_id)
        if await household_representative(uow, home) is not None:
            # A real code (no guess, nothing counted), but the household has its representative meanwhile.
            return Redemption(refused=HouseholdHasRepresentative(household=home.label))
    # Spend one use only if one is left at this instant: of two people racing for the last use, one gets it.
    uses = (
        await uow.session.exec(
            update(Invitation)
            .where(
                col(Invitation.id) == invitation.id,
                col(Invitation.uses) < col(Invitation.max_uses),
                col(Invitation.revoked_at).is_(None),
            )
            .values(uses=col(Invitation.uses) + 1)
            .returning(col(Invitation.uses))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if uses is None:
        return await _refuse(uow, account_id, UsedUpCode())
    set_committed_value(invitation, "uses", uses)  # the database has it already: no second UPDATE
    role = Role(invitation.role)
    roles = roles_for(role)
    member = await add_member(
        uow,
        person_id=identity.person_id,
        community_id=invitation.community_id,
        roles=roles,
        household_id=invitation.household_id,
        reason="invitation",
    )
    if throttle is not None:  # wrong codes typed before this right one are forgotten
        await codes.reset_throttle(uow, account_id)
    await audit.record(
        uow,
        action="invitation.redeemed",
        subject_type="invitation",
        subject_id=invitation.id,
        community_id=invitation.community_id,
        actor_id=identity.person_id,
        data={"uses": invitation.uses},
    )
    household = await uow.session.get(Household, invitation.household_id) if invitation.household_id else None
    joined = MembershipView(membership_id=member.id or 0, community=community, household=household, roles=roles)
    identity.memberships.append(joined)
    return Redemption(joined=joined, role=role)


# ---------------------------------------------------------------------------------------------------------------
# Where a person acts as staff


async def staff_communities(uow: UnitOfWork, person_id: int, action: Action) -> list[Community]:
    """The neighbourhoods and villages where the person may take this action, in id order: their own, and for a
    street administrator every one under their street or township."""
    found: dict[int, Community] = {}
    for view in await memberships_of(uow, person_id):
        community = view.community
        assert community.id is not None
        if community.kind.is_grassroots:
            if allows(view.roles, action):
                found[community.id] = community
        elif allows(view.roles & INHERITED_ROLES, action):
            for below in await _grassroots_below(uow, community.id):
                assert below.id is not None
                found[below.id] = below
    return [found[key] for key in sorted(found)]


async def require_staff_communities(uow: UnitOfWork, person_id: int, action: Action) -> list[Community]:
    """staff_communities, refused (PermissionDenied) when there is none: the start of a staff command."""
    communities = await staff_communities(uow, person_id, action)
    if not communities:
        raise PermissionDenied(action=action.value)
    return communities


async def staff_community(uow: UnitOfWork, person_id: int, action: Action, community_id: int) -> Community | None:
    """The community, if it is one where the person may take this action (None: not, or not any more: a button
    sent before a role was taken away); PermissionDenied when they may take it nowhere."""
    return next((c for c in await require_staff_communities(uow, person_id, action) if c.id == community_id), None)


async def invitation_community(
    uow: UnitOfWork, person_id: int, community_id: int, role: Role | None = None
) -> Community | None:
    """The community, if the person may invite to it (and invite this role, when given: INVITABLE_ROLES); None
    for a choice they may not make (a stale or forged button). PermissionDenied when they may invite nowhere."""
    if role is not None and role not in INVITABLE_ROLES:
        await require_staff_communities(uow, person_id, Action.CREATE_INVITATION)
        return None
    return await staff_community(uow, person_id, Action.CREATE_INVITATION, community_id)


async def _grassroots_below(uow: UnitOfWork, community_id: int) -> list[Community]:
    result: list[Community] = []
    frontier = [community_id]
    while frontier:
        children = (await uow.session.exec(select(Community).where(col(Community.parent_id).in_(frontier)))).all()
        result.extend(child for child in children if child.kind.is_grassroots)
        frontier = [child.id for child in children if not child.kind.is_grassroots and child.id is not None]
    return result


@dataclass(frozen=True, slots=True)
class StaffContact:
    account: ChannelAccount
    language: str | None  # the person's own language choice, if they made one


async def community_staff(uow: UnitOfWork, community_id: int) -> list[StaffContact]:
    """The channel accounts of everyone who can decide join requests in the community: its own staff, and the
    street administrators of the streets or townships above it."""
    return await staff_for(uow, community_id, Action.DECIDE_JOIN_REQUEST)


async def staff_for(uow: UnitOfWork, community_id: int, action: Action) -> list[StaffContact]:
    """The channel accounts of everyone whose roles allow ``action`` in the community: its own members with such a
    role, and those above it whose role reaches down (INHERITED_ROLES, e.g. street administrators); by account id."""
    contacts: dict[int, StaffContact] = {}
    holders = PERMISSIONS[action]
    current: int | None = community_id
    allowed: frozenset[Role] = holders
    while current is not None:
        rows = (
            await uow.session.exec(
                select(ChannelAccount, Person)
                .join(Person, col(Person.id) == col(ChannelAccount.person_id))
                .join(Membership, col(Membership.person_id) == col(Person.id))
                .join(MembershipRole, col(MembershipRole.membership_id) == col(Membership.id))
                .where(Membership.community_id == current, col(MembershipRole.role).in_(sorted(allowed)))
            )
        ).all()
        for account, person in rows:
            assert account.id is not None
            contacts.setdefault(account.id, StaffContact(account=account, language=person.language))
        community = await get_community(uow, current)
        current = community.parent_id
        allowed = holders & INHERITED_ROLES
    return [contacts[key] for key in sorted(contacts)]


async def community_staff_accounts(uow: UnitOfWork, community_id: int) -> list[ChannelAccount]:
    return [contact.account for contact in await community_staff(uow, community_id)]


# ---------------------------------------------------------------------------------------------------------------
# Join requests


async def pending_request_of(uow: UnitOfWork, person_id: int, community_id: int | None = None) -> JoinRequest | None:
    query = select(JoinRequest).where(
        JoinRequest.person_id == person_id, JoinRequest.status == JoinRequestStatus.PENDING
    )
    if community_id is not None:
        query = query.where(JoinRequest.community_id == community_id)
    return (await uow.session.exec(query.order_by(col(JoinRequest.id)))).first()


async def joinable_communities(uow: UnitOfWork, person_id: int) -> list[Community]:
    """Neighbourhoods and villages the person could ask to join: not a member, no request waiting."""
    member_of = set(
        (await uow.session.exec(select(Membership.community_id).where(Membership.person_id == person_id))).all()
    )
    waiting = set(
        (
            await uow.session.exec(
                select(JoinRequest.community_id).where(
                    JoinRequest.person_id == person_id, JoinRequest.status == JoinRequestStatus.PENDING
                )
            )
        ).all()
    )
    return [c for c in await grassroots_communities(uow) if c.id not in member_of and c.id not in waiting]


async def submit_join_request(
    uow: UnitOfWork,
    *,
    person_id: int,
    community_id: int,
    name: str,
    household_label: str,
    phone: str | None,
) -> JoinRequest:
    community = await get_community(uow, community_id)
    if not community.kind.is_grassroots:
        raise ValidationFailed(N_("You can only ask to join a neighbourhood or a village."))
    name = clean_person_name(name)
    household_label = clean_household_label(household_label)
    phone = clean_phone(phone) if phone is not None else None
    if await membership(uow, person_id, community_id) is not None:
        raise AlreadyMember(community=community.name)
    if await pending_request_of(uow, person_id, community_id) is not None:
        raise Conflict(
            N_("You have already asked to join %(community)s. A community worker will answer soon."),
            community=community.name,
        )
    request = JoinRequest(
        community_id=community_id,
        person_id=person_id,
        name=name,
        household_label=household_label,
        phone=phone,
        created_at=uow.clock.now(),
    )
    uow.session.add(request)
    await uow.session.flush()
    # Only ids go into the audit log: it is disclosed and never erased, the name and phone must not be in it.
    await audit.record(
        uow,
        action="join_request.submitted",
        subject_type="join_request",
        subject_id=request.id,
        community_id=community_id,
        actor_id=person_id,
        data={"phone_shared": phone is not None},
    )
    await _tell_staff(uow, request, community)
    return request


@dataclass(frozen=True, slots=True)
class JoinRequestView:
    """A join request as one worker may see it: the phone number only where they may see phone numbers."""

    id: int
    community_id: int
    name: str
    household_label: str
    phone: str | None  # None also when not shared
    created_at: datetime
    status: JoinRequestStatus

    @property
    def awaits_decision(self) -> bool:
        """Still to be decided (decide_join_request decides only these): with Approve / Reject."""
        return self.status == JoinRequestStatus.PENDING


def _seen_by(viewer: Viewer, request: JoinRequest) -> JoinRequestView:
    assert request.id is not None
    return JoinRequestView(
        id=request.id,
        community_id=request.community_id,
        name=request.name,
        household_label=request.household_label,
        phone=viewer.shown(SensitiveField.PHONE, request.phone),
        created_at=request.created_at,
        status=request.status,
    )


async def _request_notice(
    uow: UnitOfWork, request: JoinRequest, community: Community, *, with_phone: bool, decided_by: int | None = None
) -> JoinRequestNotice:
    assert request.id is not None
    decider = await uow.session.get(Person, decided_by) if decided_by is not None else None
    return JoinRequestNotice(
        request_id=request.id,
        community=community.name,
        timezone=community.timezone,
        name=request.name,
        household_label=request.household_label,
        created_at=request.created_at,
        phone=request.phone if with_phone else None,
        status=request.status,
        decided_by=decider.display_name if decider is not None else None,
    )


async def _tell_staff(uow: UnitOfWork, request: JoinRequest, community: Community) -> None:
    """The request, with Approve / Reject, to everyone who may decide it, in their own language; the phone number
    only to those whose roles may see it (the requester left out, should they be staff somewhere above)."""
    assert request.id is not None
    seeing: list[Recipient] = []
    masked: list[Recipient] = []
    sees: dict[int, bool] = {}  # by person: a worker with two accounts has their roles looked up once
    for contact in await community_staff(uow, request.community_id):
        account = contact.account
        if account.person_id == request.person_id:
            continue
        if account.person_id not in sees:
            viewer = await viewer_in(uow, account.person_id, request.community_id)
            sees[account.person_id] = viewer.sees(SensitiveField.PHONE)
        recipient = Recipient.of(account, contact.language, community.default_language)
        (seeing if sees[account.person_id] else masked).append(recipient)
    for with_phone, recipients in ((True, seeing), (False, masked)):
        if recipients:
            notice = await _request_notice(uow, request, community, with_phone=with_phone)
            await uow.notify(recipients, notice, topic=request_topic(request.id, with_phone=with_phone))


async def pending_join_requests(uow: UnitOfWork, *, actor_id: int, community_id: int) -> list[JoinRequestView]:
    """The requests waiting in the community, oldest first, as the worker (actor) may see them."""
    viewer = await viewer_in(uow, actor_id, community_id)
    require(viewer.roles, Action.DECIDE_JOIN_REQUEST)
    found = (
        await uow.session.exec(
            select(JoinRequest)
            .where(JoinRequest.community_id == community_id, JoinRequest.status == JoinRequestStatus.PENDING)
            .order_by(col(JoinRequest.created_at), col(JoinRequest.id))
        )
    ).all()
    return [_seen_by(viewer, request) for request in found]


async def view_join_request(uow: UnitOfWork, *, viewer_id: int, request_id: int) -> JoinRequestView:
    """A request, pending or decided, as someone who may decide it sees it: to show it to them (the message that
    asks them, the message after 'back', the message once decided)."""
    request = await uow.session.get(JoinRequest, request_id)
    if request is None:
        raise NotFound()
    viewer = await viewer_in(uow, viewer_id, request.community_id)
    require(viewer.roles, Action.DECIDE_JOIN_REQUEST)
    return _seen_by(viewer, request)


async def get_join_request(uow: UnitOfWork, *, actor_id: int, request_id: int) -> JoinRequest:
    """The request itself, for the services that decide it; to show it, view_join_request masks it for the reader."""
    request = await uow.session.get(JoinRequest, request_id)
    if request is None:
        raise NotFound()
    require(await effective_roles(uow, actor_id, request.community_id), Action.DECIDE_JOIN_REQUEST)
    return request


@dataclass(frozen=True, slots=True)
class JoinDecision:
    request: JoinRequest
    approved: bool
    community: Community
    household: Household | None  # where the approved resident now lives
    requester_accounts: list[ChannelAccount]  # to tell them the outcome
    requester_language: str | None  # their own language choice, if they made one

    @property
    def reason_message(self) -> str | None:
        """A tapped reason as a message id to translate for the reader; free text is request.reason itself."""
        reason = as_reason(self.request.reason)
        return reason.message if reason is not None else None


def _clean_reason(reason: str | None) -> str | None:
    if reason is None or as_reason(reason) is not None:
        return reason
    return clean_text(reason, limit=MAX_REASON, message=N_("A reason needs 1 to %(limit)s characters."))


async def decide_join_request(
    uow: UnitOfWork,
    *,
    actor_id: int,
    request_id: int,
    approve: bool,
    reason: str | None = None,
    answered: MessageRef | None = None,
) -> JoinDecision:
    """Approve or reject a request: permission, state, audit, and the messages. reason is a RejectionReason value
    or, from the terminal, free text. The requester is told (through the outbox, on whichever channel they are),
    and the other workers' copies of the request change to say who decided and how; ``answered``: the copy the
    worker tapped, which the front end changes itself. The caller commits."""
    request = await get_join_request(uow, actor_id=actor_id, request_id=request_id)
    assert request.id is not None
    if request.status != JoinRequestStatus.PENDING:
        raise Conflict(N_("This request has already been decided."))
    reason = None if approve else _clean_reason(reason)
    status = JoinRequestStatus.APPROVED if approve else JoinRequestStatus.REJECTED
    now = uow.clock.now()
    # Decide only if still pending at this instant: of two workers tapping at once, one decides.
    decided = await uow.session.exec(
        update(JoinRequest)
        .where(col(JoinRequest.id) == request.id, col(JoinRequest.status) == JoinRequestStatus.PENDING)
        .values(status=status, decided_by=actor_id, decided_at=now, reason=reason)
        .execution_options(synchronize_session=False)
    )
    if decided.rowcount != 1:
        raise Conflict(N_("This request has already been decided by someone else."))
    await uow.session.refresh(request)
    community = await get_community(uow, request.community_id)
    requester = await uow.session.get(Person, request.person_id)
    if requester is None:
        raise NotFound()
    home: Household | None = None
    if approve:
        home = await household(uow, request.community_id, request.household_label)
        existing = await membership(uow, request.person_id, request.community_id)
        if existing is None:
            await add_member(
                uow,
                person_id=request.person_id,
                community_id=request.community_id,
                roles={Role.RESIDENT},
                household_id=home.id,
                actor_id=actor_id,
                reason="join_request",
            )
        else:
            # They joined another way meanwhile (say, as a unit contact with a code): now they are a resident too.
            await grant_role(
                uow,
                person_id=request.person_id,
                community_id=request.community_id,
                role=Role.RESIDENT,
                actor_id=actor_id,
            )
        if request.phone is not None:
            requester.phone = request.phone
            uow.session.add(requester)
        await uow.session.flush()
    data: dict[str, str | int | None] = {"person_id": request.person_id}
    if not approve:
        # A tapped reason is recorded; free text may name people, so only the fact that there was one.
        data["reason"] = reason if reason is None or as_reason(reason) is not None else "text"
    await audit.record(
        uow,
        action="join_request.approved" if approve else "join_request.rejected",
        subject_type="join_request",
        subject_id=request.id,
        community_id=request.community_id,
        actor_id=actor_id,
        data=data,
    )
    accounts = list(
        (
            await uow.session.exec(
                select(ChannelAccount)
                .where(ChannelAccount.person_id == request.person_id)
                .order_by(col(ChannelAccount.id))
            )
        ).all()
    )
    decision = JoinDecision(
        request=request,
        approved=approve,
        community=community,
        household=home,
        requester_accounts=accounts,
        requester_language=requester.language,
    )
    await _tell_decision(uow, decision, actor_id, answered)
    return decision


async def _tell_decision(uow: UnitOfWork, decision: JoinDecision, actor_id: int, answered: MessageRef | None) -> None:
    request, community = decision.request, decision.community
    assert request.id is not None
    skip = (answered,) if answered is not None else ()
    for with_phone in (True, False):
        notice = await _request_notice(uow, request, community, with_phone=with_phone, decided_by=actor_id)
        await uow.edit_notified(request_topic(request.id, with_phone=with_phone), notice, skip=skip)
    reason_message = decision.reason_message
    told = JoinDecided(
        community=community.name,
        timezone=community.timezone,
        approved=decision.approved,
        household=decision.household.label if decision.household is not None else None,
        reason_message=reason_message,
        free_reason=request.reason if not decision.approved and reason_message is None else None,
    )
    default = community.default_language
    await uow.notify(
        [Recipient.of(account, decision.requester_language, default) for account in decision.requester_accounts],
        told,
    )
