"""A fake Telegram Bot API HTTP server shared by the tests and the benchmarks.

It speaks enough of https://core.telegram.org/bots/api for a real aiogram ``Bot`` (or any
plain HTTP client) to run against it: long polling with offset confirmation, sending and
editing messages, callback answers, bot commands, documents and chat actions.  Replies use
Telegram's JSON envelope and error format, and the validation Telegram applies to message
text is reproduced closely enough to catch real bugs (unescaped user text in HTML, overlong
messages, oversized callback data).

Typical use::

    async with FakeBotApi() as fake:
        bot = Bot(fake.token, session=AiohttpSession(api=fake.api_server()))
        fake.push_message(42, "/start")
        ...  # run the dispatcher
        (reply,) = await fake.wait_for_messages(42, 1)

Everything here must be used from the event loop that runs the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from aiohttp import web

if TYPE_CHECKING:
    from aiogram.client.telegram import TelegramAPIServer

__all__ = [
    "CallbackAnswer",
    "FakeBotApi",
    "HtmlParseError",
    "SentMessage",
    "parse_telegram_html",
]

MAX_MESSAGE_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64

# Parameters that Telegram expects as JSON objects/arrays.  aiogram (and most clients using
# multipart or form encoding) send them as JSON-encoded strings.
_JSON_FIELDS: Final = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "allowed_updates",
    }
)

_BUTTON_ACTIONS: Final = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)

_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
_BOT_COMMAND_PREFIX_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")
_QUERY_EXPIRED: Final = "query is too old and response timeout expired or query ID is invalid"


# --------------------------------------------------------------------------------------
# Recorded traffic
# --------------------------------------------------------------------------------------


@dataclass
class SentMessage:
    """One piece of outgoing traffic that changed what a chat shows.

    ``method`` is ``"sendMessage"``, ``"editMessageText"`` or ``"sendDocument"``.  ``text`` and
    ``caption`` are exactly what the bot sent (HTML tags and all); ``plain_text`` is what the
    user sees (tags stripped, entities unescaped) for the text or caption.
    """

    chat_id: int
    message_id: int
    text: str | None
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    method: str
    document_name: str | None = None
    document_bytes: bytes | None = None
    caption: str | None = None
    plain_text: str | None = None

    def buttons(self) -> list[dict[str, Any]]:
        """All inline keyboard buttons, row by row, flattened (empty without an inline keyboard)."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard") or []
        return [button for row in rows for button in row]


@dataclass
class CallbackAnswer:
    """An ``answerCallbackQuery`` call for a query created by :meth:`FakeBotApi.push_callback`."""

    callback_query_id: str
    user_id: int
    text: str | None
    show_alert: bool
    url: str | None


# --------------------------------------------------------------------------------------
# Telegram's HTML dialect
# --------------------------------------------------------------------------------------


class HtmlParseError(ValueError):
    """Raised by :func:`parse_telegram_html`; the message mimics Telegram's wording."""


_ALLOWED_TAGS: Final = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "tg-spoiler",
        "span",
        "blockquote",
        "tg-emoji",
    }
)
_TAG_ENTITY: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE: Final = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8}));")
_SPECIAL_RE: Final = re.compile(r"[<&]")
_SPACES: Final = frozenset(" \t\r\n\f\v")
_NAME_TOKEN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


def _utf16_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, index: int) -> tuple[str, int] | None:
    """Decode the HTML entity starting at ``text[index] == '&'``: (character, end index)."""
    match = _ENTITY_RE.match(text, index)
    if match is None:
        return None
    named, decimal, hexadecimal = match.groups()
    if named is not None:
        return _NAMED_ENTITIES[named], match.end()
    code_point = int(decimal) if decimal is not None else int(hexadecimal, 16)
    if code_point == 0 or code_point > 0x10FFFF or 0xD800 <= code_point <= 0xDFFF:
        return None
    return chr(code_point), match.end()


def _unescape_attribute(raw: str) -> str:
    # Inside quoted attribute values Telegram decodes valid entities and keeps a stray '&'
    # literally (URLs with query strings are commonly left unescaped in href).
    if "&" not in raw:
        return raw
    parts: list[str] = []
    index = 0
    while (amp := raw.find("&", index)) != -1:
        parts.append(raw[index:amp])
        decoded = _decode_entity(raw, amp)
        if decoded is None:
            parts.append("&")
            index = amp + 1
        else:
            parts.append(decoded[0])
            index = decoded[1]
    parts.append(raw[index:])
    return "".join(parts)


@dataclass
class _OpenTag:
    name: str
    begin: int  # UTF-16 offset into the plain text
    attributes: dict[str, str]


def parse_telegram_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into (plain text, message entities).

    Follows TDLib's parser (tag set, attribute syntax, nesting rules and error wording) with one
    deliberate tightening: a ``&`` in text must start a valid entity (``&lt;``, ``&gt;``,
    ``&amp;``, ``&quot;`` or numeric, terminated by ``;``), so unescaped user text is caught.
    Entity offsets and lengths are in UTF-16 code units, as in the Bot API.
    """
    parts: list[str] = []
    position = 0  # UTF-16 length of the plain text produced so far
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    length = len(text)
    index = 0

    def fail(message: str) -> HtmlParseError:
        return HtmlParseError(message)

    def skip_spaces(k: int) -> int:
        while k < length and text[k] in _SPACES:
            k += 1
        return k

    while index < length:
        special = _SPECIAL_RE.search(text, index)
        stop = special.start() if special is not None else length
        if stop > index:
            chunk = text[index:stop]
            parts.append(chunk)
            position += _utf16_len(chunk)
            index = stop
            continue

        begin = index
        if text[index] == "&":
            decoded = _decode_entity(text, index)
            if decoded is None:
                snippet = text[index : index + 12]
                raise fail(
                    f'Character "&" must be escaped as "&amp;" unless it starts an HTML entity, '
                    f"found {snippet!r} at byte offset {_byte_offset(text, begin)}"
                )
            parts.append(decoded[0])
            position += _utf16_len(decoded[0])
            index = decoded[1]
            continue

        # text[index] == "<"
        if index + 1 < length and text[index + 1] == "/":
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
            k = index + 2
            while k < length and text[k] not in _SPACES and text[k] != ">":
                k += 1
            end_name = text[index + 2 : k].lower()
            k = skip_spaces(k)
            if k >= length or text[k] != ">":
                raise fail(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
            open_tag = stack.pop()
            if end_name and end_name != open_tag.name:
                raise fail(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{open_tag.name}>", found "</{end_name}>"'
                )
            index = k + 1
            _close_entity(open_tag, position, entities)
            continue

        k = index + 1
        while k < length and text[k] not in _SPACES and text[k] != ">":
            k += 1
        if k >= length:
            raise fail(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        tag = text[index + 1 : k].lower()
        if tag not in _ALLOWED_TAGS:
            raise fail(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        attributes: dict[str, str] = {}
        while True:
            k = skip_spaces(k)
            if k >= length:
                raise fail(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            if text[k] == ">":
                k += 1
                break
            name_start = k
            while k < length and text[k] not in _SPACES and text[k] not in "=>":
                k += 1
            attribute = text[name_start:k].lower()
            if not attribute:
                raise fail(f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin)}')
            k = skip_spaces(k)
            if k >= length:
                raise fail(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            if text[k] != "=":
                if tag == "blockquote" and attribute == "expandable":
                    attributes[attribute] = ""
                    continue
                raise fail(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {_byte_offset(text, begin)}"
                )
            k = skip_spaces(k + 1)
            if k >= length:
                raise fail(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            if text[k] in "\"'":
                quote = text[k]
                closing = text.find(quote, k + 1)
                if closing == -1:
                    raise fail(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                value = _unescape_attribute(text[k + 1 : closing])
                k = closing + 1
            else:
                token_start = k
                while k < length and text[k] in _NAME_TOKEN_CHARS:
                    k += 1
                value = text[token_start:k].lower()
                if k >= length:
                    raise fail(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                if text[k] not in _SPACES and text[k] != ">":
                    raise fail(f"Unexpected end of name token at byte offset {_byte_offset(text, token_start)}")
            attributes[attribute] = value
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise fail(f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}')
        if tag == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
            raise fail(
                f'Tag "tg-emoji" must have a valid "emoji-id" attribute at byte offset {_byte_offset(text, begin)}'
            )
        stack.append(_OpenTag(tag, position, attributes))
        index = k

    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')

    for entity in entities:
        entity.pop("_language", None)
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(parts), entities


def _close_entity(open_tag: _OpenTag, position: int, entities: list[dict[str, Any]]) -> None:
    entity_length = position - open_tag.begin
    if entity_length <= 0:
        return
    name = open_tag.name
    entity: dict[str, Any] = {"type": _TAG_ENTITY[name], "offset": open_tag.begin, "length": entity_length}
    attributes = open_tag.attributes
    if name == "a":
        href = attributes.get("href", "")
        if not href:
            return
        entity["url"] = href
    elif name == "code":
        css_class = attributes.get("class", "")
        if css_class.startswith("language-") and len(css_class) > len("language-"):
            entity["_language"] = css_class[len("language-") :]
    elif name == "pre":
        if entities:
            last = entities[-1]
            if (
                last["type"] == "code"
                and last["offset"] == open_tag.begin
                and last["length"] == entity_length
                and "_language" in last
            ):
                entities.pop()
                entity["language"] = last["_language"]
    elif name == "blockquote":
        if "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
    elif name == "tg-emoji":
        entity["custom_emoji_id"] = attributes["emoji-id"]
    entities.append(entity)


# --------------------------------------------------------------------------------------
# Request plumbing
# --------------------------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        return _error_response(self.error_code, self.description, self.retry_after)


def _bad_request(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def _error_response(error_code: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=error_code)


@dataclass
class _Upload:
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class _Params:
    values: dict[str, Any]
    files: dict[str, _Upload]

    def str_(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise _bad_request(f"parameter {name!r} must be a string")

    def int_(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise _bad_request(f"parameter {name!r} must be an integer")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise _bad_request(f"parameter {name!r} must be an integer") from None

    def float_(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise _bad_request(f"parameter {name!r} must be a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad_request(f"parameter {name!r} must be a number") from None

    def bool_(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in {"true", "1"}
        return bool(value)

    def json_(self, name: str) -> Any:
        return self.values.get(name)


def _decode_json_field(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    stripped = value.strip()
    if not stripped:
        return None
    if stripped[0] not in "[{" and name not in {"reply_markup", "scope", "commands"}:
        return value
    try:
        return json.loads(stripped)
    except ValueError:
        if name == "reply_markup":
            raise _bad_request("can't parse reply keyboard markup JSON object") from None
        raise _bad_request(f"can't parse {name} JSON object") from None


_Handler = Callable[[_Params], Awaitable[Any]]


# --------------------------------------------------------------------------------------
# The fake server
# --------------------------------------------------------------------------------------


class FakeBotApi:
    """In-process fake of the Telegram Bot API, bound to 127.0.0.1 on a free port."""

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "linli_test_bot",
        bot_id: int = 123456,
        *,
        bot_first_name: str = "Linli Test",
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.bot_first_name = bot_first_name

        # Hooks
        self.blocked_chats: set[int] = set()
        self._failures: dict[str, deque[_ApiError]] = {}

        # Recorded traffic
        self.sent: list[SentMessage] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.scoped_commands: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        self.call_counts: Counter[str] = Counter()
        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._commands_scope_of: dict[str | None, str] = {}

        # Server-side state
        self._pending: deque[dict[str, Any]] = deque()
        self._last_update_id = 0
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._open_callbacks: dict[str, int] = {}
        self._documents: dict[str, _Upload] = {}
        self._callback_counter = itertools.count(1)
        self._file_counter = itertools.count(1)

        # Wake-ups: each event is replaced after being set, so waiters grab the current one.
        self._updates_event = asyncio.Event()
        self._activity_event = asyncio.Event()  # set after every handled API call
        self._closing = False

        self._runner: web.AppRunner | None = None
        self._port: int | None = None

        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in (
                ("getMe", self._get_me),
                ("deleteWebhook", self._delete_webhook),
                ("getUpdates", self._get_updates),
                ("sendMessage", self._send_message),
                ("editMessageText", self._edit_message_text),
                ("answerCallbackQuery", self._answer_callback_query),
                ("setMyCommands", self._set_my_commands),
                ("getMyCommands", self._get_my_commands),
                ("deleteMyCommands", self._delete_my_commands),
                ("sendDocument", self._send_document),
                ("sendChatAction", self._send_chat_action),
            )
        }

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeBotApi is already running")
        self._closing = False
        # Fresh events in case this instance was used on another event loop before.
        self._updates_event = asyncio.Event()
        self._activity_event = asyncio.Event()
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = int(sock.getsockname()[1])
        self._runner = runner

    async def stop(self) -> None:
        runner = self._runner
        if runner is None:
            return
        self._closing = True
        self._wake_pollers()
        self._runner = None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeBotApi is not started")
        return f"http://127.0.0.1:{self._port}"

    def api_server(self) -> TelegramAPIServer:
        """``TelegramAPIServer`` for ``AiohttpSession(api=...)``."""
        from aiogram.client.telegram import TelegramAPIServer

        return TelegramAPIServer.from_base(self.base_url)

    # ---- hooks -----------------------------------------------------------------------

    def fail_next(self, method: str, error_code: int, description: str, retry_after: int | None = None) -> None:
        """Make the next call of ``method`` fail with this error (calls queue up in order)."""
        entry = self._methods.get(method.lower())
        if entry is None:
            raise ValueError(f"FakeBotApi does not model the method {method!r}")
        self._failures.setdefault(entry[0], deque()).append(_ApiError(error_code, description, retry_after))

    # ---- incoming updates (test side) --------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; assigns (and returns) the next update_id."""
        self._last_update_id += 1
        queued = dict(update)
        queued["update_id"] = self._last_update_id
        self._pending.append(queued)
        self._wake_pollers()
        return self._last_update_id

    def push_message(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str = "Test",
        language_code: str | None = None,
        username: str | None = None,
    ) -> int:
        """A private text message from ``user_id``; its profile becomes the user's profile."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        self._users[user_id] = user
        message = self._user_message(user)
        message["text"] = text
        command = _BOT_COMMAND_PREFIX_RE.match(text)
        if command is not None:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": command.end()}]
        return self.push_update({"message": message})

    def push_contact(
        self,
        user_id: int,
        phone_number: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        contact_user_id: int | None = None,
        language_code: str | None = None,
    ) -> int:
        """The user shares a contact (by default their own, as a ``request_contact`` button does)."""
        user = self._user(user_id, language_code)
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name if first_name is not None else user["first_name"],
            "user_id": contact_user_id if contact_user_id is not None else user_id,
        }
        if last_name is not None:
            contact["last_name"] = last_name
        message = self._user_message(user)
        message["contact"] = contact
        return self.push_update({"message": message})

    def push_callback(self, user_id: int, data: str, message_id: int, *, language_code: str | None = None) -> int:
        """The user taps an inline button with ``data`` under the bot's message ``message_id``."""
        stored = self._messages.get((user_id, message_id))
        if stored is None:
            known = sorted(mid for chat, mid in self._messages if chat == user_id)
            raise ValueError(f"the bot never sent message {message_id} to chat {user_id}; known ids: {known}")
        user = self._user(user_id, language_code)
        query_id = f"{self.bot_id}{next(self._callback_counter):010d}"
        self._open_callbacks[query_id] = user_id
        return self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": stored,
                    "chat_instance": str(-(10**15 + abs(user_id))),
                    "data": data,
                }
            }
        )

    def pending_updates(self) -> int:
        """Number of queued updates not yet confirmed by a getUpdates offset."""
        return len(self._pending)

    # ---- recorded traffic (test side) --------------------------------------------------

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Everything recorded for ``chat_id`` (sends, edits, documents), oldest first."""
        return list(self._sent_by_chat.get(chat_id, ()))

    async def wait_for(
        self,
        predicate: Callable[[list[SentMessage]], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the documented API
    ) -> None:
        """Wait until ``predicate(self.sent)`` holds; TimeoutError with a traffic dump otherwise.

        The predicate is re-evaluated after every API call the fake handles, so it may also look
        at ``callback_answers``, ``commands`` or ``call_counts`` (the argument is ``self.sent``).
        """
        await self._wait_until(lambda: predicate(self.sent), timeout, "a predicate over sent messages")

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the documented API
    ) -> list[SentMessage]:
        """Wait until ``count`` messages were recorded for ``chat_id``; return the first ``count``."""

        def enough() -> bool:
            return len(self._sent_by_chat.get(chat_id, ())) >= count

        await self._wait_until(enough, timeout, f"{count} message(s) to chat {chat_id}")
        return self._sent_by_chat[chat_id][:count] if count > 0 else []

    # ---- internals: updates ------------------------------------------------------------

    def _wake_pollers(self) -> None:
        event = self._updates_event
        self._updates_event = asyncio.Event()
        event.set()

    def _user(self, user_id: int, language_code: str | None) -> dict[str, Any]:
        user = dict(self._users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": "Test"})
        if language_code is not None:
            user["language_code"] = language_code
        return user

    def _next_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}
        chat: dict[str, Any] = {"id": chat_id, "type": "private"}
        user = self._users.get(chat_id)
        if user is not None:
            chat["first_name"] = user["first_name"]
            if "username" in user:
                chat["username"] = user["username"]
        return chat

    def _user_message(self, user: dict[str, Any]) -> dict[str, Any]:
        user_id = int(user["id"])
        return {
            "message_id": self._next_message_id(user_id),
            "from": user,
            "chat": self._chat(user_id),
            "date": int(time.time()),
        }

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _bot_message(self, chat_id: int) -> dict[str, Any]:
        return {
            "message_id": self._next_message_id(chat_id),
            "from": self._bot_user(),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }

    # ---- internals: recording ----------------------------------------------------------

    def _record(self, message: SentMessage) -> None:
        self.sent.append(message)
        self._sent_by_chat.setdefault(message.chat_id, []).append(message)

    def _notify_activity(self) -> None:
        event = self._activity_event
        self._activity_event = asyncio.Event()
        event.set()

    async def _wait_until(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_report(what, seconds))
            event = self._activity_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _timeout_report(self, what: str, timeout: float) -> str:
        lines = [f"timed out after {timeout}s waiting for {what}; {len(self.sent)} message(s) recorded"]
        shown = self.sent[-20:]
        if len(self.sent) > len(shown):
            lines.append(f"  ... {len(self.sent) - len(shown)} earlier message(s) omitted")
        for message in shown:
            body = message.text if message.text is not None else f"[{message.document_name}] {message.caption}"
            if len(body) > 200:
                body = body[:200] + "…"
            buttons = [button.get("text") for button in message.buttons()]
            lines.append(
                f"  {message.method} chat={message.chat_id} id={message.message_id} {body!r}"
                + (f" buttons={buttons}" if buttons else "")
            )
        lines.append(f"  calls: {dict(self.call_counts)}")
        lines.append(f"  unconfirmed updates: {len(self._pending)}")
        return "\n".join(lines)

    # ---- internals: HTTP -----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        finally:
            self._notify_activity()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error_response(401, "Unauthorized")
        method = request.match_info["method"]
        entry = self._methods.get(method.lower())
        if entry is None:
            self.call_counts[method] += 1
            return _error_response(404, "Not Found")
        name, handler = entry
        self.call_counts[name] += 1
        try:
            params = await self._read_params(request)
            queued = self._failures.get(name)
            if queued:
                raise queued.popleft()
            result = await handler(params)
        except _ApiError as error:
            return error.response()
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> _Params:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, _Upload] = {}
        if request.body_exists:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _bad_request("JSON body must be an object")
                values.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = _Upload(value.filename, value.file.read(), value.content_type)
                    elif isinstance(value, bytes | bytearray):
                        values[key] = bytes(value).decode("utf-8")
                    else:
                        values[key] = value
        for key in _JSON_FIELDS.intersection(values):
            values[key] = _decode_json_field(key, values[key])
        return _Params(values, files)

    # ---- internals: validation helpers ----------------------------------------------------

    def _chat_id(self, params: _Params) -> int:
        raw = params.values.get("chat_id")
        if raw is None or raw == "":
            raise _bad_request("chat_id is empty")
        try:
            chat_id = params.int_("chat_id")
        except _ApiError:
            raise _bad_request("chat not found") from None
        assert chat_id is not None
        return chat_id

    def _check_blocked(self, chat_id: int) -> None:
        if chat_id in self.blocked_chats:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")

    def _render(self, text: str, parse_mode: str | None, explicit_entities: Any) -> tuple[str, list[dict[str, Any]]]:
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                return parse_telegram_html(text)
            except HtmlParseError as error:
                raise _bad_request(f"can't parse entities: {error}") from None
        if mode in ("", "markdown", "markdownv2"):
            # Markdown is not modelled: the text is taken literally.
            entities = explicit_entities if isinstance(explicit_entities, list) and not mode else []
            return text, list(entities)
        raise _bad_request(f"unsupported parse_mode {parse_mode!r}")

    def _reply_markup(self, params: _Params) -> dict[str, Any] | None:
        markup = params.json_("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            _validate_inline_keyboard(markup["inline_keyboard"])
        elif not {"keyboard", "remove_keyboard", "force_reply"}.intersection(markup):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        return markup

    def _text_content(self, params: _Params) -> tuple[str, str | None, str, list[dict[str, Any]]]:
        text = params.str_("text")
        if not text:
            raise _bad_request("message text is empty")
        parse_mode = params.str_("parse_mode") or None
        plain, entities = self._render(text, parse_mode, params.json_("entities"))
        if not plain.strip():
            raise _bad_request("message text is empty")
        if len(plain) > MAX_MESSAGE_LENGTH:
            raise _bad_request("message is too long")
        return text, parse_mode, plain, entities

    # ---- methods ---------------------------------------------------------------------------

    async def _get_me(self, params: _Params) -> Any:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _delete_webhook(self, params: _Params) -> Any:
        if params.bool_("drop_pending_updates"):
            self._pending.clear()
        return True

    async def _get_updates(self, params: _Params) -> Any:
        offset = params.int_("offset")
        limit = params.int_("limit")
        limit = 100 if limit is None else min(max(limit, 1), 100)
        timeout = max(params.float_("timeout") or 0.0, 0.0)
        pending = self._pending
        if offset is not None:
            if offset < 0:
                while len(pending) > -offset:
                    pending.popleft()
            else:
                while pending and pending[0]["update_id"] < offset:
                    pending.popleft()
        if not pending and timeout > 0 and not self._closing:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not self._pending and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._updates_event.wait(), remaining)
                except TimeoutError:
                    break
        return list(itertools.islice(self._pending, limit))

    async def _send_message(self, params: _Params) -> Any:
        chat_id = self._chat_id(params)
        text, parse_mode, plain, entities = self._text_content(params)
        markup = self._reply_markup(params)
        self._check_blocked(chat_id)
        message = self._bot_message(chat_id)
        message["text"] = plain
        if entities:
            message["entities"] = entities
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        self._record(
            SentMessage(
                chat_id=chat_id,
                message_id=message["message_id"],
                text=text,
                parse_mode=parse_mode,
                reply_markup=markup,
                method="sendMessage",
                plain_text=plain,
            )
        )
        return message

    async def _edit_message_text(self, params: _Params) -> Any:
        if params.values.get("inline_message_id"):
            raise _bad_request("inline messages are not supported by FakeBotApi")
        chat_id = self._chat_id(params)
        message_id = params.int_("message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        text, parse_mode, plain, entities = self._text_content(params)
        markup = self._reply_markup(params)
        if markup is not None and "inline_keyboard" not in markup:
            raise _bad_request("inline keyboard expected")
        self._check_blocked(chat_id)
        stored = self._messages.get((chat_id, message_id))
        if stored is None:
            raise _bad_request("message to edit not found")
        if "text" not in stored:
            raise _bad_request("there is no text in the message to edit")
        if stored["text"] == plain and stored.get("entities", []) == entities and stored.get("reply_markup") == markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are exactly "
                "the same as a current content and reply markup of the message"
            )
        edited = {key: value for key, value in stored.items() if key not in {"entities", "reply_markup"}}
        edited["text"] = plain
        edited["edit_date"] = int(time.time())
        if entities:
            edited["entities"] = entities
        if markup is not None:
            edited["reply_markup"] = markup
        self._messages[(chat_id, message_id)] = edited
        self._record(
            SentMessage(
                chat_id=chat_id,
                message_id=message_id,
                text=text,
                parse_mode=parse_mode,
                reply_markup=markup,
                method="editMessageText",
                plain_text=plain,
            )
        )
        return edited

    async def _answer_callback_query(self, params: _Params) -> Any:
        query_id = params.str_("callback_query_id")
        if not query_id:
            raise _bad_request("query ID is empty")
        user_id = self._open_callbacks.pop(query_id, None)
        if user_id is None:
            raise _bad_request(_QUERY_EXPIRED)
        self.callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                user_id=user_id,
                text=params.str_("text"),
                show_alert=params.bool_("show_alert"),
                url=params.str_("url"),
            )
        )
        return True

    def _commands_key(self, params: _Params) -> tuple[str, str | None]:
        scope = params.json_("scope")
        if scope is None or scope == "":
            scope_key = "default"
        elif isinstance(scope, dict) and isinstance(scope.get("type"), str):
            scope_key = str(scope["type"])
            for extra in ("chat_id", "user_id"):
                if extra in scope:
                    scope_key += f":{scope[extra]}"
        else:
            raise _bad_request("can't parse BotCommandScope JSON object")
        language_code = params.str_("language_code") or None
        return scope_key, language_code

    async def _set_my_commands(self, params: _Params) -> Any:
        commands = params.json_("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("too many commands specified")
        cleaned: list[dict[str, Any]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("can't parse BotCommand JSON object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or _COMMAND_RE.fullmatch(name.removeprefix("/").lower()) is None:
                raise _bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad_request("command description must be 1-256 characters")
            cleaned.append({"command": name.removeprefix("/").lower(), "description": description})
        key = self._commands_key(params)
        if not cleaned:
            self._forget_commands(key)
            return True
        self.scoped_commands[key] = cleaned
        self.commands[key[1]] = cleaned
        self._commands_scope_of[key[1]] = key[0]
        return True

    def _forget_commands(self, key: tuple[str, str | None]) -> None:
        self.scoped_commands.pop(key, None)
        scope_key, language_code = key
        if self._commands_scope_of.get(language_code) == scope_key:
            self.commands.pop(language_code, None)
            del self._commands_scope_of[language_code]

    async def _get_my_commands(self, params: _Params) -> Any:
        return list(self.scoped_commands.get(self._commands_key(params), []))

    async def _delete_my_commands(self, params: _Params) -> Any:
        self._forget_commands(self._commands_key(params))
        return True

    async def _send_document(self, params: _Params) -> Any:
        chat_id = self._chat_id(params)
        upload = self._document_upload(params)
        caption = params.str_("caption") or None
        parse_mode = params.str_("parse_mode") or None
        plain_caption: str | None = None
        caption_entities: list[dict[str, Any]] = []
        if caption is not None:
            plain_caption, caption_entities = self._render(caption, parse_mode, params.json_("caption_entities"))
            if len(plain_caption) > MAX_CAPTION_LENGTH:
                raise _bad_request("message caption is too long")
        markup = self._reply_markup(params)
        self._check_blocked(chat_id)
        serial = next(self._file_counter)
        file_id = f"BQACAgIAAxkBAAI{self.bot_id:x}{serial:08d}"
        self._documents[file_id] = upload
        document: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"AgAD{serial:08d}",
            "file_name": upload.filename,
            "file_size": len(upload.data),
        }
        if upload.content_type:
            document["mime_type"] = upload.content_type
        message = self._bot_message(chat_id)
        message["document"] = document
        if plain_caption:
            message["caption"] = plain_caption
            if caption_entities:
                message["caption_entities"] = caption_entities
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        self._record(
            SentMessage(
                chat_id=chat_id,
                message_id=message["message_id"],
                text=None,
                parse_mode=parse_mode,
                reply_markup=markup,
                method="sendDocument",
                document_name=upload.filename,
                document_bytes=upload.data,
                caption=caption,
                plain_text=plain_caption,
            )
        )
        return message

    def _document_upload(self, params: _Params) -> _Upload:
        if "document" in params.files:
            upload = params.files["document"]
        else:
            reference = params.str_("document")
            if not reference:
                raise _bad_request("there is no document in the request")
            if reference.startswith("attach://"):
                attached = params.files.get(reference.removeprefix("attach://"))
                if attached is None:
                    raise _bad_request("wrong file identifier/HTTP URL specified")
                upload = attached
            elif reference in self._documents:
                upload = self._documents[reference]
            else:
                raise _bad_request("wrong file identifier/HTTP URL specified")
        if not upload.data:
            raise _bad_request("file must be non-empty")
        return upload

    async def _send_chat_action(self, params: _Params) -> Any:
        chat_id = self._chat_id(params)
        action = params.str_("action")
        if not action:
            raise _bad_request('parameter "action" is required')
        if action not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        self._check_blocked(chat_id)
        return True


def _validate_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad_request('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
    buttons: Iterable[Any] = itertools.chain.from_iterable(rows)
    for button in buttons:
        if not isinstance(button, dict):
            raise _bad_request("can't parse inline keyboard button: InlineKeyboardButton should be an Object")
        if not isinstance(button.get("text"), str):
            raise _bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
        if not _BUTTON_ACTIONS.intersection(button):
            raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        data = button.get("callback_data")
        if data is not None and (
            not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
        ):
            raise _bad_request("BUTTON_DATA_INVALID")
