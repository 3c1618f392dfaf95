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

Then votes cast through the chat pipeline, in a subprocess of its own as well: a fresh SQLite database with one
neighbourhood, ``--chat-participants`` (200) residents on Telegram accounts and an open consultation of
``--chat-statements`` (60) statements; each resident opens it (not timed), then taps Agree / Disagree / Pass on
the card they were shown, as ButtonPress events handled by bot.conversation.Conversation with the real router,
services and templates, each reply turned into what the Telegram adapter would send (split_html, the inline
keyboard) but without HTTP. A round is ``--chat-votes`` (10) votes from every resident, taken in turns; the
line gives the median of ``--chat-rounds`` (5) rounds. Between rounds (not timed) the statements' priorities are
refreshed from the opinion map, as the jobs' process does every few minutes, so that the rounds after the first
choose each next card by stored priority, as a live consultation does:

    {"statement_votes_per_s": ..., "rounds": [...], "cpu_votes_per_s": ..., "participants": ..., "votes": ...,
     "ms_per_vote_p99": ...}

``cpu_votes_per_s`` counts the benchmark process's CPU time instead of the clock's: on a shared machine, the
clock also counts what other processes took.

Target: at least 500 votes/s on SQLite.

Then the opinion map as a picture in chat (bot/consultations/map_picture.py), in a subprocess of its own: the map of
20,000 × 500 above, drawn once as the base of a Chinese reader's picture (``base_seconds``: map_drawing and
draw_base), then ``--pictures`` (2,000) "you are here" pictures, each for another participant's position, encoded
as PNG as they are sent. ``pictures_per_s`` by the clock, ``cpu_pictures_per_s`` by the process's CPU time (per
second of one core); ``png_kb_median`` and ``png_kb_max`` the pictures' sizes:

    {"pictures": ..., "pictures_per_s": ..., "cpu_pictures_per_s": ..., "base_seconds": ..., "png_kb_median": ...}

Target: at least 50 pictures per second of one core. ``--pictures 0`` skips it.

Then a city-wide consultation read from PostgreSQL, as the jobs' worker makes its map: ``--scale`` (100,000 ×
1,000) at ``--scale-density`` (0.1: ten million votes) of the same planted three groups, loaded by binary COPY
into a database of its own on the server (``LINLI_BENCH_DATABASE_URL``, else ``LINLI_TEST_DATABASE_URL``, else
postgresql://postgres@127.0.0.1:5432/test names the server; the database is created, migrated, and dropped at the
end). Then ``--scale-repeats`` (3) fresh subprocesses each import what the map needs (``import_seconds``: a
worker's process pays it once per job), open a unit of work, and time ``consultations.vote_matrix``
(``read_seconds``: the votes from the database into cells) and ``compute_opinion_map_from_cells``
(``map_seconds``); ``peak_rss_mb`` is that subprocess's resident peak (VmHWM: interpreter and libraries included,
the loading not, as it happened in another process; not ``ru_maxrss``, which Linux carries over from the parent
across fork and exec). The line gives the medians and every run:

    {"size": "100000x1000", "votes": 10000000, "read_seconds": ..., "map_seconds": ..., "total_seconds": ...,
     "peak_rss_mb": ..., "runs": [...], "load_seconds": ...}

Target (issue 11): total under 5 s, peak under 2 GB, on this 2-core machine. ``--scale 0`` skips it;
``--scale-only`` runs it alone.

Run:  cd /work/main && .venv/bin/python bench/bench_opinion.py [--sizes 1000x100,5000x300,20000x500] [--no-reddwarf]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
import logging
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
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


PICTURE_MAP = (20_000, 500)


def _pictures(count: int) -> dict[str, Any]:
    """ "You are here" pictures of a large map; see the module's docstring."""
    from bot.consultations.map_picture import draw_base, map_drawing, picture_labels, with_you_are_here
    from bot.rendering import Localizers
    from i18n import Catalogs

    participants, statements = PICTURE_MAP
    votes, _ = synthetic_votes(participants, statements)
    opinion_map = compute_opinion_map(votes, list(range(participants)), list(range(statements)))
    texts: dict[int | str, str] = {
        sid: f"观点 {sid}：小区停车位应当按户轮流分配，每年重新抽签一次，保证公平。" for sid in range(statements)
    }
    localizer = Localizers(Catalogs()).get("zh_Hans")
    start = time.perf_counter()
    drawing = map_drawing(opinion_map, texts, min_group_size=10)
    base = draw_base(drawing, picture_labels(localizer, "小区停车位怎么分配？", drawing.regions))
    base_seconds = time.perf_counter() - start
    rows = [row % participants for row in range(0, count * 7, 7)]  # spread over the map, not the first few
    positions = [(float(opinion_map.coordinates[r, 0]), float(opinion_map.coordinates[r, 1])) for r in rows]
    sizes: list[int] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for position in positions:
        sizes.append(len(with_you_are_here(base, position)))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "pictures": count,
        "pictures_per_s": round(count / seconds, 1),
        "cpu_pictures_per_s": round(count / cpu_seconds, 1),
        "base_seconds": round(base_seconds, 3),
        "png_kb_median": round(statistics.median(sizes) / 1024, 1),
        "png_kb_max": round(max(sizes) / 1024, 1),
        "size": list(base.image.size),
        "groups": len(drawing.regions),
    }


async def _chat_votes(participants: int, statements: int, votes_each: int, rounds: int) -> dict[str, Any]:
    """Votes through the conversation, as a chat casts them; see the module's docstring."""
    import random
    import tempfile
    from datetime import timedelta

    from bot.app import build_router
    from bot.channels.telegram import inline_keyboard
    from bot.consultations.buttons import OpenConsultation
    from bot.consultations.jobs import refresh_priorities
    from bot.context import BotInfo
    from bot.conversation import Conversation
    from bot.events import ButtonPress, Event, Sender
    from bot.html import split_html
    from bot.rendering import Localizers
    from bot.replies import EditText, Reply, SendText
    from bot.worker import Worker
    from community.clock import SystemClock
    from community.communities import add_community, add_member, household
    from community.db import create_engine, session_factory
    from community.keys import SiteKey
    from community.migrate import upgrade
    from community.people import identify
    from community.roles import CommunityKind, Role
    from community.unit_of_work import UnitOfWorkFactory
    from consultation.consultations import ConsultationDraft, add_statement, create, open_consultation
    from i18n import Catalogs

    with tempfile.TemporaryDirectory(prefix="linli-bench-votes-") as folder:
        if os.environ.get("LINLI_BENCH_KEEP_DB"):  # to look at the queries' plans afterwards
            folder = os.environ["LINLI_BENCH_KEEP_DB"]
        engine = create_engine(f"sqlite:///{Path(folder) / 'linli.sqlite3'}")
        clock = SystemClock()
        uows = UnitOfWorkFactory(session_factory(engine), clock, SiteKey.generate())
        try:
            await upgrade(engine)
            async with uows() as uow:
                community = await add_community(uow, name="梧桐社区", kind=CommunityKind.NEIGHBOURHOOD)
                assert community.id is not None
                worker = await identify(
                    uow, channel="telegram", external_id="1", chat_id="1", display_name="李娜", language_code="zh-hans"
                )
                await add_member(
                    uow,
                    person_id=worker.person_id,
                    community_id=community.id,
                    roles={Role.COMMUNITY_WORKER},
                    reason="bench",
                )
                for number in range(participants):
                    me = await identify(
                        uow,
                        channel="telegram",
                        external_id=str(1000 + number),
                        chat_id=str(1000 + number),
                        display_name=f"居民{number}",
                        language_code="zh-hans" if number % 3 else "en",
                    )
                    home = await household(uow, community.id, f"{number % 20 + 1}号楼 {number}室")
                    await add_member(
                        uow,
                        person_id=me.person_id,
                        community_id=community.id,
                        roles={Role.RESIDENT},
                        household_id=home.id,
                        reason="bench",
                    )
                now = clock.now()
                consultation = await create(
                    uow,
                    worker.person_id,
                    ConsultationDraft(
                        community_id=community.id,
                        title="小区停车位怎么分配？",
                        background="居委会请大家对下面的观点表态。",
                        language="zh_Hans",
                        opens_at=now,
                        closes_at=now + timedelta(days=7),
                    ),
                )
                assert consultation.id is not None
                for number in range(statements):
                    await add_statement(uow, worker.person_id, consultation.id, f"观点 {number}：车位应当按户轮换。")
                await open_consultation(uow, consultation.id)
                await uow.commit()
            conversation = Conversation(uows, build_router(), Localizers(Catalogs()), BotInfo())
            rng = random.Random(0)

            def card_data(replies: Sequence[Reply]) -> list[str]:
                """What the Telegram adapter would send for each reply (no HTTP), and the votes on the card."""
                data: list[str] = []
                for reply in replies:
                    if isinstance(reply, SendText | EditText):
                        split_html(reply.text)
                        inline_keyboard(reply.buttons)
                        data = [b.data for row in reply.buttons for b in row if b.data and b.data.startswith("kpv:")]
                return data

            senders = [
                Sender("telegram", str(1000 + n), str(1000 + n), f"居民{n}", "zh-hans" if n % 3 else "en")
                for n in range(participants)
            ]
            cards: list[list[str]] = []
            for sender in senders:
                opened = await conversation.handle(Event(sender, ButtonPress(OpenConsultation(consultation.id).pack())))
                cards.append(card_data(opened))
            per_round: list[float] = []
            per_round_cpu: list[float] = []  # by this process's CPU time: what the machine's other load leaves out
            latencies: list[float] = []
            cast = 0
            for _ in range(rounds):
                start, cpu_start = time.perf_counter(), time.process_time()
                done = 0
                for _ in range(votes_each):
                    for index, sender in enumerate(senders):
                        choices = cards[index]
                        if not choices:
                            continue
                        press = ButtonPress(rng.choice(choices), message_id="7", callback_id="q")
                        began = time.perf_counter()
                        replies = await conversation.handle(Event(sender, press))
                        latencies.append(time.perf_counter() - began)
                        cards[index] = card_data(replies)
                        done += 1
                per_round.append(done / (time.perf_counter() - start))
                per_round_cpu.append(done / (time.process_time() - cpu_start))
                cast += done
                await refresh_priorities(uows, consultation.id, Worker(processes=False))  # not timed: no process start
        finally:
            await engine.dispose()
    latencies.sort()
    return {
        "statement_votes_per_s": round(statistics.median(per_round), 1),
        "rounds": [round(rate, 1) for rate in per_round],
        "cpu_votes_per_s": round(statistics.median(per_round_cpu), 1),
        "participants": participants,
        "statements": statements,
        "votes": cast,
        "ms_per_vote_p99": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2) if latencies else None,
        "database": "sqlite",
    }


SCALE = "100000x1000"
SCALE_DENSITY = 0.1
# PostgreSQL's binary timestamps count microseconds from this instant.
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # when the synthetic votes were cast


def synthetic_cells(
    participants: int, statements: int, density: float, seed: int = 0
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int8]]:
    """synthetic_votes's planted three groups, as one cell per vote (row, column, value): ten million votes never
    pass through a dense matrix, which would be 800 MB."""
    rng = np.random.default_rng(seed)
    stances = rng.choice(np.array([1, -1], dtype=np.int8), size=(3, statements))
    group = rng.integers(0, 3, size=participants)
    rows, columns, values = [], [], []
    for start in range(0, participants, 5_000):
        stop = min(start + 5_000, participants)
        row, column = np.nonzero(rng.random((stop - start, statements)) < density)
        planted = stances[group[start + row], column]
        draw = rng.random(row.size)
        values.append(np.where(draw < 0.7, planted, np.where(draw < 0.85, -planted, 0)).astype(np.int8))
        rows.append((row + start).astype(np.int32))
        columns.append(column.astype(np.int32))
    return np.concatenate(rows), np.concatenate(columns), np.concatenate(values)


def _server_url() -> str:
    """The PostgreSQL server to use, as an asyncpg DSN (postgresql://...)."""
    from sqlalchemy.engine import make_url

    url = os.environ.get("LINLI_BENCH_DATABASE_URL") or os.environ.get(
        "LINLI_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _binary_votes(
    participant_ids: NDArray[np.int64], statement_ids: NDArray[np.int64], values: NDArray[np.int8]
) -> bytes:
    """The votes as PostgreSQL's binary COPY of (participant_id, statement_id, value, at): one numpy record a row."""
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("participant_length", ">i4"),
            ("participant", ">i4"),
            ("statement_length", ">i4"),
            ("statement", ">i4"),
            ("value_length", ">i4"),
            ("value", ">i2"),
            ("at_length", ">i4"),
            ("at", ">i8"),
        ]
    )
    records = np.empty(values.size, dtype=row)
    records["fields"] = 4
    records["participant_length"], records["participant"] = 4, participant_ids
    records["statement_length"], records["statement"] = 4, statement_ids
    records["value_length"], records["value"] = 2, values
    records["at_length"], records["at"] = 8, int((START - PG_EPOCH).total_seconds() * 1_000_000)
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
    return header + records.tobytes() + b"\xff\xff"


async def _load(dsn: str, participants: int, statements: int, density: float) -> tuple[int, int]:
    """A closed consultation of planted votes, in the (migrated, empty) database at dsn: (its id, its votes)."""
    import asyncpg

    rows, columns, values = synthetic_cells(participants, statements, density)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO community (name, kind, timezone, default_language, created_at)"
            " VALUES ('示范社区', 'neighbourhood', 'Asia/Shanghai', 'zh_Hans', $1)",
            START,
        )
        consultation_id = await connection.fetchval(
            "INSERT INTO consultation (community_id, title, background, language, audience, eligibility, opens_at,"
            " closes_at, allow_statements, moderated, status, created_at)"
            " VALUES (1, '全街道议事协商（基准测试）', '合成数据。', 'zh_Hans', '{}', 'residents', $1, $1, true, true,"
            " 'closed', $1) RETURNING id",
            START,
        )
        await connection.copy_records_to_table(
            "consultation_statement",
            columns=["consultation_id", "text", "normalized", "status", "created_at"],
            records=[(consultation_id, f"第 {j + 1} 条观点", f"s{j}", "approved", START) for j in range(statements)],
        )
        await connection.copy_records_to_table(
            "consultation_participant",
            columns=["consultation_id", "pseudonym", "created_at"],
            records=[(consultation_id, secrets.token_hex(8), START) for _ in range(participants)],
        )
        first_statement = await connection.fetchval("SELECT min(id) FROM consultation_statement")
        first_participant = await connection.fetchval("SELECT min(id) FROM consultation_participant")
        # Ten million rows: without the vote table's indexes and foreign-key checks while they go in (the indexes
        # built once afterwards), the load takes seconds, not minutes.
        constraints = await connection.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
            " WHERE conrelid = 'consultation_vote'::regclass AND contype IN ('p', 'u')"
        )
        names = {c["conname"] for c in constraints}
        indexes = [
            i
            for i in await connection.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'consultation_vote'"
            )
            if i["indexname"] not in names
        ]
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
        for constraint in constraints:
            await connection.execute(f'ALTER TABLE consultation_vote DROP CONSTRAINT "{constraint["conname"]}"')
        await connection.execute("SET session_replication_role = replica")
        data = _binary_votes(rows + first_participant, columns + first_statement, values)
        del rows, columns
        await connection.copy_to_table(
            "consultation_vote",
            source=io.BytesIO(data),
            columns=["participant_id", "statement_id", "value", "at"],
            format="binary",
        )
        del data
        await connection.execute("SET session_replication_role = DEFAULT")
        await connection.execute("SET maintenance_work_mem = '512MB'")
        for constraint in constraints:
            await connection.execute(
                f'ALTER TABLE consultation_vote ADD CONSTRAINT "{constraint["conname"]}" {constraint["definition"]}'
            )
        for index in indexes:
            await connection.execute(index["indexdef"])
        # As autovacuum would leave a table of votes cast over days: hint bits set, statistics for the planner.
        await connection.execute("VACUUM (FREEZE, ANALYZE) consultation_vote")
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return int(consultation_id), int(values.size)


async def _create_database(dsn: str, name: str) -> str:
    """A fresh database on dsn's server, migrated to head: its DSN."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from community.db import create_engine
    from community.migrate import upgrade

    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(dsn).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def _drop_database(dsn: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _scale(size: str, density: float, repeats: int) -> dict[str, Any]:
    """The city-wide line; see the module's docstring."""
    participants, statements = (int(x) for x in size.split("x"))
    server = _server_url()
    name = f"linli_bench_scale_{secrets.token_hex(6)}"
    try:
        url = asyncio.run(_create_database(server, name))
    except (OSError, Exception) as error:  # noqa: BLE001 - no server: said on the line, the other lines stand
        return {"size": size, "skipped": f"PostgreSQL not reachable at {server}: {error}"}
    try:
        start = time.perf_counter()
        consultation_id, votes = asyncio.run(_load(url, participants, statements, density))
        load_seconds = time.perf_counter() - start
        runs = []
        for _ in range(repeats):
            command = [sys.executable, __file__, "--scale-measure", url, "--scale-consultation", str(consultation_id)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        asyncio.run(_drop_database(server, name))
    median = {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0] if key != "votes"}
    assert all(run["votes"] == votes for run in runs), "the map read another number of votes than were loaded"
    return {
        "size": size,
        "votes": votes,
        "read_seconds": median["read_seconds"],
        "map_seconds": median["map_seconds"],
        "total_seconds": median["total_seconds"],
        "peak_rss_mb": median["peak_rss_mb"],
        "import_seconds": median["import_seconds"],
        "groups": median["groups"],
        "runs": runs,
        "load_seconds": round(load_seconds, 1),
        "database": "postgresql",
    }


def _peak_rss_mb() -> float:
    """This process's resident peak since it started its program: VmHWM. Not ru_maxrss: Linux carries a process's
    ru_maxrss over an exec, and subprocess forks the parent, so a child would report the bench's own peak (the
    votes it generated and loaded: 1.4 GB) whatever it used itself."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the closest there is


def _scale_measure(url: str, consultation_id: int) -> dict[str, Any]:
    """In a fresh process: import, then read the votes and compute the map, timed apart; the resident peak."""
    start = time.perf_counter()
    import scipy.sparse.linalg  # noqa: F401 - the map's Lanczos iterations, imported before timing
    from sqlmodel import select

    from community.clock import SystemClock
    from community.db import create_engine, session_factory
    from community.keys import SiteKey
    from community.unit_of_work import UnitOfWorkFactory
    from consultation.consultations import vote_matrix
    from consultation.vote_reading import read_votes  # noqa: F401 - imported by vote_matrix on its first call

    import_seconds = time.perf_counter() - start

    async def read() -> tuple[Any, float]:
        engine = create_engine(url)
        uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())
        try:
            async with uows() as uow:
                await uow.session.exec(select(1))  # the connection open before timing
                began = time.perf_counter()
                matrix = await vote_matrix(uow, consultation_id)
                return matrix, time.perf_counter() - began
        finally:
            await engine.dispose()

    matrix, read_seconds = asyncio.run(read())
    began = time.perf_counter()
    found = matrix.opinion_map()
    map_seconds = time.perf_counter() - began
    return {
        "votes": int(matrix.values.size),
        "read_seconds": round(read_seconds, 3),
        "map_seconds": round(map_seconds, 3),
        "total_seconds": round(read_seconds + map_seconds, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "import_seconds": round(import_seconds, 3),
        "groups": len(found.groups),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="participants x statements, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reddwarf", action="store_true", help="skip red-dwarf even where it is installed")
    parser.add_argument("--reddwarf-max-cells", type=int, default=20_000 * 500)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one size in this process
    parser.add_argument("--chat-participants", type=int, default=200)
    parser.add_argument("--chat-statements", type=int, default=60)
    parser.add_argument("--chat-votes", type=int, default=10, help="votes from each participant per round")
    parser.add_argument("--chat-rounds", type=int, default=5)
    parser.add_argument("--no-chat", action="store_true", help="skip the votes through the chat pipeline")
    parser.add_argument("--chat-only", action="store_true", help="only the votes through the chat pipeline")
    parser.add_argument("--chat", action="store_true", help=argparse.SUPPRESS)  # internal: the chat votes here
    parser.add_argument("--pictures", type=int, default=2_000, help="'you are here' map pictures to draw (0: none)")
    parser.add_argument("--pictures-here", action="store_true", help=argparse.SUPPRESS)  # internal: pictures here
    parser.add_argument("--scale", default=SCALE, help="participants x statements read from PostgreSQL (0: none)")
    parser.add_argument("--scale-density", type=float, default=SCALE_DENSITY, help="share of the cells voted")
    parser.add_argument("--scale-repeats", type=int, default=3, help="fresh processes timed (medians given)")
    parser.add_argument("--scale-only", action="store_true", help="only the city-wide consultation from PostgreSQL")
    parser.add_argument("--scale-measure", help=argparse.SUPPRESS)  # internal: time one read and map here
    parser.add_argument("--scale-consultation", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.scale_measure:
        print(json.dumps(_scale_measure(args.scale_measure, args.scale_consultation)), flush=True)
        return

    if args.scale_only:
        print(json.dumps(_scale(args.scale, args.scale_density, args.scale_repeats)), flush=True)
        return

    if args.pictures_here:
        print(json.dumps(_pictures(args.pictures)), flush=True)
        return

    if args.chat:
        logging.disable(logging.WARNING)  # a refused vote would be a bug, and shows in the count, not the log
        line = asyncio.run(_chat_votes(args.chat_participants, args.chat_statements, args.chat_votes, args.chat_rounds))
        print(json.dumps(line), flush=True)
        return

    if args.one:
        participants, statements = (int(x) for x in args.one.split("x"))
        with_reddwarf = not args.no_reddwarf and importlib.util.find_spec("reddwarf") is not None
        with_reddwarf = with_reddwarf and participants * statements <= args.reddwarf_max_cells
        print(json.dumps(run_one(participants, statements, args.repeats, with_reddwarf)), flush=True)
        return

    for size in [] if args.chat_only else args.sizes.split(","):
        command = [sys.executable, __file__, "--one", size, "--repeats", str(args.repeats)]
        command += ["--reddwarf-max-cells", str(args.reddwarf_max_cells)]
        if args.no_reddwarf:
            command.append("--no-reddwarf")
        subprocess.run(command, check=True)
    if args.pictures > 0 and not args.chat_only:
        subprocess.run([sys.executable, __file__, "--pictures-here", "--pictures", str(args.pictures)], check=True)
    if not args.no_chat:
        command = [sys.executable, __file__, "--chat", "--chat-participants", str(args.chat_participants)]
        command += ["--chat-statements", str(args.chat_statements), "--chat-votes", str(args.chat_votes)]
        command += ["--chat-rounds", str(args.chat_rounds)]
        subprocess.run(command, check=True)
    if args.scale != "0" and not args.chat_only:
        print(json.dumps(_scale(args.scale, args.scale_density, args.scale_repeats)), flush=True)


if __name__ == "__main__":
    main()
