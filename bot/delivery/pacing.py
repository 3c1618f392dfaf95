"""Telegram's limits as a pacer: when may the next message go, overall and to one chat.

- Overall, ``rate`` messages a second spread evenly: a token bucket refilled at ``rate`` that holds only a small
  burst (``burst`` tokens, by default 50 ms worth and at least one), so a late wake-up of the event loop can be
  made up for without ever sending a clump. Telegram allows 30 a second per bot, 1000 with paid broadcasts.
- Per private chat one message per ``chat_interval`` (Telegram: 1 s; 1.05 s keeps clear of network jitter).
- Per group chat one per ``group_interval`` (Telegram: 20 a minute; 3.15 s spreads them and keeps clear).
- A 429 says retry_after: nothing at all goes until then (``pause_until``).

It holds no tasks and never sleeps: the sender asks how long to wait and sleeps itself. The clock is monotonic
seconds, injected so tests step time instead of waiting."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Final

TELEGRAM_RATE: Final = 30.0
TELEGRAM_PAID_RATE: Final = 1000.0
CHAT_INTERVAL: Final = 1.05
GROUP_INTERVAL: Final = 3.15
_PRUNE_EVERY: Final = 4096  # chats noted between two sweeps of the per-chat table
_WHOLE: Final = 1.0 - 1e-9  # a token, give or take the rounding of adding up many small refills


class Pacer:
    def __init__(
        self,
        rate: float = TELEGRAM_RATE,
        *,
        burst: float | None = None,
        chat_interval: float = CHAT_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 20)
        self.chat_interval = chat_interval
        self.group_interval = group_interval
        self.clock = clock
        self._tokens = 1.0  # a start is not a burst
        self._stamp = clock()
        self._paused_until = 0.0
        self._chat_free: dict[Hashable, float] = {}
        self._noted = 0

    # ---- overall ---------------------------------------------------------------------------------------------

    def delay(self, messages: int = 1) -> float:
        """Seconds until ``messages`` more (as many as the bucket holds, at most) may go overall (0: now).

        Asking for several lets a slow sender wake once for a few messages instead of once for each: at 30 a
        second, three every 100 ms is still 30 a second, and each wake-up of the event loop costs CPU."""
        now = self.clock()
        if now < self._paused_until:
            return self._paused_until - now
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        wanted = min(float(messages), max(1.0, math.floor(self.burst + 1e-9)))
        if self._tokens >= wanted - 1e-9:
            return 0.0
        return (wanted - self._tokens) / self.rate

    def take(self, messages: int = 1) -> None:
        """Count messages that go now (call after delay() said 0). More than one (a long text sent in parts)
        may leave the bucket in debt, which the next messages wait out."""
        self._tokens -= messages

    def pause_until(self, moment: float) -> None:
        """Nothing goes before this monotonic moment (a 429's retry_after); a later pause wins over an earlier."""
        if moment > self._paused_until:
            self._paused_until = moment
            # The pause ends with one token in the bucket: one message at once, then the even pace again, never
            # a burst saved up while waiting.
            self._tokens = 1.0
            self._stamp = moment

    @property
    def paused_until(self) -> float:
        return self._paused_until

    # ---- per chat --------------------------------------------------------------------------------------------

    def chat_free_at(self, chat: Hashable) -> float:
        """The monotonic moment from which this chat may get a message (in the past when it may now)."""
        return self._chat_free.get(chat, 0.0)

    def note_chat(self, chat: Hashable, *, group: bool, messages: int = 1) -> None:
        """Messages to this chat go now: the next one waits the chat's interval after the last of them."""
        now = self.clock()
        interval = self.group_interval if group else self.chat_interval
        self._chat_free[chat] = now + interval * messages
        self._noted += 1
        if self._noted >= _PRUNE_EVERY:
            self._noted = 0
            self._chat_free = {key: free for key, free in self._chat_free.items() if free > now}
