"""Real Pol.is conversations (tests/data/polis/, CC BY 4.0, see its README.md) as opinion-map input.

The votes matrix is built as Pol.is builds it: the latest vote of a participant on a comment wins (by timestamp),
unseen cells are NaN. Participants are every voter in votes.csv, in id order; statements every comment with a
vote, in id order (Pol.is's export leaves out the others too). Comments moderated out (``moderated == -1`` in
comments.csv) keep their columns and are listed in ``moderated_out``, for ``compute_opinion_map(...,
moderated_out=...)`` to treat as Pol.is does.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import adjusted_rand_score

from consultation.opinion_map import (
    NOT_CLUSTERED,
    ClusteringMemory,
    OpinionMap,
    OpinionMapSettings,
    compute_opinion_map,
)

POLIS_DATA = Path(__file__).resolve().parent.parent / "data" / "polis"
CONVERSATIONS = (
    "15-per-hour-seattle",
    "brexit-consensus",
    "scoop-hivemind.taxes",
    "ssis.land-bank-farmland.2rumnecbeh.2021-08-01",
)
MODERATED_OUT = -1


@dataclass(frozen=True, slots=True)
class PolisConversation:
    name: str
    # (participants, statements): +1 agree, -1 disagree, 0 pass, NaN unseen.
    votes: NDArray[np.float64]
    participant_ids: tuple[int, ...]
    statement_ids: tuple[int, ...]
    # The comments moderated out, a subset of statement_ids.
    moderated_out: frozenset[int]
    # The group Pol.is assigned, for the participants it clustered.
    polis_group: dict[int, int]
    # Every vote that counts in ``votes`` (the latest of a participant on a statement), oldest first: when it was
    # cast (seconds), its row and column in ``votes``. For replaying the conversation as it grew (replay()).
    vote_seconds: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    vote_rows: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    vote_columns: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def n_votes(self) -> int:
        return int((~np.isnan(self.votes)).sum())


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_conversation(name: str, root: Path = POLIS_DATA) -> PolisConversation:
    folder = root / name
    moderation = {int(row["comment-id"]): int(row["moderated"]) for row in _rows(folder / "comments.csv")}

    # (voter, comment) -> (timestamp, vote); a later timestamp replaces an earlier vote.
    latest: dict[tuple[int, int], tuple[int, int]] = {}
    voters: set[int] = set()
    for row in _rows(folder / "votes.csv"):
        voter, comment = int(row["voter-id"]), int(row["comment-id"])
        voters.add(voter)
        stamp, vote = int(row["timestamp"]), int(row["vote"])
        previous = latest.get((voter, comment))
        if previous is None or stamp >= previous[0]:
            latest[(voter, comment)] = (stamp, vote)

    participant_ids = tuple(sorted(voters))
    # Pol.is's rating matrix has a column for each comment with a vote; one nobody voted on is no column, and does
    # not count among the statements that scale a sparse voter.
    statement_ids = tuple(sorted({comment for _, comment in latest} & set(moderation)))
    column = {sid: j for j, sid in enumerate(statement_ids)}
    row_of = {pid: i for i, pid in enumerate(participant_ids)}
    votes = np.full((len(participant_ids), len(statement_ids)), np.nan, dtype=np.float64)
    events: list[tuple[int, int, int]] = []
    for (voter, comment), (stamp, vote) in latest.items():
        if comment in column:
            votes[row_of[voter], column[comment]] = float(vote)
            events.append((stamp, row_of[voter], column[comment]))
    events.sort()
    timeline = np.array(events, dtype=np.int64).reshape(-1, 3)

    polis_group = {
        int(row["participant"]): int(row["group-id"])
        for row in _rows(folder / "participants-votes.csv")
        if row["group-id"].strip()
    }
    return PolisConversation(
        name=name,
        votes=votes,
        participant_ids=participant_ids,
        statement_ids=statement_ids,
        moderated_out=frozenset(sid for sid in statement_ids if moderation[sid] == MODERATED_OUT),
        polis_group=polis_group,
        # Pol.is's export stamps votes in milliseconds.
        vote_seconds=timeline[:, 0] / 1000.0,
        vote_rows=timeline[:, 1],
        vote_columns=timeline[:, 2],
    )


@dataclass(frozen=True, slots=True)
class Replayed:
    """The map at the close of a replayed conversation, what the map before it remembered, and how many maps."""

    final: OpinionMap
    before_close: ClusteringMemory | None
    maps: int


def votes_until(conversation: PolisConversation, seen: int) -> tuple[NDArray[np.float64], list[int], list[int]]:
    """The matrix of the first ``seen`` votes (oldest first): the participants who had voted, in id order, and the
    statements voted on, in id order."""
    rows = conversation.vote_rows[:seen]
    columns = conversation.vote_columns[:seen]
    row_ids = np.unique(rows)
    column_ids = np.unique(columns)
    votes = np.full((row_ids.size, column_ids.size), np.nan, dtype=np.float64)
    votes[np.searchsorted(row_ids, rows), np.searchsorted(column_ids, columns)] = conversation.votes[rows, columns]
    return (
        votes,
        [conversation.participant_ids[r] for r in row_ids.tolist()],
        [conversation.statement_ids[c] for c in column_ids.tolist()],
    )


def replay(
    conversation: PolisConversation,
    refresh_seconds: float,
    settings: OpinionMapSettings | None = None,
) -> Replayed:
    """The map a live Linli consultation would show at its close, had these votes been cast in it: as in
    consultation.consultations.record_vote, a vote asks for a fresh map when the last was asked for at least
    ``refresh_seconds`` before, and that map sees every vote cast until then; the group count of each map is
    smoothed with the previous ones' (consultation.group_count); the close computes one last map of every vote.
    Each map has the participants who had voted (in id order) and the statements voted on so far. A vote that a
    later one replaced is not replayed: the export keeps only the latest."""
    times = conversation.vote_seconds
    asked: list[int] = []  # for each map, how many votes (oldest first) it sees
    last_asked: float | None = None
    for i, moment in enumerate(times.tolist()):
        if last_asked is None or moment - last_asked >= refresh_seconds:
            last_asked = moment
            asked.append(i + 1)
    asked.append(times.size)
    memory: ClusteringMemory | None = None
    before: ClusteringMemory | None = None
    opinion_map: OpinionMap | None = None
    for seen in asked:
        votes, participants, statements = votes_until(conversation, seen)
        opinion_map = compute_opinion_map(
            votes, participants, statements, settings, moderated_out=conversation.moderated_out, previous=memory
        )
        before, memory = memory, opinion_map.memory or memory
    assert opinion_map is not None
    return Replayed(opinion_map, before, len(asked))


@dataclass(frozen=True, slots=True)
class GroupComparison:
    """Our groups against Pol.is's, over the participants both clustered."""

    compared: int
    polis_groups: int
    our_groups: int
    ari: float
    matched_share: float


def best_matched_share(polis_labels: Sequence[int], our_labels: Sequence[int]) -> float:
    """The share of participants whose group agrees once our labels are mapped one-to-one onto Pol.is's in the best
    way (exhaustive over permutations: Pol.is and the map both have at most 5 groups)."""
    if not polis_labels:
        return 0.0
    pairs = Counter(zip(polis_labels, our_labels, strict=True))
    polis = sorted(set(polis_labels))
    ours = sorted(set(our_labels))
    best = 0
    if len(ours) <= len(polis):
        for targets in itertools.permutations(polis, len(ours)):
            best = max(best, sum(pairs[(t, o)] for o, t in zip(ours, targets, strict=True)))
    else:
        for sources in itertools.permutations(ours, len(polis)):
            best = max(best, sum(pairs[(p, s)] for p, s in zip(polis, sources, strict=True)))
    return best / len(polis_labels)


def compare_groups(conversation: PolisConversation, opinion_map: OpinionMap) -> GroupComparison:
    ours = {
        pid: int(group)
        for pid, group in zip(opinion_map.participant_ids, opinion_map.group_of, strict=True)
        if group != NOT_CLUSTERED
    }
    both = sorted(pid for pid in conversation.polis_group if pid in ours)
    polis_labels = [conversation.polis_group[pid] for pid in both]
    our_labels = [ours[pid] for pid in both]
    return GroupComparison(
        compared=len(both),
        polis_groups=len(set(conversation.polis_group.values())),
        our_groups=len(opinion_map.groups),
        ari=float(adjusted_rand_score(polis_labels, our_labels)),
        matched_share=best_matched_share(polis_labels, our_labels),
    )
