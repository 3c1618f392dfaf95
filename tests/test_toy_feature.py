"""Adding a feature needs no edit outside its own files (CONTRIBUTING.md): the toy feature in tests/toy_feature
declares an action with a default role, a menu entry, a handler, a daily job, settings and a personal-data
provider, and the app built with its manifest added to the default list runs all of them, on both databases.
Nothing in Linli's own packages names it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import App, build_app, build_router
from bot.channels.console import ConsoleSession
from bot.config import Settings
from bot.features import DEFAULT_MANIFESTS
from bot.manifest import Features
from community.clock import FakeClock
from community.demo import seed_demo
from community.permissions import allows
from community.roles import Role
from tests.support.console import buttons, has, press, script
from tests.support.demo_people import CHEN, WORKER
from tests.support.fake_scheduler import FakeScheduler
from tests.toy_feature import migration
from tests.toy_feature.chat import CLEAN_JOB, MANIFEST
from tests.toy_feature.domain import DAILY_LIMIT, WATER

ROOT = Path(__file__).resolve().parent.parent
TOY = re.compile(r"\btoy\b", re.IGNORECASE)
LINLI_PACKAGES = ("bot", "community", "consultation", "volunteers", "i18n", "templates", "migrations")


@pytest.fixture
async def toy_table(engine: AsyncEngine) -> AsyncIterator[None]:
    """The toy feature's table, as its migration would make it, for this test only."""
    await migration.upgrade(engine)
    try:
        yield
    finally:
        await migration.downgrade(engine)


@pytest.fixture
async def app(engine: AsyncEngine, clock: FakeClock, tmp_path: Path, toy_table: None) -> AsyncIterator[App]:
    """The app as `linli run` builds it, on the test's database, with the toy feature's manifest added."""
    settings = Settings(data_dir=tmp_path, database_url=engine.url.render_as_string(hide_password=False))
    built = await build_app(
        settings,
        clock,
        scheduler=lambda jobs: FakeScheduler(clock, jobs),
        manifests=(*DEFAULT_MANIFESTS, MANIFEST),
    )
    async with built:
        async with built.uows() as uow:
            await seed_demo(uow)
            await uow.commit()
        yield built


def _session(app: App, tmp_path: Path) -> ConsoleSession:
    return ConsoleSession(app.conversation, (WORKER, CHEN), app.localizers.get("en"), files_dir=tmp_path / "files")


async def test_the_toy_feature_runs_through_the_conversation(app: App, clock: FakeClock, tmp_path: Path) -> None:
    session = _session(app, tmp_path)
    assert isinstance(app.scheduler, FakeScheduler)
    await app.scheduler.start()

    # A resident finds it in her menu (its action's default role) and waters, up to the setting's limit a day.
    out = await script(session, "/as chen", "/menu")
    assert "Water the plants" in buttons(out)
    out = await session.feed(press(out, "Water the plants"))
    assert has(out, "Thank you: the plants are watered (1 today).")
    assert has(await session.feed("/water"), "(2 today)")
    assert has(await session.feed("/water"), "You have watered the plants as often as a day allows (2).")

    # The worker's roles are not among its default roles: no button, and the service refuses the command.
    out = await script(session, "/as worker", "/menu")
    assert "Water the plants" not in buttons(out)
    assert has(await session.feed("/water"), "Your role in this community does not allow that.")

    # /privacy shows what it holds of her, in the message and in the file.
    out = await script(session, "/as chen", "/privacy")
    assert has(out, "Times you watered the shared plants: 2")
    exported = json.loads((tmp_path / "files" / "chen" / "linli-my-data.json").read_text(encoding="utf-8"))
    assert exported["toy"] == {"waterings": 2}

    # Its daily job, registered through its manifest, drops waterings older than its KEEP_DAYS.
    clock.advance(timedelta(days=31))
    await app.scheduler.run_due()
    assert CLEAN_JOB in {ran.job for ran in app.scheduler.ran}
    assert not has(await session.feed("/privacy"), "Times you watered")

    # /forget runs its provider's erase: her row would otherwise hold the foreign key to her person row.
    assert has(await session.feed("/water"), "(1 today)")
    out = await session.feed("/forget")
    out = await session.feed(press(out, "Erase my data"))
    assert has(out, "has been erased")
    assert not has(await script(session, "/privacy"), "Times you watered")


async def test_the_app_takes_its_setting_from_the_composition_root(
    engine: AsyncEngine, clock: FakeClock, tmp_path: Path, toy_table: None
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=engine.url.render_as_string(hide_password=False))
    manifests = (*DEFAULT_MANIFESTS, MANIFEST)
    async with await build_app(settings, clock, manifests=manifests, setting_overrides={DAILY_LIMIT.name: 1}) as app:
        async with app.uows() as uow:
            await seed_demo(uow)
            await uow.commit()
        session = _session(app, tmp_path)
        assert has(await script(session, "/as chen", "/water"), "(1 today)")
        assert has(await session.feed("/water"), "You have watered the plants as often as a day allows (1).")


def test_the_manifest_declares_the_rest() -> None:
    features = Features.of((*DEFAULT_MANIFESTS, MANIFEST))
    assert features.actions["toy.water"] is WATER
    assert allows({Role.RESIDENT}, WATER) and not allows({Role.COMMUNITY_WORKER}, WATER)
    assert features.settings[DAILY_LIMIT] == 2
    assert Features.of((*DEFAULT_MANIFESTS, MANIFEST), {"toy.daily_limit": 5}).settings[DAILY_LIMIT] == 5
    assert build_router((*DEFAULT_MANIFESTS, MANIFEST)).has_command("water")
    assert not build_router().has_command("water")  # the default app does not know it


def test_no_file_of_linli_names_the_toy_feature() -> None:
    """It needed no edit outside its own files: nothing in Linli's packages, templates or migrations mentions it."""
    mentions = [
        str(path.relative_to(ROOT))
        for package in LINLI_PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and path.suffix in (".py", ".j2", ".po", ".pot") and TOY.search(path.read_text("utf-8"))
    ]
    assert mentions == []
