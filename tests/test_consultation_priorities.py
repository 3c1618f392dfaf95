"""The order of statements: Polis's priority from the last opinion map (how much a vote on a statement tells
groups apart) times its newness, and the refresh of that map, asked for by one vote per interval; on both
databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import col, select

from bot.consultations.jobs import refresh_priorities
from bot.worker import Worker
from community.clock import FakeClock
from community.communities import add_member, household
from community.people import identify
from community.roles import Role
from community.unit_of_work import UnitOfWorkFactory
from consultation import participation
from consultation.consultations import (
    MAP_MIN_VOTES,
    VoteValue,
    add_statement,
    close_consultation,
    next_up,
    participate,
    record_vote,
    store_priorities,
)
from consultation.models import Statement
from consultation.settings import MAP_REFRESH
from tests.test_consultations import B3, Cast, _cast, _open, _statements, _vote


async def _add(uows: UnitOfWorkFactory, cast: Cast, consultation_id: int, *texts: str) -> list[int]:
    async with uows() as uow:
        added = [await add_statement(uow, cast.worker, consultation_id, text) for text in texts]
        await uow.commit()
    return [statement.id or 0 for statement in added]


async def _residents(uows: UnitOfWorkFactory, cast: Cast, count: int) -> list[int]:
    """More residents of 梧桐社区's 3号楼, for a map with two blocs."""
    people: list[int] = []
    async with uows() as uow:
        for number in range(count):
            key = f"resident{number}"
            me = await identify(uow, channel="telegram", external_id=key, chat_id=key, display_name=key)
            home = await household(uow, cast.wutong, f"{B3} {number + 100}室")
            home.building = B3
            uow.session.add(home)
            await add_member(
                uow,
                person_id=me.person_id,
                community_id=cast.wutong,
                roles={Role.RESIDENT},
                household_id=home.id,
                reason="test",
            )
            people.append(me.person_id)
        await uow.commit()
    return people


async def _next(uows: UnitOfWorkFactory, person: int, consultation_id: int) -> int | None:
    async with uows() as uow:
        me = await participate(uow, person, consultation_id)
        await uow.commit()
        return (await next_up(uow, me.id or 0, consultation_id)).statement_id


async def _priorities(uows: UnitOfWorkFactory, consultation_id: int) -> dict[int, float | None]:
    async with uows() as uow:
        rows = (
            await uow.session.exec(
                select(Statement.id, Statement.priority)
                .where(Statement.consultation_id == consultation_id)
                .order_by(col(Statement.id))
            )
        ).all()
    return {sid or 0: priority for sid, priority in rows}


async def test_a_statement_that_splits_comes_before_a_shared_one_and_newness_counts(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        shared, split = [statement.id or 0 for statement in await _statements(uow, consultation_id)]
    # No map yet, one vote each: fewest votes first, then the older statement.
    await _vote(uows, cast.liu, shared, VoteValue.AGREE)
    await _vote(uows, cast.liu, split, VoteValue.AGREE)
    assert await _next(uows, cast.wang, consultation_id) == shared

    async def mapped(priorities: dict[int, float]) -> None:
        async with uows() as uow:
            assert await store_priorities(uow, consultation_id, list(priorities), list(priorities.values()))
            await uow.commit()

    # A map found that the newer statement tells groups apart: with as many votes, it comes first.
    await mapped({shared: 0.4, split: 0.9})
    assert await _next(uows, cast.wang, consultation_id) == split
    # Newness weighs in: with two votes more (0.9 × 6.28) it falls behind the shared one (0.8 × 7.96).
    await mapped({shared: 0.8, split: 0.9})
    assert await _next(uows, cast.wang, consultation_id) == split
    await _vote(uows, cast.chen, split, VoteValue.DISAGREE)
    await _vote(uows, cast.committee, split, VoteValue.DISAGREE)
    assert await _next(uows, cast.wang, consultation_id) == shared


async def test_a_statement_newer_than_the_map_gets_the_top_priority(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        first, second = [statement.id or 0 for statement in await _statements(uow, consultation_id)]
        assert await store_priorities(uow, consultation_id, [first, second], [0.3, 0.9])
        await uow.commit()
    assert await _next(uows, cast.wang, consultation_id) == second
    # Added after the map: not buried under the mapped ones, it scores as the highest of them would.
    (newer,) = await _add(uows, cast, consultation_id, "夜间禁止外来车辆停放。")
    await _vote(uows, cast.liu, second, VoteValue.AGREE)
    assert (await _priorities(uows, consultation_id))[newer] is None
    assert await _next(uows, cast.wang, consultation_id) == newer
    # The next map finds it tells nobody apart: it takes its place.
    async with uows() as uow:
        assert await store_priorities(uow, consultation_id, [first, second, newer], [0.3, 0.9, 0.1])
        await uow.commit()
    assert await _next(uows, cast.wang, consultation_id) == second


async def test_the_map_refresh_is_claimed_by_one_vote_per_interval(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        statements = [statement.id or 0 for statement in await _statements(uow, consultation_id)]
    statements += await _add(uows, cast, consultation_id, "增加绿化。", "保留大树。", "夜间禁止停车。")

    async def due(person: int, statement_id: int, value: VoteValue = VoteValue.AGREE) -> bool:
        async with uows() as uow:
            recorded = await record_vote(uow, person, statement_id, value)
            await uow.commit()
        return recorded.map_due

    # Too few votes to map: nobody asks.
    assert [await due(cast.wang, sid) for sid in statements[: MAP_MIN_VOTES - 1]] == [False] * (MAP_MIN_VOTES - 1)
    # The vote that makes enough asks; the next ones in the interval do not.
    assert await due(cast.wang, statements[MAP_MIN_VOTES - 1])
    assert not await due(cast.liu, statements[0])
    clock.advance(MAP_REFRESH.default)
    assert not await due(cast.liu, statements[1])
    # After the interval one vote asks again, then none.
    clock.advance(timedelta(seconds=1))
    assert await due(cast.liu, statements[2])
    assert not await due(cast.liu, statements[2], VoteValue.DISAGREE)

    # Votes at once after the next interval: one of them asks, whatever the database.
    clock.advance(MAP_REFRESH.default + timedelta(seconds=1))
    asked = await asyncio.gather(due(cast.chen, statements[0]), due(cast.committee, statements[0]))
    assert sorted(asked) == [False, True]


async def test_the_map_job_stores_priorities_that_change_the_next_card(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    async with uows() as uow:
        # The two seeded statements, read here as what everyone agrees on (the texts do not matter to the map).
        shared = [statement.id or 0 for statement in await _statements(uow, consultation_id)]
    split = await _add(uows, cast, consultation_id, "停车位按户轮换。", "外来车辆一律不得进入。")
    # Two blocs of three: they agree on the older statements and split on the newer ones.
    for number, person in enumerate(await _residents(uows, cast, 6)):
        for statement_id in shared:
            await _vote(uows, person, statement_id, VoteValue.AGREE)
        first_bloc = number < 3
        await _vote(uows, person, split[0], VoteValue.AGREE if first_bloc else VoteValue.DISAGREE)
        await _vote(uows, person, split[1], VoteValue.DISAGREE if first_bloc else VoteValue.AGREE)
    # Without a map, six votes each: the oldest statement first.
    async with uows() as uow:
        card = await participation.take_part(uow, cast.wang, consultation_id)
        await uow.commit()
    assert card.statement_id == shared[0]

    assert await refresh_priorities(uows, consultation_id, Worker(processes=False))
    stored = await _priorities(uows, consultation_id)
    assert all(value is not None for value in stored.values())
    assert min(stored[sid] or 0 for sid in split) > max(stored[sid] or 0 for sid in shared)
    # Running it again is harmless: the same map, the same priorities.
    assert await refresh_priorities(uows, consultation_id, Worker(processes=False))
    assert await _priorities(uows, consultation_id) == stored

    # 王芳's next card is now one that tells the blocs apart, and after her vote on it, the other one.
    async with uows() as uow:
        card = await participation.take_part(uow, cast.wang, consultation_id)
    assert card.statement_id == split[0]
    async with uows() as uow:
        voted = await participation.cast(uow, cast.wang, split[0], VoteValue.AGREE)
        await uow.commit()
    assert voted.next.statement_id == split[1]

    # Closed, nobody is shown statements: a late map stores nothing.
    async with uows() as uow:
        assert await close_consultation(uow, consultation_id)
        await uow.commit()
    assert not await refresh_priorities(uows, consultation_id, Worker(processes=False))
