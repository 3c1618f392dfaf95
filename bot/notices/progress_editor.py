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

from sqlalchemy.exc import SQLAlchemyError

from bot.delivery.transport import Delivered, Refused, RetryAfter, SendResult, Transient, Transport, outbox_buttons
from bot.failures import failure_reference, log_failure
from bot.notices.progress import Progress, author_reader, progress_keyboard, progress_text
from bot.rendering import Localizers
from bot.replies import Keyboard
from community import notices
from community.communities import get_community
from community.errors import LinliError
from community.notice_models import DeliveryStatus, OutboxMessage
from community.outbox import buttons_to_json
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

EDIT_EVERY = 3.0  # seconds between edits of one progress message; the last one is never held back
RETRIES = 5  # network errors on one progress message before it waits for the next change


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
    editor looks again ``every`` seconds later by itself, for as long as the figures keep moving. When the
    channel answers 429, the editor looks again after the ``retry_after`` it asked for, so the final summary is
    never dropped."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        localizers: Localizers,
        transports: Mapping[str, Transport],
        *,
        every: float = EDIT_EVERY,
        max_retries: int = RETRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uows = uows
        self.localizers = localizers
        self.transports = transports
        self.every = every
        self.max_retries = max_retries
        self._failures: dict[int, int] = {}  # network errors in a row, by notice
        self._retry_at: dict[int, float] = {}  # by notice: no edit before this (monotonic), as a 429 asked
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
            again = await self.update(notice_id)
        except (LinliError, SQLAlchemyError) as error:
            # Never stop the sender over a progress message; the next change tries again.
            log_failure(log, failure_reference(), error, f"updating the progress message of notice {notice_id}")
            return
        if again is not None:
            self._follow_up(notice_id, again)

    def _follow_up(self, notice_id: int, after: float) -> None:
        pending = self._follow_ups.get(notice_id)
        if pending is not None and not pending.done():
            return
        self._follow_ups[notice_id] = asyncio.get_running_loop().create_task(
            self._look_again(notice_id, after), name=f"notice-{notice_id}-progress"
        )

    async def _look_again(self, notice_id: int, after: float) -> None:
        await asyncio.sleep(max(after, 0.05))
        async with self._lock:
            self._follow_ups.pop(notice_id, None)
            await self._update_safely(notice_id)

    async def update(self, notice_id: int) -> float | None:
        """Bring the notice's progress message up to date. Returns the seconds after which to look again (it is
        still going out and its figures just moved, a change was held back by the pace, or the channel asked to
        wait), None when there is no need."""
        edit = await self._prepare(notice_id)
        if edit is None:
            return None
        if not edit.finished and self._shown.get(notice_id) == edit.figures:
            return None  # nothing new: the sender's next report wakes the editor again
        wait = self._retry_at.get(notice_id, 0.0) - self._monotonic()
        if wait > 0:
            return wait  # the channel asked to wait (429): nothing is edited before then
        last = self._last_edit.get(notice_id)
        if not edit.finished and last is not None and self._monotonic() - last < self.every:
            return self.every  # held back by the pace, shown at the next look
        transport = self.transports[edit.channel]
        if edit.message_id is None:
            result = await self._send_first(transport, notice_id, edit)
        else:
            result = await transport.edit_text(edit.chat_id, edit.message_id, edit.text, outbox_buttons(edit.keyboard))
        if not isinstance(result, Delivered):
            return await self._not_shown(notice_id, edit, result)
        self._failures.pop(notice_id, None)
        self._retry_at.pop(notice_id, None)
        if edit.finished:
            self._last_edit.pop(notice_id, None)
            self._shown.pop(notice_id, None)
            return None
        self._last_edit[notice_id] = self._monotonic()
        self._shown[notice_id] = edit.figures
        return self.every

    async def _not_shown(self, notice_id: int, edit: _Edit, result: SendResult) -> float | None:
        """The channel did not take the message or the edit. A 429 is waited out, as the sender waits for it, and
        a network error tried again a few times: the summary above all must not be lost. An edit refused for good
        (the author deleted the message) becomes a new message when it carries the summary."""
        log.info("progress message of notice %s not shown (%s)", notice_id, type(result).__name__)
        if isinstance(result, RetryAfter):
            self._retry_at[notice_id] = self._monotonic() + result.seconds
            return max(result.seconds, self.every)
        if isinstance(result, Transient):
            failures = self._failures[notice_id] = self._failures.get(notice_id, 0) + 1
            if failures <= self.max_retries:
                return max(self.every, 1.0) * 2.0**failures
        elif isinstance(result, Refused) and edit.finished and edit.message_id is not None:
            async with self.uows() as uow:
                await notices.release_progress_message(uow, notice_id)
                await uow.commit()
            return 0.0  # the next look sends the summary as a new message
        self._failures.pop(notice_id, None)
        self._retry_at.pop(notice_id, None)
        self._last_edit.pop(notice_id, None)
        self._shown.pop(notice_id, None)
        return None

    async def _prepare(self, notice_id: int) -> _Edit | None:
        async with self.uows() as uow:
            await notices.finish_if_settled(uow, notice_id)
            # As it is now: finish_if_settled changes the status with an UPDATE that leaves a loaded row as it was.
            notice = await notices.current_notice(uow, notice_id)
            if notice is None:
                return None
            await uow.commit()
            channel, chat_id = notice.progress_channel, notice.progress_chat_id
            if channel is None or chat_id is None or notice.author_id is None:
                return None  # nobody to tell (sent by the system, or the author erased their data)
            if channel not in self.transports:
                log.warning("no transport for %s: progress of notice %s not shown", channel, notice_id)
                return None
            finished = notices.is_over(notice)
            message_id = notices.progress_message_shown(notice)
            if message_id is None and notice.progress_message_id is not None:
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
        claimed = await notices.claim_progress_message(uow, notice_id)
        await uow.commit()
        return claimed

    async def _send_first(self, transport: Transport, notice_id: int, edit: _Edit) -> SendResult:
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
            else:  # given back: the next look tries again
                await notices.release_progress_message(uow, notice_id)
            await uow.commit()
        return result
