"""The services behind taking part in chat (consultation.participation, next_up, record_vote): who moderates,
one-tap decisions that a second moderator cannot overturn, the next card with how many are left, a repeated
vote told apart from a new one, a participant's own votes, and the workers' overview; on both databases.

The cast is tests.test_consultations': 梧桐社区 under 示范街道, with its worker, a committee member, the street
administrator above, residents of buildings 3 and 7, a unit contact, and a resident of 银杏社区."""

from __future__ import annotations

from datetime import timedelta

import pytest

from community.clock import FakeClock
from community.unit_of_work import UnitOfWorkFactory
from consultation import participation
from consultation.consultations import (
    VoteValue,
    close_consultation,
    next_statement,
    next_up,
    participate,
    record_vote,
    store_priorities,
    submit_statement,
)
from consultation.errors import ConsultationClosed, ConsultationNotAllowed, StatementsNotAllowed
from consultation.models import ConsultationStatus, StatementRejection, StatementStatus
from tests.test_consultations import _cast, _create, _draft, _open, _statements, _vote


async def test_moderators_are_staff_committee_and_the_street_above_not_residents(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    async with uows() as uow:
        people = {contact.account.person_id for contact in await participation.moderators(uow, cast.wutong)}
        neighbours = {contact.account.person_id for contact in await participation.moderators(uow, cast.yinxing)}
    assert people == {cast.worker, cast.committee, cast.street}
    assert neighbours == {cast.street}


async def test_a_decision_is_taken_once_and_a_second_tap_changes_nothing(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        statement = await submit_statement(uow, cast.chen, consultation_id, "先问问一楼住户。")
        await uow.commit()
    assert statement.id is not None and statement.status is StatementStatus.PENDING

    async with uows() as uow:
        with pytest.raises(ConsultationNotAllowed):
            await participation.decide(uow, cast.wang, statement.id, approve=True)
    async with uows() as uow:
        first = await participation.decide(
            uow, cast.committee, statement.id, approve=False, reason=StatementRejection.UNCLEAR
        )
        await uow.commit()
    assert first.decided_now and first.statement.status is StatementStatus.REJECTED
    async with uows() as uow:
        second = await participation.decide(uow, cast.worker, statement.id, approve=True)
        await uow.commit()
    assert not second.decided_now
    assert (second.statement.status, second.statement.rejection_reason) == (
        StatementStatus.REJECTED,
        StatementRejection.UNCLEAR,
    )
    async with uows() as uow:
        author = await participation.author_contact(uow, statement.id)
    assert author is not None and [account.person_id for account in author.accounts] == [cast.chen]


async def test_next_up_agrees_with_next_statement_and_counts_what_is_left(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        first, second = await _statements(uow, consultation_id)
        me = await participate(uow, cast.wang, consultation_id)
        await uow.commit()
    assert me.id is not None and first.id is not None and second.id is not None
    await _vote(uows, cast.liu, first.id, VoteValue.AGREE)
    for priorities in (None, (5.0, 1.0), (1.0, 5.0)):
        if priorities is not None:
            async with uows() as uow:
                assert await store_priorities(uow, consultation_id, [first.id, second.id], priorities)
                await uow.commit()
        async with uows() as uow:
            up = await next_up(uow, me.id, consultation_id)
            chosen = await next_statement(uow, me.id, consultation_id)
        assert chosen is not None and (up.statement_id, up.text, up.left) == (chosen.id, chosen.text, 2)
    await _vote(uows, cast.wang, second.id, VoteValue.PASS)
    async with uows() as uow:
        up = await next_up(uow, me.id, consultation_id)
    assert (up.statement_id, up.left) == (first.id, 1)


async def test_a_repeated_vote_is_told_apart_from_a_new_or_changed_one(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        first, _ = await _statements(uow, consultation_id)
    assert first.id is not None
    seen: list[VoteValue | None] = []
    for value in (VoteValue.AGREE, VoteValue.AGREE, VoteValue.DISAGREE):
        async with uows() as uow:
            recorded = await record_vote(uow, cast.chen, first.id, value)
            await uow.commit()
        seen.append(recorded.previous)
        assert recorded.consultation_id == consultation_id
    assert seen == [None, VoteValue.AGREE, VoteValue.AGREE]
    async with uows() as uow:
        cast_again = await participation.cast(uow, cast.chen, first.id, VoteValue.DISAGREE)
        mine = await participation.my_votes(uow, cast.chen, consultation_id)
    assert cast_again.previous is VoteValue.DISAGREE and cast_again.next.left == 1
    assert [(statement.id, value) for statement, value in mine] == [(first.id, VoteValue.DISAGREE)]


async def test_asking_for_a_statement_is_refused_where_none_are_taken(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock, allow_statements=False)
    async with uows() as uow:
        with pytest.raises(StatementsNotAllowed):
            await participation.may_add_statement(uow, cast.chen, consultation_id)
    async with uows() as uow:
        assert await close_consultation(uow, consultation_id)
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(ConsultationClosed):
            await participation.my_votes(uow, cast.chen, consultation_id)


async def test_the_overview_lists_open_then_scheduled_then_recently_closed(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    old = await _open(uows, cast, clock, title="去年的协商")
    async with uows() as uow:
        await close_consultation(uow, old)
        await uow.commit()
    clock.advance(timedelta(days=31))
    closed = await _open(uows, cast, clock, title="刚结束的协商")
    async with uows() as uow:
        await close_consultation(uow, closed)
        await uow.commit()
    scheduled = await _create(uows, cast.worker, _draft(cast, clock, title="下周的协商"))
    running = await _open(uows, cast, clock, title="进行中的协商")
    async with uows() as uow:
        found = await participation.overview(uow, cast.wutong, clock.now())
        elsewhere = await participation.overview(uow, cast.yinxing, clock.now())
    assert [(c.id, c.status) for c in found] == [
        (running, ConsultationStatus.OPEN),
        (scheduled.id, ConsultationStatus.SCHEDULED),
        (closed, ConsultationStatus.CLOSED),
    ]
    assert elsewhere == []
