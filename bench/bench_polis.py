"""How closely the opinion map (consultation/opinion_map.py) reproduces Pol.is's own groups on real conversations.

The two Pol.is conversations in tests/data/polis/ (CC BY 4.0, attribution in its README.md), loaded by
tests/support/polis_data.py (latest vote wins, moderated-out comments dropped). For the participants both Pol.is
and the map cluster: ``polis_groups`` and ``our_groups``, ``ari`` (adjusted Rand index of the two assignments,
1.0 = the same partition) and ``matched_share`` (the share in the matching group after the best one-to-one
matching of labels); ``seconds`` is the median of ``--repeats`` (3) calls of ``compute_opinion_map``.
tests/test_opinion_map_polis.py asserts floors under these numbers.

One JSON line per conversation:

    {"conversation": ..., "participants": ..., "statements": ..., "votes": ..., "polis_groups": ...,
     "our_groups": ..., "ari": ..., "matched_share": ..., "seconds": ...}

Run:  cd /work/main && .venv/bin/python bench/bench_polis.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from consultation.opinion_map import OpinionMap, compute_opinion_map  # noqa: E402
from tests.support.polis_data import CONVERSATIONS, compare_groups, load_conversation  # noqa: E402


def run_one(name: str, repeats: int) -> dict[str, Any]:
    conversation = load_conversation(name)
    timings = []
    opinion_map: OpinionMap | None = None
    for _ in range(repeats):
        started = time.perf_counter()
        opinion_map = compute_opinion_map(
            conversation.votes,
            conversation.participant_ids,
            conversation.statement_ids,
            moderated_out=conversation.moderated_out,
        )
        timings.append(time.perf_counter() - started)
    assert opinion_map is not None
    comparison = compare_groups(conversation, opinion_map)
    return {
        "conversation": name,
        "participants": len(conversation.participant_ids),
        "statements": len(conversation.statement_ids),
        "votes": conversation.n_votes,
        "polis_groups": comparison.polis_groups,
        "our_groups": comparison.our_groups,
        "ari": round(comparison.ari, 4),
        "matched_share": round(comparison.matched_share, 4),
        "seconds": round(statistics.median(timings), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    for name in CONVERSATIONS:
        print(json.dumps(run_one(name, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
