"""How many opinion groups a live consultation's map shows: Pol.is's k-smoother.

Left alone, the number of groups would jump at every map refresh to whichever k has the best silhouette at that
moment, and people would watch groups split and merge from one hour to the next. Pol.is damps this
(compdemocracy/polis ``math/src/polismath/math/conversation.clj``, ``:group-k-smoother``): it remembers the last
best k and how many consecutive updates it has been the best, and adopts a new k only once it has been the best
``buffer`` times in a row (``:group-k-buffer``, 4); until then the map keeps the k it showed.

One difference, from Pol.is's own later fix (compdemocracy/polis#2536): when the k it kept is no longer possible
(fewer distinct positions than before), the best k of the moment is taken at once.

Pure: the caller keeps the state between maps and passes it back in (consultation.map_memory holds it with the
clusters, from one refresh of a live consultation's map to the next, and to the close's map, which is the last
update of that history as Pol.is's final groups are).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

# Pol.is's :group-k-buffer: consecutive updates a new best k must win before the map adopts it.
POLIS_GROUP_K_BUFFER = 4


@dataclass(frozen=True, slots=True)
class GroupCountState:
    """What the smoother remembers between two maps of one consultation."""

    last_k: int  # the best k of the last map, by silhouette
    last_k_count: int  # how many maps in a row last_k has been the best
    shown_k: int  # the number of groups the last map showed

    def __post_init__(self) -> None:
        if self.last_k < 1 or self.last_k_count < 1 or self.shown_k < 1:
            raise ValueError("a group count state holds positive numbers")


def smooth_group_count(
    previous: GroupCountState | None, best_k: int, possible: Collection[int], buffer: int = POLIS_GROUP_K_BUFFER
) -> GroupCountState:
    """The state after a map whose best k (by silhouette) is best_k, among the possible ks; its shown_k is the
    number of groups this map shows. previous None: the consultation's first map, which shows best_k."""
    if buffer < 1:
        raise ValueError("the buffer is at least one map")
    if best_k not in possible:
        raise ValueError("the best k must be one of the possible ones")
    if previous is None:
        return GroupCountState(last_k=best_k, last_k_count=1, shown_k=best_k)
    count = previous.last_k_count + 1 if previous.last_k == best_k else 1
    adopt = count >= buffer or previous.shown_k not in possible
    return GroupCountState(last_k=best_k, last_k_count=count, shown_k=best_k if adopt else previous.shown_k)
