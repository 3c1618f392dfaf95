"""The composition root: the one place where Linli's parts are built and wired together."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.console_delivery import ConsoleTransport
from bot.channels.telegram_delivery import TelegramTransport
from bot.command_menu import command_menu
from bot.config import Settings
from bot.context import BotInfo
from bot.conversation import Conversation
from bot.delivery.sender import Sender, SenderOptions
from bot.delivery.transport import Transport
from bot.exports.files import exports_dir
from bot.features import DEFAULT_MANIFESTS
from bot.manifest import Features, Manifest
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


def register_renderers(
    renderers: Renderers, localizers: Localizers, manifests: Sequence[Manifest] = DEFAULT_MANIFESTS
) -> Renderers:
    """Fill the kernel's registry of notification renderers (community.notify) from every manifest; returns it."""
    for manifest in manifests:
        for register in manifest.renderers:
            register(renderers, localizers)
    return renderers


def build_router(manifests: Sequence[Manifest] = DEFAULT_MANIFESTS, features: Features | None = None) -> Router:
    """The conversation router with every feature's handlers (each manifest's register(router) functions; their
    order does not matter). features: already composed from the same manifests (build_app does so once)."""
    router = Router(features if features is not None else Features.of(manifests))
    for manifest in manifests:
        for register in manifest.handlers:
            register(router)
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
    features: Features  # every manifest's declarations, composed (bot.manifest)
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
    manifests: Sequence[Manifest] = DEFAULT_MANIFESTS,
    setting_overrides: Mapping[str, object] | None = None,
) -> App:
    """The single composition root, used by the CLI, the tests and the benchmarks. It opens no connection yet:
    migrating (``community.migrate.upgrade(app.engine)``) is the caller's choice.

    catalogs: already loaded ones (the CLI loads them first for its own messages); by default the compiled
    catalogs are loaded here, and a missing one fails at once rather than at the first message.
    scheduler: makes the scheduler from the job registry (tests pass a FakeScheduler); by default APScheduler
    with its jobs in the app's database.
    manifests: the features to run (bot.features.DEFAULT_MANIFESTS); their handlers, menu entries, jobs,
    settings and personal-data providers are all the app knows of them.
    setting_overrides: values for the features' declared settings, by name, instead of their defaults."""
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
        renderers=register_renderers(Renderers(), localizers, manifests),
    )
    features = Features.of(manifests, setting_overrides)
    router = build_router(manifests, features)
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
        features=features,
        router=router,
        bot=bot,
        conversation=Conversation(uows, router, localizers, bot),
        jobs=jobs,
        scheduler=managed,
        relay=Relay(uows, managed, jobs),
        delivery=build_delivery(settings, uows, localizers),
    )
    for manifest in manifests:
        for register_jobs in manifest.jobs:
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
