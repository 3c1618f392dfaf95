"""The bot ring parses, renders and wires; the domain packages hold the queries and the rules (issue 10, "Use
cases": no handler touches uow.session or decides a rule). import-linter holds which package imports which; this
holds what import-linter cannot see: that no module under bot/ reaches into a unit of work's session or builds a
query, and that no handler asks the permission table itself.

What bot/ may still import from SQLAlchemy is plumbing, not queries: its exceptions (a failure is logged and the
loop goes on), engine and URL types for the composition root and the export worker's own connection, and, in the
scheduler's module only, the synchronous engine APScheduler's job store needs."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"

# SQLAlchemy modules bot/ may import: exceptions, engines and URLs, never a query builder.
PLUMBING = ("sqlalchemy.exc", "sqlalchemy.engine", "sqlalchemy.ext.asyncio")
# Names imported from the sqlalchemy package itself, by module: APScheduler's job store wants a sync engine.
PLUMBING_NAMES = {"bot/scheduling.py": {"create_engine"}}
# `session` is also aiogram's HTTP session of a Bot: bot.session / self.bot.session, nothing else.
HTTP_SESSIONS = {"bot", "self.bot"}
# Where a handler may not ask who may do what: the services do (community.viewers for what a menu offers).
RULE_MODULES = ("community.permissions",)


def _sql_module(name: str) -> bool:
    return name.split(".")[0] in ("sqlalchemy", "sqlmodel")


def problems(source: str, where: str) -> Iterator[str]:
    """What in one module's source crosses the line, each as 'where:line: what'."""
    tree = ast.parse(source)
    handler = where.startswith("bot/handlers/")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _sql_module(alias.name) and not alias.name.startswith(PLUMBING):
                    yield f"{where}:{node.lineno}: imports {alias.name}"
                if handler and alias.name.startswith(RULE_MODULES):
                    yield f"{where}:{node.lineno}: a handler imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            module = node.module
            if handler and module.startswith(RULE_MODULES):
                yield f"{where}:{node.lineno}: a handler imports from {module}"
            if not _sql_module(module) or module.startswith(PLUMBING):
                continue
            allowed = PLUMBING_NAMES.get(where, set()) if module == "sqlalchemy" else set()
            for alias in node.names:
                if alias.name not in allowed:
                    yield f"{where}:{node.lineno}: imports {alias.name} from {module}"
        elif isinstance(node, ast.Attribute) and node.attr == "session":
            owner = ast.unparse(node.value)
            if owner not in HTTP_SESSIONS:
                yield f"{where}:{node.lineno}: reaches {owner}.session"


def _modules() -> Iterator[tuple[str, str]]:
    for path in sorted(BOT.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_the_bot_ring_holds_no_query_and_no_session() -> None:
    found = [problem for where, source in _modules() for problem in problems(source, where)]
    assert not found, "move these into a domain service:\n" + "\n".join(found)


def test_the_check_sees_every_module() -> None:
    names = {where for where, _ in _modules()}
    # The places that held queries before they moved into the services, and the composition root.
    for expected in (
        "bot/handlers/notifications.py",
        "bot/handlers/consult_admin.py",
        "bot/notices/progress_editor.py",
        "bot/consultations/jobs.py",
        "bot/relay.py",
        "bot/cli_commands.py",
        "bot/app.py",
    ):
        assert expected in names


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("async def f(ctx):\n    await ctx.uow.session.refresh(x)\n", "bot/handlers/consult_admin.py"),
        ("async def f(uow):\n    return await uow.session.get(Person, 1)\n", "bot/conversation.py"),
        ("from sqlmodel import col, select\n", "bot/handlers/notifications.py"),
        ("import sqlmodel\n", "bot/relay.py"),
        ("from sqlalchemy import update\n", "bot/notices/progress_editor.py"),
        ("from sqlalchemy import create_engine\n", "bot/app.py"),
        ("from sqlalchemy.orm import Session\n", "bot/app.py"),
        ("from community.permissions import allows\n", "bot/handlers/menu.py"),
        ("import community.permissions\n", "bot/handlers/menu.py"),
    ],
)
def test_the_check_fails_on_what_it_forbids(source: str, where: str) -> None:
    assert list(problems(source, where))


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("from sqlalchemy.exc import SQLAlchemyError\n", "bot/relay.py"),
        ("from sqlalchemy.engine import make_url\n", "bot/app.py"),
        ("from sqlalchemy import create_engine\n", "bot/scheduling.py"),
        ("async def f(bot):\n    await bot.session.close()\n", "bot/channels/telegram.py"),
        ("from community.permissions import allows\n", "bot/command_menu.py"),
    ],
)
def test_the_check_lets_plumbing_through(source: str, where: str) -> None:
    assert not list(problems(source, where))
