"""The console transport of the delivery engine: outbox rows for console chats appear in the console session, so
the console tour shows a notice going out. A message for the person you are is printed at once; one for anyone
else waits in their inbox (seen after `/as KEY`), and the terminal says who got it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from bot.channels.console import CHANNEL, ConsoleSession
from bot.delivery.transport import Delivered, Refused, RetryAfter, SendResult
from bot.exports.files import is_local, read_local
from bot.replies import Button, Keyboard, SendFile, SendMedia, SendText
from community.notice_models import MessageKind, OutboxMessage
from community.outbox import OutboxButton, buttons_from_json

_NOT_OPEN_YET: Final = 1.0  # seconds to hold sending while no console session is attached

Write = Callable[[Sequence[str]], None]


def _keyboard(buttons: tuple[tuple[OutboxButton, ...], ...]) -> Keyboard:
    return tuple(tuple(Button(b.label, data=b.data, url=b.url) for b in row) for row in buttons)


class ConsoleTransport:
    channel = CHANNEL

    def __init__(self, files_dir: Path | None = None) -> None:
        self.files_dir = files_dir  # where the files Linli made are (bot.exports.files); None: no such file
        self._session: ConsoleSession | None = None
        self._write: Write | None = None

    def attach(self, session: ConsoleSession, write: Write) -> None:
        """The console session is open: show deliveries in it, printing with write."""
        self._session = session
        self._write = write

    async def send(self, message: OutboxMessage) -> SendResult:
        session, write = self._session, self._write
        if session is None or write is None:
            return RetryAfter(_NOT_OPEN_YET)  # nobody to show it to yet; not a failure of the message
        keyboard = _keyboard(buttons_from_json(message.buttons))
        reply: SendText | SendMedia | SendFile
        if message.kind is MessageKind.TEXT:
            reply = SendText(message.text, buttons=keyboard)
        elif is_local(message.file_ref):
            # A file Linli made (an export, a picture of the map): handed over whole, as the chat would get it, and
            # saved by the session.
            read = await read_local(self.files_dir, message.file_ref)
            if isinstance(read, Refused):
                return read
            path, content = read
            reply = SendFile(message.file_name or path.name, content, caption=message.text)
        else:
            reply = SendMedia(
                message.kind.value, message.file_ref or "", message.text, file_name=message.file_name, buttons=keyboard
            )
        message_id, lines = session.deliver(message.chat_id, reply)
        write(lines)
        return Delivered(message_id)

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: tuple[tuple[OutboxButton, ...], ...] = ()
    ) -> SendResult:
        session, write = self._session, self._write
        if session is None or write is None:
            return RetryAfter(_NOT_OPEN_YET)
        write(session.deliver_edit(chat_id, message_id, text, _keyboard(buttons)))
        return Delivered(message_id)
