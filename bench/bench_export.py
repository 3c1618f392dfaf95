"""Time and memory to export a large consultation's outcome in every format (bot/exports/consultation.py).

A synthetic consultation of 20,000 participants × 500 statements, about 25 % of the cells voted (some 2.5 million
votes), with the planted three-group structure of bench/bench_opinion.py's generator, is written straight into an
SQLite database (bulk inserts, not the services: 2.5 million service calls would take half an hour), its times
spread over two weeks. Then each format is exported to a file, each in a subprocess of its own so that one format's
memory does not weigh on the next:

- ``seconds``: wall time of export_consultation, from the first query to the last byte written;
- ``peak_mb``: how far the export raised the subprocess's resident peak (``resource.getrusage``'s ``ru_maxrss``)
  above where it stood just before, with the libraries imported and the database open: what the export itself
  needs (``tracemalloc`` would see numpy's buffers too, but doubles the time of a run);
- ``maxrss_mb``: the subprocess's whole resident peak, interpreter and libraries included;
- ``mb``: the size of the file.

The CSV and the XLSX's vote sheets stream their rows (constant memory); the XLSX, PDF and JSON also compute the
outcome, whose opinion map needs the whole votes matrix (consultations.vote_matrix) in memory.

One JSON line:

    {"participants": ..., "statements": ..., "votes": ..., "build_seconds": ..., "formats": {"csv": {...}, ...}}

Run:  .venv/bin/python bench/bench_export.py [--participants 20000] [--statements 500] [--formats csv,xlsx,json,pdf]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.consultations.buttons import ExportFormat  # noqa: E402
from community.clock import SystemClock  # noqa: E402
from community.db import create_engine, session_factory  # noqa: E402
from community.keys import SiteKey  # noqa: E402
from community.migrate import upgrade  # noqa: E402
from community.models import Community  # noqa: E402
from community.roles import CommunityKind  # noqa: E402
from community.unit_of_work import UnitOfWorkFactory  # noqa: E402
from consultation.models import (  # noqa: E402
    Consultation,
    ConsultationStatus,
    Participant,
    Statement,
    StatementStatus,
    Vote,
)

# bench/bench_opinion.py's generator (the planted three-group votes), found beside this script: imported by name at
# run time, as mypy sees bench/ as loose scripts and would otherwise meet bench_opinion.py under two module names.
sys.path.insert(0, str(Path(__file__).resolve().parent))
synthetic_votes = cast(
    Callable[[int, int], tuple[NDArray[np.float64], NDArray[np.int64]]],
    importlib.import_module("bench_opinion").synthetic_votes,
)

START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
DAYS = 14
CHUNK = 50_000  # rows per INSERT batch


def _build(path: Path, participants: int, statements: int) -> int:
    """The consultation, written with bulk inserts; returns the number of votes."""

    async def migrate() -> None:
        engine = create_engine(f"sqlite:///{path}")
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    votes, _ = synthetic_votes(participants, statements)
    rng = np.random.default_rng(1)
    engine = create_sync_engine(f"sqlite:///{path}")
    with engine.begin() as db:
        db.execute(
            insert(Community.__table__),  # type: ignore[attr-defined]
            [
                {
                    "name": "示范社区",
                    "kind": CommunityKind.NEIGHBOURHOOD,
                    "timezone": "Asia/Shanghai",
                    "default_language": "zh_Hans",
                    "created_at": START,
                }
            ],
        )
        db.execute(
            insert(Consultation.__table__),  # type: ignore[attr-defined]
            [
                {
                    "community_id": 1,
                    "title": "大型议事协商（基准测试）",
                    "background": "合成数据。",
                    "language": "zh_Hans",
                    "audience": "{}",
                    "eligibility": "residents",
                    "opens_at": START,
                    "closes_at": START + timedelta(days=DAYS),
                    "allow_statements": True,
                    "moderated": True,
                    "status": ConsultationStatus.CLOSED,
                    "created_at": START,
                    "opened_at": START,
                    "closed_at": START + timedelta(days=DAYS),
                }
            ],
        )
        db.execute(
            insert(Statement.__table__),  # type: ignore[attr-defined]
            [
                {
                    "consultation_id": 1,
                    "text": f"第 {j + 1} 条观点：小区公共空间应当如何使用？",
                    "normalized": f"s{j}",
                    "status": StatementStatus.APPROVED,
                    "created_at": START,
                }
                for j in range(statements)
            ],
        )
        joined = [START + timedelta(seconds=int(s)) for s in rng.integers(0, DAYS * 86_400 // 2, size=participants)]
        db.execute(
            insert(Participant.__table__),  # type: ignore[attr-defined]
            [
                {"consultation_id": 1, "pseudonym": secrets.token_hex(8), "created_at": joined[i]}
                for i in range(participants)
            ],
        )
        rows, cols = np.nonzero(~np.isnan(votes))
        values = votes[rows, cols].astype(np.int64)
        later = rng.integers(0, DAYS * 86_400 // 2, size=rows.size)
        for start in range(0, rows.size, CHUNK):
            stop = min(start + CHUNK, rows.size)
            db.execute(
                insert(Vote.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "participant_id": int(r) + 1,
                        "statement_id": int(c) + 1,
                        "value": int(v),
                        "at": joined[r] + timedelta(seconds=int(s)),
                    }
                    for r, c, v, s in zip(
                        rows[start:stop], cols[start:stop], values[start:stop], later[start:stop], strict=True
                    )
                ],
            )
    engine.dispose()
    return int(rows.size)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _export_one(path: Path, fmt: ExportFormat, out: Path) -> dict[str, Any]:
    """One format, in this process: seconds, allocation peak and resident peak."""
    from bot.exports.consultation import export_consultation
    from bot.rendering import Localizers
    from i18n import Catalogs

    localizer = Localizers(Catalogs()).get("zh_Hans", "Asia/Shanghai")
    if fmt == ExportFormat.PDF:
        # Imported before timing, as a running bot would have them after its first report.
        import bot.exports.charts
        import bot.exports.pdf  # noqa: F401

    async def run() -> tuple[float, float]:
        engine = create_engine(f"sqlite:///{path}")
        uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())
        try:
            with out.open("wb") as stream:
                async with uows() as uow:
                    await uow.session.get(Community, 1)  # the connection open before measuring
                    before = _maxrss_mb()
                    start = time.perf_counter()
                    await export_consultation(uow, None, 1, fmt, localizer, stream)
                    return time.perf_counter() - start, before
        finally:
            await engine.dispose()

    seconds, before = asyncio.run(run())
    after = _maxrss_mb()
    return {
        "seconds": round(seconds, 2),
        "peak_mb": round(after - before, 1),
        "maxrss_mb": round(after, 1),
        "mb": round(out.stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--statements", type=int, default=500)
    parser.add_argument("--formats", default="csv,xlsx,json,pdf")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # internal: DATABASE FORMAT OUT
    args = parser.parse_args()

    if args.one:
        database, fmt, out = args.one
        print(json.dumps(_export_one(Path(database), ExportFormat(fmt), Path(out))), flush=True)
        return

    with tempfile.TemporaryDirectory(prefix="linli-bench-export-") as folder:
        database = Path(folder) / "bench.sqlite3"
        start = time.perf_counter()
        votes = _build(database, args.participants, args.statements)
        line: dict[str, Any] = {
            "participants": args.participants,
            "statements": args.statements,
            "votes": votes,
            "build_seconds": round(time.perf_counter() - start, 1),
            "formats": {},
        }
        for fmt in args.formats.split(","):
            out = Path(folder) / f"outcome.{fmt}"
            command = [sys.executable, __file__, "--one", str(database), fmt, str(out)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            line["formats"][fmt] = json.loads(done.stdout.strip().splitlines()[-1])
            out.unlink(missing_ok=True)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
