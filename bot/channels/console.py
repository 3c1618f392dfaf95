"""The console channel: every flow in a terminal, without Telegram.

It drives the same Conversation as the Telegram adapter. Buttons appear as numbered choices; `/as KEY`
switches between the people of the demo community, so both sides of a flow can be tried; messages sent to
someone else wait in their inbox until you switch to them; `/photo NAME caption` and `/document NAME caption`
stand for sending a file. It reads lines, so a transcript can be piped in."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from markupsafe import escape

from bot.conversation import Conversation
from bot.events import (
    ButtonPress,
    Command,
    ContactShared,
    Event,
    FileShared,
    Payload,
    Sender,
    TextInput,
    clean_event,
)
from bot.html import html_to_plain
from bot.rendering import Localizer
from bot.replies import (
    AnswerButton,
    Button,
    ChatRef,
    EditButtons,
    EditText,
    Keyboard,
    Reply,
    SendFile,
    SendMedia,
    SendText,
)
from i18n import N_

CHANNEL = "console"
_COMMAND = re.compile(r"^/(?P<name>[A-Za-z0-9_]+)(?:@\S+)?(?:\s+(?P<args>.*))?$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """Someone you can be in the console; key is both their console account id and their chat id."""

    key: str
    name: str
    language_code: str | None = None
    phone: str | None = None
    description: str = ""


@dataclass(slots=True)
class _Chat:
    keyboard: list[Button] = field(default_factory=list)
    last_message_id: str | None = None
    inbox: list[str] = field(default_factory=list)
    next_message_id: int = 1


class ConsoleSession:
    """One terminal session: the person you currently are, and what each person's chat last showed."""

    def __init__(
        self,
        conversation: Conversation,
        users: Sequence[ConsoleUser],
        chrome: Localizer,
        *,
        files_dir: Path | None = None,
    ) -> None:
        if not users:
            raise ValueError("the console needs at least one person to be")
        self.conversation = conversation
        self.users = {user.key: user for user in users}
        self.chrome = chrome
        self.files_dir = files_dir
        self.current = users[0]
        self._chats: dict[str, _Chat] = {user.key: _Chat() for user in users}

    def _chat(self, key: str) -> _Chat:
        return self._chats.setdefault(key, _Chat())

    def _sender(self) -> Sender:
        user = self.current
        return Sender(CHANNEL, user.key, user.key, user.name, user.language_code)

    async def feed(self, line: str) -> list[str]:
        """One line typed at the prompt; returns what the terminal shows in answer."""
        line = line.rstrip("\n")
        stripped = line.strip()
        if not stripped:
            return []
        match = _COMMAND.match(stripped)
        if match and match["name"] == "as":
            return self._switch((match["args"] or "").strip())
        if match and match["name"] == "who":
            return self.who()
        payload: Payload
        if stripped.isdigit():
            pressed = self._press(int(stripped))
            if isinstance(pressed, list):
                return pressed
            payload = pressed
        elif match and match["name"] == "contact":
            phone = (match["args"] or self.current.phone or "").strip()
            if not phone:
                return [self.chrome.label(N_("Give a number: /contact +8613800000000"))]
            payload = ContactShared(phone=phone, contact_account_id=self.current.key)
        elif match and match["name"] in ("photo", "document"):
            name, _, caption = (match["args"] or "").strip().partition(" ")
            if not name:
                return [self.chrome.label(N_("Name the file: /%(kind)s NAME caption"), kind=match["name"])]
            payload = FileShared(match["name"], f"console:{name}", name, caption.strip())
        elif match:
            payload = Command(match["name"].lower(), (match["args"] or "").strip())
        else:
            payload = TextInput(line)
        replies = await self.conversation.handle(clean_event(Event(self._sender(), payload)))
        return self._show(replies)

    def _press(self, number: int) -> ButtonPress | list[str]:
        chat = self._chat(self.current.key)
        if not 1 <= number <= len(chat.keyboard):
            return [self.chrome.label(N_("There is no choice %(number)s here."), number=number)]
        button = chat.keyboard[number - 1]
        if button.data is None:
            return [self.chrome.label(N_("That is a link: %(url)s"), url=button.url or "")]
        return ButtonPress(button.data, message_id=chat.last_message_id, callback_id=str(number))

    def _switch(self, key: str) -> list[str]:
        user = self.users.get(key)
        if user is None:
            return [self.chrome.label(N_("Nobody here is called %(key)s."), key=key), *self.who()]
        self.current = user
        lines = [self.chrome.label(N_("— you are now %(name)s (%(key)s) —"), name=user.name, key=user.key)]
        chat = self._chat(user.key)
        lines.extend(chat.inbox)
        chat.inbox.clear()
        return lines

    def who(self) -> list[str]:
        lines = [self.chrome.label(N_("People you can be (switch with /as KEY):"))]
        for user in self.users.values():
            marker = "*" if user is self.current else " "
            detail = f" — {user.description}" if user.description else ""
            lines.append(f" {marker} {user.key}: {user.name}{detail}")
        return lines

    def deliver(self, chat_id: str, reply: SendText | SendMedia | SendFile) -> tuple[str, list[str]]:
        """A message from the delivery engine (bot/channels/console_delivery.py), not an answer to a line typed
        here: the person you are sees it at once; anyone else finds it in their inbox, and the terminal says who
        got one. Returns the message's id in that chat and the lines to print now."""
        lines = self._show([replace(reply, to=ChatRef(CHANNEL, chat_id))])
        return self._chat(chat_id).last_message_id or "", lines

    def deliver_edit(self, chat_id: str, message_id: str, text: str, buttons: Keyboard) -> list[str]:
        """The delivery engine changed a message it delivered (a progress message); returns the lines to print
        now (none when the chat is not the one you are in: the change waits in its inbox)."""
        chat = self._chat(chat_id)
        lines = [
            self.chrome.label(N_("(the message above was changed)")),
            *self._message(chat, text, buttons, None, edit_of=message_id),
        ]
        if chat_id == self.current.key:
            return lines
        chat.inbox.extend(lines)
        return []

    def _show(self, replies: Sequence[Reply]) -> list[str]:
        lines: list[str] = []
        here = self._chat(self.current.key)
        for reply in replies:
            if isinstance(reply, SendText):
                target = self._target(reply.to)
                if target is None:
                    lines.extend(self._message(here, reply.text, reply.buttons, reply.request_contact))
                else:
                    key, chat = target
                    chat.inbox.extend(self._message(chat, reply.text, reply.buttons, reply.request_contact))
                    name = self.users[key].name if key in self.users else key
                    lines.append(self.chrome.label(N_("→ a message was sent to %(name)s"), name=name))
            elif isinstance(reply, EditText):
                lines.append(self.chrome.label(N_("(the message above was changed)")))
                lines.extend(self._message(here, reply.text, reply.buttons, None, edit_of=reply.message_id))
            elif isinstance(reply, SendFile):
                target = self._target(reply.to)
                if target is None:
                    lines.extend(self._file(reply, self.current.key))
                else:  # a file the delivery engine brought (an export made off the conversation)
                    key, chat = target
                    chat.inbox.extend(self._file(reply, key))
                    name = self.users[key].name if key in self.users else key
                    lines.append(self.chrome.label(N_("→ a message was sent to %(name)s"), name=name))
            elif isinstance(reply, SendMedia):
                media = self._media_lines(reply)
                target = self._target(reply.to)
                if target is None:
                    lines.extend(self._message(here, media, reply.buttons, None))
                else:
                    key, chat = target
                    chat.inbox.extend(self._message(chat, media, reply.buttons, None))
                    name = self.users[key].name if key in self.users else key
                    lines.append(self.chrome.label(N_("→ a message was sent to %(name)s"), name=name))
            elif isinstance(reply, EditButtons):
                lines.append(self.chrome.label(N_("(the buttons above were changed)")))
                lines.extend(self._message(here, "", reply.buttons, None, edit_of=reply.message_id)[1:])
            elif isinstance(reply, AnswerButton) and reply.text:
                lines.append(f"({reply.text})")
        return lines

    def _media_lines(self, reply: SendMedia) -> str:
        """A photo or document shown as a line naming it, then its caption (HTML, like a message's text)."""
        name = reply.file_name or reply.file_ref.removeprefix("console:")
        shown = self.chrome.label(N_("📎 %(name)s"), name=name)
        return f"{escape(shown)}\n{reply.caption}" if reply.caption else str(escape(shown))

    def _target(self, to: ChatRef | None) -> tuple[str, _Chat] | None:
        if to is None or (to.channel == CHANNEL and to.chat_id == self.current.key):
            return None
        return to.chat_id, self._chat(to.chat_id)

    def _message(
        self,
        chat: _Chat,
        text: str,
        buttons: Keyboard,
        request_contact: str | None,
        edit_of: str | None = None,
    ) -> list[str]:
        lines = html_to_plain(text).splitlines() or [""]
        flat = [button for row in buttons for button in row]
        chat.keyboard = flat
        if edit_of is not None:
            chat.last_message_id = edit_of
        else:
            chat.last_message_id = str(chat.next_message_id)
            chat.next_message_id += 1
        for number, button in enumerate(flat, start=1):
            suffix = f" → {button.url}" if button.url else ""
            lines.append(f"  [{number}] {button.label}{suffix}")
        if request_contact:
            lines.append(f"  [/contact] {request_contact}")
        return lines

    def _file(self, reply: SendFile, key: str) -> list[str]:
        """The file saved in the chat's folder (files_dir/KEY), or only named when there is no files_dir."""
        if self.files_dir is None:
            return [self.chrome.label(N_("📎 %(name)s (%(size)s bytes)"), name=reply.filename, size=len(reply.content))]
        folder = self.files_dir / key
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / Path(reply.filename).name
        path.write_bytes(reply.content)
        saved = self.chrome.label(N_("📎 %(name)s saved to %(path)s"), name=reply.filename, path=str(path))
        return [saved, *html_to_plain(reply.caption).splitlines()]


async def run_console(
    session: ConsoleSession,
    stdin: TextIO,
    stdout: TextIO,
    *,
    prompt: bool = True,
    after_each: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Read lines until the end of input; each answer is printed before the next line is read. after_each runs
    after each line's answer (the CLI waits there for the messages the line sent out to be delivered)."""

    def write(lines: Sequence[str]) -> None:
        for text in lines:
            stdout.write(text + "\n")
        stdout.flush()

    if isinstance(stdin, io.TextIOWrapper):
        # Bytes that are not UTF-8 (a terminal in another encoding, a binary file piped in) are read as U+FFFD
        # rather than ending the session with a UnicodeDecodeError.
        stdin.reconfigure(errors="replace")
    write(session.who())
    while True:
        if prompt:
            stdout.write(f"{session.current.key}> ")
            stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        write(await session.feed(line))
        if after_each is not None:
            await after_each()
