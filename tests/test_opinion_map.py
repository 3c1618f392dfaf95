"""The opinion map on small matrices whose answers can be worked out by hand."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

from consultation.opinion_map import (
    NOT_CLUSTERED,
    OpinionMap,
    OpinionMapSettings,
    Stance,
    compute_opinion_map,
    prop_test,
    two_prop_test,
)

NAN = math.nan
AGREE, DISAGREE, PASS = 1.0, -1.0, 0.0


def two_blocs() -> tuple[np.ndarray, list[str], list[str]]:
    """10 people agree with A, B and disagree with C, D; 10 others the reverse; all agree with E..H.

    Everyone has 8 votes, except that each person left one of E..H unseen or passed on it in turn, so that the
    people are not all on two points.
    """
    statements = ["A", "B", "C", "D", "E", "F", "G", "H"]
    rows = []
    for i in range(20):
        first = i < 10
        row = [AGREE, AGREE, DISAGREE, DISAGREE] if first else [DISAGREE, DISAGREE, AGREE, AGREE]
        common = [AGREE] * 4
        common[i % 4] = PASS if i % 3 == 0 else AGREE
        row += common
        rows.append(row)
    return np.array(rows), [f"p{i}" for i in range(20)], statements


def test_full_agreement_makes_every_statement_an_agree_consensus_and_nothing_divisive() -> None:
    votes = np.full((12, 8), AGREE)
    result = compute_opinion_map(
        votes, [f"p{i}" for i in range(12)], list(range(8)), OpinionMapSettings(max_consensus=8)
    )

    assert {c.statement_id for c in result.consensus_agree} == set(range(8))
    assert all(c.stance is Stance.AGREE and c.n_success == 12 and c.n_trials == 12 for c in result.consensus_agree)
    assert result.consensus_disagree == ()
    assert result.divisive == ()
    assert len(result.groups) == 1
    assert {g.agree for g in result.group_informed_consensus} == {13 / 14}


def test_full_disagreement_is_a_disagree_consensus() -> None:
    votes = np.full((10, 7), DISAGREE)
    result = compute_opinion_map(votes, list(range(10)), list(range(7)))

    assert len(result.consensus_disagree) == 5  # Polis's limit of 5
    assert result.consensus_agree == ()


def test_two_opposed_blocs_make_two_groups_each_represented_by_its_own_statements() -> None:
    votes, participants, statements = two_blocs()
    result = compute_opinion_map(votes, participants, statements)

    assert len(result.groups) == 2
    members = [set(g.participant_ids) for g in result.groups]
    assert {frozenset(m) for m in members} == {
        frozenset(participants[:10]),
        frozenset(participants[10:]),
    }
    for group in result.groups:
        first_bloc = "p0" in group.participant_ids
        rep = {(r.statement_id, r.stance) for r in group.representative}
        if first_bloc:
            assert rep == {("A", Stance.AGREE), ("B", Stance.AGREE), ("C", Stance.DISAGREE), ("D", Stance.DISAGREE)}
        else:
            assert rep == {("C", Stance.AGREE), ("D", Stance.AGREE), ("A", Stance.DISAGREE), ("B", Stance.DISAGREE)}
        # Agrees are listed before disagrees, as Polis does.
        stances = [r.stance for r in group.representative]
        assert stances == sorted(stances, key=lambda s: s is Stance.DISAGREE)

    assert {d.statement_id for d in result.divisive} == {"A", "B", "C", "D"}
    assert {c.statement_id for c in result.consensus_agree} <= {"E", "F", "G", "H"}
    assert len(result.consensus_agree) == 4
    # Group-informed consensus ranks the shared statements above the split ones.
    top = [g.statement_id for g in result.group_informed_consensus[:4]]
    assert set(top) == {"E", "F", "G", "H"}
    # The blocs sit on opposite sides of the first axis.
    xs = [result.position(p)[0] for p in participants]
    assert max(xs[:10]) < 0 < min(xs[10:]) or max(xs[10:]) < 0 < min(xs[:10])


def test_a_representative_statement_carries_polis_statistics_worked_by_hand() -> None:
    votes, participants, statements = two_blocs()
    result = compute_opinion_map(votes, participants, statements)
    group = result.group_of_participant("p0")
    assert group is not None
    a = next(r for r in group.representative if r.statement_id == "A")

    # In the group 10 of 10 agree, among the rest 0 of 10.
    assert (a.n_success, a.n_trials) == (10, 10)
    assert a.p_success == pytest.approx(11 / 12)
    assert a.p_test == pytest.approx(2 * math.sqrt(11) * (11 / 11 - 0.5))
    assert a.repness == pytest.approx((11 / 12) / (1 / 12))
    # Two-proportion test with every count +1: p1 = 11/11, p2 = 1/11, pooled 12/22.
    pooled = 12 / 22
    expected_z = (1 - 1 / 11) / math.sqrt(pooled * (1 - pooled) * (2 / 11))
    assert a.repness_test == pytest.approx(expected_z)
    assert a.repness_test == pytest.approx(4.2817, abs=1e-4)


def test_z_tests_match_polis_reference_values() -> None:
    # Polis's own test (math/test/stats_test.clj): two-prop-test 15 56 24 71 is -1.518.
    assert float(two_prop_test(15, 56, 24, 71)) == pytest.approx(-1.518, abs=0.01)
    # One-proportion test: 3 of 4 agree -> 2 sqrt(5) (4/5 - 1/2).
    assert float(prop_test(3, 4)) == pytest.approx(2 * math.sqrt(5) * 0.3)
    # The pooled proportion is 1 when everyone agrees everywhere: no difference rather than a division by zero.
    assert float(two_prop_test(5, 5, 5, 5)) == 0.0


def test_participants_with_fewer_than_seven_votes_are_placed_but_not_clustered() -> None:
    votes, participants, statements = two_blocs()
    sparse = np.full((3, 8), NAN)
    sparse[0, :3] = [AGREE, AGREE, DISAGREE]
    sparse[1, :6] = [DISAGREE, DISAGREE, AGREE, AGREE, AGREE, AGREE]
    sparse[2, :] = NAN  # has not voted at all
    all_votes = np.vstack([votes, sparse])
    ids = [*participants, "s0", "s1", "s2"]

    result = compute_opinion_map(all_votes, ids, statements)

    for pid in ("s0", "s1", "s2"):
        assert result.group_of_participant(pid) is None
        assert all(np.isfinite(result.position(pid)))
        assert all(pid not in g.participant_ids for g in result.groups)
    assert list(result.vote_counts[-3:]) == [3, 6, 0]
    assert result.position("s2") == (0.0, 0.0)
    assert list(result.group_of[-3:]) == [NOT_CLUSTERED] * 3
    # Unseen cells count as the statement's mean, i.e. add nothing once centred, and a sparse voter's projection is
    # scaled up by sqrt(n_statements / n_votes) = sqrt(8 / 3).
    seen = [0, 1, 2]
    centred = sparse[0, seen] - result.statement_means[seen]
    expected = math.sqrt(8 / 3) * (result.statement_loadings[:, seen] @ centred)
    assert result.position("s0") == pytest.approx(tuple(expected))
    # E: p0 and p12 passed, the other 18 and s1 agreed: 19 agree of 21 who saw it.
    assert result.statement_means[4] == pytest.approx(19 / 21)
    # So it is placed on the first bloc's side rather than near the centre.
    s0_x = result.position("s0")[0]
    p0_x = result.position("p0")[0]
    assert s0_x * p0_x > 0
    assert len(result.groups) == 2


def _same(a: OpinionMap, b: OpinionMap) -> bool:
    return (
        np.array_equal(a.coordinates, b.coordinates)
        and np.array_equal(a.group_of, b.group_of)
        and a.groups == b.groups
        and a.consensus_agree == b.consensus_agree
        and a.divisive == b.divisive
        and a.group_informed_consensus == b.group_informed_consensus
    )


def test_the_same_votes_give_the_same_map_every_time() -> None:
    rng = np.random.default_rng(7)
    n, s = 300, 40
    taste = rng.choice([AGREE, DISAGREE], size=(3, s))
    who = rng.integers(0, 3, size=n)
    votes = np.where(rng.random((n, s)) < 0.8, taste[who], -taste[who])
    votes[rng.random((n, s)) < 0.6] = NAN
    ids = list(range(n))

    first = compute_opinion_map(votes, ids, list(range(s)))
    second = compute_opinion_map(votes.copy(), ids, list(range(s)))

    assert _same(first, second)
    assert 2 <= len(first.groups) <= 5
    assert not first.coordinates.flags.writeable


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        compute_opinion_map(np.zeros((2, 3)), ["a", "b"], [1, 2])
    with pytest.raises(ValueError, match=r"\+1"):
        compute_opinion_map(np.array([[2.0]]), ["a"], [1])
    with pytest.raises(ValueError, match="unique"):
        compute_opinion_map(np.zeros((2, 1)), ["a", "a"], [1])


def _blocs_matrix(seed: int, n: int, s: int, blocs: int, loyal: float) -> np.ndarray:
    """n people in ``blocs`` random blocs, each voting its bloc's taste with probability ``loyal``."""
    rng = np.random.default_rng(seed)
    taste = rng.choice([AGREE, DISAGREE], size=(blocs, s))
    who = rng.integers(0, blocs, size=n)
    return np.where(rng.random((n, s)) < loyal, taste[who], -taste[who])


def _red_dwarf(votes: np.ndarray) -> Any:
    """red-dwarf's Polis pipeline on the same votes, or a skip where the bench extra is not installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # red-dwarf's pydantic models warn on import, pandas on use
        polis = pytest.importorskip("reddwarf.implementations.polis")
        rows, cols = np.nonzero(~np.isnan(votes))
        records = [
            {"participant_id": int(r), "statement_id": int(c), "vote": int(votes[r, c]), "modified": 0}
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
        ]
        return polis.run_pipeline(votes=records, random_state=0)


def test_positions_and_consensus_match_red_dwarf_where_it_is_installed() -> None:
    """red-dwarf (the bench extra) re-implements Polis's math in Python: same PCA, same consensus selection."""
    n, s = 150, 25
    votes = _blocs_matrix(3, n, s, blocs=3, loyal=0.8)
    votes[np.random.default_rng(4).random((n, s)) < 0.5] = NAN
    theirs = _red_dwarf(votes)
    ours = compute_opinion_map(votes, list(range(n)), list(range(s)))

    their_xy = theirs.participants_df.loc[list(range(n)), ["x", "y"]].to_numpy()
    # Axes may be mirrored; positions are otherwise the same.
    np.testing.assert_allclose(np.abs(ours.coordinates), np.abs(their_xy), atol=1e-9)
    assert [c.statement_id for c in ours.consensus_agree] == [c["tid"] for c in theirs.consensus["agree"]]
    assert [c.statement_id for c in ours.consensus_disagree] == [c["tid"] for c in theirs.consensus["disagree"]]


def test_statement_priority_is_polis_importance_and_matches_red_dwarf_where_it_is_installed() -> None:
    """Polis shows next the statements that tell groups apart: importance = pa * (1 - pp) * (1 + extremity)."""
    votes, people, statements = two_blocs()
    ours = compute_opinion_map(votes, people, statements)
    by_id = dict(zip(statements, ours.statement_importance.tolist(), strict=True))
    # The split statements (A-D) move a participant far from the centre; the shared ones (E-H) barely.
    assert min(by_id[s] for s in "ABCD") > max(by_id[s] for s in "EFGH") * 0.6
    assert all(e > 1.0 for e in ours.statement_extremity[:4])
    # Worked by hand for A: 10 agree of 20 seen, no pass -> pa = 11/22, pp = 1/22.
    a = statements.index("A")
    expected = (11 / 22) * (1 - 1 / 22) * (1 + ours.statement_extremity[a])
    assert ours.statement_importance[a] == pytest.approx(expected)

    n, s = 120, 20
    matrix = _blocs_matrix(5, n, s, blocs=2, loyal=0.85)
    matrix[np.random.default_rng(6).random((n, s)) < 0.2] = PASS
    theirs = _red_dwarf(matrix)
    mine = compute_opinion_map(matrix, list(range(n)), list(range(s)))
    frame = theirs.statements_df.loc[list(range(s))]
    np.testing.assert_allclose(mine.statement_extremity, frame["extremity"].to_numpy(dtype=float), atol=1e-9)
    newness = 1 + 8 * np.power(2.0, -frame["n_total"].to_numpy(dtype=float) / 5)
    np.testing.assert_allclose(
        (mine.statement_importance * newness) ** 2, frame["priority"].to_numpy(dtype=float), rtol=1e-9
    )


def test_a_moderated_out_statement_counts_in_the_scaling_but_is_never_shown() -> None:
    """Polis's zero-out-columns: the column adds nothing to the axes, counts as a statement and as everyone's vote
    in sqrt(statements / votes), and the votes cast on it count toward the clustering threshold."""
    votes, pids, sids = two_blocs()
    # I: everyone agreed with it before a moderator took it out; it would otherwise be an agree consensus.
    with_out = np.column_stack([votes, np.full(len(pids), AGREE)])
    # One participant saw only 6 of the others: 7 votes with I, enough to be clustered.
    with_out[0, 4:6] = NAN

    dropped = compute_opinion_map(with_out[:, :-1], pids, sids)
    kept = compute_opinion_map(with_out, pids, [*sids, "I"], moderated_out=["I", "unknown"])

    assert kept.moderated_out == frozenset({"I"})
    assert int(dropped.group_of[0]) == NOT_CLUSTERED and int(kept.group_of[0]) != NOT_CLUSTERED
    assert kept.statement_means[-1] == 0.0 and np.allclose(kept.statement_loadings[:, -1], 0.0)
    # Same axes; each position rescaled from sqrt(8 / v) to sqrt(9 / (v + 1)) (I counts as a vote of everyone).
    seen = (~np.isnan(with_out[:, :-1])).sum(axis=1)
    ratio = np.sqrt(9 / (seen + 1)) / np.sqrt(8 / seen)
    assert np.allclose(np.abs(kept.coordinates), np.abs(dropped.coordinates) * ratio[:, None], atol=1e-12)
    shown = [
        *(c.statement_id for c in kept.consensus_agree + kept.consensus_disagree),
        *(c.statement_id for c in kept.group_informed_consensus),
        *(d.statement_id for d in kept.divisive),
        *(r.statement_id for g in kept.groups for r in g.representative),
    ]
    assert shown and "I" not in shown
    assert kept.statement_importance[-1] == 0.0
    # The votes on it are still counted per group.
    assert sum(g.agree_counts[-1] for g in kept.groups) == len(pids)
