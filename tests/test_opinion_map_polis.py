"""How closely the opinion map reproduces Pol.is's own groups on two real conversations (tests/data/polis/).

For the participants both Pol.is and the map cluster, the map's groups are compared with the ``group-id`` Pol.is
assigned: the number of groups, the adjusted Rand index and the share of participants in the matching group after
the best one-to-one matching of labels. Measured on 2026-12-07, with the moderated-out comments passed as
``moderated_out`` (handled as Pol.is does; dropping their columns instead gave Seattle ARI 0.584, matched 0.884):

- 15-per-hour-seattle: 339 participants, 54 statements (23 moderated out), 138 clustered by both; 2 groups
  each; ARI 0.884, matched share 0.971.
- brexit-consensus: 204 participants, 50 statements, 189 clustered by both (Pol.is also clusters 8 participants
  with fewer than 7 votes, which it keeps for continuity); 2 groups each; ARI 0.876, matched share 0.968.

The same number of groups, but not the same partition: Pol.is's groups are the result of its history (PCA
updated incrementally as votes arrived, k-means warm-started from the previous centres, base clusters carried
over, a k-smoother), while the map is computed from scratch on the final votes (consultation/opinion_map.py lists
the differences). Border participants therefore fall on either side. The floors sit a little below the measured
values: they guard against regressions, not against Pol.is.
"""

from __future__ import annotations

import csv
import math

import pytest

from consultation.opinion_map import compute_opinion_map
from tests.support.polis_data import (
    CONVERSATIONS,
    POLIS_DATA,
    best_matched_share,
    compare_groups,
    load_conversation,
)

# name: (participants compared, groups, ARI floor, matched-share floor); measured values in the module docstring.
EXPECTED = {
    "15-per-hour-seattle": (138, 2, 0.85, 0.95),
    "brexit-consensus": (189, 2, 0.85, 0.95),
}


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_the_map_finds_polis_groups_on_a_real_conversation(name: str) -> None:
    conversation = load_conversation(name)
    opinion_map = compute_opinion_map(
        conversation.votes,
        conversation.participant_ids,
        conversation.statement_ids,
        moderated_out=conversation.moderated_out,
    )

    comparison = compare_groups(conversation, opinion_map)

    compared, groups, ari_floor, matched_floor = EXPECTED[name]
    assert comparison.compared == compared
    assert comparison.polis_groups == groups
    assert comparison.our_groups == groups
    assert comparison.ari >= ari_floor
    assert comparison.matched_share >= matched_floor


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
