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
from bot.notices.fanout import outbox_buttons
from bot.notices.progress import CLAIMED, Progress, author_reader, progress_keyboard, progress_text
from bot.rendering import Localizers
from bot.replies import Keyboard
from community import notices
from community.communities import get_community
from community.errors import LinliError
from community.notice_models import DeliveryStatus, Notice, NoticeStatus, OutboxMessage
from community.outbox import buttons_to_json
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

EDIT_EVERY = 3.0  # seconds between edits of one progress message; the last one is never held back


@dataclass(frozen=True, slots=True)
class _Edit:
    channel: str
    chat_id: str
    message_id: str | None  # None: send the first progress message
    text: str
    keyboard: Keyboard
    finished: bool
    figures: tuple[int, ...]  # what the text says, less the time left (which moves with the clock alone)


class ProgressEditor:
    """The delivery engine's on_progress hook. monotonic: the clock that paces edits (injected for tests).

    Edits of one message are at least ``every`` seconds apart, except the last. A change held back by that pace
    (or reported by the sender too late to matter) is not lost: after an edit, or a change held back, the
    editor looks again ``every`` seconds later by itself, for as long as the figures keep moving."""

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
        self._shown: dict[int, tuple[int, ...]] = {}
        self._follow_ups: dict[int, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()

    async def __call__(self, notice_ids: frozenset[int]) -> None:
        async with self._lock:  # one pass at a time: two passes must not both send a first message
            for notice_id in sorted(notice_ids):
                await self._update_safely(notice_id)

    async def aclose(self) -> None:
        """Stop looking again (when the delivery stops)."""
        tasks = list(self._follow_ups.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._follow_ups.clear()

    async def _update_safely(self, notice_id: int) -> None:
        try:
            if await self.update(notice_id):
                self._follow_up(notice_id)
        except (LinliError, SQLAlchemyError):
            # Never stop the sender over a progress message; the next change tries again.
            log.exception("progress message of notice %s not updated", notice_id)

    def _follow_up(self, notice_id: int) -> None:
        pending = self._follow_ups.get(notice_id)
        if pending is not None and not pending.done():
            return
        self._follow_ups[notice_id] = asyncio.get_running_loop().create_task(
            self._look_again(notice_id), name=f"notice-{notice_id}-progress"
        )

    async def _look_again(self, notice_id: int) -> None:
        await asyncio.sleep(max(self.every, 0.05))
        async with self._lock:
            self._follow_ups.pop(notice_id, None)
            await self._update_safely(notice_id)

    async def update(self, notice_id: int) -> bool:
        """Bring the notice's progress message up to date. True: look again later (it is still going out, and
        either its figures just moved or a change was held back by the pace)."""
        edit = await self._prepare(notice_id)
        if edit is None:
            return False
        if not edit.finished and self._shown.get(notice_id) == edit.figures:
            return False  # nothing new: the sender's next report wakes the editor again
        last = self._last_edit.get(notice_id)
        if not edit.finished and last is not None and self._monotonic() - last < self.every:
            return True  # held back by the pace, shown at the next look
        transport = self.transports[edit.channel]
        if edit.message_id is None:
            if not await self._send_first(transport, notice_id, edit):
                return False
        else:
            await transport.edit_text(edit.chat_id, edit.message_id, edit.text, outbox_buttons(edit.keyboard))
        if edit.finished:
            self._last_edit.pop(notice_id, None)
            self._shown.pop(notice_id, None)
            return False
        self._last_edit[notice_id] = self._monotonic()
        self._shown[notice_id] = edit.figures
        return True

    async def _prepare(self, notice_id: int) -> _Edit | None:
        async with self.uows() as uow:
            await notices.finish_if_settled(uow, notice_id)
            notice = await uow.session.get(Notice, notice_id)
            if notice is None:
                return None
            # finish_if_settled changed the status with an UPDATE that leaves the loaded row as it was.
            await uow.session.refresh(notice)
            await uow.commit()
            channel, chat_id = notice.progress_channel, notice.progress_chat_id
            if channel is None or chat_id is None or notice.author_id is None:
                return None  # nobody to tell (sent by the system, or the author erased their data)
            if channel not in self.transports:
                log.warning("no transport for %s: progress of notice %s not shown", channel, notice_id)
                return None
            finished = notice.status in (NoticeStatus.SENT, NoticeStatus.CANCELLED)
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
            shown = (progress.done, progress.to_go, progress.held, progress.cancelled, progress.acknowledged)
            return _Edit(channel, chat_id, message_id, text, progress_keyboard(reader, notice_id), finished, shown)

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

    async def _send_first(self, transport: Transport, notice_id: int, edit: _Edit) -> bool:
        now = self.uows.clock.now()
        message = OutboxMessage(
            channel=edit.channel,
            chat_id=edit.chat_id,
            text=edit.text,
            buttons=buttons_to_json(outbox_buttons(edit.keyboard)),
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
        return isinstance(result, Delivered)
