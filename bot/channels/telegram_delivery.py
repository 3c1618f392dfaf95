"""The Telegram transport of the delivery engine: outbox rows become Bot API calls, answers become SendResults.

Why not aiogram (which the chat adapter, telegram.py, uses): the delivery engine's budget is under 1 ms of CPU
per message for everything (claiming, pacing, sending, recording). Measured on this machine against the fake Bot
API in a process of its own, 4,000 sendMessage calls with an inline keyboard, 64 at a time: aiogram's
``bot.send_message`` took 760-875 µs of CPU per call (pydantic builds and validates the method, then parses the
whole Message it gets back); the same JSON posted with one shared aiohttp ClientSession 270-300 µs, which still
left the engine at 0.41 ms a message and 0.66-0.75 of a 3,000/s limit, CPU-bound; posted with json_post's
small keep-alive client, 75-110 µs. So this module builds the JSON itself, posts it with json_post, and reads only
``ok``, ``message_id`` and the error fields of the answer.

The token is part of every URL: no URL is ever logged or kept, and failures are described by the exception's
type or Telegram's description, never by an exception's message (which may quote the URL).

Mapping: 200 -> Delivered; 429 -> RetryAfter(parameters.retry_after); 403 -> Unreachable (blocked, deactivated,
kicked); 400 "chat not found" and the like -> Unreachable; other 400s -> Refused; 401/404 (a wrong token or API
base) -> a pause of a minute with an error in the log, so nothing is failed for a configuration mistake; 5xx,
network errors, timeouts, an unreadable answer -> Transient.

A text longer than a message (4096) goes in parts, a caption longer than Telegram's 1024 goes as the file and then
the text; the parts of one row are sent one chat interval apart, and the sender counts them (``parts()``).

A document or photo whose file_ref names a file Linli made (bot.exports.files, under ``files_dir``: an export
asked for in a chat, a picture of the opinion map) is uploaded with multipart/form-data, as the Bot API wants a new
file (sendDocument's ``document`` field, sendPhoto's ``photo``); every other file_ref is a file_id Telegram
already holds, sent in JSON."""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bot.channels.json_post import HttpError, JsonPoster
from bot.delivery.pacing import CHAT_INTERVAL, GROUP_INTERVAL
from bot.delivery.transport import Delivered, Refused, RetryAfter, SendResult, Transient, Unreachable
from bot.exports.files import is_local, read_local
from bot.html import TELEGRAM_CAPTION_LIMIT, TELEGRAM_TEXT_LIMIT, split_html, utf16_len
from community.notice_models import MessageKind, OutboxMessage
from community.outbox import OutboxButton, buttons_from_json

log = logging.getLogger(__name__)

CHANNEL: Final = "telegram"
DEFAULT_API_BASE: Final = "https://api.telegram.org"
_CONFIG_PAUSE: Final = 60.0  # seconds to wait when the Bot API does not know our token
# Telegram's 400 descriptions that mean the chat is gone for good (lower case, matched as substrings).
_GONE: Final = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "group chat was upgraded",
    "have no rights to send a message",
    "not enough rights to send",
)
_NOT_MODIFIED: Final = "message is not modified"
_MARKUPS_KEPT: Final = 256


def _chat(chat_id: str) -> int | str:
    try:
        return int(chat_id)
    except ValueError:
        return chat_id  # "@channelusername"


def _parts(text: str, limit: int) -> list[str]:
    if utf16_len(text) <= limit:  # the usual case, without parsing: tags only make the source longer
        return [text] if text.strip() else []
    return split_html(text, limit)


def _caption_fits(text: str) -> bool:
    return utf16_len(text) <= TELEGRAM_CAPTION_LIMIT or len(split_html(text, TELEGRAM_CAPTION_LIMIT)) <= 1


def inline_keyboard(buttons: tuple[tuple[OutboxButton, ...], ...]) -> dict[str, Any] | None:
    rows: list[list[dict[str, str]]] = []
    for row in buttons:
        out: list[dict[str, str]] = []
        for button in row:
            if button.data is not None:
                out.append({"text": button.label, "callback_data": button.data})
            elif button.url is not None:
                out.append({"text": button.label, "url": button.url})
        if out:
            rows.append(out)
    return {"inline_keyboard": rows} if rows else None


class TelegramTransport:
    channel = CHANNEL

    def __init__(
        self,
        token: str,
        *,
        api_base: str | None = None,
        paid_broadcast: bool = False,
        timeout: float = 30.0,
        connections: int = 256,
        chat_interval: float = CHAT_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
        files_dir: Path | None = None,
    ) -> None:
        self.files_dir = files_dir  # where the files Linli made are (bot.exports.jobs); None: no such file
        self._base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self._path = f"bot{token}/"  # holds the token: never log it
        self.paid_broadcast = paid_broadcast
        self._timeout = timeout
        self._connections = connections
        self.chat_interval = chat_interval
        self.group_interval = group_interval
        self._client: JsonPoster | None = None
        self._markups: dict[str, dict[str, Any] | None] = {}

    def __repr__(self) -> str:
        return f"TelegramTransport(paid_broadcast={self.paid_broadcast})"

    def _http(self) -> JsonPoster:
        # Made at the first call, inside the running loop: one pool of keep-alive connections.
        if self._client is None:
            self._client = JsonPoster(self._base, connections=self._connections, timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- the Transport protocol ----------------------------------------------------------------------------

    def parts(self, message: OutboxMessage) -> int:
        """How many Bot API messages this row takes."""
        if message.kind is MessageKind.TEXT:
            return max(1, len(_parts(message.text, TELEGRAM_TEXT_LIMIT)))
        if not message.text or _caption_fits(message.text):
            return 1
        return 1 + len(_parts(message.text, TELEGRAM_TEXT_LIMIT))

    async def send(self, message: OutboxMessage) -> SendResult:
        chat = _chat(message.chat_id)
        markup = self._markup(message.buttons)
        gap = self.group_interval if message.is_group else self.chat_interval
        if message.kind is MessageKind.TEXT:
            return await self._send_texts(chat, _parts(message.text, TELEGRAM_TEXT_LIMIT), markup, gap)
        method, field = ("sendPhoto", "photo") if message.kind is MessageKind.PHOTO else ("sendDocument", "document")
        payload: dict[str, Any] = {"chat_id": chat}
        upload: Upload | None = None
        if message.file_ref is not None and is_local(message.file_ref):
            read = await read_local(self.files_dir, message.file_ref)
            if isinstance(read, Refused):
                return read
            path, content = read
            upload = Upload(field, message.file_name or path.name, content)
        else:
            payload[field] = message.file_ref
        text = message.text
        if not text or _caption_fits(text):
            if text:
                payload["caption"] = text
                payload["parse_mode"] = "HTML"
            if markup is not None:
                payload["reply_markup"] = markup
            return await self._call(method, payload, upload=upload)
        # The caption is too long: the file alone, then the text with the buttons, one chat interval later.
        result = await self._call(method, payload, upload=upload)
        if not isinstance(result, Delivered):
            return result
        await asyncio.sleep(gap)
        return await self._send_texts(chat, _parts(text, TELEGRAM_TEXT_LIMIT), markup, gap)

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: tuple[tuple[OutboxButton, ...], ...] = ()
    ) -> SendResult:
        """Replace a message's text (a progress message; only its first 4096 characters are kept)."""
        parts = _parts(text, TELEGRAM_TEXT_LIMIT)
        if not parts:
            return Refused("empty text")
        if not message_id.isdigit():
            return Refused("not a Telegram message id")
        payload: dict[str, Any] = {
            "chat_id": _chat(chat_id),
            "message_id": int(message_id),
            "text": parts[0],
            "parse_mode": "HTML",
        }
        markup = inline_keyboard(buttons)
        if markup is not None:
            payload["reply_markup"] = markup
        result = await self._call("editMessageText", payload, paid=False)
        if isinstance(result, Refused) and _NOT_MODIFIED in result.reason.lower():
            return Delivered(message_id)
        return result

    def _markup(self, raw: str | None) -> dict[str, Any] | None:
        """The inline keyboard of a row's buttons; the rows of one notice share theirs, so it is made once."""
        if raw is None:
            return None
        markup = self._markups.get(raw)
        if markup is None:
            if len(self._markups) >= _MARKUPS_KEPT:
                self._markups.clear()
            markup = self._markups[raw] = inline_keyboard(buttons_from_json(raw))
        return markup

    # ---- calls -----------------------------------------------------------------------------------------------

    async def _send_texts(
        self, chat: int | str, parts: list[str], markup: dict[str, Any] | None, gap: float
    ) -> SendResult:
        if not parts:
            return Refused("empty text")
        result: SendResult = Refused("empty text")
        for number, part in enumerate(parts, start=1):
            if number > 1:
                await asyncio.sleep(gap)
            payload: dict[str, Any] = {"chat_id": chat, "text": part, "parse_mode": "HTML"}
            if number == len(parts) and markup is not None:
                payload["reply_markup"] = markup
            result = await self._call("sendMessage", payload)
            if not isinstance(result, Delivered):
                return result
        return result

    async def _call(
        self, method: str, payload: dict[str, Any], *, paid: bool = True, upload: Upload | None = None
    ) -> SendResult:
        if paid and self.paid_broadcast:
            payload["allow_paid_broadcast"] = True
        try:
            if upload is None:
                body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
                reply = await self._http().post(self._path + method, body)
            else:
                body, content_type = multipart(payload, upload)
                reply = await self._http().post(self._path + method, body, content_type)
        except TimeoutError:
            return Transient("timeout")
        except (HttpError, OSError) as err:
            return Transient(f"network: {type(err).__name__}")
        status, raw = reply.status, reply.body
        try:
            answer = json.loads(raw)
        except ValueError:
            return Transient(f"HTTP {status}: not a JSON answer")
        if not isinstance(answer, dict):
            return Transient(f"HTTP {status}: not a Bot API answer")
        if answer.get("ok") is True:
            result = answer.get("result")
            message_id = result.get("message_id") if isinstance(result, dict) else None
            return Delivered(str(message_id) if message_id is not None else "")
        return _failure(method, status, answer)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file sent as a new upload: the form field it goes in, its name, its bytes."""

    field: str
    name: str
    content: bytes


def multipart(payload: dict[str, Any], upload: Upload) -> tuple[bytes, bytes]:
    """The Bot API call as multipart/form-data: each parameter a field (objects as JSON), then the file. Returns the
    body and its Content-Type."""
    boundary = secrets.token_hex(16)
    parts: list[bytes] = []
    for name, value in payload.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        parts.append(shown.encode() + b"\r\n")
    file_name = upload.name.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")
    mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{upload.field}"; filename="{file_name}"\r\n'
        f"Content-Type: {mime}\r\n\r\n".encode()
    )
    parts.append(upload.content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}".encode("ascii")


def _failure(method: str, status: int, answer: dict[str, Any]) -> SendResult:
    code = answer.get("error_code", status)
    description = str(answer.get("description") or f"HTTP {status}")
    if code == 429:
        parameters = answer.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        seconds = float(retry_after) if isinstance(retry_after, int | float) and retry_after > 0 else 1.0
        return RetryAfter(seconds)
    if code == 403:
        return Unreachable(description)
    if code == 400:
        lowered = description.lower()
        if any(phrase in lowered for phrase in _GONE):
            return Unreachable(description)
        return Refused(description)
    if code in (401, 404):
        log.error(
            "the Bot API refused %s with %s %s: check TELEGRAM_BOT_TOKEN and TELEGRAM_API_BASE; sending waits a minute",
            method,
            code,
            description,
        )
        return RetryAfter(_CONFIG_PAUSE)
    if isinstance(code, int) and code >= 500:
        return Transient(description)
    return Refused(description)
