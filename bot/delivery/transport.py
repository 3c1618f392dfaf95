"""What the sender needs from a channel: send one outbox row, edit a message, and say how it went.

A transport never raises for what the channel answers; it returns one of the results below and the sender
decides: Delivered is recorded, RetryAfter pauses all sending, Unreachable marks the account, Transient is
retried with backoff up to a limit, Refused fails the row at once. Reasons are the channel's own words
(Telegram's description), kept on the row; they never hold the token or the message text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.replies import Keyboard
from community.notice_models import OutboxMessage
from community.outbox import OutboxButton


def outbox_buttons(keyboard: Keyboard) -> tuple[tuple[OutboxButton, ...], ...]:
    """A chat keyboard as an outbox row's buttons: what every feature's renderer hands community.notify."""
    return tuple(tuple(OutboxButton(b.label, data=b.data, url=b.url) for b in row) for row in keyboard)


@dataclass(frozen=True, slots=True)
class Delivered:
    external_id: str  # the channel's message id (of the last part, the one with the buttons)


@dataclass(frozen=True, slots=True)
class RetryAfter:
    seconds: float  # 429: pause ALL sending that long


@dataclass(frozen=True, slots=True)
class Unreachable:
    reason: str  # 403 blocked / deactivated / chat not found


@dataclass(frozen=True, slots=True)
class Transient:
    reason: str  # network, 5xx: retry with backoff


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # 400 etc.: permanent, mark failed


SendResult = Delivered | RetryAfter | Unreachable | Transient | Refused


class Transport(Protocol):
    channel: str

    async def send(self, message: OutboxMessage) -> SendResult: ...

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: tuple[tuple[OutboxButton, ...], ...] = ()
    ) -> SendResult: ...


@runtime_checkable
class SendsInParts(Protocol):
    """A transport that may send one row as several messages (a text too long for one, a caption too long for a
    file): the sender counts each part against the overall rate and the chat's interval."""

    def parts(self, message: OutboxMessage) -> int: ...


@runtime_checkable
class Closeable(Protocol):
    """A transport holding a connection pool; the delivery closes it when it stops."""

    async def aclose(self) -> None: ...
