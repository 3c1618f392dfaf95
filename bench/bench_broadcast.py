"""Broadcast throughput and CPU cost of the delivery engine (bot/delivery) against the fake Bot API.

Each case is a number of recipients and a limit in messages per second. The fake Bot API
(tests/support/fake_bot_api.py) runs in a process of its own (``python -m tests.support.fake_bot_api``), enforcing
Telegram's limits with that overall rate, so its CPU is not counted as ours and any message the engine sends too
fast comes back as a 429. The engine gets the same rate (``SenderOptions(rate=limit)``). A fresh SQLite database in a
temporary directory, migrated with ``community.migrate.upgrade``, is seeded with one outbox row per recipient, each
to a chat of its own, directly with ``community.outbox.enqueue`` (a notice's text in HTML with an Acknowledge
button, as the notices feature queues them). Then one ``Sender`` with the real ``TelegramTransport`` runs in this
process until every row is settled (``Sender.run(until_idle=True)``).

Before the timed run of each case, a warm-up of a fifth of a second's worth of rows (at least 10) goes through
another sender against the same fake, which is then reset (POST /reset: nothing recorded, the limits afresh); so
first-use costs (compiling statements, opening connections) are not in the figures.

Measured, one JSON line per case:

- ``achieved_per_s``: the rate of the messages as the fake recorded them, (recipients - 1) / the time from the
  first message it recorded to the last (N messages span N - 1 intervals; the fake's own clock, so HTTP latency
  at the start and the end is not counted). ``ratio`` is achieved_per_s / limit_per_s.
- ``cpu_ms_per_message``: this process's CPU time (``time.process_time``) over the run of the sender, the sender's
  alone (the fake is another process; seeding and the warm-up are outside), divided by the recipients.
- ``too_many_requests``: 429s the fake gave because a limit was exceeded; must be 0. ``duplicates``: messages a
  chat got more than once; must be 0. ``delivered``: messages the fake recorded; ``sent_rows``: rows SENT in
  the database; both must equal ``recipients``.
- Alongside: ``end_to_end_per_s`` (recipients / the time from the sender's start until it found everything
  settled, which includes a last poll and flush), ``fake_cpu_ms_per_message`` (the fake process's CPU over the
  run, from /proc, to show it was not the bottleneck), and the sender's own counts.

Targets (issue 3): ratio >= 0.95 in both cases, cpu_ms_per_message < 1.

Run:  cd /work/main && .venv/bin/python bench/bench_broadcast.py [--case 1000:30 --case 10000:3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.channels.telegram_delivery import CHANNEL, TelegramTransport  # noqa: E402
from bot.delivery.sender import Sender, SenderOptions  # noqa: E402
from community import outbox  # noqa: E402
from community.clock import SystemClock  # noqa: E402
from community.db import create_engine, session_factory  # noqa: E402
from community.keys import SiteKey  # noqa: E402
from community.migrate import upgrade  # noqa: E402
from community.notice_models import DeliveryStatus, OutboxMessage  # noqa: E402
from community.outbox import OutboxButton, Outgoing  # noqa: E402
from community.unit_of_work import UnitOfWorkFactory  # noqa: E402

TOKEN = "123456:BENCH"
FIRST_CHAT = 20_000_000
WARM_UP_CHAT = 90_000_000
START_TIMEOUT = 30.0
NOTICE = (
    "<b>停水通知</b>\n"
    "因管道检修，{n} 号楼明天 9:00-12:00 停水，请提前储水。给您带来的不便，敬请谅解。\n"
    "<i>Water will be off tomorrow 9:00-12:00 in building {n} for pipe repairs; please store some water.</i>"
)


@dataclass(frozen=True, slots=True)
class Case:
    recipients: int
    limit: float

    @classmethod
    def parse(cls, raw: str) -> Case:
        recipients, _, limit = raw.partition(":")
        case = cls(int(recipients), float(limit))
        if case.recipients < 2 or case.limit <= 0:
            raise argparse.ArgumentTypeError("a case is RECIPIENTS:LIMIT_PER_S, at least 2 recipients")
        return case


# ---- the fake Bot API in its own process ---------------------------------------------------------------------


@dataclass(slots=True)
class FakeProcess:
    process: asyncio.subprocess.Process
    base_url: str
    http: aiohttp.ClientSession

    async def stats(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base_url}/stats") as response:
            response.raise_for_status()
            stats: dict[str, Any] = await response.json()
            return stats

    async def reset(self) -> None:
        async with self.http.post(f"{self.base_url}/reset") as response:
            response.raise_for_status()

    def cpu_seconds(self) -> float | None:
        """The fake process's CPU time so far (Linux /proc), or None where that can't be read."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def fake_bot_api(limit: float) -> AsyncIterator[FakeProcess]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.fake_bot_api",
        "--port",
        "0",
        "--token",
        TOKEN,
        "--limit-per-s",
        str(limit),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        if not line.strip():
            raise RuntimeError("the fake Bot API exited before it was ready")
        async with aiohttp.ClientSession() as http:
            yield FakeProcess(process, f"http://127.0.0.1:{int(line)}", http)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


# ---- the database and the sender -----------------------------------------------------------------------------


async def seed(uows: UnitOfWorkFactory, first_chat: int, count: int) -> None:
    """One queued row per chat, due now, as the notices feature enqueues them."""
    ack = ((OutboxButton("确认收到 / Got it", data="na:1"),),)
    async with uows() as uow:
        now = uow.clock.now()
        await outbox.enqueue(
            uow,
            (
                Outgoing(channel=CHANNEL, chat_id=str(first_chat + n), text=NOTICE.format(n=n % 40 + 1), buttons=ack)
                for n in range(count)
            ),
            not_before=now - timedelta(seconds=1),
        )
        await uow.commit()


def _outbox() -> Any:
    return OutboxMessage.__table__  # type: ignore[attr-defined]  # set by SQLModel's metaclass


async def last_row_id(uows: UnitOfWorkFactory) -> int:
    async with uows() as uow:
        connection = await uow.session.connection()
        return int((await connection.execute(select(func.max(_outbox().c.id)))).scalar_one() or 0)


async def statuses_after(uows: UnitOfWorkFactory, row_id: int) -> dict[str, int]:
    """How many rows after ``row_id`` (the timed run's) are in each status."""
    table = _outbox()
    async with uows() as uow:
        connection = await uow.session.connection()
        rows = await connection.execute(
            select(table.c.status, func.count()).where(table.c.id > row_id).group_by(table.c.status)
        )
        return {DeliveryStatus(status).value: int(count) for status, count in rows}


def sender_for(uows: UnitOfWorkFactory, fake: FakeProcess, limit: float) -> tuple[Sender, TelegramTransport]:
    transport = TelegramTransport(TOKEN, api_base=fake.base_url)
    return Sender(uows, {CHANNEL: transport}, SenderOptions(rate=limit)), transport


class Warnings(logging.Handler):
    """Warnings and errors the engine logged (a 429 it was told about, a failed flush): counted, not printed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first = ""

    def emit(self, record: logging.LogRecord) -> None:
        if not self.count:
            self.first = record.getMessage()
        self.count += 1


async def bench_case(case: Case) -> dict[str, Any]:
    warm_up = max(10, int(case.limit * 0.2))
    with tempfile.TemporaryDirectory(prefix="linli-bench-broadcast-") as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'linli.sqlite3'}")
        try:
            await upgrade(engine)
            uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())
            async with fake_bot_api(case.limit) as fake:
                await seed(uows, WARM_UP_CHAT, warm_up)
                sender, transport = sender_for(uows, fake, case.limit)
                await sender.run(until_idle=True)
                await transport.aclose()
                await fake.reset()

                warm_up_rows = await last_row_id(uows)
                await seed(uows, FIRST_CHAT, case.recipients)
                sender, transport = sender_for(uows, fake, case.limit)
                fake_cpu = fake.cpu_seconds()
                cpu = time.process_time()
                began = time.perf_counter()
                await sender.run(until_idle=True)
                wall = time.perf_counter() - began
                cpu = time.process_time() - cpu
                fake_after = fake.cpu_seconds()
                await transport.aclose()
                stats = await fake.stats()
            statuses = await statuses_after(uows, warm_up_rows)
        finally:
            await engine.dispose()
    span = (stats["last_at"] or 0.0) - (stats["first_at"] or 0.0)
    achieved = (case.recipients - 1) / span if span > 0 else 0.0
    return {
        "recipients": case.recipients,
        "limit_per_s": case.limit,
        "achieved_per_s": round(achieved, 1),
        "ratio": round(achieved / case.limit, 3),
        "cpu_ms_per_message": round(cpu * 1000 / case.recipients, 3),
        "too_many_requests": stats["too_many_requests"],
        "duplicates": stats["duplicates"],
        "delivered": stats["recorded"],
        "sent_rows": statuses.get(DeliveryStatus.SENT.value, 0),
        "end_to_end_per_s": round(case.recipients / wall, 1),
        "span_s": round(span, 3),
        "fake_cpu_ms_per_message": (
            round((fake_after - fake_cpu) * 1000 / case.recipients, 3)
            if fake_cpu is not None and fake_after is not None
            else None
        ),
        "sender": {
            "sent": sender.stats.sent,
            "rate_limited": sender.stats.rate_limited,
            "retried": sender.stats.retried,
            "failed": sender.stats.failed,
            "flushes": sender.stats.flushes,
        },
        "statuses": statuses,
    }


# ---- main ----------------------------------------------------------------------------------------------------


async def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--case",
        type=Case.parse,
        action="append",
        help="RECIPIENTS:LIMIT_PER_S, repeatable (default: 1000:30 then 10000:3000, the issue's two cases)",
    )
    args = parser.parse_args(argv)
    cases: list[Case] = args.case or [Case(1000, 30.0), Case(10_000, 3000.0)]
    logging.basicConfig(level=logging.WARNING)
    warnings = Warnings()
    engine_log = logging.getLogger("bot")
    engine_log.addHandler(warnings)
    engine_log.propagate = False
    results: list[dict[str, Any]] = []
    try:
        for case in cases:
            warnings.count, warnings.first = 0, ""
            result = await bench_case(case)
            result["engine_warnings"] = warnings.count
            if warnings.count:
                print(f"the engine logged {warnings.count} warning(s); first: {warnings.first}", file=sys.stderr)
            wrong = [
                name
                for name, bad in (
                    ("429s from the fake", result["too_many_requests"]),
                    ("duplicates", result["duplicates"]),
                    ("messages not delivered", case.recipients - result["delivered"]),
                    ("rows not SENT", case.recipients - result["sent_rows"]),
                )
                if bad
            ]
            if wrong:
                print(f"not a clean run ({', '.join(wrong)}): the figures don't mean what they say", file=sys.stderr)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        engine_log.removeHandler(warnings)
        engine_log.propagate = True
    return results


if __name__ == "__main__":
    asyncio.run(main())
