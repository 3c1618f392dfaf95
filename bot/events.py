"""Channel-neutral incoming events. Channel adapters build these; handlers never see a framework type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote, through which channel, in which chat."""

    channel: str  # "telegram", "console"
    account_id: str  # the channel's id of the person
    chat_id: str  # the chat the event came from; replies go there
    display_name: str
    language_code: str | None = None  # what the client reports, e.g. Telegram's language_code
    username: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # without the slash, lower case: "start"
    args: str = ""


@dataclass(frozen=True, slots=True)
class TextInput:
    text: str


@dataclass(frozen=True, slots=True)
class ButtonPress:
    data: str  # packed callback data, at most 64 bytes
    message_id: str | None = None  # the message that carried the button, for edits
    callback_id: str | None = None  # for answering the press (Telegram's callback query id)


@dataclass(frozen=True, slots=True)
class ContactShared:
    phone: str
    contact_account_id: str | None = None  # whose contact: Telegram tells us, so we can refuse others'


@dataclass(frozen=True, slots=True)
class FileShared:
    """A photo or a document the person sent, by the channel's own reference to it (Telegram's file_id): Linli
    never downloads it, it only sends the same reference on."""

    kind: str  # "photo" or "document"
    file_ref: str
    file_name: str | None = None
    caption: str = ""


Payload = Command | TextInput | ButtonPress | ContactShared | FileShared


@dataclass(frozen=True, slots=True)
class Event:
    sender: Sender
    payload: Payload
