"""How closely the opinion map (consultation/opinion_map.py) reproduces Pol.is's own groups on real conversations,
against red-dwarf's, and how steady it is.

The four Pol.is conversations in tests/data/polis/ (CC BY 4.0, attribution in its README.md), loaded by
tests/support/polis_data.py (latest vote wins; moderated-out comments keep their columns and are passed as
``moderated_out``, as Pol.is zeroes them). For each, one JSON line:

    {"conversation": ..., "participants": ..., "statements": ..., "votes": ..., "maps": ..., "polis_groups": ...,
     "our_groups": ..., "ari": ..., "reddwarf_ari": ..., "matched_share": ..., "seed_ari_min": ...,
     "cold_ari": ..., "cold_groups": ..., "seconds": ...}

- ``ari``: the adjusted Rand index (1.0 = the same partition) between Pol.is's groups and the map's, over the
  participants both cluster; ``matched_share``: the share of them in the matching group after the best one-to-one
  matching of labels. The map is the one a live Linli consultation would show at its close had these votes been
  cast in it (polis_data.replay): a vote asks for a fresh map at most every MAP_REFRESH (5 minutes, the
  default), each map starts from the last one's clusters and its group count is smoothed, as Pol.is's updates
  do; ``maps`` is how many were computed. ``cold_ari``/``cold_groups``: the map of the final votes alone, with no
  history (what a consultation with no earlier map would show).
- ``reddwarf_ari``: red-dwarf's ``run_pipeline`` (a Python port of Pol.is's math, random_state 0) on the same
  final votes, told the same moderated-out statements.
- ``seed_ari_min``: the map has no random step; the lowest ARI between the close's map and the same map computed
  with "seeds" 1-9, where seed s shuffles the order of the participants' rows (numpy's default_rng(s)) and, for
  odd s, hands the matrix over in Fortran memory order: the two things that moved the groups of the earlier
  k-means++ clustering. Taken over both the close's map (from the memory the replay reached) and the cold map.
- ``seconds``: the whole replay.

Targets: mean ``ari`` over the four at least 0.8, ``ari`` at least ``reddwarf_ari`` on each, ``seed_ari_min`` at
least 0.99. tests/test_opinion_map_polis.py asserts floors under the cold and replayed maps.

Run:  cd /work/main && .venv/bin/python bench/bench_polis.py [--refresh-minutes 5] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from consultation.map_memory import ClusteringMemory  # noqa: E402
from consultation.opinion_map import NOT_CLUSTERED, OpinionMap, compute_opinion_map  # noqa: E402
from tests.support.polis_data import (  # noqa: E402
    CONVERSATIONS,
    PolisConversation,
    compare_groups,
    load_conversation,
    replay,
    votes_until,
)

SEEDS = range(1, 10)


def _groups(opinion_map: OpinionMap) -> dict[Any, int]:
    return {
        pid: int(group)
        for pid, group in zip(opinion_map.participant_ids, opinion_map.group_of, strict=True)
        if group != NOT_CLUSTERED
    }


def _agreement(first: OpinionMap, second: OpinionMap) -> float:
    a, b = _groups(first), _groups(second)
    both = sorted(set(a) & set(b))
    if set(a) != set(b):
        return 0.0  # a different set of clustered participants is a different map
    return float(adjusted_rand_score([a[p] for p in both], [b[p] for p in both])) if both else 1.0


def _shuffled(
    conversation: PolisConversation, seed: int, previous: ClusteringMemory | None, seen: int | None = None
) -> OpinionMap:
    """The map of the conversation's votes (the first ``seen``; all by default) with the participants' rows in the
    order of ``seed`` (0: as loaded, in id order) and, for odd seeds, in Fortran memory order."""
    votes, participants, statements = votes_until(conversation, conversation.vote_rows.size if seen is None else seen)
    order = np.random.default_rng(seed).permutation(len(participants)) if seed else np.arange(len(participants))
    matrix = votes[order]
    matrix = np.asfortranarray(matrix) if seed % 2 else np.ascontiguousarray(matrix)
    return compute_opinion_map(
        matrix,
        [participants[i] for i in order],
        statements,
        moderated_out=conversation.moderated_out,
        previous=previous,
    )


def _reddwarf_ari(conversation: PolisConversation) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # red-dwarf's pydantic models warn on import, pandas on use
        try:
            from reddwarf.implementations.polis import run_pipeline
        except ImportError:
            return None
        rows, cols = np.nonzero(~np.isnan(conversation.votes))
        records = [
            {
                "participant_id": conversation.participant_ids[r],
                "statement_id": conversation.statement_ids[c],
                "vote": int(conversation.votes[r, c]),
                "modified": 0,
            }
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
        ]
        result = run_pipeline(votes=records, mod_out_statement_ids=sorted(conversation.moderated_out), random_state=0)
    frame = result.participants_df
    theirs = {int(pid): int(group) for pid, group in frame["cluster_id"].dropna().items() if group >= 0}
    both = sorted(pid for pid in conversation.polis_group if pid in theirs)
    return float(adjusted_rand_score([conversation.polis_group[p] for p in both], [theirs[p] for p in both]))


def run_one(name: str, refresh_minutes: float) -> dict[str, Any]:
    conversation = load_conversation(name)
    started = time.perf_counter()
    replayed = replay(conversation, refresh_minutes * 60.0)
    seconds = time.perf_counter() - started
    final = replayed.final
    comparison = compare_groups(conversation, final)
    cold = _shuffled(conversation, 0, None)  # no history
    # The same votes and history in other row orders and memory layouts: the close's map, and the cold one.
    seed_aris = [_agreement(final, _shuffled(conversation, seed, replayed.before_close)) for seed in SEEDS]
    seed_aris += [_agreement(cold, _shuffled(conversation, seed, None)) for seed in SEEDS]
    return {
        "conversation": name,
        "participants": len(conversation.participant_ids),
        "statements": len(conversation.statement_ids),
        "votes": conversation.n_votes,
        "maps": replayed.maps,
        "polis_groups": comparison.polis_groups,
        "our_groups": comparison.our_groups,
        "ari": round(comparison.ari, 4),
        "reddwarf_ari": None if (theirs := _reddwarf_ari(conversation)) is None else round(theirs, 4),
        "matched_share": round(comparison.matched_share, 4),
        "seed_ari_min": round(min(seed_aris), 4),
        "cold_ari": round(compare_groups(conversation, cold).ari, 4),
        "cold_groups": len(cold.groups),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--refresh-minutes", type=float, default=5.0)
    parser.add_argument("--only", choices=CONVERSATIONS)
    args = parser.parse_args()
    if args.refresh_minutes <= 0:
        parser.error("--refresh-minutes must be positive")
    for name in [args.only] if args.only else CONVERSATIONS:
        print(json.dumps(run_one(name, args.refresh_minutes)), flush=True)


if __name__ == "__main__":
    main()
