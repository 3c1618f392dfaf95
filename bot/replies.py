"""Channel-neutral replies. Text is Telegram-style HTML (b, i, code, a...) with every piece of user text
escaped; channels that show plain text strip the tags."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ChatRef:
    """A chat other than the one the event came from, e.g. to tell a requester the outcome."""

    channel: str
    chat_id: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    data: str | None = None  # packed callback data (<= 64 bytes)
    url: str | None = None


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class SendText:
    text: str
    buttons: Keyboard = ()
    to: ChatRef | None = None  # None: the chat the event came from
    request_contact: str | None = None  # label of a "share my phone number" reply-keyboard button
    remove_keyboard: bool = False


@dataclass(frozen=True, slots=True)
class EditText:
    message_id: str
    text: str
    buttons: Keyboard = ()


@dataclass(frozen=True, slots=True)
class SendFile:
    filename: str
    content: bytes
    caption: str = ""
    mime_type: str = "application/octet-stream"
    to: ChatRef | None = None


@dataclass(frozen=True, slots=True)
class SendMedia:
    """A photo or document the channel already holds (a file reference a person sent earlier), with a caption."""

    kind: str  # "photo" or "document"
    file_ref: str
    caption: str = ""
    file_name: str | None = None
    buttons: Keyboard = ()
    to: ChatRef | None = None


@dataclass(frozen=True, slots=True)
class EditButtons:
    """Replace only the buttons under a message (its text or caption stays)."""

    message_id: str
    buttons: Keyboard = ()


@dataclass(frozen=True, slots=True)
class AnswerButton:
    """Acknowledges a button press (Telegram shows a short toast when text is given)."""

    text: str | None = None
    alert: bool = False


@dataclass(frozen=True, slots=True)
class SetCommands:
    """The command menu of one chat (Telegram's setMyCommands for that chat): (command, description) pairs in the
    person's language. Channels without a command menu (the console) ignore it."""

    commands: tuple[tuple[str, str], ...]
    to: ChatRef | None = None  # None: the chat the event came from


Reply = SendText | EditText | SendFile | SendMedia | EditButtons | AnswerButton | SetCommands


@dataclass(slots=True)
class Replies:
    """What one event produced, in order."""

    items: list[Reply] = field(default_factory=list)

    def add(self, reply: Reply) -> None:
        self.items.append(reply)
