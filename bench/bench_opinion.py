"""Time and memory to compute a consultation's opinion map (consultation/opinion_map.py), and red-dwarf's for scale.

Synthetic consultations of 1,000 × 100, 5,000 × 300 and 20,000 × 500 (participants × statements) with a planted
structure of 3 groups: each group has a random stance on every statement, a member votes it with probability 0.7,
the opposite with 0.15 and passes with 0.15, and about 25 % of the cells are voted (the rest unseen, NaN).

Each size runs in a subprocess of its own, so that one size's memory does not weigh on the next. In it:

- ``seconds``: the median of ``--repeats`` (3) calls of ``compute_opinion_map`` on the same matrix (the matrix is
  built before timing; its generation is not timed).
- ``peak_mb``: the peak of memory allocated during one further call, measured with ``tracemalloc`` (numpy reports
  its array buffers to it), above what was allocated before the call: so it excludes the input matrix and the
  interpreter, and counts every temporary the computation makes. ``maxrss_mb`` is the subprocess's whole
  resident peak (``resource.getrusage``), interpreter, libraries and input included, before red-dwarf runs.
- ``groups`` found, and ``planted_ari``: the adjusted Rand index of the clustered participants' groups against
  the planted ones (1.0 = the same partition), a check that the map finds the structure it is timed on.
- ``reddwarf_seconds`` (where red-dwarf is installed, ``pip install -e '.[bench]'``): red-dwarf's
  ``run_pipeline`` (PCA + k-means, ``random_state`` fixed) on the same votes, passed as the list of vote records it
  takes; building that list is not timed. ``ratio`` is reddwarf_seconds / seconds. ``--reddwarf-max-cells``
  skips red-dwarf above a size.

One JSON line per size:

    {"participants": ..., "statements": ..., "votes": ..., "seconds": ..., "peak_mb": ..., "reddwarf_seconds": ...}

Targets: 5,000 × 300 under 1 s, 20,000 × 500 under 4 s, peak under 500 MB.

Run:  cd /work/main && .venv/bin/python bench/bench_opinion.py [--sizes 1000x100,5000x300,20000x500] [--no-reddwarf]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from consultation.opinion_map import compute_opinion_map  # noqa: E402

DEFAULT_SIZES = "1000x100,5000x300,20000x500"


def synthetic_votes(participants: int, statements: int, seed: int = 0) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The votes matrix and each participant's planted group."""
    rng = np.random.default_rng(seed)
    stances = rng.choice(np.array([1.0, -1.0]), size=(3, statements))
    group = rng.integers(0, 3, size=participants)
    votes = np.empty((participants, statements), dtype=np.float64)
    # In blocks of rows, so that generating the input does not dominate the process's resident peak.
    for start in range(0, participants, 2_000):
        rows = slice(start, min(start + 2_000, participants))
        draw = rng.random((rows.stop - rows.start, statements))
        planted = stances[group[rows]]
        block = np.where(draw < 0.7, planted, np.where(draw < 0.85, -planted, 0.0))
        block[rng.random(block.shape) >= 0.25] = np.nan
        votes[rows] = block
    return votes, group


def reddwarf_seconds(votes: NDArray[np.float64]) -> float:
    with warnings.catch_warnings():
        # red-dwarf's pydantic models warn on import; nothing to do with this benchmark.
        warnings.simplefilter("ignore")
        from reddwarf.implementations.polis import run_pipeline

    rows, cols = np.nonzero(~np.isnan(votes))
    records = [
        {"participant_id": int(r), "statement_id": int(c), "vote": int(votes[r, c]), "modified": 0}
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
    ]
    start = time.perf_counter()
    run_pipeline(votes=records, random_state=0)
    return time.perf_counter() - start


def run_one(participants: int, statements: int, repeats: int, with_reddwarf: bool) -> dict[str, Any]:
    votes, planted = synthetic_votes(participants, statements)
    pids = list(range(participants))
    sids = list(range(statements))
    compute_opinion_map(votes, pids, sids)  # warm-up: imports, BLAS threads
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = compute_opinion_map(votes, pids, sids)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    baseline, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    compute_opinion_map(votes, pids, sids)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    clustered = result.group_of >= 0
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    line: dict[str, Any] = {
        "participants": participants,
        "statements": statements,
        "votes": int(np.count_nonzero(~np.isnan(votes))),
        "seconds": round(statistics.median(times), 3),
        "peak_mb": round((peak - baseline) / 2**20, 1),
        "maxrss_mb": round(maxrss_mb, 1),
        "groups": len(result.groups),
        # Agreement of the clustered participants' groups with the planted ones (1.0 = the same partition).
        "planted_ari": round(float(adjusted_rand_score(planted[clustered], result.group_of[clustered])), 3),
    }
    if with_reddwarf:
        seconds = reddwarf_seconds(votes)
        line["reddwarf_seconds"] = round(seconds, 3)
        line["ratio"] = round(seconds / statistics.median(times), 1)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="participants x statements, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reddwarf", action="store_true", help="skip red-dwarf even where it is installed")
    parser.add_argument("--reddwarf-max-cells", type=int, default=20_000 * 500)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one size in this process
    args = parser.parse_args()

    if args.one:
        participants, statements = (int(x) for x in args.one.split("x"))
        with_reddwarf = not args.no_reddwarf and importlib.util.find_spec("reddwarf") is not None
        with_reddwarf = with_reddwarf and participants * statements <= args.reddwarf_max_cells
        print(json.dumps(run_one(participants, statements, args.repeats, with_reddwarf)), flush=True)
        return

    for size in args.sizes.split(","):
        command = [sys.executable, __file__, "--one", size, "--repeats", str(args.repeats)]
        command += ["--reddwarf-max-cells", str(args.reddwarf_max_cells)]
        if args.no_reddwarf:
            command.append("--no-reddwarf")
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
