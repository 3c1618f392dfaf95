"""Channel-neutral incoming events. Channel adapters build these; handlers never see a framework type.

Every adapter hands its events through ``clean_event`` before the conversation sees them: whatever a person types
or a client sends, NUL bytes, lone surrogates or values longer than any column, reaches the services as text a
database stores."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final


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


# What a channel may hand on, field by field: the database column's length, or Telegram's own limit where that is
# the smaller one (a message's text, a caption, callback data). Longer values are cut; the services' own checks
# (a name of at most 100 characters, a statement of at most 280) then refuse what is still too long for them.
TEXT_LIMIT: Final = 4096  # Telegram: a message's text
CAPTION_LIMIT: Final = 1024  # Telegram: a photo's or a document's caption
CALLBACK_LIMIT: Final = 64  # Telegram: callback data, in bytes
ACCOUNT_LIMIT: Final = 64  # channel_account.external_id and chat_id
NAME_LIMIT: Final = 129  # Telegram: first name (64) and last name (64), with a space between
USERNAME_LIMIT: Final = 64  # channel_account.username (Telegram's are at most 32)
LANGUAGE_CODE_LIMIT: Final = 16  # channel_account.language_code
PHONE_LIMIT: Final = 64  # past any phone number: clean_phone refuses what is not one, with its reason
FILE_LIMIT: Final = 255  # attachment_ref and attachment_name
COMMAND_LIMIT: Final = 64  # Telegram: a command's name is at most 32 characters

# C0 controls except tab and newline, and DEL: PostgreSQL refuses NUL in text, and none of them is something a
# person means to write.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
# A str holds a surrogate only when it is unpaired (a pair decodes to one character): not encodable as UTF-8.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def clean_input(value: str, limit: int) -> str:
    """``value`` without control characters (tab and newline stay), lone surrogates replaced by U+FFFD, cut to
    ``limit`` characters."""
    return _LONE_SURROGATE.sub("\ufffd", _CONTROLS.sub("", value))[:limit]


def clean_language_code(value: str | None) -> str | None:
    """A client's language code as a BCP 47-like tag ("zh-hans", "en"); anything else counts as not given."""
    if value is None or len(value) > LANGUAGE_CODE_LIMIT or not _LANGUAGE_CODE.fullmatch(value):
        return None
    return value


def _clean_payload(payload: Payload) -> Payload:
    if isinstance(payload, TextInput):
        return TextInput(clean_input(payload.text, TEXT_LIMIT))
    if isinstance(payload, Command):
        return Command(clean_input(payload.name, COMMAND_LIMIT), clean_input(payload.args, TEXT_LIMIT))
    if isinstance(payload, ButtonPress):
        data = clean_input(payload.data, CALLBACK_LIMIT)
        return replace(payload, data=data.encode()[:CALLBACK_LIMIT].decode(errors="ignore"))
    if isinstance(payload, ContactShared):
        account = payload.contact_account_id
        if account is not None:
            account = clean_input(account, ACCOUNT_LIMIT)
        return ContactShared(clean_input(payload.phone, PHONE_LIMIT), account)
    return FileShared(
        payload.kind,
        clean_input(payload.file_ref, FILE_LIMIT),
        clean_input(payload.file_name, FILE_LIMIT) if payload.file_name is not None else None,
        clean_input(payload.caption, CAPTION_LIMIT),
    )


def clean_event(event: Event) -> Event:
    """The event as the conversation may take it: every field a person or their client filled in cleaned
    (clean_input), cut to its limit, and a language code that is no language code dropped."""
    sender = event.sender
    cleaned = Sender(
        channel=sender.channel,
        account_id=clean_input(sender.account_id, ACCOUNT_LIMIT),
        chat_id=clean_input(sender.chat_id, ACCOUNT_LIMIT),
        display_name=clean_input(sender.display_name, NAME_LIMIT),
        language_code=clean_language_code(sender.language_code),
        username=clean_input(sender.username, USERNAME_LIMIT) if sender.username is not None else None,
    )
    return Event(cleaned, _clean_payload(event.payload))
