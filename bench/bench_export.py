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

Then, for each format, the same export as the bot makes it when a committee member taps Export (bot.exports.jobs:
the request recorded, the job run in the bot's process, the file made by the worker in a process of its own) while
residents vote in another consultation of the same database through the Conversation (the full handler pipeline,
one unit of work per tap, the SQLite gate included):

- ``concurrent_p99_ms`` (and ``concurrent_p50_ms``, ``concurrent_max_ms``): the reply time of those votes, from
  the moment each tap was due to its replies (so a loop held by something else counts too), while the export
  runs (target: p99 under 250 ms on SQLite);
- ``concurrent_votes``: how many votes were measured; ``concurrent_export_seconds``: the export's wall time there;
- ``concurrent_status``: how the request ended (``sent``, or ``too_large`` for a file over Telegram's 50 MB).

``VOTERS`` residents tap at once, each waiting ``THINK_SECONDS`` between taps (a busy evening, not a flood).

Then, the same way, the large consultation's opinion map as the jobs' process computes it (bot.consultations.jobs,
its production worker: a process of its own reading on its own connection) while the residents vote, one line per
job (``--maps``): ``consultation.map``, the refresh a vote asks for while the consultation is open (it is set open
for it; ``concurrent_status`` says how many priorities were stored), and ``consultation.outcome``, the close's
outcome queued to its participants. ``concurrent_job_seconds`` is the job's wall time.

One JSON line per format, then one per map job:

    {"format": "csv", "participants": ..., "statements": ..., "votes": ..., "build_seconds": ...,
     "seconds": ..., "peak_mb": ..., "maxrss_mb": ..., "mb": ..., "concurrent_p99_ms": ..., ...}
    {"job": "consultation.map", "participants": ..., "concurrent_p99_ms": ..., "concurrent_job_seconds": ..., ...}

Run:  .venv/bin/python bench/bench_export.py [--participants 20000] [--statements 500] [--formats csv,xlsx,json,pdf]
      [--maps consultation.map,consultation.outcome]
      [--database PATH]  (a database this script built before, copied rather than built again)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import func, insert, update
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.app import build_router  # noqa: E402
from bot.consultations.buttons import ExportFormat  # noqa: E402
from bot.consultations.cards import CastVote, Choice  # noqa: E402
from bot.consultations.jobs import ConsultationJobs  # noqa: E402
from bot.context import BotInfo  # noqa: E402
from bot.conversation import Conversation  # noqa: E402
from bot.events import ButtonPress, Event, Sender  # noqa: E402
from bot.exports.jobs import ExportJobs  # noqa: E402
from bot.exports.worker import CONSULTATION_OUTCOME  # noqa: E402
from bot.rendering import Localizers  # noqa: E402
from bot.worker import Worker  # noqa: E402
from community import exports  # noqa: E402
from community.clock import SystemClock  # noqa: E402
from community.communities import add_member, household  # noqa: E402
from community.db import create_engine, session_factory  # noqa: E402
from community.export_models import ExportRequest  # noqa: E402
from community.exports import ExportJob  # noqa: E402
from community.keys import SiteKey  # noqa: E402
from community.migrate import upgrade  # noqa: E402
from community.models import Community  # noqa: E402
from community.people import identify  # noqa: E402
from community.roles import CommunityKind, Role  # noqa: E402
from community.unit_of_work import UnitOfWorkFactory  # noqa: E402
from consultation import reach  # noqa: E402
from consultation.consultations import (  # noqa: E402
    MAP,
    OUTCOME,
    ConsultationDraft,
    ConsultationJob,
    add_statement,
    create,
    open_consultation,
)
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

from i18n import Catalogs  # noqa: E402

START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
DAYS = 14
CHUNK = 50_000  # rows per INSERT batch
VOTERS = 8  # residents voting at once in the other consultation while an export runs
THINK_SECONDS = 0.05  # each one's pause between two taps
OTHER_STATEMENTS = 40  # statements of the other consultation
OTHER_VOTERS = 200  # its residents (who vote, again and again, while the exports run)
WORKER_KEY = "worker"  # the community worker who asks for the exports and runs the other consultation


def _migrate(path: Path) -> None:
    async def migrate() -> None:
        engine = create_engine(f"sqlite:///{path}")
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())


def _build(path: Path, participants: int, statements: int) -> int:
    """The consultation, written with bulk inserts; returns the number of votes."""

    _migrate(path)
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


async def _other_consultation(path: Path) -> None:
    """A community worker, OTHER_VOTERS residents of the same community and an open consultation they vote in,
    made through the services."""
    engine = create_engine(f"sqlite:///{path}")
    uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())
    try:
        async with uows() as uow:
            keys = [WORKER_KEY, *(f"r{n}" for n in range(OTHER_VOTERS))]
            for n, key in enumerate(keys):
                person = await identify(uow, channel="console", external_id=key, chat_id=key, display_name=key)
                home = await household(uow, 1, f"{n % 20 + 1}号楼 {n + 1}01")
                roles = {Role.COMMUNITY_WORKER} if key == WORKER_KEY else {Role.RESIDENT}
                await add_member(
                    uow, person_id=person.person_id, community_id=1, roles=roles, household_id=home.id, reason="bench"
                )
            await uow.commit()
        async with uows() as uow:
            worker = (
                await identify(
                    uow, channel="console", external_id=WORKER_KEY, chat_id=WORKER_KEY, display_name=WORKER_KEY
                )
            ).person_id
            now = uow.clock.now()
            draft = ConsultationDraft(
                community_id=1,
                title="东门路灯（基准测试）",
                background="合成数据。",
                language="zh_Hans",
                opens_at=now + timedelta(hours=1),
                closes_at=now + timedelta(days=30),
            )
            consultation = await create(uow, worker, draft)
            assert consultation.id is not None
            await open_consultation(uow, consultation.id, worker)
            for j in range(OTHER_STATEMENTS):
                await add_statement(uow, worker, consultation.id, f"第 {j + 1} 条：东门应装路灯。")
            await uow.commit()
    finally:
        await engine.dispose()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


Work = Callable[[UnitOfWorkFactory, Path], Awaitable[str]]


def _while_residents_vote(path: Path, work: Work) -> dict[str, Any]:
    """Run ``work`` (given the app's units of work and the database; it returns how it ended) in the bot's process
    while VOTERS residents vote in the other consultation through the Conversation; their reply times."""

    async def run() -> dict[str, Any]:
        url = f"sqlite:///{path}"
        engine = create_engine(url)
        uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())
        localizers = Localizers(Catalogs())
        conversation = Conversation(uows, build_router(), localizers, BotInfo())
        try:
            async with uows() as uow:
                statement_ids = [
                    sid
                    for sid in (
                        await uow.session.exec(
                            select(Statement.id).where(Statement.consultation_id != 1).order_by(col(Statement.id))
                        )
                    ).all()
                    if sid is not None
                ]

            def event(voter: int, tap: int) -> Event:
                key = f"r{voter}"
                statement = statement_ids[(voter + tap) % len(statement_ids)]
                choice = (Choice.AGREE, Choice.DISAGREE, Choice.PASS)[(voter + tap) % 3]
                return Event(
                    Sender("console", key, key, key, "zh_Hans"),
                    ButtonPress(CastVote(statement, choice).pack(), message_id="1", callback_id=str(tap)),
                )

            for voter in range(VOTERS):  # warm up: each voter's first tap (joining the consultation)
                await conversation.handle(event(voter, 0))
            latencies: list[float] = []
            done = asyncio.Event()

            async def resident(index: int, due: float) -> None:
                # Timed from when the tap is due, not from when this task gets the loop: an event loop held by
                # something else (work on it) delays the start of a reply too, and that counts. Each resident taps
                # at least once, due when the work starts: if the work held the loop throughout, that tap's wait
                # is the whole of it.
                tap = 1
                while True:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    voter = index + VOTERS * (tap % (OTHER_VOTERS // VOTERS))
                    await conversation.handle(event(voter, tap))
                    answered = time.perf_counter()
                    latencies.append((answered - due) * 1000)
                    if done.is_set():
                        return
                    tap += 1
                    due = answered + THINK_SECONDS

            began = time.perf_counter()
            residents = [asyncio.create_task(resident(index, began)) for index in range(VOTERS)]
            status = await work(uows, path)
            seconds = time.perf_counter() - began
            done.set()
            await asyncio.gather(*residents)
            async with uows() as uow:
                # Votes stored in the other consultation: the taps were answered by votes, not refusals.
                recorded = (
                    await uow.session.exec(
                        select(func.count())
                        .select_from(Vote)
                        .join(Statement, col(Statement.id) == col(Vote.statement_id))
                        .where(col(Statement.consultation_id) != 1)
                    )
                ).one()
            return {
                "concurrent_p99_ms": round(_percentile(latencies, 0.99), 1),
                "concurrent_p50_ms": round(_percentile(latencies, 0.50), 1),
                "concurrent_max_ms": round(max(latencies), 1),
                "concurrent_mean_ms": round(statistics.fmean(latencies), 1),
                "concurrent_votes": len(latencies),
                "concurrent_job_seconds": round(seconds, 2),
                "concurrent_status": status,
                "other_consultation_votes": int(recorded),
            }
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _concurrent(path: Path, fmt: ExportFormat, folder: Path) -> dict[str, Any]:
    """The export as the bot makes it (bot.exports.jobs, its production worker) while VOTERS residents vote."""

    async def export(uows: UnitOfWorkFactory, path: Path) -> str:
        jobs = ExportJobs(uows, Localizers(Catalogs()), folder / "exports", worker=Worker())
        async with uows() as uow:
            worker = (
                await identify(
                    uow, channel="console", external_id=WORKER_KEY, chat_id=WORKER_KEY, display_name=WORKER_KEY
                )
            ).person_id
            recipient = exports.Recipient(worker, None, "console", WORKER_KEY, "zh_Hans")
            asked = await exports.ask(uow, CONSULTATION_OUTCOME, 1, fmt.value, recipient)
            await uow.commit()
        request_id = asked.request.id
        assert request_id is not None
        await jobs.produce(ExportJob(request_id))
        async with uows() as uow:
            request = await uow.session.get(ExportRequest, request_id)
            assert request is not None
            return request.status.value

    line = _while_residents_vote(path, export)
    line["concurrent_export_seconds"] = line.pop("concurrent_job_seconds")
    return line


def _set_status(path: Path, status: ConsultationStatus) -> None:
    engine = create_sync_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as db:
            db.execute(
                update(Consultation.__table__)  # type: ignore[attr-defined]
                .where(Consultation.__table__.c.id == 1)  # type: ignore[attr-defined]
                .values(status=status)
            )
    finally:
        engine.dispose()


def _concurrent_map(path: Path, job: str) -> dict[str, Any]:
    """The large consultation's opinion map as the jobs' process computes it (bot.consultations.jobs, its
    production worker) while VOTERS residents vote: the refresh a vote asks for while it is open
    (consultation.map: the priorities stored), or the close's outcome (consultation.outcome: queued to its
    participants)."""
    _set_status(path, ConsultationStatus.OPEN if job == MAP.name else ConsultationStatus.CLOSED)

    async def compute(uows: UnitOfWorkFactory, _: Path) -> str:
        jobs = ConsultationJobs(uows, Worker())
        if job == MAP.name:
            await jobs.map(ConsultationJob(1))
            async with uows() as uow:
                stored = (
                    await uow.session.exec(
                        select(func.count()).where(Statement.consultation_id == 1, col(Statement.priority).is_not(None))
                    )
                ).one()
            return f"{stored} priorities stored"
        await jobs.outcome(ConsultationJob(1))
        async with uows() as uow:
            return "outcome queued" if await reach.outcome_sent(uow, 1) else "outcome not queued"

    try:
        return _while_residents_vote(path, compute)
    finally:
        _set_status(path, ConsultationStatus.CLOSED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--statements", type=int, default=500)
    parser.add_argument("--formats", default="csv,xlsx,json,pdf")
    parser.add_argument("--database", type=Path, help="a database this script built before (copied, not changed)")
    parser.add_argument(
        "--maps", default=f"{MAP.name},{OUTCOME.name}", help="the map jobs to time while residents vote ('' for none)"
    )
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # internal: DATABASE FORMAT OUT
    parser.add_argument("--concurrent", nargs=3, help=argparse.SUPPRESS)  # internal: DATABASE FORMAT FOLDER
    parser.add_argument("--concurrent-map", nargs=2, help=argparse.SUPPRESS)  # internal: DATABASE JOB
    args = parser.parse_args()

    if args.one:
        database, fmt, out = args.one
        print(json.dumps(_export_one(Path(database), ExportFormat(fmt), Path(out))), flush=True)
        return
    if args.concurrent:
        database, fmt, folder = args.concurrent
        print(json.dumps(_concurrent(Path(database), ExportFormat(fmt), Path(folder))), flush=True)
        return
    if args.concurrent_map:
        database, job = args.concurrent_map
        print(json.dumps(_concurrent_map(Path(database), job)), flush=True)
        return

    with tempfile.TemporaryDirectory(prefix="linli-bench-export-") as folder:
        database = Path(folder) / "bench.sqlite3"
        start = time.perf_counter()
        if args.database is not None:
            shutil.copyfile(args.database, database)
            _migrate(database)  # built by an older checkout, perhaps
            votes = _count_votes(database)
        else:
            votes = _build(database, args.participants, args.statements)
        asyncio.run(_other_consultation(database))
        common: dict[str, Any] = {
            "participants": args.participants,
            "statements": args.statements,
            "votes": votes,
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        for fmt in filter(None, args.formats.split(",")):
            out = Path(folder) / f"outcome.{fmt}"
            command = [sys.executable, __file__, "--one", str(database), fmt, str(out)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            line: dict[str, Any] = {"format": fmt, **common, **json.loads(done.stdout.strip().splitlines()[-1])}
            out.unlink(missing_ok=True)
            work = Path(folder) / f"concurrent-{fmt}"
            command = [sys.executable, __file__, "--concurrent", str(database), fmt, str(work)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            line.update(json.loads(done.stdout.strip().splitlines()[-1]))
            shutil.rmtree(work, ignore_errors=True)
            print(json.dumps(line), flush=True)
        for job in filter(None, args.maps.split(",")):
            command = [sys.executable, __file__, "--concurrent-map", str(database), job]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            line = {"job": job, **common, **json.loads(done.stdout.strip().splitlines()[-1])}
            print(json.dumps(line), flush=True)


def _count_votes(path: Path) -> int:
    engine = create_sync_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as db:
            return int(db.exec_driver_sql("SELECT count(*) FROM consultation_vote").scalar_one())
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
