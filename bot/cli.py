"""The `linli` command line: run the bot (Telegram or console), migrate, add communities, issue invitations,
seed the demo and verify the audit log.

Every command reads the same settings from the environment (bot.config) and speaks the operator's language
(LINLI_LANGUAGE, else LANG): its messages and help go through gettext like everything else users read.
A bad setting is one line naming it and exit code 2; a refusal from a service is its translated message and
exit code 1. Logging is configured here, once per command, never at import.

This module only declares the commands, and imports nothing that needs the database layer: what each command
does is in bot.cli_commands, imported when a command runs. So `linli --help` (and a mistyped command) answers
in a tenth of a second instead of loading SQLAlchemy, the bot and its jobs first (make bench-startup,
tests/test_startup_imports.py).

No `from __future__ import annotations` here: Typer evaluates the commands' annotations, and their help texts
are translated in create_cli's scope, which string annotations could not see."""

import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bot.config import ConfigError, Settings, cli_language, load_settings
from bot.consultations.buttons import ExportFormat
from community.eligibility import Eligibility
from community.invitation_terms import INVITATION_LIFETIME, MAX_USES, STAFF_INVITATION_LIFETIME
from community.roles import CommunityKind, Role
from i18n import LANGUAGES, Catalogs

PROGRAM = "linli"
EXIT_REFUSED = 1
EXIT_CONFIG = 2
MAX_INVITATION_DAYS = 3650  # beyond ten years a date is more likely a typo than a plan


class CommandFailed(Exception):
    """Ends a command with one line on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def load_catalogs() -> tuple[Catalogs, bool]:
    """The compiled catalogs and whether all of them were there. Without them (a fresh checkout before
    `make i18n`) the command line still works, in English, the language of the message ids."""
    try:
        return Catalogs(), True
    except FileNotFoundError:
        return Catalogs(languages=("en",)), False


def _fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    typer.echo(f"{PROGRAM}: {message}", err=True)
    raise typer.Exit(code)


def create_cli(env: Mapping[str, str]) -> typer.Typer:
    """The Typer app, with its help in the operator's language. env is read when a command runs."""
    catalogs, complete = load_catalogs()
    t = catalogs.get(cli_language(env)) if complete else catalogs.get("en")

    def settings() -> Settings:
        from bot import cli_commands as work

        try:
            loaded = load_settings(env)
        except ConfigError as err:
            _fail(t.gettext(err.problem, **err.params), EXIT_CONFIG)
        work.configure_logging(loaded)
        return loaded

    # No pretty tracebacks: they print local variables, and a local may hold the bot token.
    cli = typer.Typer(
        name=PROGRAM,
        help=t.gettext("Linli (邻里): chat-first civic participation for neighbourhoods and villages."),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    db = typer.Typer(help=t.gettext("The database."), no_args_is_help=True)
    community = typer.Typer(help=t.gettext("Streets, townships, neighbourhoods and villages."), no_args_is_help=True)
    invite = typer.Typer(help=t.gettext("Invitations for residents and staff."), no_args_is_help=True)
    demo = typer.Typer(help=t.gettext("The demo street, communities and people."), no_args_is_help=True)
    audit_cli = typer.Typer(help=t.gettext("The keyed, hash-chained audit log."), no_args_is_help=True)
    notices = typer.Typer(help=t.gettext("Notices and their delivery."), no_args_is_help=True)
    consultation_cli = typer.Typer(help=t.gettext("Consultations of residents."), no_args_is_help=True)
    export = typer.Typer(help=t.gettext("Outcomes as files, for the committee."), no_args_is_help=True)
    cli.add_typer(db, name="db")
    cli.add_typer(community, name="community")
    cli.add_typer(invite, name="invite")
    cli.add_typer(demo, name="demo")
    cli.add_typer(audit_cli, name="audit")
    cli.add_typer(notices, name="notices")
    cli.add_typer(consultation_cli, name="consultation")
    cli.add_typer(export, name="export")

    @cli.command(
        "run",
        help=t.gettext(
            "Migrate the database, then run the Telegram bot if TELEGRAM_BOT_TOKEN is set, "
            "else the console channel with the demo."
        ),
    )
    def run() -> None:
        from bot import cli_commands as work

        loaded = settings()
        if not complete:
            _fail(
                t.gettext(
                    "The translations are not compiled. Run `python -m i18n.catalog compile` (make run does it)."
                ),
                EXIT_CONFIG,
            )
        work._execute(t, catalogs, loaded, lambda app: work.run_app(t, app), migrated=False)

    @db.command("upgrade", help=t.gettext("Apply the database migrations."))
    def db_upgrade() -> None:
        from bot import cli_commands as work

        work._execute(t, catalogs, settings(), lambda app: work._db_upgrade(t, app), migrated=False)

    @community.command("add", help=t.gettext("Add a community."))
    def community_add(
        name: Annotated[str, typer.Argument(help=t.gettext("Its name, e.g. 梧桐社区."), show_default=False)],
        kind: Annotated[CommunityKind, typer.Option("--kind", help=t.gettext("What kind of community it is."))],
        parent: Annotated[
            int | None, typer.Option("--parent", help=t.gettext("Id of the street or township above it."))
        ] = None,
        timezone: Annotated[str, typer.Option("--timezone", help=t.gettext("Its time zone."))] = "Asia/Shanghai",
        language: Annotated[
            str,
            typer.Option("--language", help=t.gettext("Its default language: %(languages)s.", languages="zh_Hans, en")),
        ] = LANGUAGES[0],
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t,
            catalogs,
            settings(),
            lambda app: work._community_add(
                t, app, name=name, kind=kind, parent=parent, timezone=timezone, language=language
            ),
            migrated=True,
        )

    @community.command(
        "show-settings", help=t.gettext("List a community's settings: its values, the defaults and why.")
    )
    def community_show_settings(
        community_id: Annotated[int, typer.Argument(help=t.gettext("The community's id."), show_default=False)],
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t,
            catalogs,
            settings(),
            lambda app: work._show_settings(t, app, community_id),
            migrated=True,
            existing=True,
        )

    @community.command(
        "set-setting",
        help=t.gettext(
            "Change one of a community's settings (`linli community show-settings` lists them); "
            "the value default gives it its default back."
        ),
    )
    def community_set_setting(
        community_id: Annotated[int, typer.Argument(help=t.gettext("The community's id."), show_default=False)],
        key: Annotated[
            str, typer.Argument(help=t.gettext("The setting, e.g. notice.digest_time."), show_default=False)
        ],
        value: Annotated[str, typer.Argument(help=t.gettext("Its new value, e.g. 20:30."), show_default=False)],
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t,
            catalogs,
            settings(),
            lambda app: work._set_setting(t, app, community_id, key, value),
            migrated=True,
            existing=True,
        )

    @invite.command("create", help=t.gettext("Create an invitation code and its deep link."))
    def invite_create(
        community_id: Annotated[
            int, typer.Option("--community", help=t.gettext("Id of the community to join."), show_default=False)
        ],
        uses: Annotated[
            int,
            typer.Option(
                "--uses",
                help=t.gettext(
                    "How many people can use it: at most %(limit)s, and one for staff and household representatives.",
                    limit=MAX_USES,
                ),
            ),
        ] = 1,
        role: Annotated[Role, typer.Option("--role", help=t.gettext("The role it gives."))] = Role.RESIDENT,
        household: Annotated[
            str | None, typer.Option("--household", help=t.gettext("The household it is for, e.g. 3号楼 2单元 501."))
        ] = None,
        days: Annotated[
            int | None,
            typer.Option(
                "--days",
                help=t.gettext(
                    "How many days it stays valid (by default %(days)s; staff invitations %(hours)s hours, at most).",
                    days=INVITATION_LIFETIME.days,
                    hours=STAFF_INVITATION_LIFETIME // timedelta(hours=1),
                ),
                max=MAX_INVITATION_DAYS,
                show_default=False,
            ),
        ] = None,
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t,
            catalogs,
            settings(),
            lambda app: work._invite_create(
                t, app, community_id=community_id, uses=uses, role=role, household=household, days=days
            ),
            migrated=True,
        )

    @demo.command("seed", help=t.gettext("Add the demo, if the database has no community yet."))
    def demo_seed(
        console_people: Annotated[
            bool,
            typer.Option(
                "--console-people",
                help=t.gettext(
                    "Add the console's people even when TELEGRAM_BOT_TOKEN is set (they are added without it)."
                ),
            ),
        ] = False,
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t, catalogs, settings(), lambda app: work._demo_seed(t, app, console_people=console_people), migrated=True
        )

    expect_head_help = t.gettext("A head published earlier (COUNT:HASH, as `linli audit head` prints it).")

    @audit_cli.command(
        "verify",
        help=t.gettext(
            "Check that no audit log entry was changed, removed or reordered, and print the head; with "
            "--expect-head, that none was cut off since that head was published."
        ),
    )
    def audit_verify(
        expect_head: Annotated[str | None, typer.Option("--expect-head", help=expect_head_help)] = None,
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t, catalogs, settings(), lambda app: work._audit_verify(t, app, expect_head), migrated=True, existing=True
        )

    @audit_cli.command("head", help=t.gettext("Print the audit log's head (entry count and last hash) to publish."))
    def audit_head() -> None:
        from bot import cli_commands as work

        work._execute(t, catalogs, settings(), lambda app: work._audit_head(t, app), migrated=True, existing=True)

    @audit_cli.command(
        "seal",
        help=t.gettext(
            "Key an audit log written before Linli keyed it, after checking that it is intact; "
            "with --expect-head, also against its head published earlier."
        ),
    )
    def audit_seal(
        expect_head: Annotated[str | None, typer.Option("--expect-head", help=expect_head_help)] = None,
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t, catalogs, settings(), lambda app: work._audit_seal(t, app, expect_head), migrated=True, existing=True
        )

    @cli.command(
        "deliver",
        help=t.gettext(
            "Run only the delivery engine, sending queued messages through Telegram: a second process when one "
            "is not enough (PostgreSQL)."
        ),
    )
    def deliver() -> None:
        from bot import cli_commands as work

        work._execute(t, catalogs, settings(), lambda app: work.serve_delivery(t, app, sys.stdout), migrated=True)

    @notices.command("status", help=t.gettext("Show how far a notice's delivery has come."))
    def notices_status(
        notice_id: Annotated[int, typer.Argument(help=t.gettext("The notice's id."), show_default=False)],
        follow: Annotated[
            bool, typer.Option("--follow", "-f", help=t.gettext("Show it again every second until it is done."))
        ] = False,
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t,
            catalogs,
            settings(),
            lambda app: work._notices_status(t, app, notice_id, follow=follow),
            migrated=True,
            existing=True,
        )

    @consultation_cli.command(
        "create",
        help=t.gettext(
            "Create a consultation: it opens at once when its opening time has passed, and `linli run` opens "
            "and closes it on time. Without --by the operator acts."
        ),
    )
    def consultation_create(
        community_id: Annotated[
            int, typer.Option("--community", help=t.gettext("Id of the community."), show_default=False)
        ],
        title: Annotated[str, typer.Option("--title", help=t.gettext("The matter, in a line."), show_default=False)],
        background: Annotated[
            str, typer.Option("--background", help=t.gettext("What residents read first."), show_default=False)
        ],
        opens: Annotated[
            str,
            typer.Option(
                "--opens", help=t.gettext("Opening time, YYYY-MM-DD HH:MM, community time."), show_default=False
            ),
        ],
        closes: Annotated[
            str,
            typer.Option(
                "--closes", help=t.gettext("Closing time, YYYY-MM-DD HH:MM, community time."), show_default=False
            ),
        ],
        building: Annotated[
            list[str] | None, typer.Option("--building", help=t.gettext("Only this building (repeatable)."))
        ] = None,
        group: Annotated[
            list[str] | None, typer.Option("--group", help=t.gettext("Only this residents' group (repeatable)."))
        ] = None,
        eligibility: Annotated[
            Eligibility, typer.Option("--eligibility", help=t.gettext("Who in scope may take part."))
        ] = Eligibility.RESIDENTS,
        statement: Annotated[
            list[str] | None, typer.Option("--statement", help=t.gettext("A statement to start with (repeatable)."))
        ] = None,
        no_statements: Annotated[
            bool, typer.Option("--no-statements", help=t.gettext("Residents only vote; they add no statements."))
        ] = False,
        unmoderated: Annotated[
            bool, typer.Option("--unmoderated", help=t.gettext("Residents' statements are shown without a moderator."))
        ] = False,
        by: Annotated[
            int | None, typer.Option("--by", help=t.gettext("Id of the person who runs it (needs the right to)."))
        ] = None,
        language: Annotated[
            str | None,
            typer.Option("--language", help=t.gettext("Language of title and background (default: the community's).")),
        ] = None,
    ) -> None:
        from bot import cli_commands as work

        options = work.ConsultationOptions(
            community_id=community_id,
            title=title,
            background=background,
            opens=opens,
            closes=closes,
            buildings=tuple(building or ()),
            groups=tuple(group or ()),
            eligibility=eligibility,
            statements=tuple(statement or ()),
            allow_statements=not no_statements,
            moderated=not unmoderated,
            by=by,
            language=language,
        )
        work._execute(t, catalogs, settings(), lambda app: work._consultation_create(t, app, options), migrated=True)

    @consultation_cli.command("list", help=t.gettext("List the consultations with their status and times."))
    def consultation_list(
        community_id: Annotated[
            int | None, typer.Option("--community", help=t.gettext("Only this community's."))
        ] = None,
    ) -> None:
        from bot import cli_commands as work

        work._execute(
            t,
            catalogs,
            settings(),
            lambda app: work._consultation_list(t, app, community_id),
            migrated=True,
            existing=True,
        )

    formats = ", ".join(fmt.value for fmt in ExportFormat)

    @export.command(
        "consultation",
        help=t.gettext(
            "Write a consultation's outcome to a file: a spreadsheet (xlsx), the raw votes (csv), "
            "the committee's report (pdf) or the outcome as data (json)."
        ),
    )
    def export_consultation(
        consultation_id: Annotated[int, typer.Argument(help=t.gettext("The consultation's id."), show_default=False)],
        fmt: Annotated[
            str, typer.Option("--format", help=t.gettext("One of %(formats)s.", formats=formats))
        ] = ExportFormat.XLSX.value,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", help=t.gettext("The file to write; by default consultation-ID-outcome.FORMAT in this folder.")
            ),
        ] = None,
        language: Annotated[
            str | None,
            typer.Option(
                "--language",
                help=t.gettext(
                    "The language of the file: %(languages)s; by default the community's.", languages="zh_Hans, en"
                ),
            ),
        ] = None,
    ) -> None:
        from bot import cli_commands as work

        try:
            chosen = ExportFormat(fmt.strip().lower())
        except ValueError:
            _fail(
                t.gettext("Unknown format %(format)s: choose one of %(formats)s.", format=fmt, formats=formats),
                EXIT_CONFIG,
            )
        if language is not None and language not in LANGUAGES:
            _fail(
                t.gettext(
                    "Unknown language %(language)s: choose one of %(languages)s.",
                    language=language,
                    languages="zh_Hans, en",
                ),
                EXIT_CONFIG,
            )
        work._execute(
            t,
            catalogs,
            settings(),
            lambda app: work._export_consultation(t, app, consultation_id, chosen, out, language),
            migrated=True,
            existing=True,
        )

    return cli


def main() -> None:
    create_cli(os.environ)(prog_name=PROGRAM)


def __getattr__(name: str) -> Any:
    """`from bot.cli import run_app` and the like keep working: what the commands do moved to bot.cli_commands,
    which loads on first use rather than with the command line."""
    if name.startswith("__"):
        raise AttributeError(name)
    from bot import cli_commands

    return getattr(cli_commands, name)


if __name__ == "__main__":
    main()
