"""A unit of work: one transaction, committed whole or rolled back whole, so bad input or a database error
never leaves anything half-written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from community import notify
from community.anonymity import Anonymity
from community.clock import Clock
from community.keys import SiteKey
from community.notify import Attachment, MessageRef, Recipient, Renderers
from community.outbox import Outgoing
from community.scheduling import JobSpec, request

A = TypeVar("A")


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        key: SiteKey,
        gate: asyncio.Lock | None = None,
        anonymity: Anonymity | None = None,
        scheduled: Callable[[], None] | None = None,
        renderers: Renderers | None = None,
    ) -> None:
        self._sessions = sessions
        self.clock = clock
        # The site key (community.keys), for the keyed hashes: audit chain, pseudonyms, invitation codes.
        self.key = key
        # k (community.anonymity): the smallest audience a process may have, the fewest people whose figures show.
        self.anonymity = anonymity or Anonymity()
        # How notifications become text (community.notify): registered by the composition root.
        self.renderers = renderers if renderers is not None else Renderers()
        self._gate = gate
        self._session: AsyncSession | None = None
        # The audit chain's last hash as this transaction left it (community.audit): writers are serialised
        # for the whole transaction, so after the first entry the head need not be read again.
        self.audit_head: str | None = None
        # People whose roles, memberships or language this unit of work changed: once it has committed, a front
        # end refreshes what it shows them for those (a chat's command menu). Filled by the services that change
        # them (community.communities, people, privacy).
        self.people_changed: set[int] = set()
        # Called after a commit that wrote schedule rows (UnitOfWorkFactory.signal): wakes the relay at once.
        self._signal_scheduled = scheduled
        self._wrote_schedule = False

    @property
    def database_url(self) -> str:
        """The URL of the database this unit of work uses, password included: for a worker process of the same
        app that reads it on a connection of its own (bot/worker.py); never for a log."""
        bind = self._sessions.kw.get("bind")
        if bind is None:
            raise RuntimeError("a unit of work without an engine of its own: no database for a worker to read")
        url: str = bind.url.render_as_string(hide_password=False)
        return url

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        if self._gate is not None:
            await self._gate.acquire()
        self._session = self._sessions()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self.session
        try:
            if exc_type is not None:
                await session.rollback()
        finally:
            await session.close()
            self._session = None
            self.audit_head = None
            self.people_changed = set()
            self._wrote_schedule = False
            if self._gate is not None:
                self._gate.release()

    def schedule(self, spec: JobSpec[A], at: datetime, args: A) -> None:
        """Record, in this transaction, that ``spec`` runs with ``args`` at ``at`` (aware; a time already past
        runs at once). The relay hands it to the scheduler once this commits; a rollback discards it."""
        self.session.add(request(spec, at, args, self.clock.now()))
        self._wrote_schedule = True

    def unschedule(self, spec: JobSpec[A], args: A) -> None:
        """Record, in this transaction, that the job ``spec`` with ``args`` is not to run (if it is scheduled)."""
        self.session.add(request(spec, None, args, self.clock.now()))
        self._wrote_schedule = True

    async def notify(
        self,
        recipients: Iterable[Recipient],
        notification: object,
        *,
        attachment: Attachment | None = None,
        notice_id: int | None = None,
        topic: str | None = None,
        followed_by: Callable[[Recipient], Sequence[Outgoing]] | None = None,
    ) -> int:
        """Tell these people ``notification``, as outbox rows in this transaction (community.notify)."""
        return await notify.notify(
            self,
            self.renderers,
            recipients,
            notification,
            attachment=attachment,
            notice_id=notice_id,
            topic=topic,
            followed_by=followed_by,
        )

    async def edit_notified(self, topic: str, notification: object, *, skip: Sequence[MessageRef] = ()) -> int:
        """Change the copies already sent about ``topic`` to say ``notification`` (community.notify.edit)."""
        return await notify.edit(self, self.renderers, topic, notification, skip=skip)

    async def commit(self) -> None:
        await self.session.commit()
        self.audit_head = None
        if self._wrote_schedule:
            self._wrote_schedule = False
            if self._signal_scheduled is not None:
                self._signal_scheduled()

    async def rollback(self) -> None:
        await self.session.rollback()
        self.audit_head = None
        self.people_changed.clear()
        self._wrote_schedule = False


class UnitOfWorkFactory:
    """What the composition root hands to front ends: a way to open a fresh unit of work.

    On SQLite the units of work of one process take turns. SQLite has a single writer anyway, and two
    transactions that both read and then write would otherwise fail with "database is locked" instead of
    waiting (a read lock cannot be upgraded while another writer holds the file). PostgreSQL needs no gate."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        key: SiteKey,
        anonymity: Anonymity | None = None,
        renderers: Renderers | None = None,
    ) -> None:
        """anonymity: k from the settings (LINLI_MIN_GROUP_SIZE); left out, the documented default k = 5.
        renderers: how notifications become text (community.notify); the composition root fills it."""
        self.sessions = sessions
        self.clock = clock
        self.key = key
        self.anonymity = anonymity or Anonymity()
        self.renderers = renderers if renderers is not None else Renderers()
        bind = sessions.kw.get("bind")
        self._gate = asyncio.Lock() if bind is not None and bind.dialect.name == "sqlite" else None
        # Who wants to know that schedule rows were committed: the relay of the jobs' process, while it runs.
        self._schedule_listeners: list[Callable[[], None]] = []

    def listen_for_schedules(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (it must not block) after every commit that wrote schedule rows."""
        self._schedule_listeners.append(listener)

    def stop_listening(self, listener: Callable[[], None]) -> None:
        if listener in self._schedule_listeners:
            self._schedule_listeners.remove(listener)

    def signal(self) -> None:
        for listener in tuple(self._schedule_listeners):
            listener()

    @property
    def serialized(self) -> bool:
        """True where units of work take turns (SQLite)."""
        return self._gate is not None

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessions,
            self.clock,
            self.key,
            self._gate,
            self.anonymity,
            scheduled=self.signal,
            renderers=self.renderers,
        )
