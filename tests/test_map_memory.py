"""What the opinion map remembers between refreshes (consultation.map_memory), as Pol.is's updates do: the same
votes give the same groups whatever the order of the rows, a refresh starts from the last map's clusters, a new
number of groups waits for the k-smoother, and the close tells the groups of the last map."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update as sa_update
from sqlmodel import col

from bot.consultations.jobs import refresh_priorities
from bot.worker import Worker
from community.clock import FakeClock
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import (
    VoteValue,
    close_consultation,
    map_memory,
    store_map_memory,
    vote_matrix,
)
from consultation.group_count import GroupCountState
from consultation.map_memory import ClusteringMemory, Clusters, from_json, to_json
from consultation.models import MapMemory
from consultation.opinion_map import NOT_CLUSTERED, OpinionMap, OpinionMapSettings, compute_opinion_map
from consultation.outcome import compute_outcome
from tests.test_consultation_priorities import _add, _residents
from tests.test_consultations import Cast, _cast, _open, _statements, _vote

AGREE, DISAGREE, PASS = 1.0, -1.0, 0.0


def blocs(sizes: tuple[int, ...], statements: int = 12, seed: int = 7) -> tuple[np.ndarray, list[str], list[int]]:
    """Blocs of people: bloc b agrees with its own third of the statements and disagrees with the rest, each
    person departing from the bloc's line on a few random statements (passing or unseen), so that nobody sits
    exactly on anybody else."""
    rng = np.random.default_rng(seed)
    rows = []
    for b, size in enumerate(sizes):
        line = np.full(statements, DISAGREE)
        line[b * statements // len(sizes) : (b + 1) * statements // len(sizes)] = AGREE
        for _ in range(size):
            row = line.copy()
            off = rng.choice(statements, size=2, replace=False)
            row[off[0]] = PASS
            row[off[1]] = np.nan
            rows.append(row)
    people = [f"p{i:04d}" for i in range(len(rows))]
    return np.array(rows), people, list(range(statements))


def groups(opinion_map: OpinionMap) -> dict[str | int, int]:
    return {
        pid: int(g)
        for pid, g in zip(opinion_map.participant_ids, opinion_map.group_of, strict=True)
        if g != NOT_CLUSTERED
    }


def partition(opinion_map: OpinionMap) -> set[frozenset[str | int]]:
    by_group: dict[int, set[str | int]] = {}
    for pid, g in groups(opinion_map).items():
        by_group.setdefault(g, set()).add(pid)
    return {frozenset(members) for members in by_group.values()}


def test_memory_survives_json_and_a_bad_one_reads_as_none() -> None:
    memory = ClusteringMemory(
        base=Clusters(("张三", 7, "p\u00e9"), (0, 1, 1)),
        groups=((2, Clusters((0, 1), (0, 1))), (3, Clusters((0, 1), (1, 0)))),
        group_count=GroupCountState(last_k=3, last_k_count=2, shown_k=2),
    )

    assert from_json(to_json(memory)) == memory
    for bad in ("", "null", "[]", "{}", '{"version": 99}', to_json(memory).replace('"labels"', '"x"'), "\x00"):
        assert from_json(bad) is None
    with pytest.raises(ValueError, match="one label per member"):
        Clusters(("a", "b"), (0,))


def test_the_same_votes_give_the_same_groups_whatever_the_order_of_the_rows() -> None:
    votes, people, statements = blocs((30, 25, 20))
    first = compute_opinion_map(votes, people, statements)
    # Not a trivial split: three blocs, found as three groups.
    assert len(first.groups) == 3

    for seed in range(1, 6):
        order = np.random.default_rng(seed).permutation(len(people))
        shuffled = votes[order]
        matrix = np.asfortranarray(shuffled) if seed % 2 else shuffled
        again = compute_opinion_map(matrix, [people[i] for i in order], statements)
        assert partition(again) == partition(first)
        # Group numbers too: by size, the largest first, whatever the order.
        assert groups(again) == groups(first)


@st.composite
def shuffled_votes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Any small votes matrix (unseen cells included), and an order of its rows."""
    n = draw(st.integers(2, 60))
    s = draw(st.integers(1, 10))
    cells = draw(st.lists(st.sampled_from([AGREE, DISAGREE, PASS, np.nan]), min_size=n * s, max_size=n * s))
    order = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(n)
    return np.array(cells).reshape(n, s), order


# Derandomized: the examples are the same on every run, so a failure here is a failure of the code, every time.
@settings(max_examples=150, deadline=None, derandomize=True)
@given(case=shuffled_votes())
def test_any_votes_give_the_same_groups_in_any_order_of_the_rows_with_or_without_memory(
    case: tuple[np.ndarray, np.ndarray],
) -> None:
    votes, order = case
    people = [f"p{i:03d}" for i in range(votes.shape[0])]
    statements = list(range(votes.shape[1]))
    first = compute_opinion_map(votes, people, statements)
    shuffled = (np.asfortranarray(votes[order]), [people[i] for i in order], statements)

    assert groups(compute_opinion_map(*shuffled)) == groups(first)
    # Two equally good groupings (symmetric votes) must not fall one way in one order and the other in another:
    # the positions are the same to the last bit.
    again = compute_opinion_map(*shuffled)
    assert np.array_equal(again.coordinates[np.argsort(order)], first.coordinates)
    if first.memory is not None:
        refreshed = compute_opinion_map(votes, people, statements, previous=first.memory)
        assert groups(compute_opinion_map(*shuffled, previous=first.memory)) == groups(refreshed)


def test_a_refresh_on_the_same_votes_keeps_the_groups_and_the_memory() -> None:
    votes, people, statements = blocs((30, 25, 20))
    first = compute_opinion_map(votes, people, statements)
    assert first.memory is not None

    again = compute_opinion_map(votes, people, statements, previous=first.memory)

    assert groups(again) == groups(first)
    assert again.memory is not None
    assert again.memory.base == first.memory.base
    # The k of the first map has now been the best twice in a row.
    assert again.memory.group_count.last_k == first.memory.group_count.last_k
    assert again.memory.group_count.last_k_count == 2


def test_recalling_a_memory_gives_exactly_its_groups_and_places_newcomers_by_their_nearest_cluster() -> None:
    votes, people, statements = blocs((30, 25, 20))
    closing = compute_opinion_map(votes, people, statements)
    assert closing.memory is not None
    # Later votes: two newcomers who vote as the first bloc, and one old participant changing sides.
    more, _, _ = blocs((2,), seed=11)
    more = np.vstack([votes, more])
    everyone = [*people, "new0", "new1"]
    more[0] = votes[-1]

    recalled = compute_opinion_map(more, everyone, statements, previous=closing.memory, advance=False)

    told = groups(closing)
    now = groups(recalled)
    assert {pid: now[pid] for pid in told} == told  # p0000 stays where the outcome put them
    assert now["new0"] == now["new1"] == told[people[0]]
    # Recalling changes nothing in the memory.
    assert recalled.memory == closing.memory


def test_a_participant_whose_votes_are_gone_leaves_the_memory_at_the_next_map() -> None:
    votes, people, statements = blocs((30, 25, 20))
    first = compute_opinion_map(votes, people, statements)
    assert first.memory is not None and people[3] in first.memory.base.members
    # Erased in an open consultation (consultation.erasure): their votes are withdrawn, their row is gone.
    kept = [i for i in range(len(people)) if i != 3]

    after = compute_opinion_map(votes[kept], [people[i] for i in kept], statements, previous=first.memory)

    assert after.memory is not None
    assert people[3] not in after.memory.base.members
    assert people[3] not in to_json(after.memory)
    assert {pid: g for pid, g in groups(first).items() if pid != people[3]} == groups(after)


def test_a_new_number_of_groups_is_shown_only_after_it_has_been_best_for_four_maps_in_a_row() -> None:
    two, people, statements = blocs((40, 40, 0), statements=12)
    first = compute_opinion_map(two, people, statements)
    assert len(first.groups) == 2
    # A third bloc joins: the best k of each map is now 3.
    three, everyone, _ = blocs((40, 40, 40), statements=12)
    assert everyone[: len(people)] == people

    shown = []
    memory = first.memory
    for _ in range(5):
        refreshed = compute_opinion_map(three, everyone, statements, previous=memory)
        assert refreshed.memory is not None
        assert refreshed.memory.group_count.last_k == 3
        shown.append(len(refreshed.groups))
        memory = refreshed.memory

    assert shown == [2, 2, 2, 3, 3]
    assert compute_opinion_map(three, everyone, statements).memory is not None  # cold: 3 at once
    assert len(compute_opinion_map(three, everyone, statements).groups) == 3


def test_participants_once_clustered_stay_clustered_and_an_early_map_has_groups() -> None:
    votes, people, statements = blocs((10, 10))
    # Only six statements seen by the first eight people: under the 7 votes of clustering...
    sparse = votes.copy()
    sparse[:, 6:] = np.nan
    settings = OpinionMapSettings()
    early = compute_opinion_map(sparse, people, statements, settings)
    # ...but Pol.is's greedy rule clusters the 15 most active anyway, so the first map has groups.
    assert len(groups(early)) == settings.greedy_participants
    assert early.memory is not None
    # One of them then withdraws every vote but one: still clustered, as Pol.is keeps them.
    kept = next(iter(groups(early)))
    row = people.index(str(kept))
    later = sparse.copy()
    later[row, 1:] = np.nan
    refreshed = compute_opinion_map(later, people, statements, settings, previous=early.memory)
    assert kept in groups(refreshed)


# --- stored between refreshes, on both databases -----------------------------------------------------------------


async def _two_blocs(uows: UnitOfWorkFactory, cast: Cast, consultation_id: int, people: int) -> list[int]:
    """``people`` residents in two blocs: all agree on the seeded statements and split on two new ones."""
    async with uows() as uow:
        shared = [statement.id or 0 for statement in await _statements(uow, consultation_id)]
    split = await _add(uows, cast, consultation_id, "停车位按户轮换。", "外来车辆一律不得进入。")
    residents = await _residents(uows, cast, people)
    for number, person in enumerate(residents):
        for statement_id in shared:
            await _vote(uows, person, statement_id, VoteValue.AGREE)
        first_bloc = number % 2 == 0
        await _vote(uows, person, split[0], VoteValue.AGREE if first_bloc else VoteValue.DISAGREE)
        await _vote(uows, person, split[1], VoteValue.DISAGREE if first_bloc else VoteValue.AGREE)
    return residents


async def test_each_refresh_starts_from_the_memory_the_last_one_stored(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    await _two_blocs(uows, cast, consultation_id, 6)
    async with uows() as uow:
        assert await map_memory(uow, consultation_id) is None  # no map yet

    assert await refresh_priorities(uows, consultation_id, Worker(processes=False))
    async with uows() as uow:
        first = await map_memory(uow, consultation_id)
        pseudonyms = set((await vote_matrix(uow, consultation_id)).participants)
    assert first is not None
    assert set(first.base.members) == pseudonyms  # by pseudonym, as the votes carry them
    assert first.group_count == GroupCountState(last_k=2, last_k_count=1, shown_k=2)

    clock.advance(timedelta(minutes=1))
    assert await refresh_priorities(uows, consultation_id, Worker(processes=False))
    async with uows() as uow:
        second = await map_memory(uow, consultation_id)
    assert second is not None
    assert second.base == first.base
    assert second.group_count.last_k_count == 2  # this map knew the last one

    # Once closed, a late map stores nothing; an unreadable memory is a fresh start, not an error.
    async with uows() as uow:
        await uow.session.exec(
            sa_update(MapMemory).where(col(MapMemory.consultation_id) == consultation_id).values(memory="{bad")
        )
        await uow.commit()
    async with uows() as uow:
        assert await map_memory(uow, consultation_id) is None
    assert await refresh_priorities(uows, consultation_id, Worker(processes=False))
    async with uows() as uow:
        restarted = await map_memory(uow, consultation_id)
        assert restarted is not None and restarted.group_count.last_k_count == 1
        assert await close_consultation(uow, consultation_id)
        await uow.commit()
    assert not await refresh_priorities(uows, consultation_id, Worker(processes=False))
    async with uows() as uow:
        assert await map_memory(uow, consultation_id) == restarted


async def test_an_older_memory_never_replaces_a_newer_one(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    newer = ClusteringMemory(Clusters(("a",), (0,)), (), GroupCountState(2, 3, 2))
    older = ClusteringMemory(Clusters(("b",), (0,)), (), GroupCountState(3, 1, 3))
    now = clock.now()
    async with uows() as uow:
        await store_map_memory(uow, consultation_id, newer, now)
        await uow.commit()
    async with uows() as uow:
        await store_map_memory(uow, consultation_id, older, now - timedelta(seconds=1))
        await uow.commit()
    async with uows() as uow:
        assert await map_memory(uow, consultation_id) == newer


async def test_the_export_shows_the_groups_of_the_last_map_not_a_map_of_its_own(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    cast = await _cast(uows)
    consultation_id = await _open(uows, cast, clock)
    residents = await _two_blocs(uows, cast, consultation_id, 12)
    assert await refresh_priorities(uows, consultation_id, Worker(processes=False))
    async with uows() as uow:
        told = await compute_outcome(uow, cast.worker, consultation_id)
    assert sorted(group.size for group in told.groups) == [6, 6]

    # After that map, two of the second bloc cross over to the first: a fresh map would show 8 and 4.
    async with uows() as uow:
        split = [statement.id or 0 for statement in await _statements(uow, consultation_id)][-2:]
    for person in residents[1:4:2]:
        await _vote(uows, person, split[0], VoteValue.AGREE)
        await _vote(uows, person, split[1], VoteValue.DISAGREE)
    async with uows() as uow:
        later = await compute_outcome(uow, cast.worker, consultation_id)
        matrix = await vote_matrix(uow, consultation_id)

    assert [group.size for group in later.groups] == [group.size for group in told.groups]
    fresh = compute_opinion_map(matrix.votes, matrix.participants, matrix.statement_ids)
    assert sorted(len(group.participant_ids) for group in fresh.groups) == [4, 8]
