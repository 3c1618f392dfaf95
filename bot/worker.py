"""Heavy work away from the conversation: a function run in a process of its own, which reads the database on a
connection of its own. The exports (bot.exports.worker) and the consultations' opinion maps
(bot.consultations.jobs: the priorities a vote's map refresh stores, the findings of a close's outcome) run here.

Why a process, not a task on the bot's event loop nor a thread: on SQLite every statement runs inline in the
calling thread (community.sqlite_inline), so reading the 2.5 million votes of a large consultation on the bot's
loop would stall every other chat for each batch; and the work after the reading (the opinion map, laying out a
workbook, WeasyPrint's PDF) is seconds to minutes of Python holding the GIL, which in a thread still makes every
other resident's reply wait its turn for the interpreter (measured: bench/bench_export.py). In a process of its
own the work takes another core, and the bot's process only awaits the result. `linli run` serves the chat and
runs the jobs in one process, so this is what keeps a job from making residents wait.

Why its own connection, outside the app's unit-of-work gate (community.unit_of_work): on SQLite the gate lets one
unit of work of a process run at a time, so a job reading inside one would make every resident wait the whole
read. The work only reads, in one read transaction on its own connection (reading): SQLite in WAL mode lets
writers go on while a reader reads (the reader sees the database as it was when it began), and PostgreSQL's MVCC
does the same. Nothing is written on that connection: what comes of the work (a file to send, priorities to
store, an outcome to queue) is recorded by the jobs' process afterwards, in a short unit of work of its own.

``Worker(processes=False)`` runs the same function in a thread instead, for tests that must watch the work while
it runs; nothing in production uses it.

The heavy libraries (numpy, xlsxwriter, WeasyPrint, matplotlib) load in the worker, when the work
is done, never when this module is imported (tests/test_startup_imports.py)."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from community.anonymity import Anonymity
from community.db import create_engine, session_factory
from community.keys import SiteKey
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory

A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Reading:
    """How a worker reads the database as the app would, as plain values: it crosses into another process."""

    database_url: str  # password included: it is never logged
    now: datetime  # the app's clock when the job started, held still in the worker
    min_group_size: int  # k (community.anonymity), as the app's settings have it

    @classmethod
    def like(cls, uow: UnitOfWork) -> Reading:
        """Reading what this unit of work reads (its database), at its clock's now and with its k."""
        return cls(uow.database_url, uow.clock.now(), uow.anonymity.min_group_size)


class _At:
    """The clock of a worker: the moment the job started, held still."""

    def __init__(self, moment: datetime) -> None:
        self._moment = moment

    def now(self) -> datetime:
        return self._moment


def _no_key() -> bytes:
    raise RuntimeError("a worker only reads: it hashes nothing and needs no site key")


@asynccontextmanager
async def reading(spec: Reading) -> AsyncIterator[UnitOfWork]:
    """One unit of work on an engine of its own (never committed: a worker only reads), the engine disposed after.
    Its factory's gate is its own, so it never waits for the app's units of work, nor they for it."""
    engine = create_engine(spec.database_url)
    uows = UnitOfWorkFactory(session_factory(engine), _At(spec.now), SiteKey(_no_key), Anonymity(spec.min_group_size))
    try:
        async with uows() as uow:
            yield uow
    finally:
        await engine.dispose()


class Worker:
    """Runs a function away from the event loop: each call in a fresh process (spawned: the bot's process has an
    event loop and threads a fork would copy), which ends with it and gives its memory back. The function must be
    a plain function at module level, and its argument and result plain values, so that they cross between
    processes."""

    def __init__(self, *, processes: bool = True) -> None:
        self.processes = processes

    async def run(self, function: Callable[[A], R], argument: A) -> R:
        if not self.processes:
            return await asyncio.to_thread(function, argument)
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, argument)
        finally:
            # Not waiting: the process has finished its one task (or, when this task was cancelled at shutdown, is
            # left to finish on its own; the job's schedule row is still there, and it runs again at the next start).
            pool.shutdown(wait=False, cancel_futures=True)
