"""The opinion map off the conversation (bot.consultations.jobs, bot.worker): the map refresh a vote asks for
(consultation.map) and the close's outcome (consultation.outcome) read the votes and compute the map in a worker,
with no unit of work open, so residents are answered while a map is being computed; what comes of it is stored
(the priorities) or queued (the outcome) in a short unit of work afterwards. Both databases."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

import consultation.opinion_map
from bot.channels.console import ConsoleUser
from bot.consultations.jobs import refresh_priorities, register_consultation_jobs
from bot.rendering import Localizers
from bot.scheduling import JobRegistry
from bot.worker import Worker
from community.clock import FakeClock
from community.unit_of_work import UnitOfWorkFactory
from consultation import reach
from consultation.consultations import MAP, OUTCOME
from consultation.models import Statement, StatementStatus
from tests.support.console import scheduled_session
from tests.support.consultation_world import RESIDENT_NAMES, build_world
from tests.support.fake_scheduler import FakeScheduler

RESIDENT = ConsoleUser(key="r1", name=RESIDENT_NAMES[0], language_code="en")


async def _priorities(uows: UnitOfWorkFactory, consultation_id: int) -> list[float | None]:
    """The approved statements' priorities (the map's statements), by id."""
    async with uows() as uow:
        rows = await uow.session.exec(
            select(Statement.priority)
            .where(Statement.consultation_id == consultation_id, Statement.status == StatementStatus.APPROVED)
            .order_by(col(Statement.id))
        )
        return list(rows.all())


async def _outcome_sent(uows: UnitOfWorkFactory, consultation_id: int) -> bool:
    async with uows() as uow:
        return await reach.outcome_sent(uow, consultation_id)


@pytest.mark.parametrize("job", [MAP.name, OUTCOME.name])
async def test_a_resident_is_answered_while_a_map_is_being_computed(
    job: str,
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    localizers: Localizers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The map job (a vote's refresh while the consultation is open; the outcome once it is closed) is held still in
    the middle of computing the map: a resident's /menu is answered meanwhile, and a write goes through (on SQLite
    it would wait until the map is done if the job held a unit of work, and for ever with the loop held)."""
    world = await build_world(uows, clock, channel="console", close=job == OUTCOME.name)
    inside, release = threading.Event(), threading.Event()
    real = consultation.opinion_map.compute_opinion_map_from_cells

    def held(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        inside.set()
        release.wait(timeout=30)  # the worker's thread: only the map waits (the loop, if it were computed there)
        return found

    monkeypatch.setattr(consultation.opinion_map, "compute_opinion_map_from_cells", held)
    registry = JobRegistry()
    scheduler = FakeScheduler(clock, registry, uows)
    register_consultation_jobs(registry, uows, Worker(processes=False))
    session = scheduled_session(uows, localizers, [RESIDENT], tmp_path / "files")
    # The world's votes asked for a map (open) or its close for the outcome (closed): a schedule row, due now.
    assert job in [handed.job for handed in (await scheduler.handed()).values()]
    before = await _priorities(uows, world.consultation_id)
    running = asyncio.create_task(scheduler.run_due())
    try:
        for _ in range(600):
            if inside.is_set() or running.done():
                break
            await asyncio.sleep(0.05)
        assert inside.is_set() and not running.done(), "the map was not held in the worker"
        await session.feed("/as r1")
        menu = await asyncio.wait_for(session.feed("/menu"), timeout=10)
        assert menu and not any("Something went wrong" in line for line in menu), menu
        assert await asyncio.wait_for(session.feed("/language"), timeout=10)  # a write while the map is computed
        assert not running.done()
        # Nothing of the map is stored or sent before it is done.
        assert await _priorities(uows, world.consultation_id) == before
        assert not await _outcome_sent(uows, world.consultation_id)
    finally:
        release.set()
    await asyncio.wait_for(running, timeout=60)
    if job == MAP.name:
        assert all(priority is not None for priority in await _priorities(uows, world.consultation_id))
    else:
        assert await _outcome_sent(uows, world.consultation_id)


async def test_the_production_worker_computes_the_map_in_a_process_of_its_own(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    world = await build_world(uows, clock, close=False)
    assert all(priority is None for priority in await _priorities(uows, world.consultation_id))
    assert await refresh_priorities(uows, world.consultation_id, Worker(processes=True))
    priorities = await _priorities(uows, world.consultation_id)
    assert all(priority is not None for priority in priorities)
    # The same map as one computed in this process: the process computed it from the same votes.
    assert await refresh_priorities(uows, world.consultation_id, Worker(processes=False))
    assert await _priorities(uows, world.consultation_id) == priorities
