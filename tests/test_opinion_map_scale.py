"""The opinion map of a large consultation, computed from its votes as cells without the dense matrix: its sparse
PCA (Lanczos iterations) gives the map the dense, exact route gives. Speed and memory are bench/bench_opinion.py's
(``--scale``), not a test's."""

from __future__ import annotations

import numpy as np
import pytest

import consultation.opinion_map as opinion_map
from consultation.opinion_map import OpinionMap, compute_opinion_map, compute_opinion_map_from_cells

# Large enough for the sparse route with the module's threshold as it is, small enough for a test.
PARTICIPANTS, STATEMENTS = 2_400, 1_000


def planted(participants: int, statements: int, seed: int = 0, density: float = 0.1) -> np.ndarray:
    """Three groups, each with a stance on every statement: a member votes it with probability 0.7, the opposite
    with 0.15, passes with 0.15; ``density`` of the cells are seen."""
    rng = np.random.default_rng(seed)
    stances = rng.choice(np.array([1.0, -1.0]), size=(3, statements))
    group = rng.integers(0, 3, size=participants)
    draw = rng.random((participants, statements))
    votes = np.where(draw < 0.7, stances[group], np.where(draw < 0.85, -stances[group], 0.0))
    votes[rng.random(votes.shape) >= density] = np.nan
    return votes


def dense_route(votes: np.ndarray, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> OpinionMap:
    with monkeypatch.context() as patched:
        patched.setattr(opinion_map, "_DENSE_PCA_CELLS", votes.size)
        return compute_opinion_map(votes, list(range(votes.shape[0])), list(range(votes.shape[1])), **kwargs)  # type: ignore[arg-type]


def assert_same_map(sparse: OpinionMap, dense: OpinionMap) -> None:
    for axis in range(2):
        # An axis's sign is fixed by its largest loading in both routes; compared up to it all the same.
        sign = 1.0 if np.dot(sparse.statement_loadings[axis], dense.statement_loadings[axis]) >= 0 else -1.0
        assert np.allclose(sparse.coordinates[:, axis], sign * dense.coordinates[:, axis], rtol=0, atol=1e-9)
        assert np.allclose(sparse.statement_loadings[axis], sign * dense.statement_loadings[axis], rtol=0, atol=1e-9)
    assert np.array_equal(sparse.statement_means, dense.statement_means)
    assert np.array_equal(sparse.vote_counts, dense.vote_counts)
    assert np.array_equal(sparse.group_of, dense.group_of)
    assert [g.participant_ids for g in sparse.groups] == [g.participant_ids for g in dense.groups]
    for ours, theirs in zip(sparse.groups, dense.groups, strict=True):
        assert (ours.agree_counts, ours.disagree_counts, ours.pass_counts) == (
            theirs.agree_counts,
            theirs.disagree_counts,
            theirs.pass_counts,
        )
        assert [(r.statement_id, r.stance) for r in ours.representative] == [
            (r.statement_id, r.stance) for r in theirs.representative
        ]
    assert [c.statement_id for c in sparse.consensus_agree] == [c.statement_id for c in dense.consensus_agree]
    assert [c.statement_id for c in sparse.consensus_disagree] == [c.statement_id for c in dense.consensus_disagree]
    assert [d.statement_id for d in sparse.divisive] == [d.statement_id for d in dense.divisive]
    assert np.allclose(sparse.statement_importance, dense.statement_importance, rtol=0, atol=1e-9)


def test_a_large_map_takes_the_sparse_route_and_gives_the_dense_routes_map(monkeypatch: pytest.MonkeyPatch) -> None:
    votes = planted(PARTICIPANTS, STATEMENTS)
    assert votes.size > opinion_map._DENSE_PCA_CELLS  # the sparse route, with the threshold the module has
    sparse = compute_opinion_map(votes, list(range(PARTICIPANTS)), list(range(STATEMENTS)))
    dense = dense_route(votes, monkeypatch)
    assert len(sparse.groups) == 3
    assert_same_map(sparse, dense)


def test_moderated_out_statements_are_zeroed_alike_in_the_sparse_route(monkeypatch: pytest.MonkeyPatch) -> None:
    votes = planted(PARTICIPANTS, STATEMENTS, seed=1)
    out = (0, 17, STATEMENTS - 1)
    sparse = compute_opinion_map(votes, list(range(PARTICIPANTS)), list(range(STATEMENTS)), moderated_out=out)
    dense = dense_route(votes, monkeypatch, moderated_out=out)
    assert_same_map(sparse, dense)
    assert np.all(sparse.statement_loadings[:, list(out)] == 0.0)
    assert np.all(sparse.statement_importance[list(out)] == 0.0)


def test_the_cells_order_changes_nothing() -> None:
    """The store hands the votes in no particular order: the map is the same to the last bit whatever it is."""
    votes = planted(PARTICIPANTS, STATEMENTS, seed=2)
    rows, columns = np.nonzero(~np.isnan(votes))
    values = votes[rows, columns].astype(np.int8)
    pids, sids = list(range(PARTICIPANTS)), list(range(STATEMENTS))
    ordered = compute_opinion_map_from_cells(rows, columns, values, pids, sids)
    shuffle = np.random.default_rng(0).permutation(rows.size)
    shuffled = compute_opinion_map_from_cells(
        rows[shuffle].astype(np.int32), columns[shuffle].astype(np.int32), values[shuffle], pids, sids
    )
    assert np.array_equal(ordered.coordinates, shuffled.coordinates)
    assert np.array_equal(ordered.group_of, shuffled.group_of)


def test_the_participants_order_changes_nothing_in_the_sparse_route() -> None:
    """Participants named as pseudonyms are, handed over in another order: the same positions to the last bit."""
    votes = planted(PARTICIPANTS, STATEMENTS, seed=4)
    pids = [f"{(i * 7919) % 10007:05d}" for i in range(PARTICIPANTS)]  # unique, not in the rows' order
    sids = list(range(STATEMENTS))
    first = compute_opinion_map(votes, pids, sids)
    order = np.random.default_rng(5).permutation(PARTICIPANTS)
    again = compute_opinion_map(votes[order], [pids[i] for i in order], sids)
    assert np.array_equal(again.coordinates, first.coordinates[order])
    assert np.array_equal(again.group_of, first.group_of[order])


def test_a_large_map_where_everyone_votes_alike_has_no_axis() -> None:
    votes = np.where(np.random.default_rng(3).random((PARTICIPANTS, STATEMENTS)) < 0.1, 1.0, np.nan)
    found = compute_opinion_map(votes, list(range(PARTICIPANTS)), list(range(STATEMENTS)))
    assert np.all(found.coordinates == 0.0)
    assert len(found.groups) == 1


@pytest.mark.parametrize(
    ("rows", "columns", "values"),
    [
        ([0, 1], [0], [1, 1]),  # not aligned
        ([0, 2], [0, 0], [1, 1]),  # row out of range
        ([0, 1], [0, -1], [1, 1]),  # column out of range
        ([0, 1], [0, 1], [1, 2]),  # not a vote
        ([0.0, 1.0], [0, 1], [1, 1]),  # not integers
    ],
)
def test_cells_out_of_shape_are_refused(rows: list[float], columns: list[int], values: list[int]) -> None:
    with pytest.raises(ValueError):
        compute_opinion_map_from_cells(np.array(rows), np.array(columns), np.array(values), ["a", "b"], ["s", "t"])
