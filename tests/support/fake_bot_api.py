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

Telegram's limits (off unless asked for)::

    fake = FakeBotApi(limits=TelegramLimits(per_second=5))
    ...
    assert fake.limit_violations() == 0, fake.too_many_requests

With ``limits`` set, a message (``sendMessage``, ``sendPhoto``, ``sendDocument``) over one of Telegram's
limits gets Telegram's 429 with ``retry_after`` and is not recorded: per bot ``per_second`` overall (a token
bucket holding ``per_second`` tokens, refilled continuously; ``allow_paid_broadcast=true`` on a request draws
on ``paid_per_second`` instead), one message per ``chat_interval`` to a private chat, ``group_per_minute`` to a
group (negative chat id) in any minute.  Every limit lets a request come ``tolerance`` seconds (50 ms) early,
for the jitter of loopback HTTP.  ``too_many_requests`` counts the 429s given, by reason.

Standalone, in a process of its own (for benchmarks and crash tests, so its CPU is not the bot's)::

    python -m tests.support.fake_bot_api --port 0 --limit-per-s 30 [--paid-limit 1000]

prints the bound port on stdout when it is ready, serves ``GET /stats`` (what it recorded, as JSON) and
``POST /reset``, and stops on SIGTERM or SIGINT.  ``latency`` (``--latency``) holds every message that long
before answering it, as the round trip to Telegram does, so a sender has many in flight at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import re
import signal
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

if TYPE_CHECKING:
    from aiogram.client.telegram import TelegramAPIServer

__all__ = [
    "MESSAGE_METHODS",
    "CallbackAnswer",
    "FakeBotApi",
    "HtmlParseError",
    "SentMessage",
    "TelegramLimits",
    "parse_telegram_html",
]

MAX_MESSAGE_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64
_MAX_REQUEST_BYTES: Final = 50 * 1024 * 1024

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

    ``method`` is ``"sendMessage"``, ``"editMessageText"``, ``"editMessageReplyMarkup"``, ``"sendDocument"``
    or ``"sendPhoto"``.
    ``text`` and ``caption`` are exactly what the bot sent (HTML tags and all); ``plain_text`` is
    what the user sees (tags stripped, entities unescaped) for the text or caption.  ``file_id``
    is the document's or photo's file id in the chat; ``photo_bytes`` an uploaded photo's content
    (None when the photo was sent by file id or URL).  ``paid_broadcast``: the request carried
    ``allow_paid_broadcast=true``.
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
    file_id: str | None = None
    photo_bytes: bytes | None = None
    paid_broadcast: bool = False

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


_NOT_MODIFIED: Final = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


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


_DISPOSITION = re.compile(rb'form-data; name="([^"\\]*)"(?:; filename="([^"\\]*)")?')
_QUICK_PART_HEADERS = (b"content-disposition", b"content-type", b"content-length")


Fields = tuple[dict[str, str], dict[str, _Upload]]


def _quick_multipart(content_type: str, body: bytes) -> Fields | None:
    """The fields and files of a multipart/form-data body as aiohttp's client writes it (what aiogram sends),
    parsed in one pass; None for anything else, which aiohttp's own parser then reads (_multipart).

    Why: the fake runs in the benchmark's process (bench/bench_updates.py), where aiohttp's general parser took
    about 1.5 ms of the loop per uploaded file; that cost belongs to no bot, and only the bot that sends files
    paid it."""
    _, _, boundary = content_type.partition("boundary=")
    boundary = boundary.strip().strip('"')
    if not boundary or ";" in boundary:
        return None
    delimiter = b"--" + boundary.encode("ascii", "replace")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or chunks[0].strip() or not chunks[-1].startswith(b"--"):
        return None
    values: dict[str, str] = {}
    files: dict[str, _Upload] = {}
    for chunk in chunks[1:-1]:
        head, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator or not head.startswith(b"\r\n") or not content.endswith(b"\r\n"):
            return None
        content = content[:-2]
        headers: dict[bytes, bytes] = {}
        for line in head[2:].split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon or name.strip().lower() not in _QUICK_PART_HEADERS:
                return None  # e.g. a transfer encoding: aiohttp's parser decodes it
            headers[name.strip().lower()] = value.strip()
        disposition = _DISPOSITION.fullmatch(headers.get(b"content-disposition", b""))
        if disposition is None:
            return None  # an escaped quote, filename*=: aiohttp's parser reads those
        try:
            key = disposition.group(1).decode("utf-8")
            if disposition.group(2) is None:
                values[key] = content.decode("utf-8")
            else:
                kind = headers.get(b"content-type")
                files[key] = _Upload(
                    disposition.group(2).decode("utf-8"),
                    content,
                    kind.decode("latin-1") if kind is not None else "application/octet-stream",
                )
        except UnicodeDecodeError:
            return None
    return values, files


async def _multipart(request: web.BaseRequest, body: bytes) -> Fields:
    """The fields and files of a multipart/form-data body, by aiohttp's own parser (the body is read already)."""
    stream = StreamReader(request.protocol, 2**16, loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    values: dict[str, str] = {}
    files: dict[str, _Upload] = {}
    reader = MultipartReader(request.headers, stream)
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise _bad_request("can't parse the multipart body")
        if part.filename:
            data = bytes(await part.read(decode=True))
            files[part.name] = _Upload(
                part.filename, data, part.headers.get("Content-Type", "application/octet-stream")
            )
        else:
            values[part.name] = await part.text()
    return values, files


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
# Telegram's limits
# --------------------------------------------------------------------------------------

MESSAGE_METHODS: Final = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
"""The methods that post a message: the ones Telegram's broadcast limits count by default."""


@dataclass(frozen=True, slots=True)
class TelegramLimits:
    """Telegram's limits on messages, as :class:`FakeBotApi` enforces them once ``limits`` is set.

    per_second: messages per second per bot overall, a token bucket holding ``per_second`` tokens
        (so a burst of that many), refilled continuously (Telegram: 30).
    paid_per_second: the same for requests with ``allow_paid_broadcast=true`` (Telegram: 1000; taken
        as ``per_second`` when lower).  A request without the flag needs a token from both buckets,
        one with it from this one only.
    chat_interval: seconds between two messages to one private chat (positive chat id; Telegram: 1).
    group_per_minute: messages to one group (negative chat id) in any ``group_window`` seconds
        (Telegram: 20 a minute).
    tolerance: how early a request may come, in seconds, for every limit: loopback HTTP adds a few
        milliseconds of jitter between the sender's clock and the fake's (50 ms).  Over the
        overall limit this lets the bucket run ``rate * tolerance`` tokens into debt.
    methods: which API methods count as messages (edits don't, by default).
    clock: monotonic seconds; a test may pass a fake one to step time without sleeping.

    ``retry_after`` in a 429 is the whole number of seconds (at least 1) until the request would
    pass, as Telegram rounds it.
    """

    per_second: float = 30.0
    paid_per_second: float = 1000.0
    chat_interval: float = 1.0
    group_per_minute: int = 20
    group_window: float = 60.0
    tolerance: float = 0.05
    methods: frozenset[str] = MESSAGE_METHODS
    clock: Callable[[], float] = field(default=time.monotonic)

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.paid_per_second <= 0 or self.group_per_minute < 1:
            raise ValueError("limits must be positive")
        if self.chat_interval < 0 or self.group_window < 0 or self.tolerance < 0:
            raise ValueError("intervals and the tolerance must not be negative")


class _Bucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``rate`` (and never less than one)."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.stamp = now

    def wait(self, now: float, threshold: float) -> float:
        """Refill up to ``now``; seconds until ``threshold`` tokens are there (0: there now)."""
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        return 0.0 if self.tokens >= threshold else (threshold - self.tokens) / self.rate


class _Limiter:
    """Decides whether one more message may go now; remembers what went (any attempt counts)."""

    __slots__ = ("_chat_last", "_free", "_group_sent", "_paid", "limits")

    def __init__(self, limits: TelegramLimits) -> None:
        self.limits = limits
        now = limits.clock()
        self._free = _Bucket(limits.per_second, now)
        self._paid = _Bucket(max(limits.paid_per_second, limits.per_second), now)
        self._chat_last: dict[int, float] = {}
        self._group_sent: dict[int, deque[float]] = {}

    def admit(self, chat_id: int, paid: bool) -> tuple[str, int] | None:
        """None and the message is counted, or (reason, retry_after) and it is not."""
        limits = self.limits
        now = limits.clock()
        tolerance = limits.tolerance
        sent: deque[float] | None = None
        if chat_id >= 0:
            last = self._chat_last.get(chat_id)
            if last is not None and (wait := last + limits.chat_interval - tolerance - now) > 0:
                return "chat", _whole_seconds(wait)
        else:
            sent = self._group_sent.get(chat_id)
            if sent is None:
                sent = self._group_sent[chat_id] = deque()
            horizon = now - limits.group_window + tolerance
            while sent and sent[0] <= horizon:
                sent.popleft()
            if len(sent) >= limits.group_per_minute:
                return "group", _whole_seconds(sent[0] - horizon)
        wait = self._paid.wait(now, 1.0 - self._paid.rate * tolerance)
        if not paid:
            wait = max(wait, self._free.wait(now, 1.0 - limits.per_second * tolerance))
        if wait > 0:
            return "global", _whole_seconds(wait)
        self._paid.tokens -= 1.0
        if not paid:
            self._free.tokens -= 1.0
        if sent is None:
            self._chat_last[chat_id] = now
        else:
            sent.append(now)
        return None


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


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
        limits: TelegramLimits | None = None,
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.bot_first_name = bot_first_name
        self._requested_port = port
        # Seconds each message (a method in MESSAGE_METHODS) takes before it is answered, like the round trip
        # to Telegram's servers: messages are in flight at once, as in production.
        self.latency = latency

        # Hooks
        self.blocked_chats: set[int] = set()
        # Injected failures by method, in order: (the error, text the call's "text" must contain, or None).
        self._failures: dict[str, deque[tuple[_ApiError, str | None]]] = {}
        self._limiter: _Limiter | None = None
        self.limits = limits

        # Recorded traffic
        self.sent: list[SentMessage] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.scoped_commands: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        self.call_counts: Counter[str] = Counter()
        # 429s given, by reason: "global", "chat", "group" (the limiter), "injected" (fail_next).
        self.too_many_requests: Counter[str] = Counter()
        self.forbidden = 0  # 403s given to blocked chats
        self.sends_per_chat: Counter[int] = Counter()  # messages posted (not edits) per chat
        self.first_sent_at: float | None = None  # time.time() of the first and the last message posted
        self.last_sent_at: float | None = None
        self._send_keys: Counter[tuple[int, str, str | None, str | None]] = Counter()
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
        self._document_info: dict[str, dict[str, Any]] = {}  # file_id -> the Document a message shows
        self._photos: dict[str, list[dict[str, Any]]] = {}  # file_id -> the PhotoSizes a message shows
        self._callback_counter = itertools.count(1)
        self._file_counter = itertools.count(1)

        # Wake-ups: each event is replaced after being set, so waiters grab the current one.
        self._updates_event = asyncio.Event()
        self._activity_event: asyncio.Event | None = None  # set after the next API call; made by waiters
        self._closing = False

        self._runner: web.ServerRunner | None = None
        self._port: int | None = None

        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in (
                ("getMe", self._get_me),
                ("deleteWebhook", self._delete_webhook),
                ("getUpdates", self._get_updates),
                ("sendMessage", self._send_message),
                ("editMessageText", self._edit_message_text),
                ("editMessageReplyMarkup", self._edit_message_reply_markup),
                ("answerCallbackQuery", self._answer_callback_query),
                ("setMyCommands", self._set_my_commands),
                ("getMyCommands", self._get_my_commands),
                ("deleteMyCommands", self._delete_my_commands),
                ("sendDocument", self._send_document),
                ("sendPhoto", self._send_photo),
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
        self._activity_event = None
        # aiohttp's low-level server with routing of our own: an Application's router and middleware
        # machinery cost about a tenth of the fake's time per request.
        loop = asyncio.get_running_loop()

        def make_request(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: RequestHandler,
            writer: AbstractStreamWriter,
            task: asyncio.Task[None],
        ) -> web.BaseRequest:
            return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=_MAX_REQUEST_BYTES)

        server = web.Server(self._route, request_factory=make_request, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if self._requested_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._requested_port))
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
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._port

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

    @property
    def limits(self) -> TelegramLimits | None:
        """Telegram's limits the fake enforces, or None (the default): no limit at all.

        Setting them (again) starts from a clean slate: full buckets, no chat seen."""
        return self._limiter.limits if self._limiter is not None else None

    @limits.setter
    def limits(self, limits: TelegramLimits | None) -> None:
        self._limiter = _Limiter(limits) if limits is not None else None

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        *,
        text_contains: str | None = None,
    ) -> None:
        """Make the next call of ``method`` fail with this error (calls queue up in order). text_contains: only
        the next call whose ``text`` contains this (e.g. the edit that carries a final summary); others pass."""
        entry = self._methods.get(method.lower())
        if entry is None:
            raise ValueError(f"FakeBotApi does not model the method {method!r}")
        failure = (_ApiError(error_code, description, retry_after), text_contains)
        self._failures.setdefault(entry[0], deque()).append(failure)

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

    def push_photo(
        self,
        user_id: int,
        caption: str | None = None,
        *,
        data: bytes = b"\x89PNG fake photo",
        language_code: str | None = None,
    ) -> tuple[int, str]:
        """The user sends a photo (with a caption): (update_id, the photo's file_id for the bot to reuse)."""
        user = self._user(user_id, language_code)
        file_id, photo = self._store_photo(_Upload("photo.jpg", data, "image/jpeg"))
        message = self._user_message(user)
        message["photo"] = photo
        if caption:
            message["caption"] = caption
        return self.push_update({"message": message}), file_id

    def push_document(
        self,
        user_id: int,
        file_name: str,
        data: bytes,
        caption: str | None = None,
        *,
        mime_type: str | None = None,
        language_code: str | None = None,
    ) -> tuple[int, str]:
        """The user sends a file (with a caption): (update_id, the document's file_id for the bot to reuse)."""
        user = self._user(user_id, language_code)
        document = self._store_document(_Upload(file_name, data, mime_type))
        message = self._user_message(user)
        message["document"] = document
        if caption:
            message["caption"] = caption
        return self.push_update({"message": message}), str(document["file_id"])

    def pending_updates(self) -> int:
        """Number of queued updates not yet confirmed by a getUpdates offset."""
        return len(self._pending)

    # ---- recorded traffic (test side) --------------------------------------------------

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Everything recorded for ``chat_id`` (sends, edits, documents), oldest first."""
        return list(self._sent_by_chat.get(chat_id, ()))

    def duplicates(self) -> dict[tuple[int, str], int]:
        """Messages a chat was posted more than once: (chat_id, text or caption) -> extra copies.

        Two posts count as the same when method, text and caption (and a document's name) match."""
        return {
            (chat, text or other or ""): count - 1
            for (chat, _, text, other), count in self._send_keys.items()
            if count > 1
        }

    def duplicate_count(self) -> int:
        """How many messages were posted again to a chat that already had them (0: no duplicates)."""
        return sum(count - 1 for count in self._send_keys.values() if count > 1)

    def limit_violations(self) -> int:
        """429s the limiter gave (the bot went over Telegram's limits), not the ones ``fail_next`` injected."""
        return sum(count for reason, count in self.too_many_requests.items() if reason != "injected")

    def stats(self) -> dict[str, Any]:
        """What was posted and refused, as ``GET /stats`` serves it (JSON-ready; per_chat keys are strings)."""
        return {
            "recorded": sum(self.sends_per_chat.values()),
            "edits": self.call_counts["editMessageText"],
            "per_chat": {str(chat): count for chat, count in self.sends_per_chat.items()},
            "duplicates": self.duplicate_count(),
            "too_many_requests": self.limit_violations(),
            "too_many_requests_by_reason": dict(self.too_many_requests),
            "forbidden": self.forbidden,
            "first_at": self.first_sent_at,
            "last_at": self.last_sent_at,
            "calls": dict(self.call_counts),
        }

    def reset(self) -> None:
        """Forget the recorded traffic and counters, and start the limits afresh (updates stay queued)."""
        self.sent.clear()
        self.callback_answers.clear()
        self.call_counts.clear()
        self.too_many_requests.clear()
        self.forbidden = 0
        self.sends_per_chat.clear()
        self._send_keys.clear()
        self._sent_by_chat.clear()
        self.first_sent_at = self.last_sent_at = None
        self._failures.clear()
        self.limits = self.limits

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
        chat_id = message.chat_id
        by_chat = self._sent_by_chat.get(chat_id)
        if by_chat is None:
            self._sent_by_chat[chat_id] = [message]
        else:
            by_chat.append(message)
        if message.method != "editMessageText":
            self.sends_per_chat[chat_id] += 1
            self._send_keys[(chat_id, message.method, message.text, message.caption or message.document_name)] += 1
            now = time.time()
            if self.first_sent_at is None:
                self.first_sent_at = now
            self.last_sent_at = now

    def _notify_activity(self) -> None:
        event = self._activity_event
        if event is not None:
            self._activity_event = None
            event.set()

    async def _wait_until(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_report(what, seconds))
            event = self._activity_event
            if event is None:
                event = self._activity_event = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _timeout_report(self, what: str, timeout: float) -> str:
        lines = [f"timed out after {timeout}s waiting for {what}; {len(self.sent)} message(s) recorded"]
        shown = self.sent[-20:]
        if len(self.sent) > len(shown):
            lines.append(f"  ... {len(self.sent) - len(shown)} earlier message(s) omitted")
        for message in shown:
            body = (
                message.text
                if message.text is not None
                else f"[{message.document_name or message.file_id}] {message.caption}"
            )
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

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/bot"):
            token, slash, method = path[4:].partition("/")
            if slash and method and "/" not in method:
                try:
                    return await self._dispatch(request, token, method)
                finally:
                    self._notify_activity()
        elif path == "/stats" and request.method == "GET":
            return web.json_response(self.stats())
        elif path == "/reset" and request.method == "POST":
            return await self._reset_endpoint(request)
        return web.Response(status=404, text="404: Not Found")

    async def _dispatch(self, request: web.BaseRequest, token: str, method: str) -> web.StreamResponse:
        if token != self.token:
            return _error_response(401, "Unauthorized")
        entry = self._methods.get(method.lower())
        if entry is None:
            self.call_counts[method] += 1
            return _error_response(404, "Not Found")
        name, handler = entry
        self.call_counts[name] += 1
        try:
            params = await self._read_params(request)
            queued = self._failures.get(name)
            if queued and (queued[0][1] is None or queued[0][1] in (params.str_("text") or "")):
                failure, _ = queued.popleft()
                if failure.error_code == 429:
                    self.too_many_requests["injected"] += 1
                raise failure
            limiter = self._limiter
            if limiter is not None and name in limiter.limits.methods:
                self._admit(limiter, params)
            if self.latency > 0 and name in MESSAGE_METHODS:
                self._notify_activity()  # arrived: wait_for() may look at call_counts
                await asyncio.sleep(self.latency)
            result = await handler(params)
        except _ApiError as error:
            if error.error_code == 403:
                self.forbidden += 1
            return error.response()
        return web.Response(
            text=json.dumps({"ok": True, "result": result}, ensure_ascii=False, separators=(",", ":")),
            content_type="application/json",
        )

    def _admit(self, limiter: _Limiter, params: _Params) -> None:
        """Raise Telegram's 429 when this message would break a limit; else count it against them."""
        try:
            chat_id = params.int_("chat_id")
        except _ApiError:
            return  # the method refuses it as a bad request
        if chat_id is None:
            return
        refused = limiter.admit(chat_id, params.bool_("allow_paid_broadcast"))
        if refused is not None:
            reason, retry_after = refused
            self.too_many_requests[reason] += 1
            raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    async def _reset_endpoint(self, request: web.BaseRequest) -> web.StreamResponse:
        """POST /reset, optionally with JSON {"blocked_chats": [ids]} to block exactly those chats from now on."""
        self.reset()
        if request.body_exists:
            try:
                body = await request.json()
            except ValueError:
                return _error_response(400, "Bad Request: can't parse JSON object")
            blocked = body.get("blocked_chats") if isinstance(body, dict) else None
            if blocked is not None:
                if not isinstance(blocked, list) or not all(isinstance(chat, int) for chat in blocked):
                    return _error_response(400, "Bad Request: blocked_chats must be a list of chat ids")
                self.blocked_chats = set(blocked)
        return web.json_response({"ok": True, "result": True})

    async def _read_params(self, request: web.BaseRequest) -> _Params:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, _Upload] = {}
        if request.body_exists:
            # Parsing the header of a multipart body (its boundary) is slow in aiohttp: looked at raw first.
            raw_type = request.headers.get("Content-Type", "")
            content_type = "multipart/form-data" if raw_type.startswith("multipart/form-data;") else ""
            if content_type:
                body = await request.read()
                fields = _quick_multipart(raw_type, body) or await _multipart(request, body)
                values.update(fields[0])
                files.update(fields[1])
            elif (content_type := request.content_type) == "application/json":
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
                paid_broadcast=params.bool_("allow_paid_broadcast"),
            )
        )
        return message

    def _message_to_edit(self, params: _Params) -> tuple[int, int, dict[str, Any] | None, dict[str, Any]]:
        """What an edit names, checked as Telegram does: (chat id, message id, new inline markup, the message)."""
        if params.values.get("inline_message_id"):
            raise _bad_request("inline messages are not supported by FakeBotApi")
        chat_id = self._chat_id(params)
        message_id = params.int_("message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        markup = self._reply_markup(params)
        if markup is not None and "inline_keyboard" not in markup:
            raise _bad_request("inline keyboard expected")
        self._check_blocked(chat_id)
        stored = self._messages.get((chat_id, message_id))
        if stored is None:
            raise _bad_request("message to edit not found")
        return chat_id, message_id, markup, stored

    async def _edit_message_text(self, params: _Params) -> Any:
        text, parse_mode, plain, entities = self._text_content(params)
        chat_id, message_id, markup, stored = self._message_to_edit(params)
        if "text" not in stored:
            raise _bad_request("there is no text in the message to edit")
        if stored["text"] == plain and stored.get("entities", []) == entities and stored.get("reply_markup") == markup:
            raise _bad_request(_NOT_MODIFIED)
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

    def _store_file_message(
        self,
        chat_id: int,
        message: dict[str, Any],
        plain_caption: str | None,
        caption_entities: list[dict[str, Any]],
        markup: dict[str, Any] | None,
    ) -> None:
        """A photo's or document's message as the chat now shows it: its caption and inline buttons."""
        if plain_caption:
            message["caption"] = plain_caption
            if caption_entities:
                message["caption_entities"] = caption_entities
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message

    async def _edit_message_reply_markup(self, params: _Params) -> Any:
        """Only the buttons change (a photo's or document's too); no markup removes them."""
        chat_id, message_id, markup, stored = self._message_to_edit(params)
        if stored.get("reply_markup") == markup:
            raise _bad_request(_NOT_MODIFIED)
        edited = {key: value for key, value in stored.items() if key != "reply_markup"}
        edited["edit_date"] = int(time.time())
        if markup is not None:
            edited["reply_markup"] = markup
        self._messages[(chat_id, message_id)] = edited
        self._record(
            SentMessage(
                chat_id=chat_id,
                message_id=message_id,
                text=None,
                parse_mode=None,
                reply_markup=markup,
                method="editMessageReplyMarkup",
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
        if ":" not in key[0]:  # one chat's menu is in scoped_commands (and menu_seen) only
            self.commands[key[1]] = cleaned
            self._commands_scope_of[key[1]] = key[0]
        return True

    def menu_seen(self, chat_id: int, language_code: str | None = None) -> list[str]:
        """The commands a private chat's menu shows, resolved as Telegram does: the chat's own scope, then all
        private chats, then the default; within each, the client's language first, then any language."""
        language = language_code.split("-")[0].lower() if language_code else None
        for scope in (f"chat:{chat_id}", "all_private_chats", "default"):
            for code in (language, None):
                found = self.scoped_commands.get((scope, code))
                if found is not None:
                    return [command["command"] for command in found]
        return []

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
        reference = params.str_("document") if "document" not in params.files else None
        known = self._document_info.get(reference) if reference else None
        document = known if known is not None else self._store_document(upload)
        message = self._bot_message(chat_id)
        message["document"] = document
        self._store_file_message(chat_id, message, plain_caption, caption_entities, markup)
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
                file_id=document["file_id"],
                paid_broadcast=params.bool_("allow_paid_broadcast"),
            )
        )
        return message

    def _store_document(self, upload: _Upload) -> dict[str, Any]:
        serial = next(self._file_counter)
        file_id = f"BQACAgIAAxkBAAI{self.bot_id:x}{serial:08d}"
        document: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"AgAD{serial:08d}",
            "file_name": upload.filename,
            "file_size": len(upload.data),
        }
        if upload.content_type:
            document["mime_type"] = upload.content_type
        self._documents[file_id] = upload
        self._document_info[file_id] = document
        return document

    def _store_photo(self, upload: _Upload) -> tuple[str, list[dict[str, Any]]]:
        """Keep an uploaded photo: its file_id and the PhotoSize list a message shows for it."""
        serial = next(self._file_counter)
        file_id = f"AgACAgIAAxkBAAI{self.bot_id:x}{serial:08d}"
        sizes = [
            {
                "file_id": file_id,
                "file_unique_id": f"AQAD{serial:08d}",
                "width": 1280,
                "height": 960,
                "file_size": len(upload.data),
            }
        ]
        self._photos[file_id] = sizes
        return file_id, sizes

    async def _send_photo(self, params: _Params) -> Any:
        chat_id = self._chat_id(params)
        upload: _Upload | None = params.files.get("photo")
        reference: str | None = None
        if upload is None:
            reference = params.str_("photo")
            if not reference:
                raise _bad_request("there is no photo in the request")
            if reference.startswith("attach://"):
                upload = params.files.get(reference.removeprefix("attach://"))
                if upload is None:
                    raise _bad_request("wrong file identifier/HTTP URL specified")
            elif reference in self._documents:
                raise _bad_request("can't use file of type Document as Photo")
            elif reference not in self._photos and not reference.startswith(("http://", "https://")):
                raise _bad_request("wrong file identifier/HTTP URL specified")
        if upload is not None and not upload.data:
            raise _bad_request("file must be non-empty")
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
        if upload is not None:
            file_id, sizes = self._store_photo(upload)
        elif reference is not None and reference in self._photos:
            file_id, sizes = reference, self._photos[reference]
        else:  # a URL: Telegram would fetch it; the fake makes up the photo
            file_id, sizes = self._store_photo(_Upload("photo.jpg", b"fetched", "image/jpeg"))
        message = self._bot_message(chat_id)
        message["photo"] = sizes
        self._store_file_message(chat_id, message, plain_caption, caption_entities, markup)
        self._record(
            SentMessage(
                chat_id=chat_id,
                message_id=message["message_id"],
                text=None,
                parse_mode=parse_mode,
                reply_markup=markup,
                method="sendPhoto",
                caption=caption,
                plain_text=plain_caption,
                file_id=file_id,
                photo_bytes=upload.data if upload is not None else None,
                paid_broadcast=params.bool_("allow_paid_broadcast"),
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
            elif reference in self._photos:
                raise _bad_request("can't use file of type Photo as Document")
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


# --------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------


async def serve(fake: FakeBotApi, ready: Callable[[int], None] | None = None) -> None:
    """Run ``fake`` until SIGTERM or SIGINT; ``ready(port)`` once it listens."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fake:
        if ready is not None:
            ready(fake.port)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_bot_api",
        description="The fake Telegram Bot API in a process of its own, on 127.0.0.1; prints its port when ready. "
        "GET /stats tells what it recorded, POST /reset forgets it.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    parser.add_argument("--token", default="123456:TEST", help="the bot token it accepts (default 123456:TEST)")
    parser.add_argument(
        "--limit-per-s",
        type=float,
        default=None,
        help="enforce Telegram's limits with this many messages per second overall (default: no limits at all)",
    )
    parser.add_argument(
        "--paid-limit", type=float, default=1000.0, help="messages per second with allow_paid_broadcast (1000)"
    )
    parser.add_argument("--chat-interval", type=float, default=1.0, help="seconds between messages to a chat (1)")
    parser.add_argument("--group-per-minute", type=int, default=20, help="messages to a group in a minute (20)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="how early a request may come, seconds (0.05)")
    parser.add_argument("--blocked", type=int, action="append", default=[], help="a chat id that blocked the bot")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before a message is answered, a round trip (0)"
    )
    args = parser.parse_args(argv)
    limits = None
    if args.limit_per_s is not None:
        limits = TelegramLimits(
            per_second=args.limit_per_s,
            paid_per_second=args.paid_limit,
            chat_interval=args.chat_interval,
            group_per_minute=args.group_per_minute,
            tolerance=args.tolerance,
        )
    fake = FakeBotApi(args.token, limits=limits, port=args.port, latency=args.latency)
    fake.blocked_chats.update(args.blocked)

    def ready(port: int) -> None:
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()

    asyncio.run(serve(fake, ready))


if __name__ == "__main__":
    main()
