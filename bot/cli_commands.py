"""What each `linli` command does (bot.cli declares the commands and imports this module when one runs): run the
bot (Telegram or console), migrate, add communities, issue invitations, seed the demo, verify the audit log,
show a notice's delivery, create and list consultations, export an outcome.

A refusal from a service is its translated message and exit code 1 (bot.cli.CommandFailed, _fail). Logging is
configured here, once per command, never at import."""

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import typer
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import App, build_app, localized_commands, sqlite_file
from bot.channels.console import CHANNEL as CONSOLE_CHANNEL
from bot.channels.console import ConsoleSession, ConsoleUser, run_console
from bot.channels.console_delivery import ConsoleTransport
from bot.cli import EXIT_CONFIG, CommandFailed, _fail
from bot.config import Settings
from bot.consultations.buttons import ExportFormat
from bot.context import BotInfo
from bot.features import DEFAULT_MANIFESTS
from bot.labels import ROLE_LABELS
from bot.notices.form import parse_send_time
from bot.rendering import Localizer
from community import audit, notices, outbox, settings
from community.communities import add_community, find_community
from community.demo import NEWCOMER_DESCRIPTION, NEWCOMER_KEY, NEWCOMER_NAME, DemoPeople, seed_demo
from community.errors import LinliError
from community.migrate import database_revision, head_revision, upgrade
from community.models import AuditEntry, Community
from community.notice_models import FINAL_STATUSES, DeliveryStatus
from community.roles import CommunityKind, Role
from community.scope import Scope
from community.unit_of_work import UnitOfWork
from community.verification import create_invitation
from consultation import consultations
from consultation.consultations import ConsultationDraft
from consultation.models import ConsultationStatus, Eligibility
from i18n import N_, Catalogs, Translator

if TYPE_CHECKING:
    # Imported where the Telegram mode starts: aiogram takes seconds to import, which every other command
    # (db upgrade, invite create, ...) would pay for nothing.
    from bot.channels.telegram import TelegramChannel

log = logging.getLogger(__name__)

T = TypeVar("T")

CONSOLE_SETTLE = 10.0  # seconds the console waits for a line's messages to be delivered before it reads on
PROGRESS_WIDTH = 30  # characters of `linli notices status`'s bar
FOLLOW_EVERY = 1.0  # seconds between two lines of `linli notices status --follow`

DELIVERY_STATUS_LABELS: Mapping[DeliveryStatus, str] = {
    DeliveryStatus.QUEUED: N_("queued"),
    DeliveryStatus.SENDING: N_("sending"),
    DeliveryStatus.SENT: N_("sent"),
    DeliveryStatus.FAILED: N_("failed"),
    DeliveryStatus.UNREACHABLE: N_("unreachable"),
    DeliveryStatus.HELD: N_("held for a digest"),
    DeliveryStatus.DIGESTED: N_("sent in a digest"),
    DeliveryStatus.CANCELLED: N_("cancelled"),
    DeliveryStatus.NO_CHANNEL: N_("not reachable on this channel"),
}

CONSULTATION_STATUS_LABELS: Mapping[ConsultationStatus, str] = {
    ConsultationStatus.DRAFT: N_("draft"),
    ConsultationStatus.SCHEDULED: N_("waiting to open"),
    ConsultationStatus.OPEN: N_("open"),
    ConsultationStatus.CLOSED: N_("closed"),
}

KIND_LABELS: Mapping[CommunityKind, str] = {
    CommunityKind.STREET: N_("street"),
    CommunityKind.TOWNSHIP: N_("township"),
    CommunityKind.NEIGHBOURHOOD: N_("neighbourhood"),
    CommunityKind.VILLAGE: N_("village"),
}

# Loggers that would write SQL parameters, i.e. people's names and phone numbers, at INFO or DEBUG.
_QUIET_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg")
# Loggers whose INFO lines are noise at a command line (Alembic announces its context on every check); their
# news is printed by the commands themselves; APScheduler announces every job it adds; WeasyPrint and fontTools
# narrate every step of a PDF. LINLI_LOG_LEVEL=DEBUG shows them again.
_CHATTY_LOGGERS = ("alembic", "apscheduler", "weasyprint", "fontTools")


# ---- logging -----------------------------------------------------------------------------------------------


class RedactingFormatter(logging.Formatter):
    """Masks the given secrets in every formatted line, tracebacks included: a last line of defence should a
    library ever put the bot token into a message or an exception."""

    def __init__(self, fmt: str, secrets: Sequence[str]) -> None:
        super().__init__(fmt)
        self._secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is when a record comes (test runners swap it), not at set-up time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            self.handleError(record)


def configure_logging(settings: Settings) -> None:
    """Idempotent: a second call replaces the handler the first one installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    secrets = [value.reveal() for value in (settings.telegram_bot_token, settings.secret_key) if value is not None]
    handler = _StderrHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root.addHandler(handler)
    root.setLevel(settings.log_level_number)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, settings.log_level_number))
    for name in _CHATTY_LOGGERS:
        level = settings.log_level_number
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(logging.WARNING, level))


# ---- translation -------------------------------------------------------------------------------------------


def _kind_label(t: Translator, kind: CommunityKind) -> str:
    return t.gettext(KIND_LABELS[kind])


def _role_label(t: Translator, role: Role) -> str:
    return t.gettext(ROLE_LABELS[role])


# ---- plumbing ----------------------------------------------------------------------------------------------


def _say(text: str) -> None:
    typer.echo(text)


def _database_problem(t: Translator, settings: Settings, err: SQLAlchemyError | OSError) -> str:
    # Only the driver's first line: SQLAlchemy appends the statement and its parameters, which may hold
    # personal data.
    original = err.orig if isinstance(err, DBAPIError) else err
    detail = (str(original).strip().splitlines() or [type(original).__name__])[0]
    return t.gettext(
        "The database %(database)s could not be used: %(error)s", database=settings.database_label, error=detail
    )


def _execute(
    t: Translator,
    catalogs: Catalogs,
    settings: Settings,
    work: Callable[[App], Awaitable[T]],
    *,
    migrated: bool,
    existing: bool = False,
) -> T:
    """Build the app, run one piece of async work with it, close it; turn refusals into one line and an exit
    code. migrated: the work needs the schema at the newest migration. existing: the work needs a database that is
    there already (it reads, or amends what is there), so a missing SQLite database is refused before anything (a
    directory, an empty file) is created."""
    database_file = sqlite_file(settings.database_url)
    if existing and database_file is not None and not database_file.is_file():
        _fail(
            t.gettext(
                "There is no database at %(path)s yet. Create it with `linli db upgrade` (or `make run`).",
                path=str(database_file),
            )
        )

    async def main() -> T:
        async with await build_app(settings, catalogs=catalogs) as app:
            if migrated:
                await _require_current_schema(t, app.engine)
            return await work(app)

    try:
        return asyncio.run(main())
    except CommandFailed as failure:
        _fail(failure.message, failure.code)
    except LinliError as err:
        _fail(t.gettext(err.message, **err.params))
    except (SQLAlchemyError, ConnectionError, TimeoutError, socket.gaierror) as err:
        # Connection failures reach us unwrapped from the drivers (asyncpg raises ConnectionRefusedError).
        _fail(_database_problem(t, settings, err))
    except OSError as err:
        # Files: the data directory cannot be created, the disk is full, the console cannot save a file.
        _fail(t.gettext("Linli could not go on: %(error)s", error=str(err)))


async def _require_current_schema(t: Translator, engine: AsyncEngine) -> None:
    current = await database_revision(engine)
    head = head_revision()
    if current != head:
        raise CommandFailed(t.gettext("The database is not up to date. Run `linli db upgrade` first."))


# ---- the commands' work ------------------------------------------------------------------------------------


async def _db_upgrade(t: Translator, app: App) -> None:
    before = await database_revision(app.engine)
    await upgrade(app.engine)
    after = await database_revision(app.engine)
    database = app.settings.database_label
    if before == after:
        _say(t.gettext("The database %(database)s was already up to date.", database=database))
    else:
        _say(
            t.gettext(
                "Upgraded the database %(database)s from %(before)s to %(after)s.",
                database=database,
                before=before or t.gettext("empty"),
                after=after or "-",
            )
        )
    async with app.uows() as uow:
        unsealed = await audit.needs_seal(uow)
    if unsealed:
        _say(
            t.gettext(
                "The audit log was written before Linli keyed it: run `linli audit seal` to check it and key it "
                "(see README.md, The audit log)."
            )
        )


async def _existing_community(t: Translator, uow: UnitOfWork, community_id: int) -> Community:
    # The services' NotFound says "That no longer exists", right in a chat; an operator needs the id.
    found = await find_community(uow, community_id)
    if found is None:
        raise CommandFailed(t.gettext("There is no community with id %(id)s.", id=community_id))
    return found


async def _community_add(
    t: Translator,
    app: App,
    *,
    name: str,
    kind: CommunityKind,
    parent: int | None,
    timezone: str,
    language: str,
) -> None:
    async with app.uows() as uow:
        if parent is not None:
            await _existing_community(t, uow, parent)
        community = await add_community(
            uow, name=name, kind=kind, parent_id=parent, timezone=timezone, default_language=language
        )
        await uow.commit()
    _say(
        t.gettext(
            "Added the %(kind)s %(name)s with id %(id)s.",
            kind=_kind_label(t, kind),
            name=community.name,
            id=community.id,
        )
    )


# Every per-community setting, the kernel's and the features' (community.settings).
# What each community may set: every feature's declaration (Feature.community_settings).
SETTINGS: tuple[settings.Setting[Any], ...] = tuple(
    setting for manifest in DEFAULT_MANIFESTS for setting in manifest.feature.community_settings
)


async def _show_settings(t: Translator, app: App, community_id: int) -> None:
    async with app.uows() as uow:
        community = await _existing_community(t, uow, community_id)
        listed = await settings.shown(uow, community_id, SETTINGS)
    _say(t.gettext("Settings of %(name)s (id %(id)s):", name=community.name, id=community_id))
    for item in listed:
        mark = t.gettext("(default)") if item.is_default else t.gettext("(set for this community)")
        _say(f"  {item.key} = {item.value}  {mark}")
        _say(f"      {t.gettext(item.description)}")
        why = t.gettext("Default %(value)s: %(reason)s", value=item.default, reason=t.gettext(item.reason))
        _say(f"      {why}")


async def _set_setting(t: Translator, app: App, community_id: int, key: str, text: str) -> None:
    setting = settings.find(SETTINGS, key)
    async with app.uows() as uow:
        community = await _existing_community(t, uow, community_id)
        new = await settings.change(uow, community_id, setting, text)
        await uow.commit()
    _say(
        t.gettext("%(name)s: %(key)s is now %(value)s.", name=community.name, key=setting.key, value=setting.show(new))
    )


async def _bot_for_links(t: Translator, app: App) -> BotInfo:
    """The bot deep links must name: with a token, the one Telegram says it is (getMe), as the running bot does;
    in console mode LINLI_BOT_USERNAME."""
    token = app.settings.telegram_bot_token
    if token is None:
        return app.bot
    from bot.channels.aiogram_import import import_aiogram

    import_aiogram()  # here, not at the top (slow), and before aiogram's first import (see that module)
    from aiogram.exceptions import TelegramAPIError

    from bot.channels.telegram import fetch_bot_username

    try:
        username = await fetch_bot_username(token.reveal(), api_base=app.settings.telegram_api_base)
    except TelegramAPIError as err:
        detail = str(err).replace(token.reveal(), "<redacted>")
        raise CommandFailed(
            t.gettext("Telegram did not say the bot's name, so no invitation was made: %(error)s", error=detail)
        ) from err
    return BotInfo(username=username) if username else app.bot


async def _invite_create(
    t: Translator,
    app: App,
    *,
    community_id: int,
    uses: int,
    role: Role,
    household: str | None,
    days: int | None,
) -> None:
    bot = await _bot_for_links(t, app)  # before the invitation is made: no code is lost if Telegram cannot answer
    async with app.uows() as uow:
        community = await _existing_community(t, uow, community_id)
        issued = await create_invitation(
            uow,
            actor_id=None,
            community_id=community_id,
            max_uses=uses,
            role=role,
            household_label=household,
            valid_for=timedelta(days=days) if days is not None else None,
        )
        await uow.commit()
    invitation = issued.invitation
    _say(
        t.gettext(
            "Invitation to %(community)s as %(role)s:", community=community.name, role=_role_label(t, invitation.role)
        )
    )
    _say(t.gettext("Code (shown only this once): %(code)s", code=issued.code))
    _say(t.gettext("Link: %(link)s", link=bot.deep_link(issued.code)))
    if invitation.expires_at is not None:
        until = t.format_datetime(invitation.expires_at, community.timezone)
        _say(
            t.ngettext(
                "It can be used %(num)s time, until %(until)s.",
                "It can be used %(num)s times, until %(until)s.",
                invitation.max_uses,
                until=until,
            )
        )


def _roster(t: Translator, demo: DemoPeople) -> list[str]:
    if not demo.people:
        return []
    lines = [t.gettext("People of the demo (in the console, become one with /as KEY):")]
    width = max((len(person.key) for person in demo.people), default=0)
    for person in demo.people:
        description = t.gettext(person.description, **person.description_params)
        lines.append(f"  {person.key:<{width}}  {person.name} — {description}")
    return lines


async def _seed(app: App, *, people: bool = True) -> DemoPeople:
    async with app.uows() as uow:
        demo = await seed_demo(uow, people=people)
        await uow.commit()
    return demo


async def _demo_seed(t: Translator, app: App, *, console_people: bool) -> None:
    # The console's people only where the console is the channel, or when asked: in a database meant for
    # Telegram their console accounts would be recipients no process ever reaches.
    demo = await _seed(app, people=console_people or app.settings.telegram_bot_token is None)
    _say(t.gettext(demo.outcome))
    for line in _roster(t, demo):
        _say(line)


def _parse_head(t: Translator, value: str | None) -> audit.Head | None:
    if value is None:
        return None
    parsed = audit.Head.parse(value)
    if parsed is None:
        raise CommandFailed(
            t.gettext(
                "%(value)s is not an audit log head: give it as `linli audit head` prints it, COUNT:HASH.",
                value=value.strip()[:80],
            ),
            EXIT_CONFIG,
        )
    return parsed


def _chain_problem(t: Translator, report: audit.ChainReport, broken: AuditEntry | None) -> str:
    """One line on what is wrong with the chain, in the operator's language."""
    problem = t.gettext(report.problem) if report.problem else ""
    if report.expected is not None and report.first_broken_id is None:
        return t.gettext(
            "audit log does not match the published head %(expected)s: %(problem)s. It has %(num)s entries now, "
            "head %(head)s.",
            expected=str(report.expected),
            problem=problem,
            num=report.head.count,
            head=str(report.head),
        )
    if report.legacy:
        return t.gettext(
            "audit log not keyed yet, from entry %(id)s (%(action)s) on: %(problem)s",
            id=report.first_broken_id,
            action=broken.action if broken else "?",
            problem=problem,
        )
    return t.gettext(
        "audit log broken at entry %(id)s (%(action)s): %(problem)s",
        id=report.first_broken_id,
        action=broken.action if broken else "?",
        problem=problem,
    )


async def _checked_chain(t: Translator, app: App, expected: audit.Head | None) -> audit.ChainReport:
    async with app.uows() as uow:
        report = await audit.verify(uow, expected=expected)
        broken = await audit.entry(uow, report.first_broken_id) if report.first_broken_id else None
    if not report.ok:
        raise CommandFailed(_chain_problem(t, report, broken))
    return report


async def _audit_verify(t: Translator, app: App, expect_head: str | None) -> None:
    report = await _checked_chain(t, app, _parse_head(t, expect_head))
    _say(t.ngettext("audit log intact: %(num)s entry", "audit log intact: %(num)s entries", report.entries))
    _say(t.gettext("Head: %(head)s", head=str(report.head)))
    if report.expected is not None:
        _say(t.gettext("It holds the published head %(head)s.", head=str(report.expected)))


async def _audit_head(t: Translator, app: App) -> None:
    report = await _checked_chain(t, app, None)
    _say(
        t.ngettext(
            "The audit log has %(num)s entry. Publish its head, the line below, and check it later with "
            "`linli audit verify --expect-head`:",
            "The audit log has %(num)s entries. Publish its head, the line below, and check it later with "
            "`linli audit verify --expect-head`:",
            report.head.count,
        )
    )
    _say(str(report.head))


async def _audit_seal(t: Translator, app: App, expect_head: str | None) -> None:
    expected = _parse_head(t, expect_head)
    async with app.uows() as uow:
        try:
            sealing = await audit.seal(uow, expected=expected)
        except audit.CannotSeal as refused:
            params = {**refused.params, "problem": t.gettext(refused.problem)}
            raise CommandFailed(t.gettext(refused.message, **params)) from None
        await uow.commit()
    _say(
        t.ngettext(
            "Sealed the audit log: its %(num)s entry from before it was keyed (head %(legacy)s) is keyed now.",
            "Sealed the audit log: its %(num)s entries from before it was keyed (head %(legacy)s) are keyed now.",
            sealing.legacy.count,
            legacy=str(sealing.legacy),
        )
    )
    _say(t.gettext("The new head, to publish:"))
    _say(str(sealing.head))


@dataclass(frozen=True, slots=True)
class ConsultationOptions:
    """`linli consultation create`'s options, as typed."""

    community_id: int
    title: str
    background: str
    opens: str  # "YYYY-MM-DD HH:MM" in the community's time zone
    closes: str
    buildings: Sequence[str]
    groups: Sequence[str]
    eligibility: Eligibility
    statements: Sequence[str]
    allow_statements: bool
    moderated: bool
    by: int | None
    language: str | None


async def _consultation_create(t: Translator, app: App, options: ConsultationOptions) -> None:
    """The chat's use case (consultations.create_consultation) in one transaction: created with its statements,
    and its opening and closing scheduled as rows that `linli run` picks up; when the opening time has passed it
    opens at once and the invitations are queued, exactly as in the chat. --by acts as that person, who needs
    RUN_CONSULTATION; without it the operator at the terminal acts, as `linli invite create` does, and the audit
    log says so."""
    async with app.uows() as uow:
        community = await _existing_community(t, uow, options.community_id)
        draft = ConsultationDraft(
            community_id=options.community_id,
            title=options.title,
            background=options.background,
            language=options.language or community.default_language,
            opens_at=parse_send_time(options.opens, community.timezone),
            closes_at=parse_send_time(options.closes, community.timezone),
            audience=Scope(buildings=tuple(options.buildings), groups=tuple(options.groups)),
            eligibility=options.eligibility,
            allow_statements=options.allow_statements,
            moderated=options.moderated,
        )
        created = await consultations.create_consultation(uow, options.by, draft, options.statements)
        invited = created.invited
        await uow.commit()
    consultation = created.consultation
    _say(t.gettext("Created consultation %(id)s in %(community)s.", id=consultation.id, community=community.name))
    if invited is not None:
        _say(
            t.gettext(
                "It is open now and closes %(closes)s; invitations queued: %(count)s.",
                closes=t.format_datetime(consultation.closes_at, community.timezone),
                count=invited,
            )
        )
        return
    _say(
        t.gettext(
            "It opens %(opens)s and closes %(closes)s; `linli run` opens and closes it on time.",
            opens=t.format_datetime(consultation.opens_at, community.timezone),
            closes=t.format_datetime(consultation.closes_at, community.timezone),
        )
    )


async def _consultation_list(t: Translator, app: App, community_id: int | None) -> None:
    async with app.uows() as uow:
        rows = await consultations.listing(uow, community_id)
    if not rows:
        _say(t.gettext("No consultations yet."))
        return
    for consultation, community in rows:
        _say(
            t.gettext(
                "%(id)s  %(status)s  %(community)s  %(title)s  (%(opens)s – %(closes)s)",
                id=consultation.id,
                status=t.gettext(CONSULTATION_STATUS_LABELS[consultation.status]),
                community=community.name,
                title=consultation.title,
                opens=t.format_datetime(consultation.opens_at, community.timezone),
                closes=t.format_datetime(consultation.closes_at, community.timezone),
            )
        )


# ---- run ---------------------------------------------------------------------------------------------------


def console_users(chrome: Localizer, demo: DemoPeople) -> list[ConsoleUser]:
    """The demo's people, then a newcomer who belongs nowhere yet, to try joining."""
    users = [
        ConsoleUser(
            key=person.key,
            name=person.name,
            language_code=person.language_code,
            phone=person.phone,
            description=chrome.label(person.description, **person.description_params),
        )
        for person in demo.people
    ]
    users.append(ConsoleUser(key=NEWCOMER_KEY, name=NEWCOMER_NAME, description=chrome.label(NEWCOMER_DESCRIPTION)))
    return users


async def serve_console(t: Translator, app: App, stdin: TextIO, stdout: TextIO) -> None:
    demo = await _seed(app)
    if demo.created:
        stdout.write(t.gettext(demo.outcome) + "\n")
    stdout.write(
        t.gettext(
            "Linli is running in the console channel, as the demo's people. "
            "Set TELEGRAM_BOT_TOKEN to run the Telegram bot instead."
        )
        + "\n"
    )
    stdout.write(t.gettext("Type a message or a /command; /as KEY changes who you are; end with Ctrl-D.") + "\n")
    chrome = app.localizers.get(app.settings.language)
    session = ConsoleSession(
        app.conversation, console_users(chrome, demo), chrome, files_dir=app.settings.data_dir / "console"
    )
    transport = app.delivery.transports.get(CONSOLE_CHANNEL)
    if isinstance(transport, ConsoleTransport):
        transport.attach(session, lambda lines: _write_lines(stdout, lines))

    async def settle() -> None:
        # A line's messages to others (a notice) are shown before the next line is read, so a tour or a piped
        # transcript reads the same every time.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONSOLE_SETTLE):
                await app.delivery.settled()

    async with delivering(app):
        # A prompt only for a person at a terminal: a piped transcript stays clean.
        await run_console(session, stdin, stdout, prompt=stdin.isatty(), after_each=settle)


def _write_lines(stdout: TextIO, lines: Sequence[str]) -> None:
    for line in lines:
        stdout.write(line + "\n")
    stdout.flush()


@contextlib.asynccontextmanager
async def delivering(app: App) -> AsyncIterator[None]:
    """The delivery engine runs while the block does; on the way out it stops (sends in flight finish, rows held
    go back to the queue, outcomes are recorded)."""
    running = asyncio.ensure_future(app.delivery.run())
    try:
        yield
    finally:
        await app.delivery.stop()
        await running


def telegram_channel(app: App) -> "TelegramChannel":
    from bot.channels.telegram import TelegramChannel  # here, not at the top: slow import, see above

    token = app.settings.telegram_bot_token
    if token is None:
        raise ValueError("no TELEGRAM_BOT_TOKEN")
    return TelegramChannel(
        token.reveal(),
        app.conversation,
        api_base=app.settings.telegram_api_base,
        localized_commands=localized_commands(app.localizers, app.router),
        polling_timeout=app.settings.polling_timeout,
    )


@contextlib.asynccontextmanager
async def stopped_by_signals(stop: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """While inside, SIGINT and SIGTERM call ``stop``; on leaving, the handlers go and those stops are awaited."""
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Future[None]] = []
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers on this platform/thread
            loop.add_signal_handler(sig, lambda: stopping.append(asyncio.ensure_future(stop())))
    try:
        yield
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if stopping:
            await asyncio.gather(*stopping)


async def serve_telegram(t: Translator, channel: "TelegramChannel", stdout: TextIO) -> None:
    """Long-poll until SIGINT or SIGTERM, then stop cleanly: updates in flight are finished, not dropped."""
    async with stopped_by_signals(channel.stop):
        running = asyncio.ensure_future(channel.run())
        started = asyncio.ensure_future(channel.wait_started())
        try:
            await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
        if not running.done():
            stdout.write(
                t.gettext(
                    "Linli is running on Telegram as @%(name)s (long polling). "
                    "Unset TELEGRAM_BOT_TOKEN to use the console channel.",
                    name=channel.bot_username or "?",
                )
                + "\n"
            )
            stdout.flush()
        await running


async def run_app(t: Translator, app: App) -> None:
    """What `linli run` does once the app is built: migrate, start the scheduler, serve Telegram or the console,
    stop the scheduler. This is the one process that runs scheduled jobs (bot/scheduling.py): a second
    `linli run` on the same database would run each due job twice; `linli deliver` never starts it."""
    await upgrade(app.engine)
    # The one `linli run` of a database serves its one channel: rows of any other channel (console accounts in a
    # database now run on Telegram) would wait forever, so its sender ends them as not reachable on this channel.
    app.delivery.ends_other_channels = True
    await app.start_jobs()
    try:
        await _serve(t, app)
    finally:
        await app.relay.stop()
        await app.scheduler.shutdown()


async def _serve(t: Translator, app: App) -> None:
    if app.settings.telegram_bot_token is None:
        await serve_console(t, app, sys.stdin, sys.stdout)
        return
    from bot.channels.aiogram_import import import_aiogram

    import_aiogram()  # here, not at the top (slow), and before aiogram's first import (see that module)
    from aiogram.exceptions import TelegramAPIError

    try:
        async with delivering(app):
            await serve_telegram(t, telegram_channel(app), sys.stdout)
    except TelegramAPIError as err:
        # aiogram's messages name the method and Telegram's description, not the token; masked all the same.
        detail = str(err).replace(app.settings.telegram_bot_token.reveal(), "<redacted>")
        raise CommandFailed(t.gettext("The Telegram bot could not start: %(error)s", error=detail)) from err


async def serve_delivery(t: Translator, app: App, stdout: TextIO) -> None:
    """`linli deliver`: only the delivery engine (no channel, no scheduler), until SIGINT or SIGTERM. A second
    process beside `linli run` when one cannot keep up; on PostgreSQL they never send the same message."""
    if app.settings.telegram_bot_token is None:
        raise CommandFailed(t.gettext("`linli deliver` sends through Telegram: set TELEGRAM_BOT_TOKEN."), EXIT_CONFIG)
    async with stopped_by_signals(app.delivery.stop):
        running = asyncio.ensure_future(app.delivery.run())
        stdout.write(
            t.gettext(
                "Linli is delivering messages, at most %(rate)s a second. Ctrl-C stops it.",
                rate=t.format_number(app.settings.send_rate),
            )
            + "\n"
        )
        stdout.flush()
        await running


def progress_bar(done: int, total: int, width: int = PROGRESS_WIDTH) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


def _status_lines(t: Translator, notice_id: int, counts: Mapping[DeliveryStatus, int]) -> list[str]:
    total = sum(counts.values())
    if not total:
        return [t.gettext("Nothing is queued for notice %(id)s yet.", id=notice_id)]
    sent = counts[DeliveryStatus.SENT] + counts[DeliveryStatus.DIGESTED]
    done = sum(count for status, count in counts.items() if status in FINAL_STATUSES)
    shown = [
        t.gettext("%(status)s: %(count)s", status=t.gettext(label), count=t.format_number(counts[status]))
        for status, label in DELIVERY_STATUS_LABELS.items()
        if counts[status] or status in (DeliveryStatus.QUEUED, DeliveryStatus.SENT)
    ]
    return [
        t.gettext(
            "Notice %(id)s: %(bar)s %(sent)s of %(total)s sent",
            id=notice_id,
            bar=progress_bar(done, total),
            sent=t.format_number(sent),
            total=t.format_number(total),
        ),
        "  " + "   ".join(shown),
    ]


async def _notices_status(t: Translator, app: App, notice_id: int, *, follow: bool) -> None:
    while True:
        async with app.uows() as uow:
            notice = await notices.current_notice(uow, notice_id)
            if notice is None:
                raise CommandFailed(t.gettext("There is no notice with id %(id)s.", id=notice_id))
            counts = await outbox.status_counts(uow, notice_id)
            settled = await outbox.is_settled(uow, notice_id)
        for line in _status_lines(t, notice_id, counts):
            _say(line)
        over = notices.is_over(notice) or (settled and any(counts.values()))
        if not follow or over:
            return
        await asyncio.sleep(FOLLOW_EVERY)


async def _export_consultation(
    t: Translator, app: App, consultation_id: int, fmt: ExportFormat, out: Path | None, language: str | None
) -> None:
    # Here, not at the top: the exports bring numpy, xlsxwriter and (for a PDF) WeasyPrint and
    # matplotlib, which no other command needs.
    from bot.exports.consultation import export_consultation, export_filename

    async with app.uows() as uow:
        consultation = await consultations.find_consultation(uow, consultation_id)
        if consultation is None:
            raise CommandFailed(t.gettext("There is no consultation with id %(id)s.", id=consultation_id), EXIT_CONFIG)
        community = await _existing_community(t, uow, consultation.community_id)
        # The committee reads it: in the community's language unless --language says otherwise, its time zone.
        reader = app.localizers.get(language or community.default_language, community.timezone)
        target = out if out is not None else Path(export_filename(consultation_id, fmt))
        # Written beside the target and renamed at the end: a failure never leaves half a file under its name.
        partial = target.with_name(f".{target.name}.part")
        try:
            with partial.open("wb") as stream:
                await export_consultation(uow, None, consultation_id, fmt, reader, stream)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    _say(t.gettext("Wrote the outcome of consultation %(id)s to %(path)s.", id=consultation_id, path=str(target)))


# ---- the command line --------------------------------------------------------------------------------------
