"""How closely the opinion map reproduces Pol.is's own groups on four real conversations (tests/data/polis/).

For the participants both Pol.is and the map cluster, the map's groups are compared with the ``group-id`` Pol.is
assigned: the number of groups, the adjusted Rand index (ARI) and the share of participants in the matching group
after the best one-to-one matching of labels.

Pol.is's groups are the product of its history: each update starts from the last one's clusters and its number
of groups moves only through the k-smoother. The map does the same when it is given its memory, so the map that
compares is the one a live consultation shows at its close, replayed vote by vote with a fresh map at most every
5 minutes (tests.support.polis_data.replay; bench/bench_polis.py prints the same for all four, against
red-dwarf). Measured on 2026-12-07:

- 15-per-hour-seattle: 339 participants, 54 statements (23 moderated out), 308 maps; 2 groups each; ARI 0.884,
  matched share 0.971 (red-dwarf 0.459). From the final votes alone, with no history: ARI 1.0.
- brexit-consensus: 204 participants, 50 statements, 150 maps; 2 groups each; ARI 0.917, matched share 0.979
  (red-dwarf 0.636). With no history the final votes give 3 groups (ARI 0.55): brexit's two groups are what
  Pol.is's history, and the map's, settled on as the votes came in.
- scoop-hivemind.taxes and ssis.land-bank-farmland: replayed in the benchmark only (30 s and 15 s here); from the
  final votes alone, ARI 0.925 and 0.976 (2 groups each).

The floors sit a little below the measured values: they guard against regressions, not against Pol.is.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from consultation.opinion_map import OpinionMap, compute_opinion_map
from consultation.settings import MAP_REFRESH
from tests.support.polis_data import (
    CONVERSATIONS,
    POLIS_DATA,
    best_matched_share,
    compare_groups,
    load_conversation,
    replay,
)

# name: (participants compared, groups, ARI floor, matched-share floor) of the live map at the close.
REPLAYED = {
    "15-per-hour-seattle": (138, 2, 0.85, 0.95),
    "brexit-consensus": (189, 2, 0.88, 0.95),
}
# name: (groups, ARI floor) of the map of the final votes with no history.
COLD = {
    "15-per-hour-seattle": (2, 0.95),
    "scoop-hivemind.taxes": (2, 0.88),
    "ssis.land-bank-farmland.2rumnecbeh.2021-08-01": (2, 0.95),
}


@pytest.mark.parametrize("name", sorted(REPLAYED))
def test_the_live_map_at_the_close_finds_polis_groups_on_a_real_conversation(name: str) -> None:
    conversation = load_conversation(name)

    replayed = replay(conversation, MAP_REFRESH.default.total_seconds())
    comparison = compare_groups(conversation, replayed.final)

    compared, groups, ari_floor, matched_floor = REPLAYED[name]
    assert comparison.compared == compared
    assert comparison.polis_groups == groups
    assert comparison.our_groups == groups
    assert comparison.ari >= ari_floor
    assert comparison.matched_share >= matched_floor


@pytest.mark.parametrize("name", sorted(COLD))
def test_the_map_of_the_final_votes_alone_finds_polis_groups(name: str) -> None:
    conversation = load_conversation(name)
    opinion_map = compute_opinion_map(
        conversation.votes,
        conversation.participant_ids,
        conversation.statement_ids,
        moderated_out=conversation.moderated_out,
    )

    comparison = compare_groups(conversation, opinion_map)

    groups, ari_floor = COLD[name]
    assert comparison.our_groups == groups
    assert comparison.ari >= ari_floor


def test_the_groups_do_not_depend_on_the_order_of_the_rows_on_a_real_conversation() -> None:
    conversation = load_conversation("scoop-hivemind.taxes")
    first = compute_opinion_map(
        conversation.votes,
        conversation.participant_ids,
        conversation.statement_ids,
        moderated_out=conversation.moderated_out,
    )
    order = np.random.default_rng(3).permutation(len(conversation.participant_ids))
    shuffled = compute_opinion_map(
        np.asfortranarray(conversation.votes[order]),
        [conversation.participant_ids[i] for i in order],
        conversation.statement_ids,
        moderated_out=conversation.moderated_out,
    )

    def by_participant(opinion_map: OpinionMap) -> dict[int | str, int]:
        return dict(zip(opinion_map.participant_ids, (int(g) for g in opinion_map.group_of), strict=True))

    assert by_participant(shuffled) == by_participant(first)


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_the_votes_matrix_is_the_one_polis_exported(name: str) -> None:
    """Latest vote wins, every comment a column: the matrix equals participants-votes.csv's."""
    conversation = load_conversation(name)
    with (POLIS_DATA / name / "participants-votes.csv").open(newline="", encoding="utf-8") as handle:
        rows = {int(row["participant"]): row for row in csv.DictReader(handle)}

    assert set(rows) == set(conversation.participant_ids)
    for i, pid in enumerate(conversation.participant_ids):
        for j, sid in enumerate(conversation.statement_ids):
            cell = rows[pid][str(sid)]
            ours = float(conversation.votes[i, j])
            if cell == "":
                assert math.isnan(ours), (pid, sid)
            else:
                assert ours == float(cell), (pid, sid)


def test_moderated_out_comments_keep_their_columns_and_are_listed() -> None:
    conversation = load_conversation("15-per-hour-seattle")
    with (POLIS_DATA / "15-per-hour-seattle" / "comments.csv").open(newline="", encoding="utf-8") as handle:
        moderation = {int(row["comment-id"]): int(row["moderated"]) for row in csv.DictReader(handle)}

    assert set(conversation.statement_ids) == set(moderation)
    assert len(conversation.moderated_out) == 23
    assert conversation.moderated_out == {sid for sid, state in moderation.items() if state == -1}


def test_matched_share_takes_the_best_one_to_one_matching_of_labels() -> None:
    # Our labels are Pol.is's swapped, one participant aside.
    assert best_matched_share([0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 1]) == pytest.approx(5 / 6)
    # More groups on our side: the extra group counts as unmatched.
    assert best_matched_share([0, 0, 1, 1], [2, 2, 0, 1]) == pytest.approx(3 / 4)
    # Fewer groups on our side.
    assert best_matched_share([0, 1, 2, 2], [0, 0, 1, 1]) == pytest.approx(3 / 4)
