"""`linli export consultation`: each format written to a file, and one clear line with exit code 2 for an unknown
consultation, format or language. On an SQLite file in tmp_path, as the other command-line tests."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner, Result

from bot.cli import create_cli
from community.clock import FakeClock
from community.db import create_engine, session_factory, sqlite_url_for
from community.keys import KEY_FILE_NAME, SiteKey
from community.unit_of_work import UnitOfWorkFactory
from tests.support.consultation_world import TITLE, World, build_world

pytestmark = pytest.mark.usefixtures("localizers", "restore_logging")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"LINLI_DATA_DIR": str(tmp_path / "data"), "LINLI_LANGUAGE": "en"}


def linli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(create_cli(env), list(args))


@pytest.fixture
def world(env: dict[str, str]) -> World:
    """The export tests' consultation, in the command line's database."""
    assert linli(env, "db", "upgrade").exit_code == 0
    url = sqlite_url_for(Path(env["LINLI_DATA_DIR"]).absolute())

    async def build() -> World:
        engine = create_engine(url)
        try:
            clock = FakeClock()
            return await build_world(
                UnitOfWorkFactory(
                    session_factory(engine), clock, SiteKey.in_file(Path(env["LINLI_DATA_DIR"]) / KEY_FILE_NAME)
                ),
                clock,
            )
        finally:
            await engine.dispose()

    return asyncio.run(build())


def test_export_writes_each_format(env: dict[str, str], world: World, tmp_path: Path) -> None:
    cid = str(world.consultation_id)
    outputs = {fmt: tmp_path / f"out.{fmt}" for fmt in ("xlsx", "csv", "json", "pdf")}
    for fmt, path in outputs.items():
        result = linli(env, "export", "consultation", cid, "--format", fmt, "--out", str(path))
        assert result.exit_code == 0, result.output
        assert result.stdout == f"Wrote the outcome of consultation {cid} to {path}.\n"
        assert not list(path.parent.glob(".*.part"))  # the temporary file is gone
    # In the community's language (Chinese) by default.
    workbook = openpyxl.load_workbook(outputs["xlsx"], read_only=True)
    assert workbook.sheetnames[0] == "概况"
    rows = list(csv.DictReader(io.StringIO(outputs["csv"].read_text(encoding="utf-8"))))
    assert len(rows) == 122
    assert json.loads(outputs["json"].read_text(encoding="utf-8"))["consultation"]["title"] == TITLE
    text = "".join(page.extract_text() for page in PdfReader(outputs["pdf"]).pages)
    assert "意见分布图" in text

    english = tmp_path / "english.xlsx"
    result = linli(env, "export", "consultation", cid, "--format", "XLSX", "--out", str(english), "--language", "en")
    assert result.exit_code == 0, result.output
    assert openpyxl.load_workbook(english, read_only=True).sheetnames[0] == "Summary"


def test_export_names_the_file_after_the_consultation_by_default(
    env: dict[str, str], world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = linli(env, "export", "consultation", str(world.consultation_id), "--format", "json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"consultation-{world.consultation_id}-outcome.json").is_file()


def test_export_refuses_an_unknown_consultation_format_or_language(
    env: dict[str, str], world: World, tmp_path: Path
) -> None:
    out = tmp_path / "out.xlsx"
    unknown = linli(env, "export", "consultation", "99", "--format", "xlsx", "--out", str(out))
    assert unknown.exit_code == 2
    assert unknown.stderr == "linli: There is no consultation with id 99.\n"
    bad_format = linli(env, "export", "consultation", str(world.consultation_id), "--format", "docx", "--out", str(out))
    assert bad_format.exit_code == 2
    assert bad_format.stderr == "linli: Unknown format docx: choose one of xlsx, csv, pdf, json.\n"
    bad_language = linli(env, "export", "consultation", "1", "--format", "pdf", "--language", "fr", "--out", str(out))
    assert bad_language.exit_code == 2
    assert bad_language.stderr == "linli: Unknown language fr: choose one of zh_Hans, en.\n"
    assert not out.exists() and not list(tmp_path.glob(".*.part"))
