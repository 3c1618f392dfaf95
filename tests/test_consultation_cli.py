"""`linli consultation create` and `list`, in-process through Typer's CliRunner on an SQLite file: the
consultation and its statements are created through the chat's use case: opened at once with its invitations
queued when its opening time has passed, its closing (and a later opening) left as schedule rows for
`linli run`; --by acts as a person and needs their right to run consultations; bad input is one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner, Result

from bot.cli import create_cli
from bot.consultations.buttons import OpenConsultation
from community.outbox import buttons_from_json

pytestmark = pytest.mark.usefixtures("localizers", "restore_logging")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # The first test's audience, the household representatives of 3号楼 and 7号楼, is two people: k = 2 lets it be
    # created. The k tests at the end use the default k = 5.
    env = {"LINLI_DATA_DIR": str(tmp_path / "data"), "LINLI_LANGUAGE": "en", "LINLI_MIN_GROUP_SIZE": "2"}
    assert linli(env, "db", "upgrade").exit_code == 0
    assert linli(env, "demo", "seed").exit_code == 0
    return env


def linli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(create_cli(env), list(args))


def database(env: dict[str, str]) -> sqlite3.Connection:
    return sqlite3.connect(Path(env["LINLI_DATA_DIR"]) / "linli.sqlite3")


def _ids(env: dict[str, str]) -> tuple[int, int, int]:
    """梧桐社区's id, its worker's and a resident's (王芳)."""
    with database(env) as db:
        (community,) = db.execute("SELECT id FROM community WHERE name = '梧桐社区'").fetchone()
        (worker,) = db.execute("SELECT id FROM person WHERE display_name = '李娜'").fetchone()
        (resident,) = db.execute("SELECT id FROM person WHERE display_name = '王芳'").fetchone()
    return community, worker, resident


def _create(
    env: dict[str, str],
    community: int,
    *extra: str,
    title: str = "东门空地改造",
    background: str = "东门空地改建为停车位还是口袋公园？",
    opens: str = "2020-03-02 09:00",
) -> Result:
    """`linli consultation create` in the community: by default opening in the past (so at once) and closing far
    ahead; the keywords give a test its own title, background or opening time."""
    return linli(
        env,
        "consultation",
        "create",
        "--community",
        str(community),
        "--title",
        title,
        "--background",
        background,
        "--opens",
        opens,
        "--closes",
        "2099-03-09 09:00",
        *extra,
    )


def test_create_with_a_past_opening_opens_at_once_and_invites_as_the_chat_does(env: dict[str, str]) -> None:
    """The chat's use case: created with its statements, opened at once in the same transaction because its
    opening time has passed, and the invitations queued for the eligible people in scope, each in their language
    with the Take part button; only the closing waits, as a schedule row for `linli run`'s relay."""
    community, worker, _ = _ids(env)
    result = _create(
        env,
        community,
        "--building",
        "3号楼",
        "--building",
        "7号楼",
        "--eligibility",
        "household_representatives",
        "--statement",
        "应改建为停车位。",
        "--statement",
        "应改建为口袋公园。",
        "--unmoderated",
        "--by",
        str(worker),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Created consultation 1 in 梧桐社区.",
        "It is open now and closes Mar 9, 2099, 9:00:00\u202fAM; invitations queued: 2.",
    ]
    with database(env) as db:
        row = db.execute(
            "SELECT status, audience, eligibility, moderated, allow_statements, created_by, opens_at FROM consultation"
        ).fetchone()
        statements = db.execute("SELECT text, status FROM consultation_statement ORDER BY id").fetchall()
        requests = db.execute("SELECT key, job, args, handed FROM schedule_request ORDER BY id").fetchall()
        invitations = db.execute("SELECT chat_id, text, buttons FROM outbox ORDER BY id").fetchall()
        audit = [action for (action,) in db.execute("SELECT action FROM audit_entry ORDER BY id")]
        job_store = db.execute("SELECT name FROM sqlite_master WHERE name = 'scheduled_job'").fetchall()
    assert row[0] == "open" and row[2] == "household_representatives"
    assert row[1] == '{"buildings":["3号楼","7号楼"]}'
    assert (bool(row[3]), bool(row[4]), row[5]) == (False, True, worker)
    assert row[6].startswith("2020-03-02 01:00")
    assert statements == [("应改建为停车位。", "approved"), ("应改建为口袋公园。", "approved")]
    assert audit[-4:] == [
        "consultation.created",
        "consultation.statement_added",
        "consultation.statement_added",
        "consultation.opened",
    ]
    # Only the closing is left for the jobs' process; this command never touched the scheduler's own table.
    assert requests == [("consultation:1:close", "consultation.close", '{"consultation_id": 1}', 0)]
    assert job_store == []
    assert [chat for chat, _, _ in invitations] == ["wang", "chen"]
    assert all("东门空地改造" in text for _, text, _ in invitations)
    take_part = [
        [button.data for line in buttons_from_json(buttons) for button in line] for _, _, buttons in invitations
    ]
    assert take_part == [[OpenConsultation(1).pack()]] * 2

    listed = linli(env, "consultation", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[0].startswith("1  open  梧桐社区  东门空地改造")


def test_create_with_a_later_opening_leaves_opening_and_closing_to_linli_run(env: dict[str, str]) -> None:
    community, _, _ = _ids(env)
    result = _create(env, community, opens="2099-03-02 09:00")
    assert result.exit_code == 0, result.output
    assert "`linli run` opens and closes it on time" in result.stdout
    with database(env) as db:
        (status,) = db.execute("SELECT status FROM consultation").fetchone()
        requests = db.execute("SELECT key, handed FROM schedule_request ORDER BY key").fetchall()
        queued = db.execute("SELECT count(*) FROM outbox").fetchone()
    assert status == "scheduled"
    assert requests == [("consultation:1:close", 0), ("consultation:1:open", 0)]
    assert queued == (0,)
    listed = linli(env, "consultation", "list")
    assert listed.stdout.splitlines() == [
        "1  waiting to open  梧桐社区  东门空地改造  (Mar 2, 2099, 9:00:00\u202fAM – Mar 9, 2099, 9:00:00\u202fAM)"
    ]


def test_the_operator_acts_without_by_and_a_resident_may_not(env: dict[str, str]) -> None:
    community, _, resident = _ids(env)
    refused = _create(env, community, "--by", str(resident))
    assert refused.exit_code == 1
    assert "does not allow running consultations" in refused.stderr
    result = _create(env, community, "--no-statements")
    assert result.exit_code == 0, result.output
    with database(env) as db:
        assert db.execute("SELECT created_by, allow_statements FROM consultation").fetchall() == [(None, 0)]
        (actor,) = db.execute("SELECT actor_id FROM audit_entry WHERE action = 'consultation.created'").fetchone()
    assert actor is None


def test_bad_input_is_one_line_and_creates_nothing(env: dict[str, str]) -> None:
    community, _, _ = _ids(env)
    cases = {
        ("--building", "99号楼"): "99号楼",
        ("--statement", "x" * 281): "at most 280 characters",
    }
    for extra, fragment in cases.items():
        result = _create(env, community, *extra)
        assert result.exit_code == 1, result.output
        assert fragment in result.stderr
    bad_time = _create(env, community, title="t", background="b", opens="tomorrow")
    assert bad_time.exit_code == 1 and "YYYY-MM-DD HH:MM" in bad_time.stderr
    missing = _create(env, 999)
    assert missing.exit_code == 1 and "There is no community with id 999." in missing.stderr
    with database(env) as db:
        assert db.execute("SELECT count(*) FROM consultation").fetchone() == (0,)
    assert linli(env, "consultation", "list").stdout.strip() == "No consultations yet."


# --- k: the smallest audience ------------------------------------------------------------------------------------


def test_an_audience_of_one_is_refused_with_the_reason_and_k(env: dict[str, str]) -> None:
    """At the default k = 5, a consultation for 7号楼, where 陈晓 is the only resident, cannot be created: her
    votes would be the figures."""
    default = {name: value for name, value in env.items() if name != "LINLI_MIN_GROUP_SIZE"}
    community, worker, _ = _ids(default)
    refused = _create(default, community, "--building", "7号楼", "--by", str(worker))
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "linli: Audience now: 1. A consultation needs an audience of at least 5 people, so that no one's votes can be "
        "told from its figures. Choose more buildings or residents' groups, or the whole community."
    )
    chinese = _create({**default, "LINLI_LANGUAGE": "zh_Hans"}, community, "--building", "7号楼")
    assert chinese.exit_code == 1 and "议事协商至少要面向 5 人" in chinese.stderr
    with database(env) as db:
        assert db.execute("SELECT count(*) FROM consultation").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM audit_entry WHERE action = 'consultation.created'").fetchone() == (0,)


def test_the_setting_changes_k(env: dict[str, str]) -> None:
    """The whole community has seven residents: refused at LINLI_MIN_GROUP_SIZE=8, created at the default k = 5."""
    default = {name: value for name, value in env.items() if name != "LINLI_MIN_GROUP_SIZE"}
    community, _, _ = _ids(default)
    refused = _create({**default, "LINLI_MIN_GROUP_SIZE": "8"}, community)
    assert refused.exit_code == 1 and "Audience now: 7." in refused.stderr and "at least 8 people" in refused.stderr
    created = _create(default, community)
    assert created.exit_code == 0, created.output
    assert created.stdout.splitlines()[0] == "Created consultation 1 in 梧桐社区."
    bad = _create({**default, "LINLI_MIN_GROUP_SIZE": "1"}, community)
    assert bad.exit_code == 2
    assert "LINLI_MIN_GROUP_SIZE must be a whole number of people from 2 to 1000, got '1'" in bad.stderr


def test_the_report_of_a_consultation_nobody_voted_in_is_written_and_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    community, _, _ = _ids(env)
    created = _create(env, community, "--statement", "应改建为停车位。")
    assert created.exit_code == 0, created.output
    report = tmp_path / "report.pdf"
    result = linli(env, "export", "consultation", "1", "--format", "pdf", "--out", str(report), "--language", "en")
    assert result.exit_code == 0, result.output
    text = "".join(page.extract_text() for page in PdfReader(report).pages)
    assert "Nobody has voted yet." in text


def test_a_time_in_the_year_9999_is_one_line(env: dict[str, str]) -> None:
    community, _, _ = _ids(env)
    result = _create(env, community, opens="9999-12-31 23:59")
    assert result.exit_code == 1
    assert result.stderr == "linli: Please give a time before the year 3000.\n"
