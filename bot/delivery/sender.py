"""The sender: takes due outbox rows, sends them through their channel's transport within Telegram's limits, and
records how each went.

One loop claims rows in batches sized to the rate (about a second of sending, with a lease), hands them out at the
pace the Pacer allows (overall, per chat, per group, pauses after a 429) and sends each in a task of its own.
Outcomes are written in batches, every ``flush_interval`` or sooner when many are waiting, so the database sees a
few statements per batch, not one per message.

Crash safety: at most ``window`` rows are ever sent and not yet recorded; a new send waits while the window is
full. Killed at any moment (SIGKILL), the sender leaves those rows SENDING with a lease that runs out, and the
next claim sends them again: nothing is lost, and at most ``window`` messages are repeated. While alive the sender
renews the lease of every row it holds, so a long 429 pause or a slow request never lets another sender take
them.

Outcomes: Delivered -> SENT. RetryAfter -> all sending pauses that long and the row goes back to the queue
without counting an attempt. Unreachable -> the row, the account and the account's other queued rows are marked,
and the rows of that chat this sender already holds are not sent. Transient -> retried after an exponential
backoff until ``max_attempts`` attempts, then FAILED with the reason. Refused -> FAILED at once.

Rows of a channel this sender has no transport for are left to the process that serves that channel. Only a
sender told that it serves the database alone (``ends_other_channels``: the sender of `linli run`, the one process
per database that runs a channel) ends them as NO_CHANNEL, "not reachable on this channel", at once and then at
every claim, at most once a second: no process will ever send them, and they must not hold their notice open.
`linli deliver`, an extra Telegram sender beside a `linli run`, never ends them.

``on_progress`` is called with the ids of the notices whose rows changed, after they are recorded, at most once
every ``progress_interval`` and once more when the sender stops."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from bot.delivery.pacing import CHAT_INTERVAL, GROUP_INTERVAL, TELEGRAM_RATE, Pacer
from bot.delivery.transport import (
    Closeable,
    Delivered,
    Refused,
    RetryAfter,
    SendResult,
    SendsInParts,
    Transient,
    Transport,
    Unreachable,
)
from bot.failures import failure_reference, log_failure
from community import outbox
from community.notice_models import OutboxMessage
from community.outbox import Outcomes
from community.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

ProgressHook = Callable[[frozenset[int]], Awaitable[None]]
ChatKey = tuple[str, str]

_MIN_BATCH: Final = 10
_MAX_BATCH: Final = 250
_LONG_WAIT: Final = 0.05  # seconds; a shorter wait is a plain sleep, a longer one can be cut short by stop()
_SETTLE_POLL: Final = 0.02


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long a transient failure waits before the next attempt: first, then factor times longer each time."""

    first: float = 2.0
    factor: float = 2.0
    longest: float = 300.0

    def after(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.longest, self.first * self.factor ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class SenderOptions:
    rate: float = TELEGRAM_RATE  # messages a second overall, for this process
    burst: float | None = None  # the pacer's bucket; default 50 ms worth, and at least a tick's messages
    tick: float = 0.1  # a slow sender sends what this many seconds allow at once (at most 10 messages)
    window: int | None = None  # rows sent and not yet recorded, at most; default max(64, 0.2 s worth)
    lease: float = 30.0  # seconds a claim holds a row; renewed every third of it while the sender holds the row
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    flush_interval: float = 0.5  # seconds an outcome may wait to be written (sooner when a batch is ready)
    poll_interval: float = 0.5  # seconds between two claims while nothing is due
    progress_interval: float = 1.0
    hold_limit: float = 10.0  # a row whose chat is busy longer than this goes back to the queue until then
    chat_interval: float = CHAT_INTERVAL
    group_interval: float = GROUP_INTERVAL
    stop_grace: float = 40.0  # seconds stop() lets sends in flight finish (longer than a transport's timeout)
    other_channels_every: float = 1.0  # seconds between two looks for rows of channels nobody serves

    @property
    def effective_window(self) -> int:
        return self.window if self.window is not None else max(64, int(self.rate * 0.2))

    @property
    def batch(self) -> int:
        """Rows a claim takes: about a second's worth, at most _MAX_BATCH (a sixth of a second at 3000/s)."""
        return min(_MAX_BATCH, max(_MIN_BATCH, int(self.rate)))

    @property
    def flush_batch(self) -> int:
        """Outcomes that are written at once rather than at the next flush_interval."""
        return max(8, self.effective_window // 8)


@dataclass(slots=True)
class SenderStats:
    """What this sender did since it started; for logs and benchmarks."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    rate_limited: int = 0  # 429s
    released: int = 0
    flushes: int = 0
    window_full: int = 0  # times a send waited for outcomes to be recorded (the window was full)


def default_owner() -> str:
    """This sender's name on the rows it leases: host, process and a random part (a restarted process is another
    owner, so it waits for its predecessor's leases to run out like any other sender)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Sender:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        transports: Mapping[str, Transport],
        options: SenderOptions | None = None,
        *,
        on_progress: ProgressHook | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        owner: str | None = None,
        ends_other_channels: bool = False,
    ) -> None:
        self.uows = uows
        # True only where this sender serves the database's one channel (`linli run`): see the module's doc.
        self.ends_other_channels = ends_other_channels
        self.transports = dict(transports)
        self.options = options = options or SenderOptions()
        self.on_progress = on_progress
        self.owner = owner or default_owner()
        self.stats = SenderStats()
        # At low rates each message would wake the event loop on its own (about 0.3 ms of CPU each on a small
        # VM): messages go a tick's worth at a time instead, which Telegram's per-second limit allows.
        self._tick = max(1, min(int(options.rate * options.tick), 10))
        self.pacer = Pacer(
            options.rate,
            burst=options.burst if options.burst is not None else max(1.0, options.rate / 20, float(self._tick)),
            chat_interval=options.chat_interval,
            group_interval=options.group_interval,
            clock=monotonic,
        )
        self._mono = monotonic
        self._channels = sorted(self.transports)
        self._parts = {
            channel: transport.parts if isinstance(transport, SendsInParts) else None
            for channel, transport in self.transports.items()
        }
        self._window = options.effective_window
        self._batch = options.batch
        self._flush_batch = options.flush_batch
        self._max_held = self._window + 2 * self._batch  # rows claimed and not yet recorded, at most
        self._low_water = self._batch // 2  # a claim is made when no more rows than this are ready
        self._ready: deque[OutboxMessage] = deque()
        self._waiting: list[tuple[float, int, OutboxMessage]] = []  # (chat free at, seq, row): a heap
        self._seq = itertools.count()
        self._unreachable: set[ChatKey] = set()
        self._sending: set[asyncio.Task[None]] = set()
        self._unsettled = 0  # dispatched rows whose outcome is not yet committed
        self._outcomes = Outcomes()
        self._pending_dispatched = 0  # of the rows in _outcomes, how many were dispatched
        self._pending_notices: set[int] = set()
        self._changed: set[int] = set()  # notices recorded since the last progress call
        self._progress_at = 0.0
        self._progress_task: asyncio.Task[None] | None = None
        self._next_claim = 0.0
        self._next_other_channels = 0.0  # when to look again for rows of channels nobody serves
        self._claims_dry = False  # the last claim found nothing
        self._tick_left = 0  # messages the current tick may still send
        self._requeues = 0  # flushes that put rows back in the queue: a claim running meanwhile missed them
        self._claiming = False
        self._claim_rounds = 0  # claims made so far
        self._wake = asyncio.Event()  # the dispatcher should look again
        self._want_rows = asyncio.Event()  # the claimer should look again
        self._flush_now = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._closing = False
        self._running = False

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def run(self, *, until_idle: bool = False) -> None:
        """Send until stop() (or, with until_idle, until nothing is due, held, in flight or unrecorded)."""
        if self._running:
            raise RuntimeError("Sender.run() is already running")
        self._running = True
        self._stopped.clear()
        self._closing = False
        claimer = asyncio.create_task(self._claim_loop(), name="outbox-claim")
        flusher = asyncio.create_task(self._flush_loop(), name="outbox-flush")
        renewer = asyncio.create_task(self._renew_loop(), name="outbox-renew")
        log.debug("sender %s started: %s messages/s, channels %s", self.owner, self.options.rate, self._channels)
        try:
            await self._dispatch(until_idle)
        finally:
            try:
                await self._shut_down(claimer, flusher, renewer)
            finally:
                self._running = False
                self._stopped.set()
                log.log(
                    logging.INFO if self.stats.claimed else logging.DEBUG,
                    "sender %s stopped: %s sent, %s failed, %s unreachable, %s retried, %s rate-limited",
                    self.owner,
                    self.stats.sent,
                    self.stats.failed,
                    self.stats.unreachable,
                    self.stats.retried,
                    self.stats.rate_limited,
                )

    async def stop(self) -> None:
        """Stop claiming; let sends in flight finish, put held rows back, record everything; returns when done."""
        self._stopping.set()
        self._wake.set()
        if self._running:
            await self._stopped.wait()

    def wake(self) -> None:
        """Claim now rather than at the next poll (new rows were just enqueued)."""
        self._next_claim = 0.0
        self._want_rows.set()

    async def aclose(self) -> None:
        """Stop, then close the progress hook (if it holds tasks) and the transports' connections."""
        await self.stop()
        if isinstance(self.on_progress, Closeable):
            await self.on_progress.aclose()
        for transport in self.transports.values():
            if isinstance(transport, Closeable):
                await transport.aclose()

    async def settled(self) -> bool:
        """Claim at once, then wait until nothing is due, held, in flight or unrecorded and the progress hook is
        done: True then, False if the sender is not running (or stops meanwhile). For the console, which shows a
        line's deliveries before it reads the next line (bounded with asyncio.timeout). Rows due later (after a
        retry's backoff, a scheduled notice) are not waited for."""
        rounds = self._claim_rounds
        self.wake()
        while self._running:
            if self._claim_rounds > rounds and self._idle() and self._progress_done():
                return True
            await asyncio.sleep(_SETTLE_POLL)
        return False

    def _progress_done(self) -> bool:
        return self._progress_task is None or self._progress_task.done()

    @property
    def running(self) -> bool:
        return self._running

    # ---- the dispatch loop -----------------------------------------------------------------------------------

    async def _dispatch(self, until_idle: bool) -> None:
        options = self.options
        pacer = self.pacer
        ready = self._ready
        while not self._stopping.is_set():
            self._wake.clear()
            now = self._mono()
            self._promote(now)
            if len(ready) <= self._low_water:
                self._want_rows.set()
            if not ready:
                if until_idle and self._idle():
                    return
                wake_at = self._waiting[0][0] if self._waiting else now + options.poll_interval
                await self._pause(max(wake_at, pacer.paused_until) - now)
                continue
            message = ready[0]
            key = (message.channel, message.chat_id)
            if key in self._unreachable:
                ready.popleft()
                self._unsettled += 1
                self._settle(message, Unreachable("unreachable: another message to this chat was refused"))
                continue
            free = pacer.chat_free_at(key)
            if free > now:
                ready.popleft()
                if free - now > options.hold_limit:
                    self._release(message, free - now)
                else:
                    heapq.heappush(self._waiting, (free, next(self._seq), message))
                continue
            if self._tick_left > 0:
                delay = pacer.delay()
            else:
                wanted = min(len(ready), self._tick)
                delay = pacer.delay(wanted)
                if delay <= 0:
                    self._tick_left = wanted
            if delay > 0:
                await self._pause(delay)
                continue
            if self._unsettled >= self._window:
                self.stats.window_full += 1
                self._flush_now.set()
                await self._pause(options.flush_interval)
                continue
            ready.popleft()
            self._launch(message, key)
            self._tick_left -= 1

    async def _claim_loop(self) -> None:
        """Keeps the ready queue filled, so the dispatcher never waits for the database."""
        options = self.options
        while not self._stopping.is_set():
            now = self._mono()
            due = max(self._next_claim, self.pacer.paused_until)
            if len(self._ready) > self._low_water or self._held() >= self._max_held or now < due:
                self._want_rows.clear()
                timeout = due - now if now < due else options.poll_interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._want_rows.wait(), timeout)
                continue
            await self._claim()
            self._wake.set()

    def _promote(self, now: float) -> None:
        waiting = self._waiting
        while waiting and waiting[0][0] <= now:
            self._ready.append(heapq.heappop(waiting)[2])

    def _held(self) -> int:
        return len(self._ready) + len(self._waiting) + self._unsettled

    def _idle(self) -> bool:
        return (
            self._claims_dry
            and not self._claiming
            and not self._ready
            and not self._waiting
            and self._unsettled == 0
            and not self._sending
            and not self._outcomes
        )

    async def _pause(self, seconds: float) -> None:
        """Wait up to ``seconds``; a long wait ends early on stop() or wake()."""
        if seconds <= 0:
            await asyncio.sleep(0)
        elif seconds < _LONG_WAIT:
            await asyncio.sleep(seconds)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)

    async def _claim(self) -> None:
        options = self.options
        self._claiming = True
        requeues = self._requeues
        ended: set[int] = set()
        try:
            async with self.uows() as uow:
                now = uow.clock.now()
                if self.ends_other_channels and self._mono() >= self._next_other_channels:
                    self._next_other_channels = self._mono() + options.other_channels_every
                    ended = await outbox.end_other_channels(uow, self._channels, now)
                claimed = await outbox.claim(
                    uow, self.owner, now, self._batch, now + timedelta(seconds=options.lease), self._channels
                )
                await uow.commit()
        except (SQLAlchemyError, OSError) as err:
            log.warning("sender %s could not claim rows: %s", self.owner, _first_line(err))
            self._next_claim = self._mono() + options.poll_interval
            return
        finally:
            self._claiming = False
            self._claim_rounds += 1
        if ended and self.on_progress is not None:
            # Their notices may be over now: the authors' progress messages say so.
            self._changed |= ended
            self._report_progress()
        if claimed:
            self._claims_dry = False
            self.stats.claimed += len(claimed)
            self._ready.extend(claimed)
        elif self._requeues == requeues:
            self._claims_dry = True
            self._next_claim = self._mono() + options.poll_interval
        # else: a flush put rows back while this claim ran and it could not see them; the next claim will.

    def _launch(self, message: OutboxMessage, key: ChatKey) -> None:
        parts_of = self._parts[message.channel]
        parts = parts_of(message) if parts_of is not None else 1
        self.pacer.take(parts)
        self.pacer.note_chat(key, group=message.is_group, messages=parts)
        self._unsettled += 1
        task = asyncio.create_task(self._send(message))
        self._sending.add(task)
        task.add_done_callback(functools.partial(self._sent, message))

    async def _send(self, message: OutboxMessage) -> None:
        transport = self.transports[message.channel]
        if message.edit_of is not None:
            # An edit row (community.notify.edit): the claim put the delivered message's id in external_id.
            result = await transport.edit_text(
                message.chat_id, message.external_id or "", message.text, outbox.buttons_from_json(message.buttons)
            )
        else:
            result = await transport.send(message)
        self._settle(message, result)

    def _sent(self, message: OutboxMessage, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if task.cancelled():
            # Stopped while on the wire: whether it arrived is unknown; it goes back to the queue.
            self._settle(message, None)
            return
        error = task.exception()
        if error is not None:
            # A bug in a transport must not strand the row: it is retried like a network error.
            log_failure(log, failure_reference(), error, f"sending a message through the {message.channel} transport")
            self._settle(message, Transient(f"transport error: {type(error).__name__}"))

    # ---- outcomes --------------------------------------------------------------------------------------------

    def _settle(self, message: OutboxMessage, result: SendResult | None) -> None:
        """Note the outcome of a dispatched row; it is written at the next flush."""
        row_id = message.id
        assert row_id is not None
        outcomes = self._outcomes
        now = self.uows.clock.now()
        if isinstance(result, Delivered):
            outcomes.sent.append((row_id, result.external_id, now))
            self.stats.sent += 1
        elif isinstance(result, RetryAfter):
            self.stats.rate_limited += 1
            self._rate_limited(message, result.seconds, now)
        elif isinstance(result, Unreachable):
            self._unreachable.add((message.channel, message.chat_id))
            outcomes.unreachable.append((row_id, result.reason, message.account_id, message.channel, message.chat_id))
            self.stats.unreachable += 1
        elif isinstance(result, Transient):
            if message.attempts >= self.options.max_attempts:
                outcomes.failed.append((row_id, result.reason))
                self.stats.failed += 1
                log.info("outbox row %s failed after %s attempts: %s", row_id, message.attempts, result.reason)
            else:
                outcomes.retry.append((row_id, now + self.options.backoff.after(message.attempts), result.reason))
                self.stats.retried += 1
        elif isinstance(result, Refused):
            outcomes.failed.append((row_id, result.reason))
            self.stats.failed += 1
            log.info("outbox row %s refused: %s", row_id, result.reason)
        else:
            outcomes.released.append((row_id, now))
            self.stats.released += 1
        self._pending_dispatched += 1
        if message.notice_id is not None:
            self._pending_notices.add(message.notice_id)
        if len(outcomes) >= self._flush_batch or not (self._ready or self._waiting):
            self._flush_now.set()  # a batch is ready, or nothing else is about to go: no reason to wait

    def _rate_limited(self, message: OutboxMessage, seconds: float, now: datetime) -> None:
        seconds = max(seconds, 0.0)
        log.warning("the %s channel asks to wait %ss before sending more", message.channel, seconds)
        self.pacer.pause_until(self._mono() + seconds)
        assert message.id is not None
        self._outcomes.released.append((message.id, now + timedelta(seconds=seconds)))
        if seconds > self.options.hold_limit:
            # A long pause: what this sender holds goes back to the queue rather than waiting here.
            while self._ready:
                self._release(self._ready.popleft(), seconds)
            while self._waiting:
                self._release(heapq.heappop(self._waiting)[2], seconds)

    def _release(self, message: OutboxMessage, after: float) -> None:
        """A claimed row that was not sent goes back to the queue, not before ``after`` seconds from now."""
        assert message.id is not None
        self._outcomes.released.append((message.id, self.uows.clock.now() + timedelta(seconds=after)))
        self.stats.released += 1
        if len(self._outcomes) >= self._flush_batch:
            self._flush_now.set()

    async def _flush_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.options.flush_interval)
            self._flush_now.clear()
            await self._flush()
            # A report held back (too soon after the last, or the hook still busy) goes out on this tick even when
            # nothing more is recorded, so the author's last figures are never stuck until the sender stops.
            self._report_progress()

    async def _flush(self) -> bool:
        """Write the outcomes noted so far in one transaction; False if the database refused (they are kept)."""
        if not self._outcomes:
            return True
        outcomes, self._outcomes = self._outcomes, Outcomes()
        dispatched, self._pending_dispatched = self._pending_dispatched, 0
        notices, self._pending_notices = self._pending_notices, set()
        try:
            async with self.uows() as uow:
                await outbox.record(uow, self.owner, outcomes, uow.clock.now())
                await uow.commit()
        except (SQLAlchemyError, OSError) as err:
            log.warning("sender %s could not record %s outcomes: %s", self.owner, len(outcomes), _first_line(err))
            outcomes.extend(self._outcomes)
            self._outcomes = outcomes
            self._pending_dispatched += dispatched
            self._pending_notices |= notices
            return False
        self.stats.flushes += 1
        self._unsettled -= dispatched
        if outcomes.retry or outcomes.released:
            # Rows went back to the queue: some may be due at once.
            self._claims_dry = False
            self._requeues += 1
            self._next_claim = 0.0
            self._want_rows.set()
        self._wake.set()
        if self.on_progress is not None:
            self._changed |= notices
            self._report_progress()
        return True

    # ---- leases and progress ---------------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        lease = self.options.lease
        while True:
            await asyncio.sleep(lease / 3)
            if not self._held():
                continue
            try:
                async with self.uows() as uow:
                    await outbox.renew(uow, self.owner, uow.clock.now() + timedelta(seconds=lease))
                    await uow.commit()
            except (SQLAlchemyError, OSError) as err:
                log.warning("sender %s could not renew its leases: %s", self.owner, _first_line(err))

    def _report_progress(self, *, final: bool = False) -> None:
        if self.on_progress is None or not self._changed:
            return
        if self._progress_task is not None and not self._progress_task.done():
            return
        now = self._mono()
        if not final and now - self._progress_at < self.options.progress_interval:
            return
        self._progress_at = now
        changed, self._changed = frozenset(self._changed), set()
        self._progress_task = asyncio.create_task(_call(self.on_progress, changed), name="outbox-progress")
        self._progress_task.add_done_callback(_log_progress_failure)

    # ---- stopping --------------------------------------------------------------------------------------------

    async def _shut_down(
        self, claimer: asyncio.Task[None], flusher: asyncio.Task[None], renewer: asyncio.Task[None]
    ) -> None:
        self._stopping.set()  # also when the dispatcher ended on its own (until_idle, or a bug)
        self._want_rows.set()
        await claimer  # a claim under way finishes, so its rows are released below
        if self._sending:
            _, late = await asyncio.wait(set(self._sending), timeout=self.options.stop_grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for message in self._ready:
            self._release(message, 0)
        for _, _, message in self._waiting:
            self._release(message, 0)
        self._ready.clear()
        self._waiting.clear()
        self._closing = True
        self._flush_now.set()
        await flusher
        for _ in range(3):
            if await self._flush():
                break
            await asyncio.sleep(self.options.flush_interval)
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        if self._progress_task is not None:
            await asyncio.wait({self._progress_task})
        self._report_progress(final=True)
        if self._progress_task is not None:
            await asyncio.wait({self._progress_task})


async def _call(hook: ProgressHook, changed: frozenset[int]) -> None:
    await hook(changed)


def _log_progress_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log_failure(log, failure_reference(), error, "reporting delivery progress")


def _first_line(error: BaseException) -> str:
    # The driver's first line only: SQLAlchemy appends statements and parameters, which hold personal data.
    original = getattr(error, "orig", None) or error
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
