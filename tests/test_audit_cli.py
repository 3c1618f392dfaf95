"""`linli audit head`, `verify --expect-head` and `seal`, in-process through Typer's CliRunner, on an SQLite file and
on the PostgreSQL server: the operator publishes the head, someone with database access cuts entries off the end
or rewrites the log, and the operator's next check says so and exits non-zero."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, col, select
from typer.testing import CliRunner, Result

from bot.cli import create_cli
from community.clock import SystemClock
from community.db import create_engine, session_factory, sqlite_url_for
from community.keys import SiteKey
from community.models import AuditEntry
from community.unit_of_work import UnitOfWorkFactory
from tests.test_audit import _cut_last, _rewrite, _sha256

T = TypeVar("T")

pytestmark = pytest.mark.usefixtures("localizers", "restore_logging")

HEAD_LINE = re.compile(r"^(\d+):([0-9a-f]{64})$", re.MULTILINE)


def linli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(create_cli(env), list(args))


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """A migrated database with the demo in it, on SQLite (the data directory's file) or PostgreSQL."""
    env = {"LINLI_DATA_DIR": str(tmp_path / "data"), "LINLI_LANGUAGE": "en"}
    if request.param == "postgres":
        env["LINLI_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        _on_database(env, _truncate)
    assert linli(env, "db", "upgrade").exit_code == 0
    seeded = linli(env, "demo", "seed")
    assert seeded.exit_code == 0, seeded.output
    return env


async def _truncate(uows: UnitOfWorkFactory) -> None:
    names = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    async with uows() as uow:
        await uow.session.exec(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))  # type: ignore[call-overload]
        await uow.commit()


def _on_database(env: dict[str, str], work: Callable[[UnitOfWorkFactory], Awaitable[T]]) -> T:
    """Work on the command line's database from outside it, as someone with database access but another key."""
    url = env.get("LINLI_DATABASE_URL") or sqlite_url_for(Path(env["LINLI_DATA_DIR"]).absolute())

    async def run() -> T:
        engine = create_engine(url)
        try:
            return await work(UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def _hashes(uows: UnitOfWorkFactory) -> list[str]:
    async with uows() as uow:
        return list((await uow.session.exec(select(AuditEntry.hash).order_by(col(AuditEntry.id)))).all())


def _published(env: dict[str, str]) -> str:
    result = linli(env, "audit", "head")
    assert result.exit_code == 0, result.output
    found = HEAD_LINE.search(result.stdout)
    assert found is not None, result.stdout
    return found[0]


def test_head_prints_the_count_and_hash_to_publish_and_verify_checks_them(env: dict[str, str]) -> None:
    result = linli(env, "audit", "head")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    count, digest = lines[-1].split(":")
    assert lines[0] == (
        f"The audit log has {count} entries. Publish its head, the line below, and check it later with "
        "`linli audit verify --expect-head`:"
    )
    rows = _on_database(env, _hashes)
    assert int(count) == len(rows) and digest == rows[-1]

    result = linli(env, "audit", "verify", "--expect-head", lines[-1])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"audit log intact: {count} entries",
        f"Head: {count}:{digest}",
        f"It holds the published head {count}:{digest}.",
    ]


@pytest.mark.parametrize("cut", [1, 5, None], ids=["last", "last-five", "all"])
def test_entries_cut_off_the_end_are_reported(env: dict[str, str], cut: int | None) -> None:
    head = _published(env)
    count = int(head.split(":")[0])
    _on_database(env, lambda uows: _cut_last(uows, cut))
    result = linli(env, "audit", "verify", "--expect-head", head)
    assert result.exit_code == 1
    left = 0 if cut is None else count - cut
    assert result.stderr.startswith(f"linli: audit log does not match the published head {head}: ")
    assert "fewer entries than the published head: entries were removed" in result.stderr
    assert f"It has {left} entries now" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_rewritten_log_is_reported_and_only_a_legacy_log_can_be_sealed(env: dict[str, str]) -> None:
    head = _published(env)
    _on_database(env, lambda uows: _rewrite(uows, _sha256))  # as the code before the key did, and anyone can
    result = linli(env, "audit", "verify", "--expect-head", head)
    assert result.exit_code == 1
    assert result.stderr.startswith("linli: audit log not keyed yet, from entry 1 ")
    assert "`linli audit seal`" in result.stderr
    assert linli(env, "audit", "head").exit_code == 1  # no head is printed for publication from it

    # An upgraded site whose log was written before the key: `db upgrade` says what to do, `seal` keys it.
    upgraded = linli(env, "db", "upgrade")
    assert "run `linli audit seal`" in upgraded.stdout
    wrong = linli(env, "audit", "seal", "--expect-head", "3:" + "a" * 64)
    assert wrong.exit_code == 1 and "cannot be sealed" in wrong.stderr
    sealed = linli(env, "audit", "seal", "--expect-head", f"{head.split(':')[0]}:{_on_database(env, _hashes)[-1]}")
    assert sealed.exit_code == 0, sealed.output
    new_head = sealed.stdout.splitlines()[-1]
    assert HEAD_LINE.match(new_head)
    assert linli(env, "audit", "verify", "--expect-head", new_head).exit_code == 0
    again = linli(env, "audit", "seal")
    assert again.exit_code == 1 and "already keyed" in again.stderr


def test_a_malformed_head_is_a_usage_error(env: dict[str, str]) -> None:
    result = linli(env, "audit", "verify", "--expect-head", "twelve")
    assert result.exit_code == 2
    assert "is not an audit log head" in result.stderr
