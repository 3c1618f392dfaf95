"""Verification services on SQLite and PostgreSQL: invitation codes, the wrong-code throttle, join requests."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import timedelta

import pytest
from sqlmodel import col, select

from community import audit, codes
from community.clock import FakeClock
from community.codes import LOCKOUT, MAX_WRONG_CODES
from community.communities import add_community, add_member, effective_roles, household
from community.errors import (
    Conflict,
    ExpiredCode,
    InvalidCode,
    PermissionDenied,
    Throttled,
    UsedUpCode,
    ValidationFailed,
)
from community.keys import SiteKey
from community.models import AuditEntry, CodeThrottle, Invitation, JoinRequest, JoinRequestStatus, Person
from community.people import Identity, identify, memberships_of
from community.roles import Action, CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from community.verification import (
    INVITATION_LIFETIME,
    MAX_USES,
    STAFF_INVITATION_LIFETIME,
    STAFF_ROLES,
    AlreadyMember,
    Redemption,
    RejectionReason,
    RevokedCode,
    community_staff_accounts,
    create_invitation,
    decide_join_request,
    joinable_communities,
    pending_join_requests,
    redeem_invitation,
    staff_communities,
    submit_join_request,
)


async def _community(uows: UnitOfWorkFactory, name: str = "康乐社区", parent_id: int | None = None) -> int:
    async with uows() as uow:
        community = await add_community(uow, name=name, kind=CommunityKind.NEIGHBOURHOOD, parent_id=parent_id)
        await uow.commit()
    assert community.id is not None
    return community.id


async def _person(uows: UnitOfWorkFactory, key: str, name: str = "王芳") -> int:
    return (await _identify(uow_factory=uows, key=key, name=name)).person_id


async def _identify(
    *, uow_factory: UnitOfWorkFactory, key: str, name: str = "王芳", language_code: str | None = "en"
) -> Identity:
    async with uow_factory() as uow:
        identity = await identify(
            uow, channel="console", external_id=key, chat_id=key, display_name=name, language_code=language_code
        )
        await uow.commit()
    return identity


async def _worker(uows: UnitOfWorkFactory, community_id: int, key: str = "worker") -> int:
    person_id = (await _identify(uow_factory=uows, key=key, name="李娜")).person_id
    async with uows() as uow:
        await add_member(
            uow, person_id=person_id, community_id=community_id, roles={Role.COMMUNITY_WORKER}, reason="test"
        )
        await uow.commit()
    return person_id


async def _invite(
    uows: UnitOfWorkFactory,
    community_id: int,
    *,
    max_uses: int = 1,
    role: Role = Role.RESIDENT,
    household_label: str | None = None,
    valid_for: timedelta | None = None,
) -> str:
    async with uows() as uow:
        issued = await create_invitation(
            uow,
            actor_id=None,
            community_id=community_id,
            max_uses=max_uses,
            role=role,
            household_label=household_label,
            valid_for=valid_for,
        )
        await uow.commit()
    return issued.code


async def _redeem(uows: UnitOfWorkFactory, key: str, code: str) -> Redemption:
    async with uows() as uow:
        identity = await identify(uow, channel="console", external_id=key, chat_id=key, display_name=key)
        result = await redeem_invitation(uow, identity=identity, code=code)
        await uow.commit()
    return result


async def _audit_actions(uows: UnitOfWorkFactory) -> list[str]:
    async with uows() as uow:
        return list((await uow.session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id)))).all())


async def _chain_ok(uows: UnitOfWorkFactory) -> bool:
    async with uows() as uow:
        return (await audit.verify(uow)).ok


# --- codes ----------------------------------------------------------------------------------------------------


def test_a_code_is_short_unambiguous_and_fits_a_deep_link() -> None:
    for _ in range(200):
        code = codes.new_code()
        assert len(code) == codes.CODE_LENGTH
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code)
        assert not set(code) & set("0O1lI")


def test_what_people_type_around_a_code_is_ignored() -> None:
    key = SiteKey.generate()
    code = "ABCDE23456"
    typed_ways: tuple[str, ...] = ("abcde23456", " ABCDE-23456 ", "abcde 23456", "ＡＢＣＤＥ２３４５６")
    typed_ways += ("ABCDE\u200b23456", "abcde_23456", "ABCDE—23456")
    for typed in typed_ways:
        assert codes.normalize_code(typed) == code
        assert codes.hash_code(key, typed) == codes.hash_code(key, code)


# --- invitations ----------------------------------------------------------------------------------------------


async def test_a_single_use_code_works_once(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)

    first = await _redeem(uows, "a", code)
    second = await _redeem(uows, "b", code)

    assert first.refused is None and first.joined is not None
    assert first.joined.community.id == community_id and first.joined.roles == {Role.RESIDENT}
    assert isinstance(second.refused, UsedUpCode) and second.joined is None


async def test_a_multi_use_code_works_up_to_its_limit(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id, max_uses=3, role=Role.VOLUNTEER)

    results = [await _redeem(uows, f"p{i}", code) for i in range(4)]

    assert [r.refused is None for r in results] == [True, True, True, False]
    assert isinstance(results[3].refused, UsedUpCode)
    assert results[0].role == Role.VOLUNTEER
    assert results[0].joined is not None and results[0].joined.roles == {Role.VOLUNTEER, Role.RESIDENT}
    async with uows() as uow:
        invitation = (await uow.session.exec(select(Invitation))).one()
    assert invitation.uses == 3


async def test_an_expired_code_is_refused(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id, valid_for=timedelta(days=1))
    clock.advance(timedelta(days=1))

    result = await _redeem(uows, "late", code)

    assert isinstance(result.refused, ExpiredCode)


async def test_an_invitation_without_a_lifetime_gets_the_standard_one(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)
    clock.advance(INVITATION_LIFETIME - timedelta(seconds=1))
    assert (await _redeem(uows, "in-time", code)).joined is not None

    late = await _invite(uows, community_id)
    clock.advance(INVITATION_LIFETIME)
    assert isinstance((await _redeem(uows, "late", late)).refused, ExpiredCode)


@pytest.mark.parametrize("role", sorted(STAFF_ROLES))
async def test_staff_invitations_are_for_one_person_and_short_lived(
    uows: UnitOfWorkFactory, clock: FakeClock, role: Role
) -> None:
    community_id = await _community(uows)
    async with uows() as uow:
        issued = await create_invitation(uow, actor_id=None, community_id=community_id, role=role)
        await uow.commit()
    assert issued.invitation.max_uses == 1
    assert issued.invitation.expires_at == clock.now() + timedelta(hours=72) == clock.now() + STAFF_INVITATION_LIFETIME

    with pytest.raises(ValidationFailed) as many:
        await _invite(uows, community_id, role=role, max_uses=1000)
    assert many.value.message == "An invitation for this role is for one person: it can be used only once."
    with pytest.raises(ValidationFailed) as long:
        await _invite(uows, community_id, role=role, valid_for=timedelta(days=7))
    assert long.value.params == {"hours": 72}
    async with uows() as uow:
        assert len((await uow.session.exec(select(Invitation))).all()) == 1


async def test_a_household_representative_invitation_is_for_one_person(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    with pytest.raises(ValidationFailed):
        await _invite(uows, community_id, role=Role.HOUSEHOLD_REPRESENTATIVE, household_label="1号楼 101", max_uses=5)


async def test_resident_invitations_admit_at_most_the_documented_number(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    assert MAX_USES == 200
    await _invite(uows, community_id, max_uses=MAX_USES)
    with pytest.raises(ValidationFailed) as refused:
        await _invite(uows, community_id, max_uses=MAX_USES + 1)
    assert refused.value.params == {"limit": 200}


async def test_a_revoked_code_is_refused(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)
    async with uows() as uow:
        invitation = (await uow.session.exec(select(Invitation))).one()
        invitation.revoked_at = uow.clock.now()
        uow.session.add(invitation)
        await uow.commit()

    assert isinstance((await _redeem(uows, "x", code)).refused, RevokedCode)


async def test_the_hash_and_not_the_code_is_stored(uows: UnitOfWorkFactory, site_key: SiteKey) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)
    async with uows() as uow:
        invitation = (await uow.session.exec(select(Invitation))).one()
        entries = (await uow.session.exec(select(AuditEntry))).all()
    assert invitation.code_hash == codes.hash_code(site_key, code) and len(invitation.code_hash) == 64
    assert code not in invitation.code_hash
    assert all(code not in entry.data for entry in entries)


async def test_a_typed_code_in_lower_case_with_a_dash_works(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)

    result = await _redeem(uows, "typist", f"{code[:5].lower()}-{code[5:].lower()}")

    assert result.joined is not None


async def test_a_member_is_refused_and_the_use_is_not_spent(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id, max_uses=2)
    assert (await _redeem(uows, "a", code)).joined is not None

    again = await _redeem(uows, "a", code)

    assert isinstance(again.refused, AlreadyMember)
    assert again.refused.params == {"community": "康乐社区"}
    async with uows() as uow:
        assert (await uow.session.exec(select(Invitation))).one().uses == 1


async def test_a_household_bound_code_puts_the_resident_in_that_household(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id, role=Role.HOUSEHOLD_REPRESENTATIVE, household_label="12号楼 3单元 501")

    result = await _redeem(uows, "rep", code)

    assert result.joined is not None and result.joined.household is not None
    assert result.joined.household.label == "12号楼 3单元 501"
    assert result.joined.roles == {Role.HOUSEHOLD_REPRESENTATIVE, Role.RESIDENT}


async def test_a_household_representative_invitation_must_name_the_household(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    with pytest.raises(ValidationFailed):
        await _invite(uows, community_id, role=Role.HOUSEHOLD_REPRESENTATIVE)


async def test_a_worker_invitation_does_not_make_a_resident(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id, role=Role.COMMUNITY_WORKER)

    result = await _redeem(uows, "new-worker", code)

    assert result.joined is not None and result.joined.roles == {Role.COMMUNITY_WORKER}


async def test_a_resident_cannot_create_invitations(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)
    resident = await _redeem(uows, "resident", code)
    assert resident.joined is not None
    async with uows() as uow:
        identity = await identify(uow, channel="console", external_id="resident", chat_id="resident", display_name="r")
        with pytest.raises(PermissionDenied):
            await create_invitation(uow, actor_id=identity.person_id, community_id=community_id)


async def test_a_worker_creates_invitations_but_not_for_roles_above_them(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    worker_id = await _worker(uows, community_id)
    async with uows() as uow:
        issued = await create_invitation(uow, actor_id=worker_id, community_id=community_id, max_uses=10)
        await uow.commit()
    assert issued.invitation.created_by == worker_id and issued.invitation.max_uses == 10
    async with uows() as uow:
        with pytest.raises(PermissionDenied):
            await create_invitation(uow, actor_id=worker_id, community_id=community_id, role=Role.STREET_ADMINISTRATOR)


@pytest.mark.parametrize("max_uses", [0, 201, 1001, -3])
async def test_uses_out_of_range_are_refused(uows: UnitOfWorkFactory, max_uses: int) -> None:
    community_id = await _community(uows)
    with pytest.raises(ValidationFailed):
        await _invite(uows, community_id, max_uses=max_uses)


async def test_a_validity_that_is_not_positive_is_refused(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    with pytest.raises(ValidationFailed):
        await _invite(uows, community_id, valid_for=timedelta(0))


async def test_five_wrong_codes_lock_the_account_for_fifteen_minutes(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)

    tries = [await _redeem(uows, "guesser", f"WRONG{i}CODE") for i in range(5)]
    assert all(isinstance(t.refused, InvalidCode) for t in tries)
    assert [t.locked_until is not None for t in tries] == [False, False, False, False, True]
    assert tries[4].locked_until == clock.now() + timedelta(minutes=15)

    locked = await _redeem(uows, "guesser", code)  # even the right code waits for the lock
    assert isinstance(locked.refused, Throttled) and locked.joined is None
    assert isinstance((await _redeem(uows, "someone-else", "NOPE")).refused, InvalidCode)  # per account

    clock.advance(timedelta(minutes=14, seconds=59))
    assert isinstance((await _redeem(uows, "guesser", code)).refused, Throttled)
    clock.advance(timedelta(seconds=1))
    opened = await _redeem(uows, "guesser", code)
    assert opened.joined is not None


async def test_forty_wrong_codes_at_once_lock_the_account_and_each_is_counted_once(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """Each attempt in its own unit of work, all at once: the count and the lock are one statement, so no attempt
    is lost and exactly the MAX_WRONG_CODES-th locks; the rest are refused by the lock."""
    await _identify(uow_factory=uows, key="guesser")

    tries = await asyncio.gather(*(_redeem(uows, "guesser", f"WRONG{n:02d}ABC") for n in range(40)))

    locked_by_this_one = [t for t in tries if isinstance(t.refused, InvalidCode) and t.locked_until is not None]
    counted = [t for t in tries if isinstance(t.refused, InvalidCode)]
    refused_by_the_lock = [t for t in tries if isinstance(t.refused, Throttled)]
    assert len(locked_by_this_one) == 1
    assert len(counted) == MAX_WRONG_CODES
    assert len(refused_by_the_lock) == 40 - MAX_WRONG_CODES
    assert {t.locked_until for t in refused_by_the_lock} == {clock.now() + LOCKOUT}
    async with uows() as uow:
        (row,) = (await uow.session.exec(select(CodeThrottle))).all()
    assert row.failures == MAX_WRONG_CODES and row.locked_until == clock.now() + LOCKOUT


async def test_a_stored_code_hash_needs_the_site_key(
    uows: UnitOfWorkFactory, site_key: SiteKey, clock: FakeClock
) -> None:
    """Whoever reads the database but not the key cannot test guesses: the hash is not the plain SHA-256 of the
    code, and a different key gives a different hash."""
    community_id = await _community(uows)
    code = await _invite(uows, community_id)
    async with uows() as uow:
        stored = (await uow.session.exec(select(Invitation.code_hash))).one()

    assert stored != hashlib.sha256(code.encode()).hexdigest()
    assert stored == site_key.digest("invitation", code)
    assert stored != SiteKey.generate().digest("invitation", code)
    assert (await _redeem(uows, "holder", code)).joined is not None


async def test_wrong_codes_spread_beyond_the_window_do_not_lock(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    for _ in range(2):
        for _ in range(4):
            assert (await _redeem(uows, "slow", "ABCDEFGHJK")).locked_until is None
        clock.advance(timedelta(minutes=15))
    assert (await _redeem(uows, "slow", "ABCDEFGHJK")).locked_until is None


async def test_a_success_resets_the_count_of_wrong_codes(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)
    other_community = await _community(uows, "阳光社区")
    other_code = await _invite(uows, other_community)
    for _ in range(4):
        await _redeem(uows, "p", "ABCDEFGHJK")
    assert (await _redeem(uows, "p", code)).joined is not None

    for _ in range(4):
        assert (await _redeem(uows, "p", "ABCDEFGHJK")).locked_until is None
    assert (await _redeem(uows, "p", other_code)).joined is not None


async def test_two_people_racing_for_the_last_use_one_gets_in(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id, max_uses=2)
    assert (await _redeem(uows, "first", code)).joined is not None
    for key in ("a", "b"):
        await _identify(uow_factory=uows, key=key)

    results = await asyncio.gather(_redeem(uows, "a", code), _redeem(uows, "b", code))

    assert sorted(r.joined is not None for r in results) == [False, True]
    loser = next(r for r in results if r.joined is None)
    assert isinstance(loser.refused, UsedUpCode)
    async with uows() as uow:
        assert (await uow.session.exec(select(Invitation))).one().uses == 2


async def test_invitations_are_audited_and_the_chain_verifies(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)
    await _redeem(uows, "nope", "ABCDEFGHJK")
    await _redeem(uows, "yes", code)

    assert await _audit_actions(uows) == [
        "community.added",
        "invitation.created",
        "membership.added",
        "invitation.redeemed",
    ]
    assert await _chain_ok(uows)


# --- join requests --------------------------------------------------------------------------------------------


async def _request(
    uows: UnitOfWorkFactory, person_id: int, community_id: int, *, phone: str | None = "+86 138-0000-0000"
) -> int:
    async with uows() as uow:
        request = await submit_join_request(
            uow,
            person_id=person_id,
            community_id=community_id,
            name="  张伟 ",
            household_label="12号楼 3单元 501",
            phone=phone,
        )
        await uow.commit()
    assert request.id is not None
    return request.id


async def test_an_approved_request_makes_a_resident_in_the_named_household(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    worker_id = await _worker(uows, community_id)
    requester = await _identify(uow_factory=uows, key="zhang", name="Zhang")
    async with uows() as uow:
        requester.person.language = "en"
        uow.session.add(requester.person)
        await uow.commit()
    request_id = await _request(uows, requester.person_id, community_id)

    async with uows() as uow:
        pending = await pending_join_requests(uow, actor_id=worker_id, community_id=community_id)
        assert [(r.id, r.name, r.household_label, r.phone) for r in pending] == [
            (request_id, "张伟", "12号楼 3单元 501", "+8613800000000")
        ]
        decision = await decide_join_request(uow, actor_id=worker_id, request_id=request_id, approve=True)
        await uow.commit()

    assert decision.approved and decision.request.status == JoinRequestStatus.APPROVED
    assert decision.request.decided_by == worker_id
    assert [a.external_id for a in decision.requester_accounts] == ["zhang"]
    assert decision.requester_language == "en"
    async with uows() as uow:
        (view,) = await memberships_of(uow, requester.person_id)
        person = await uow.session.get(Person, requester.person_id)
        assert not await pending_join_requests(uow, actor_id=worker_id, community_id=community_id)
    assert view.roles == {Role.RESIDENT}
    assert view.household is not None and view.household.label == "12号楼 3单元 501"
    assert person is not None and person.phone == "+8613800000000"
    assert await _audit_actions(uows) == [
        "community.added",
        "membership.added",
        "join_request.submitted",
        "membership.added",
        "join_request.approved",
    ]
    assert await _chain_ok(uows)


async def test_a_phone_kept_to_oneself_is_not_stored(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    worker_id = await _worker(uows, community_id)
    person_id = await _person(uows, "quiet")
    request_id = await _request(uows, person_id, community_id, phone=None)
    async with uows() as uow:
        await decide_join_request(uow, actor_id=worker_id, request_id=request_id, approve=True)
        await uow.commit()
    async with uows() as uow:
        person = await uow.session.get(Person, person_id)
    assert person is not None and person.phone is None


async def test_a_rejected_request_keeps_its_reason_and_makes_no_member(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    worker_id = await _worker(uows, community_id)
    person_id = await _person(uows, "far-away")
    request_id = await _request(uows, person_id, community_id)

    async with uows() as uow:
        decision = await decide_join_request(
            uow, actor_id=worker_id, request_id=request_id, approve=False, reason=RejectionReason.NOT_RESIDENT
        )
        await uow.commit()

    assert not decision.approved and decision.request.status == JoinRequestStatus.REJECTED
    assert decision.reason_message == RejectionReason.NOT_RESIDENT.message
    async with uows() as uow:
        assert await memberships_of(uow, person_id) == []
        person = await uow.session.get(Person, person_id)
    assert person is not None and person.phone is None  # only an approval keeps the phone
    assert (await _audit_actions(uows))[-1] == "join_request.rejected"
    assert await _chain_ok(uows)


async def test_a_request_is_decided_once(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    worker_id = await _worker(uows, community_id)
    other_worker_id = await _worker(uows, community_id, key="worker2")
    person_id = await _person(uows, "p")
    request_id = await _request(uows, person_id, community_id)
    async with uows() as uow:
        await decide_join_request(uow, actor_id=worker_id, request_id=request_id, approve=True)
        await uow.commit()

    async with uows() as uow:
        with pytest.raises(Conflict):
            await decide_join_request(uow, actor_id=other_worker_id, request_id=request_id, approve=False)


async def test_two_workers_tapping_at_once_one_decides(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    workers = [await _worker(uows, community_id, key=f"w{i}") for i in range(2)]
    person_id = await _person(uows, "p")
    request_id = await _request(uows, person_id, community_id)

    async def decide(actor_id: int, approve: bool) -> str:
        async with uows() as uow:
            try:
                await decide_join_request(uow, actor_id=actor_id, request_id=request_id, approve=approve)
            except Conflict as refused:
                return refused.message
            await uow.commit()
            return "decided"

    outcomes = await asyncio.gather(decide(workers[0], True), decide(workers[1], False))

    assert sorted(outcomes)[-1] == "decided" and outcomes.count("decided") == 1
    assert await _chain_ok(uows)


async def test_a_resident_cannot_decide_or_list_requests(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    code = await _invite(uows, community_id)
    assert (await _redeem(uows, "neighbour", code)).joined is not None
    neighbour_id = (await _identify(uow_factory=uows, key="neighbour")).person_id
    person_id = await _person(uows, "p")
    request_id = await _request(uows, person_id, community_id)
    async with uows() as uow:
        with pytest.raises(PermissionDenied):
            await pending_join_requests(uow, actor_id=neighbour_id, community_id=community_id)
        with pytest.raises(PermissionDenied):
            await decide_join_request(uow, actor_id=neighbour_id, request_id=request_id, approve=True)


async def test_one_pending_request_per_community_and_none_for_members(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    person_id = await _person(uows, "eager")
    await _request(uows, person_id, community_id)
    with pytest.raises(Conflict):
        await _request(uows, person_id, community_id)
    async with uows() as uow:
        assert await joinable_communities(uow, person_id) == []

    code = await _invite(uows, community_id)
    member = await _redeem(uows, "member", code)
    assert member.joined is not None
    member_id = (await _identify(uow_factory=uows, key="member")).person_id
    with pytest.raises(AlreadyMember):
        await _request(uows, member_id, community_id)


@pytest.mark.parametrize(
    ("name", "label", "phone"),
    [("", "1号楼", None), ("x" * 101, "1号楼", None), ("王", " ", None), ("王", "1号楼", "138 call me")],
)
async def test_bad_join_request_input_is_refused(
    uows: UnitOfWorkFactory, name: str, label: str, phone: str | None
) -> None:
    community_id = await _community(uows)
    person_id = await _person(uows, "p")
    async with uows() as uow:
        with pytest.raises(ValidationFailed):
            await submit_join_request(
                uow, person_id=person_id, community_id=community_id, name=name, household_label=label, phone=phone
            )


async def test_a_name_with_markup_emoji_rtl_and_zero_width_is_stored_exactly(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    person_id = await _person(uows, "p")
    name = "<b>王&芳</b> 🏠 مرحبا\u200b\u200d"
    async with uows() as uow:
        request = await submit_join_request(
            uow, person_id=person_id, community_id=community_id, name=name, household_label="<i>1</i>", phone=None
        )
        await uow.commit()
    async with uows() as uow:
        worker_view = await uow.session.get(JoinRequest, request.id)
    assert worker_view is not None and worker_view.name == name and worker_view.household_label == "<i>1</i>"


async def test_staff_of_the_community_and_street_administrators_above_it_are_notified(
    uows: UnitOfWorkFactory,
) -> None:
    async with uows() as uow:
        street = await add_community(uow, name="石门二路街道", kind=CommunityKind.STREET)
        await uow.commit()
    assert street.id is not None
    community_id = await _community(uows, parent_id=street.id)
    elsewhere_id = await _community(uows, "别处社区")
    await _worker(uows, community_id, key="worker")
    await _worker(uows, elsewhere_id, key="worker-elsewhere")
    admin = await _identify(uow_factory=uows, key="admin")
    clerk = await _identify(uow_factory=uows, key="street-clerk")
    async with uows() as uow:
        await add_member(
            uow, person_id=admin.person_id, community_id=street.id, roles={Role.STREET_ADMINISTRATOR}, reason="t"
        )
        await add_member(
            uow, person_id=clerk.person_id, community_id=street.id, roles={Role.COMMUNITY_WORKER}, reason="t"
        )
        await uow.commit()

    async with uows() as uow:
        accounts = await community_staff_accounts(uow, community_id)
        admin_can_invite_in = await staff_communities(uow, admin.person_id, Action.CREATE_INVITATION)
        assert Role.STREET_ADMINISTRATOR in await effective_roles(uow, admin.person_id, community_id)
        clerk_can_invite_in = await staff_communities(uow, clerk.person_id, Action.CREATE_INVITATION)

    assert sorted(a.external_id for a in accounts) == ["admin", "worker"]
    assert [c.id for c in admin_can_invite_in] == [community_id]
    assert clerk_can_invite_in == []


async def test_household_labels_are_shared_between_codes_and_requests(uows: UnitOfWorkFactory) -> None:
    community_id = await _community(uows)
    worker_id = await _worker(uows, community_id)
    code = await _invite(uows, community_id, role=Role.HOUSEHOLD_REPRESENTATIVE, household_label="12号楼 3单元 501")
    rep = await _redeem(uows, "rep", code)
    person_id = await _person(uows, "spouse")
    request_id = await _request(uows, person_id, community_id)
    async with uows() as uow:
        decision = await decide_join_request(uow, actor_id=worker_id, request_id=request_id, approve=True)
        await uow.commit()
        same = await household(uow, community_id, "12号楼 3单元 501")
    assert rep.joined is not None and rep.joined.household is not None
    assert decision.household is not None and decision.household.id == rep.joined.household.id == same.id
