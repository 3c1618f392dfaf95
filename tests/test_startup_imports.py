"""A command that needs none of the heavy libraries does not load them (issue 10, "Start-up and footprint").

numpy, scikit-learn (with SciPy), matplotlib and WeasyPrint take seconds and a hundred megabytes to import; only
the opinion map, the charts, the PDF report and the exports need them, and they import them where they run.
Each check runs in a fresh interpreter, as `linli` starts, since this test process has long imported them all.
bench/bench_startup.py measures the time and memory; this holds the cause."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "sklearn", "scipy", "pandas", "matplotlib", "weasyprint", "fontTools", "xlsxwriter")
# What `linli --help` needs is Typer and the catalogs: not the database layer, the bot or Telegram either.
NOT_FOR_HELP = (*HEAVY, "sqlalchemy", "sqlmodel", "alembic", "aiogram", "apscheduler", "bot.app")

LOADED = """
import json, sys
def loaded(names):
    return sorted(name for name in names if name in sys.modules)
"""


def run_python(code: str, tmp_path: Path) -> dict[str, Any]:
    """Run code in a fresh interpreter in this checkout; it prints one JSON object as its last line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LINLI_LANGUAGE": "en", "LINLI_DATA_DIR": str(tmp_path / "data")}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("LINLI_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", LOADED + textwrap.dedent(code)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_bot_and_its_entry_points_load_no_heavy_library(tmp_path: Path) -> None:
    found = run_python(
        f"""
        import importlib, pkgutil
        import bot.cli, bot.cli_commands, bot.app, bot.handlers
        from bot.app import build_app
        for module in pkgutil.iter_modules(bot.handlers.__path__, "bot.handlers."):
            importlib.import_module(module.name)
        import bot.channels.telegram, bot.channels.console, bot.consultations.jobs, bot.notices.jobs
        before = loaded({HEAVY!r})
        # aiogram's Bot API types wait for their first use to be built (bot/channels/aiogram_import.py).
        import aiogram.types
        from pydantic import BaseModel
        from pydantic._internal._mock_val_ser import MockValSer
        models = [getattr(aiogram.types, name) for name in aiogram.types.__all__]
        models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
        built = [m.__name__ for m in models if not isinstance(m.__pydantic_validator__, MockValSer)]
        # The check itself can fail: the opinion map does load them.
        import consultation.opinion_map
        print(json.dumps({{"before": before, "map": loaded({HEAVY!r}), "built": built, "models": len(models)}}))
        """,
        tmp_path,
    )
    assert found["before"] == []
    assert "numpy" in found["map"]
    assert found["models"] > 200 and found["built"] == []


@pytest.mark.usefixtures("localizers")  # compiles the catalogs the app loads
def test_building_and_migrating_the_app_loads_no_heavy_library(tmp_path: Path) -> None:
    """What `linli run` does before it serves: settings, the composition root, the migrations, the scheduler."""
    found = run_python(
        f"""
        import asyncio, os
        from bot.app import build_app
        from bot.config import load_settings
        from community.migrate import upgrade

        async def main():
            async with await build_app(load_settings(os.environ)) as app:
                await upgrade(app.engine)
                await app.scheduler.start()
                await app.scheduler.shutdown()

        asyncio.run(main())
        print(json.dumps({{"after": loaded({HEAVY!r})}}))
        """,
        tmp_path,
    )
    assert found["after"] == []


def test_help_loads_neither_the_database_layer_nor_the_bot(tmp_path: Path) -> None:
    found = run_python(
        f"""
        import contextlib, io
        from bot.cli import main
        sys.argv = ["linli", "--help"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main()
        print(json.dumps({{"loaded": loaded({NOT_FOR_HELP!r}), "help": [out.getvalue()]}}))
        """,
        tmp_path,
    )
    assert found["loaded"] == []
    assert "consultation" in found["help"][0] and "Usage: linli" in found["help"][0]
