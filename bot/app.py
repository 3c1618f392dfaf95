"""The composition root: the one place where Linli's parts are built and wired together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.console_delivery import ConsoleTransport
from bot.channels.telegram_delivery import TelegramTransport
from bot.command_menu import command_menu
from bot.config import Settings
from bot.consultations import jobs as consultation_jobs
from bot.consultations import messages as consultation_messages
from bot.context import BotInfo
from bot.conversation import Conversation
from bot.delivery.sender import Sender, SenderOptions
from bot.delivery.transport import Transport
from bot.exports import jobs as export_jobs
from bot.exports.files import exports_dir
from bot.handlers import consult as consult_handlers
from bot.handlers import consult_admin as consult_admin_handlers
from bot.handlers import consult_compose as consult_compose_handlers
from bot.handlers import consult_export as consult_export_handlers
from bot.handlers import consult_moderation as consult_moderation_handlers
from bot.handlers import help as help_handlers
from bot.handlers import invitations as invitations_handlers
from bot.handlers import join as join_handlers
from bot.handlers import language as language_handlers
from bot.handlers import members as members_handlers
from bot.handlers import menu as menu_handlers
from bot.handlers import notice_admin as notice_admin_handlers
from bot.handlers import notice_compose as notice_compose_handlers
from bot.handlers import notifications as notifications_handlers
from bot.handlers import privacy as privacy_handlers
from bot.handlers import start as start_handlers
from bot.notices import fanout as notice_fanout
from bot.notices import jobs as notice_jobs
from bot.notices.progress_editor import ProgressEditor
from bot.relay import Relay
from bot.rendering import Localizers
from bot.router import Router
from bot.scheduling import DatabaseScheduler, JobRegistry, ManagedScheduler
from community.anonymity import Anonymity
from community.clock import Clock, SystemClock
from community.db import create_engine, session_factory
from community.keys import KEY_FILE_NAME, SiteKey
from community.notify import Renderers
from community.unit_of_work import UnitOfWorkFactory
from i18n import LANGUAGES, Catalogs

log = logging.getLogger(__name__)

# Every feature's handler module; each exposes register(router). Order does not matter.
HANDLER_MODULES: tuple[ModuleType, ...] = (
    help_handlers,
    menu_handlers,
    language_handlers,
    privacy_handlers,
    members_handlers,
    start_handlers,
    join_handlers,
    invitations_handlers,
    notice_compose_handlers,
    notice_admin_handlers,
    notifications_handlers,
    consult_compose_handlers,
    consult_handlers,
    consult_moderation_handlers,
    consult_admin_handlers,
    consult_export_handlers,
)


# Every feature's scheduled jobs: each registers its job names (and any daily job) with
# register_jobs(registry, app), called once the app is built. Order does not matter.
JOB_REGISTRARS: tuple[Callable[[JobRegistry, App], None], ...] = (
    notice_jobs.register_jobs,
    consultation_jobs.register_jobs,
    export_jobs.register_jobs,
)


# Every feature's notification renderers (community.notify): each registers how its notifications read with
# register_renderers(renderers, localizers). Order does not matter.
RENDERER_REGISTRARS: tuple[Callable[[Renderers, Localizers], None], ...] = (
    notice_fanout.register_renderers,
    consultation_messages.register_renderers,
    join_handlers.register_renderers,
)


def register_renderers(renderers: Renderers, localizers: Localizers) -> Renderers:
    """Fill the kernel's registry of notification renderers; returns it."""
    for register in RENDERER_REGISTRARS:
        register(renderers, localizers)
    return renderers


def build_router() -> Router:
    router = Router()
    for module in HANDLER_MODULES:
        module.register(router)
    return router


@dataclass(slots=True)
class App:
    """Everything a front end needs, built once. Close it (or use ``async with``) to release the database."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    uows: UnitOfWorkFactory
    catalogs: Catalogs
    localizers: Localizers
    router: Router
    bot: BotInfo
    conversation: Conversation
    jobs: JobRegistry
    # Started only by `linli run` (see bot/scheduling.py), with the relay (start_jobs); closing the app stops them.
    scheduler: ManagedScheduler
    # Hands the schedule rows that use cases write to the scheduler (bot/relay.py): the jobs' process only.
    relay: Relay
    # The delivery engine (bot/delivery): run by `linli run` beside the channel and by `linli deliver`.
    delivery: Sender

    async def start_jobs(self) -> None:
        """Make this the jobs' process: the scheduler, which, before it runs any job, has the relay hand over every
        schedule row again (the one catch-up); then the relay hands each new row over as it is committed."""
        await self.scheduler.start(before_jobs=self.relay.replay)
        await self.relay.start(replay=False)

    async def aclose(self) -> None:
        await self.relay.stop()
        await self.delivery.aclose()
        if isinstance(self.delivery.on_progress, ProgressEditor):
            await self.delivery.on_progress.aclose()  # its follow-ups, before the database goes
        await self.scheduler.shutdown()
        await self.engine.dispose()

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL; None for any other database."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


async def build_app(
    settings: Settings,
    clock: Clock = SystemClock(),  # noqa: B008 - stateless
    *,
    catalogs: Catalogs | None = None,
    scheduler: Callable[[JobRegistry], ManagedScheduler] | None = None,
) -> App:
    """The single composition root, used by the CLI, the tests and the benchmarks. It opens no connection yet:
    migrating (``community.migrate.upgrade(app.engine)``) is the caller's choice.

    catalogs: already loaded ones (the CLI loads them first for its own messages); by default the compiled
    catalogs are loaded here, and a missing one fails at once rather than at the first message.
    scheduler: makes the scheduler from the job registry (tests pass a FakeScheduler); by default APScheduler
    with its jobs in the app's database."""
    database_file = sqlite_file(settings.database_url)
    if database_file is not None:
        # SQLite creates the file but not the directories above it.
        database_file.parent.mkdir(parents=True, exist_ok=True)
    catalogs = catalogs or Catalogs()
    localizers = Localizers(catalogs)
    engine = create_engine(settings.database_url)
    uows = UnitOfWorkFactory(
        session_factory(engine),
        clock,
        site_key(settings),
        Anonymity(settings.min_group_size),
        renderers=register_renderers(Renderers(), localizers),
    )
    router = build_router()
    bot = BotInfo(username=settings.bot_username)
    log.debug("database: %s", settings.database_label)
    jobs = JobRegistry()
    managed = scheduler(jobs) if scheduler else DatabaseScheduler(settings.database_url, jobs)
    app = App(
        settings=settings,
        clock=clock,
        engine=engine,
        uows=uows,
        catalogs=catalogs,
        localizers=localizers,
        router=router,
        bot=bot,
        conversation=Conversation(uows, router, localizers, bot),
        jobs=jobs,
        scheduler=managed,
        relay=Relay(uows, managed, jobs),
        delivery=build_delivery(settings, uows, localizers),
    )
    for register_jobs in JOB_REGISTRARS:
        register_jobs(jobs, app)
    return app


def site_key(settings: Settings) -> SiteKey:
    """LINLI_SECRET_KEY where it is set (every process of a PostgreSQL deployment shares it), else the key file in
    the data directory, read or made at its first use."""
    if settings.secret_key is not None:
        return SiteKey.of(bytes.fromhex(settings.secret_key.reveal()))
    return SiteKey.in_file(settings.data_dir.absolute() / KEY_FILE_NAME)


def build_delivery(settings: Settings, uows: UnitOfWorkFactory, localizers: Localizers) -> Sender:
    """The delivery engine: a sender through the channel this configuration runs (Telegram with a token, else the
    console), at LINLI_SEND_RATE, editing each notice author's progress message as the notice goes out."""
    transports: dict[str, Transport]
    token = settings.telegram_bot_token
    if token is not None:
        telegram = TelegramTransport(
            token.reveal(),
            api_base=settings.telegram_api_base,
            paid_broadcast=settings.paid_broadcast,
            files_dir=exports_dir(settings.data_dir),
        )
        transports = {telegram.channel: telegram}
    else:
        console = ConsoleTransport(files_dir=exports_dir(settings.data_dir))
        transports = {console.channel: console}
    sender = Sender(uows, transports, SenderOptions(rate=settings.send_rate))
    sender.on_progress = ProgressEditor(uows, localizers, sender.transports)
    return sender


def localized_commands(localizers: Localizers, router: Router) -> dict[str, list[tuple[str, str]]]:
    """The public command menu (Telegram's default setMyCommands: what a stranger may use) in every language:
    {language: [(command, description)]}. A member's chat gets a menu of their own (bot/command_menu.py)."""
    return {language: list(command_menu(router, localizers.get(language), frozenset())) for language in LANGUAGES}
