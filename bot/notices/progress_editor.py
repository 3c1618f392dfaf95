"""The delivery engine's on_progress hook: the author's progress message is sent when their notice starts going
out and edited every few seconds while it does (see bot/notices/progress.py for what it says).

The message goes straight through the channel's transport (it is one message to one person, not a broadcast);
its id is kept on the notice, so another process, or this one after a restart, edits the same message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from bot.delivery.transport import Delivered, Transport
from bot.notices.progress import CLAIMED, Progress, author_reader, progress_keyboard, progress_text
from bot.rendering import Localizers
from bot.replies import Keyboard
from community import notices
from community.communities import get_community
from community.errors import LinliError
from community.notice_models import DeliveryStatus, Notice, NoticeStatus, OutboxMessage
from community.outbox import OutboxButton, buttons_to_json
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

EDIT_EVERY = 3.0  # seconds between edits of one progress message; the last one is never held back


def _outbox_buttons(keyboard: Keyboard) -> tuple[tuple[OutboxButton, ...], ...]:
    return tuple(tuple(OutboxButton(b.label, data=b.data, url=b.url) for b in row) for row in keyboard)


@dataclass(frozen=True, slots=True)
class _Edit:
    channel: str
    chat_id: str
    message_id: str | None  # None: send the first progress message
    text: str
    keyboard: Keyboard
    finished: bool


class ProgressEditor:
    """The delivery engine's on_progress hook. monotonic: the clock that paces edits (injected for tests)."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        localizers: Localizers,
        transports: Mapping[str, Transport],
        *,
        every: float = EDIT_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uows = uows
        self.localizers = localizers
        self.transports = transports
        self.every = every
        self._monotonic = monotonic
        self._last_edit: dict[int, float] = {}
        self._lock = asyncio.Lock()

    async def __call__(self, notice_ids: frozenset[int]) -> None:
        async with self._lock:  # one pass at a time: two passes must not both send a first message
            for notice_id in sorted(notice_ids):
                try:
                    await self.update(notice_id)
                except (LinliError, SQLAlchemyError):
                    # Never stop the sender over a progress message; the next change tries again.
                    log.exception("progress message of notice %s not updated", notice_id)

    async def update(self, notice_id: int) -> None:
        edit = await self._prepare(notice_id)
        if edit is None:
            return
        transport = self.transports.get(edit.channel)
        if transport is None:
            log.warning("no transport for %s: progress of notice %s not shown", edit.channel, notice_id)
            return
        if edit.message_id is None:
            await self._send_first(transport, notice_id, edit)
        else:
            await transport.edit_text(edit.chat_id, edit.message_id, edit.text, _outbox_buttons(edit.keyboard))
        if edit.finished:
            self._last_edit.pop(notice_id, None)
        else:
            self._last_edit[notice_id] = self._monotonic()

    async def _prepare(self, notice_id: int) -> _Edit | None:
        async with self.uows() as uow:
            await notices.finish_if_settled(uow, notice_id)
            notice = await uow.session.get(Notice, notice_id)
            if notice is None:
                return None
            await uow.session.refresh(notice)
            await uow.commit()
            channel, chat_id = notice.progress_channel, notice.progress_chat_id
            if channel is None or chat_id is None or notice.author_id is None:
                return None  # nobody to tell (sent by the system, or the author erased their data)
            finished = notice.status in (NoticeStatus.SENT, NoticeStatus.CANCELLED)
            last = self._last_edit.get(notice_id)
            if not finished and last is not None and self._monotonic() - last < self.every:
                return None
            message_id = notice.progress_message_id
            if message_id == CLAIMED:
                return None  # another process is sending the first message right now
            if message_id is None and not await self._claim(uow, notice_id):
                return None
            figures = await notices.figures(uow, notice_id)
            community = await get_community(uow, notice.community_id)
            reader = await author_reader(uow, self.localizers, notice, community)
            progress = Progress.of(figures, notice.queued_at, uow.clock.now())
            text = progress_text(reader, notice, progress, finished=finished)
            await uow.commit()
            return _Edit(channel, chat_id, message_id, text, progress_keyboard(reader, notice_id), finished)

    @staticmethod
    async def _claim(uow: UnitOfWork, notice_id: int) -> bool:
        """Take the right to send the first progress message, so two processes never both send one."""
        result = await uow.session.exec(
            update(Notice)
            .where(col(Notice.id) == notice_id, col(Notice.progress_message_id).is_(None))
            .values(progress_message_id=CLAIMED)
        )
        await uow.commit()
        return bool(result.rowcount)

    async def _send_first(self, transport: Transport, notice_id: int, edit: _Edit) -> None:
        now = self.uows.clock.now()
        message = OutboxMessage(
            channel=edit.channel,
            chat_id=edit.chat_id,
            text=edit.text,
            buttons=buttons_to_json(_outbox_buttons(edit.keyboard)),
            status=DeliveryStatus.SENDING,
            not_before=now,
            created_at=now,
        )
        result = await transport.send(message)
        async with self.uows() as uow:
            if isinstance(result, Delivered):
                await notices.set_progress_message(uow, notice_id, result.external_id)
            else:  # given back: the next change tries again
                await uow.session.exec(
                    update(Notice).where(col(Notice.id) == notice_id).values(progress_message_id=None)
                )
                log.info("progress message of notice %s not sent (%s)", notice_id, type(result).__name__)
            await uow.commit()
