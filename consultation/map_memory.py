"""What a live consultation's opinion map remembers from one refresh to the next, as Pol.is does.

Pol.is does not compute its groups from scratch at each update: its k-means starts from the last update's clusters
(compdemocracy/polis ``math/src/polismath/math/clusters.clj``, ``clean-start-clusters``), for the base clusters of
participants and for each k's grouping of the base clusters, and the number of groups it shows moves only through
its k-smoother (consultation.group_count). Without that history the groups of a live consultation would reshuffle
at every refresh, and on real conversations the groups at the close would often not be the ones Pol.is shows
(bench/bench_polis.py replays four).

The memory is plain values, stored as JSON between refreshes (consultation.models.MapMemory, one row per
consultation): participants appear by the pseudonym the votes carry, never by person. A person who erases their
data in an open consultation loses their pseudonym's participant row (consultation.erasure), so the pseudonym
kept here leads to no one; and since every map remembers only the participants with votes, it is gone from the
memory at the next map, the close's at the latest. No numpy here: the service reads and writes it inside
conversations, where numpy is not loaded (tests/test_startup_imports.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from consultation.group_count import GroupCountState

ParticipantId: TypeAlias = int | str


@dataclass(frozen=True, slots=True)
class Clusters:
    """A clustering by ids: ``members[i]`` is in the cluster numbered ``labels[i]``."""

    members: tuple[ParticipantId, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.members) != len(self.labels):
            raise ValueError("one label per member")


@dataclass(frozen=True, slots=True)
class ClusteringMemory:
    """The base clusters (which participant is in which), each k's group clustering (which base cluster is in
    which group) and the group count's smoother, as the last map left them."""

    base: Clusters
    groups: tuple[tuple[int, Clusters], ...]  # (k, base cluster id -> group id), k ascending
    group_count: GroupCountState

    def groups_for(self, k: int) -> Clusters | None:
        return next((clusters for key, clusters in self.groups if key == k), None)


VERSION = 1


def to_json(memory: ClusteringMemory) -> str:
    state = memory.group_count
    return json.dumps(
        {
            "version": VERSION,
            "base": _clusters(memory.base),
            "groups": [[k, _clusters(clusters)] for k, clusters in memory.groups],
            "group_count": [state.last_k, state.last_k_count, state.shown_k],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def from_json(text: str) -> ClusteringMemory | None:
    """The memory stored by to_json; None for one of another version or malformed (the next map starts afresh,
    as Pol.is does when it has no history)."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return None
        last_k, last_k_count, shown_k = (int(x) for x in data["group_count"])
        return ClusteringMemory(
            base=_read_clusters(data["base"]),
            groups=tuple((int(k), _read_clusters(clusters)) for k, clusters in data["groups"]),
            group_count=GroupCountState(last_k=last_k, last_k_count=last_k_count, shown_k=shown_k),
        )
    except (ValueError, TypeError, KeyError):
        return None


def _clusters(clusters: Clusters) -> dict[str, Any]:
    return {"members": list(clusters.members), "labels": list(clusters.labels)}


def _read_clusters(data: Any) -> Clusters:
    members = data["members"]
    if not all(isinstance(m, int | str) and not isinstance(m, bool) for m in members):
        raise ValueError("a member is an id")
    return Clusters(members=tuple(members), labels=tuple(int(x) for x in data["labels"]))
