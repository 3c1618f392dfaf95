"""The `linli` command line, run in-process through Typer's CliRunner, on an SQLite file in tmp_path; and once as
a real process in Telegram mode against the fake Bot API."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.app import build_app
from bot.cli import CommandFailed, create_cli, load_catalogs, run_app
from bot.config import load_settings
from community.codes import hash_code
from community.keys import KEY_FILE_NAME, SiteKey
from i18n import Catalogs
from tests.support.fake_bot_api import FakeBotApi

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"https://t\.me/(?P<bot>\w+)\?start=(?P<code>[A-Z0-9]+)")


# The commands load the compiled catalogs (the localizers fixture compiles them once per run) and configure
# the root logger, which other tests must not inherit.
pytestmark = pytest.mark.usefixtures("localizers", "restore_logging")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"LINLI_DATA_DIR": str(tmp_path / "data"), "LINLI_LANGUAGE": "en"}


def linli(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(create_cli(env), list(args), input=stdin)


def database(env: dict[str, str]) -> Path:
    return Path(env["LINLI_DATA_DIR"]) / "linli.sqlite3"


def migrated(env: dict[str, str]) -> dict[str, str]:
    result = linli(env, "db", "upgrade")
    assert result.exit_code == 0, result.output
    return env


def test_db_upgrade_creates_the_sqlite_file(env: dict[str, str]) -> None:
    result = linli(env, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert database(env).is_file()
    assert "Upgraded the database" in result.stdout
    again = linli(env, "db", "upgrade")
    assert again.exit_code == 0, again.output
    assert "already up to date" in again.stdout


def test_community_add_then_invite_create_prints_a_code_and_its_deep_link(env: dict[str, str]) -> None:
    migrated(env)
    street = linli(env, "community", "add", "示范街道", "--kind", "street")
    assert street.exit_code == 0, street.output
    assert "示范街道" in street.stdout and "id 1" in street.stdout
    wutong = linli(env, "community", "add", "梧桐社区", "--kind", "neighbourhood", "--parent", "1")
    assert wutong.exit_code == 0, wutong.output
    assert "id 2" in wutong.stdout

    result = linli(env, "invite", "create", "--community", "2", "--uses", "5", "--days", "7")
    assert result.exit_code == 0, result.output
    link = LINK.search(result.stdout)
    assert link is not None, result.stdout
    assert link["bot"] == "linli_bot"
    code = link["code"]
    assert f"https://t.me/linli_bot?start={code}" in result.stdout
    assert f": {code}" in result.stdout  # the code on its own line too, to read out or type
    assert "5 times" in result.stdout
    with sqlite3.connect(database(env)) as db:
        stored = db.execute("SELECT code_hash, max_uses, community_id, role FROM invitation").fetchall()
    key = SiteKey.in_file(Path(env["LINLI_DATA_DIR"]) / KEY_FILE_NAME)
    assert stored == [(hash_code(key, code), 5, 2, "resident")]  # only the keyed hash is kept


def test_invite_links_name_the_configured_bot(env: dict[str, str]) -> None:
    migrated(env)
    assert linli(env, "community", "add", "梧桐社区", "--kind", "neighbourhood").exit_code == 0
    result = linli(
        {**env, "LINLI_BOT_USERNAME": "wutong_bot"},
        "invite",
        "create",
        "--community",
        "1",
        "--role",
        "household_representative",
        "--household",
        "3号楼 2单元 501",
    )
    assert result.exit_code == 0, result.output
    link = LINK.search(result.stdout)
    assert link is not None and link["bot"] == "wutong_bot"
    assert "household representative" in result.stdout


def test_staff_invitations_from_the_terminal_are_single_use_and_short_lived(env: dict[str, str]) -> None:
    migrated(env)
    assert linli(env, "community", "add", "梧桐社区", "--kind", "neighbourhood").exit_code == 0

    worker = linli(env, "invite", "create", "--community", "1", "--role", "community_worker")
    assert worker.exit_code == 0, worker.output
    assert "It can be used 1 time, until" in worker.stdout
    for args, refusal in (
        (("--role", "committee_member", "--uses", "1000"), "it can be used only once"),
        (("--role", "party_secretary", "--days", "7"), "stays valid at most 72 hours"),
        (("--role", "street_administrator", "--uses", "2"), "it can be used only once"),
        (("--uses", "201"), "can be used 1 to 200 times"),
    ):
        result = linli(env, "invite", "create", "--community", "1", *args)
        assert result.exit_code == 1, result.output
        assert refusal in result.stderr
    with sqlite3.connect(database(env)) as db:
        stored = db.execute("SELECT role, max_uses, julianday(expires_at) - julianday(created_at) FROM invitation")
        ((role, uses, days),) = stored.fetchall()
    assert (role, uses, round(days * 24)) == ("community_worker", 1, 72)


async def test_with_a_token_invite_create_asks_telegram_for_the_bot_name(env: dict[str, str]) -> None:
    await asyncio.to_thread(migrated, env)
    added = await asyncio.to_thread(linli, env, "community", "add", "梧桐社区", "--kind", "neighbourhood")
    assert added.exit_code == 0
    async with FakeBotApi(bot_username="wutong_linli_bot") as fake:
        telegram = {**env, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE": fake.base_url}
        # The CLI runs its own event loop: in a thread, while the fake Bot API answers on this one.
        result = await asyncio.to_thread(linli, telegram, "invite", "create", "--community", "1")
        assert result.exit_code == 0, result.output
        link = LINK.search(result.stdout)
        assert link is not None and link["bot"] == "wutong_linli_bot"
        assert fake.call_counts["getMe"] == 1

        fake.fail_next("getMe", 401, "Unauthorized")
        refused = await asyncio.to_thread(linli, telegram, "invite", "create", "--community", "1")
    assert refused.exit_code == 1
    assert "Telegram did not say the bot's name, so no invitation was made" in refused.stderr
    assert fake.token not in refused.output and "https://t.me/" not in refused.stdout
    with sqlite3.connect(database(env)) as db:
        assert db.execute("SELECT count(*) FROM invitation").fetchone() == (1,)


def test_a_bad_kind_exits_with_a_message(env: dict[str, str]) -> None:
    migrated(env)
    result = linli(env, "community", "add", "某地", "--kind", "city")
    assert result.exit_code == 2
    assert "--kind" in result.stderr and "city" in result.stderr
    with sqlite3.connect(database(env)) as db:
        assert db.execute("SELECT count(*) FROM community").fetchone() == (0,)


def test_a_refusal_from_a_service_is_one_translated_line(env: dict[str, str]) -> None:
    migrated(env)
    assert linli(env, "community", "add", "梧桐社区", "--kind", "neighbourhood").exit_code == 0
    message = "Only a street or a township can have communities under it."
    result = linli(env, "community", "add", "稻香村", "--kind", "village", "--parent", "1")
    assert result.exit_code == 1
    assert result.stderr == f"linli: {message}\n"

    chinese = Catalogs().get("zh_Hans").gettext(message)
    assert chinese != message
    result = linli(
        {**env, "LINLI_LANGUAGE": "", "LANG": "zh_CN.UTF-8"},
        "community",
        "add",
        "稻香村",
        "--kind",
        "village",
        "--parent",
        "1",
    )
    assert result.exit_code == 1
    assert result.stderr == f"linli: {chinese}\n"


def test_unknown_community_ids_are_named(env: dict[str, str]) -> None:
    migrated(env)
    result = linli(env, "invite", "create", "--community", "99")
    assert result.exit_code == 1
    assert "99" in result.stderr
    result = linli(env, "community", "add", "稻香村", "--kind", "village", "--parent", "42")
    assert result.exit_code == 1
    assert "42" in result.stderr


def test_commands_on_data_want_a_migrated_database(env: dict[str, str]) -> None:
    result = linli(env, "community", "add", "梧桐社区", "--kind", "neighbourhood")
    assert result.exit_code == 1
    assert "linli db upgrade" in result.stderr


def test_audit_verify_passes_then_names_a_tampered_entry(env: dict[str, str]) -> None:
    migrated(env)
    seeded = linli(env, "demo", "seed")
    assert seeded.exit_code == 0, seeded.output
    result = linli(env, "audit", "verify")
    assert result.exit_code == 0, result.output
    count = re.search(r"audit log intact: (\d+) entries", result.stdout)
    assert count is not None and int(count[1]) > 3, result.stdout

    with sqlite3.connect(database(env)) as db:
        entry_id, action = db.execute("SELECT id, action FROM audit_entry ORDER BY id LIMIT 1 OFFSET 4").fetchone()
        db.execute("UPDATE audit_entry SET data = ? WHERE id = ?", ('{"roles":["street_administrator"]}', entry_id))
    result = linli(env, "audit", "verify")
    assert result.exit_code == 1
    assert f"entry {entry_id} ({action})" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_demo_seed_lists_who_is_who_and_seeds_once(env: dict[str, str]) -> None:
    migrated(env)
    first = linli(env, "demo", "seed")
    assert first.exit_code == 0, first.output
    assert "Added the demo" in first.stdout
    for key, name in (("worker", "李娜"), ("committee", "张伟"), ("chen", "陈晓"), ("zhao", "赵大山")):
        assert re.search(rf"^\s+{key}\s+{name} — ", first.stdout, re.MULTILINE), first.stdout
    second = linli(env, "demo", "seed")
    assert second.exit_code == 0, second.output
    assert "no demo data was added" in second.stdout
    assert "李娜" in second.stdout


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("TELEGRAM_API_BASE", "ftp://x", "linli: TELEGRAM_API_BASE must be an http(s) URL, got 'ftp://x'"),
        ("LINLI_POLLING_TIMEOUT", "soon", None),
        ("TELEGRAM_BOT_TOKEN", "oops", None),
        ("LINLI_DATABASE_URL", "mysql://root:pw@localhost/x", None),
        ("LINLI_DATABASE_URL", "postgresql://linli:pw@db:five/linli", None),
        ("LINLI_DATABASE_URL", "sqlite://", None),
        ("LINLI_DATABASE_URL", "sqlite:///:memory:", None),
    ],
)
@pytest.mark.parametrize("command", [("db", "upgrade"), ("audit", "verify"), ("run",)])
def test_bad_config_is_one_line_naming_the_setting_and_exit_2(
    env: dict[str, str], name: str, value: str, line: str | None, command: tuple[str, ...]
) -> None:
    result = linli({**env, name: value}, *command)
    assert result.exit_code == 2
    assert result.stdout == ""
    (shown,) = result.stderr.splitlines()
    assert shown.startswith(f"linli: {name} ")
    if line is not None:
        assert shown == line
    assert "pw@" not in shown


def test_a_missing_option_exits_2(env: dict[str, str]) -> None:
    result = linli(env, "invite", "create")
    assert result.exit_code == 2
    assert "--community" in result.stderr


def test_the_token_is_not_in_the_output_even_at_debug(env: dict[str, str]) -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    result = linli({**env, "TELEGRAM_BOT_TOKEN": token, "LINLI_LOG_LEVEL": "DEBUG"}, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "DEBUG" in result.stderr  # logging was on
    assert token not in result.output
    assert "AAHdq" not in result.output


def test_run_without_a_token_opens_the_console_with_the_demo(env: dict[str, str]) -> None:
    result = linli(env, "run", stdin="/as chen\n/help\n/as nobody\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Added the demo" in out
    assert "console" in out and "TELEGRAM_BOT_TOKEN" in out  # the mode, and how to switch
    assert "you are now 陈晓 (chen)" in out
    assert "Nobody here is called nobody" in out
    assert "apscheduler" not in result.stderr  # the scheduler runs, but does not chat into the session
    assert database(env).is_file()
    # A second run finds the demo and offers the same people again.
    again = linli(env, "run", stdin="/as zhao\n")
    assert again.exit_code == 0, again.output
    assert "Added the demo" not in again.stdout
    assert "you are now 赵大山 (zhao)" in again.stdout


@pytest.mark.e2e
async def test_run_with_a_token_polls_telegram_until_terminated(tmp_path: Path) -> None:
    async with FakeBotApi() as fake:
        process_env = {
            **os.environ,
            "LINLI_DATA_DIR": str(tmp_path / "data"),
            "LINLI_LANGUAGE": "en",
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE": fake.base_url,
            "LINLI_POLLING_TIMEOUT": "1",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            cwd=ROOT,
            env=process_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        try:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line.strip() == (
                f"Linli is running on Telegram as @{fake.bot_username} (long polling). "
                "Unset TELEGRAM_BOT_TOKEN to use the console channel."
            )
            # The translated command menu was registered before polling began.
            assert set(fake.commands) >= {None, "zh", "en"}
            assert ("help", "What Linli can do for you") in {
                (c["command"], c["description"]) for c in fake.commands["en"]
            }
            fake.push_message(42, "/help", language_code="en")
            (reply,) = await fake.wait_for_messages(42, 1, timeout=30)
            assert "Linli" in (reply.plain_text or "")
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            stderr = (await asyncio.wait_for(process.stderr.read(), 60)).decode()
            code = await asyncio.wait_for(process.wait(), 60)
        assert code == 0, stderr
        assert fake.token not in stderr


def test_an_unreachable_database_is_one_line_and_exit_1(env: dict[str, str]) -> None:
    result = linli({**env, "LINLI_DATABASE_URL": "postgresql://linli:pw@127.0.0.1:9/linli"}, "db", "upgrade")
    assert result.exit_code == 1
    (shown,) = result.stderr.splitlines()
    assert shown.startswith("linli: The database postgresql://linli:***@127.0.0.1:9/linli could not be used")


def test_a_data_dir_that_cannot_be_created_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = linli({"LINLI_DATA_DIR": str(blocker / "data"), "LINLI_LANGUAGE": "en"}, "db", "upgrade")
    assert result.exit_code == 1
    (shown,) = result.stderr.splitlines()
    assert shown.startswith("linli: Linli could not go on:")


@pytest.mark.e2e
async def test_a_token_telegram_refuses_ends_run_with_one_line(tmp_path: Path) -> None:
    async with FakeBotApi() as fake:
        settings = load_settings(
            {
                "LINLI_DATA_DIR": str(tmp_path),
                "TELEGRAM_BOT_TOKEN": "999:NOT-THE-FAKES-TOKEN",
                "TELEGRAM_API_BASE": fake.base_url,
            }
        )
        catalogs, _ = load_catalogs()
        async with await build_app(settings, catalogs=catalogs) as app:
            with pytest.raises(CommandFailed) as caught:
                await run_app(catalogs.get("en"), app)
    assert caught.value.code == 1
    assert caught.value.message.startswith("The Telegram bot could not start")
    assert "NOT-THE-FAKES-TOKEN" not in caught.value.message


@pytest.mark.parametrize(
    "command",
    [
        ("audit", "verify"),
        ("consultation", "list"),
        ("notices", "status", "1"),
        ("export", "consultation", "1", "--format", "pdf", "--out", "report.pdf"),
    ],
)
def test_a_read_only_command_on_a_missing_database_says_so_and_creates_nothing(
    env: dict[str, str], command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = linli(env, *command)
    assert result.exit_code == 1
    (shown,) = result.stderr.splitlines()
    assert shown == (
        f"linli: There is no database at {database(env).absolute()} yet. "
        "Create it with `linli db upgrade` (or `make run`)."
    )
    assert not Path(env["LINLI_DATA_DIR"]).exists()
    assert not (tmp_path / "report.pdf").exists()


def test_an_in_memory_database_is_refused_in_the_operators_language(env: dict[str, str]) -> None:
    result = linli({**env, "LINLI_LANGUAGE": "zh_Hans", "LINLI_DATABASE_URL": "sqlite://"}, "db", "upgrade")
    assert result.exit_code == 2
    (shown,) = result.stderr.splitlines()
    assert shown.startswith("linli: LINLI_DATABASE_URL ") and "内存" in shown
