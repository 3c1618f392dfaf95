"""The Telegram channel: the reference adapter, on aiogram 3 with long polling.

It only translates. An aiogram ``Message`` or ``CallbackQuery`` becomes a channel-neutral ``Event``; the
``Conversation`` decides everything; its ``Reply`` objects become Bot API calls. No business rule lives here,
no community service is imported, and a button is never recognised by its label, only by its callback data.

Updates are handled as aiogram tasks, concurrently across chats. Within one chat they are handled one after the
other, in the order Telegram delivered them, so a person's quick second tap never overtakes the first.

Failures to send one reply are logged (never the token, never the text) and the remaining replies still go out.
A button press is always answered exactly once, so the client's spinner stops even when the handler said
nothing or failed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from bot.channels.aiogram_import import import_aiogram

import_aiogram()  # before aiogram's first import: its types are built on first use (bot/channels/aiogram_import.py)

from aiogram import Bot, Dispatcher  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.enums import ChatType, ParseMode  # noqa: E402
from aiogram.exceptions import (  # noqa: E402
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import (  # noqa: E402
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    GetUpdates,
    Response,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import (  # noqa: E402
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.context import BotInfo  # noqa: E402
from bot.conversation import Conversation  # noqa: E402
from bot.events import (  # noqa: E402
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
from bot.failures import failure_reference, log_failure  # noqa: E402
from bot.html import TELEGRAM_CAPTION_LIMIT, TELEGRAM_TEXT_LIMIT, split_html  # noqa: E402
from bot.replies import (  # noqa: E402
    AnswerButton,
    ChatRef,
    EditButtons,
    EditText,
    Keyboard,
    Reply,
    SendFile,
    SendMedia,
    SendText,
    SetCommands,
)
from i18n import DEFAULT_LANGUAGE  # noqa: E402

log = logging.getLogger(__name__)

CHANNEL: Final = "telegram"
# "/start", "/start CODE", "/start@linli_bot CODE"; Telegram command names are latin letters, digits, "_".
_COMMAND = re.compile(r"/(?P<name>[A-Za-z0-9_]{1,64})(?:@(?P<bot>[A-Za-z0-9_]{1,64}))?(?:\s+(?P<args>.*))?", re.DOTALL)
_NOT_MODIFIED = "message is not modified"
_MAX_RETRY_AFTER = 60  # seconds we are willing to wait when Telegram asks us to slow down
_RETRIES = 2

T = TypeVar("T")
ReplyMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def telegram_language_code(language: str) -> str:
    """Our language ("zh_Hans", "en") as the two-letter code Telegram's setMyCommands takes ("zh", "en")."""
    return language.replace("-", "_").split("_", 1)[0].lower()


def parse_command(text: str, bot_username: str | None) -> Command | None:
    """A command if ``text`` is one addressed to this bot; ``None`` for anything else."""
    match = _COMMAND.fullmatch(text.strip())
    if match is None:
        return None
    addressed = match.group("bot")
    if addressed and bot_username and addressed.lower() != bot_username.lower():
        return None
    return Command(name=match.group("name").lower(), args=(match.group("args") or "").strip())


def inline_keyboard(buttons: Keyboard) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    for row in buttons:
        out: list[InlineKeyboardButton] = []
        for button in row:
            if button.data is not None:
                out.append(InlineKeyboardButton(text=button.label, callback_data=button.data))
            elif button.url is not None:
                out.append(InlineKeyboardButton(text=button.label, url=button.url))
            else:
                log.warning("dropped a button with neither callback data nor url")
        if out:
            rows.append(out)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


# The Bot API methods this adapter calls (aiogram's polling included).
_METHODS_USED: tuple[type[TelegramMethod[Any]], ...] = (
    GetMe,
    GetUpdates,
    SetMyCommands,
    SendMessage,
    EditMessageText,
    AnswerCallbackQuery,
    SendDocument,
    SendPhoto,
    EditMessageReplyMarkup,
)


def response_models() -> tuple[type[Response[Any]], ...]:
    """The parsed-response models of the methods we call, for the channel to hold while it runs.

    aiogram parses every reply as ``Response[method.__returning__]``, and pydantic keeps such parametrized
    models only in a weak-value cache: once the garbage collector frees one, the next call builds the class again,
    which costs about as much as the rest of the call. Holding them keeps the cache warm."""
    return tuple(Response[method.__returning__] for method in _METHODS_USED)  # type: ignore[name-defined]


def _chat_id(chat_id: str) -> int | str:
    try:
        return int(chat_id)
    except ValueError:
        return chat_id  # "@channelusername"


class _ChatLocks:
    """One lock per chat, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


async def fetch_bot_username(token: str, *, api_base: str | None = None) -> str | None:
    """The bot's username, from getMe: what deep links must name (for a command that does not poll, such as
    `linli invite create`). Raises aiogram's TelegramAPIError when Telegram cannot be asked."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base)) if api_base else AiohttpSession()
    bot = Bot(token=token, session=session)
    try:
        me = await bot.get_me()
    finally:
        await bot.session.close()
    return me.username


class TelegramChannel:
    """Long-polls the Bot API and runs every update through a ``Conversation``.

    ``localized_commands`` maps our languages to ``(command, description)`` pairs for the public command menu,
    what a stranger may use. Each is registered for its Telegram language code ("zh_Hans" as "zh"); the default
    list, shown to clients in any other language, is the default language's (Chinese: the communities are in
    Shanghai). A member's chat gets a menu of their own, for their roles and in their language
    (BotCommandScopeChat), whenever the conversation says it changed (SetCommands replies).

    At start the bot's username is fetched with getMe (``bot_username``) and handed to the conversation's
    ``BotInfo`` so deep links in replies name the real bot."""

    shutdown_grace: float = 10.0  # seconds to let in-flight updates finish when stopping

    def __init__(
        self,
        token: str,
        conversation: Conversation,
        *,
        api_base: str | None = None,
        localized_commands: Mapping[str, list[tuple[str, str]]] | None = None,
        polling_timeout: int = 30,
    ) -> None:
        self._token = token
        self.conversation = conversation
        self.localized_commands = dict(localized_commands or {})
        self.polling_timeout = polling_timeout
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base)) if api_base else AiohttpSession()
        self.bot = Bot(token=token, session=session)
        self._response_models = response_models()
        self.dispatcher = Dispatcher()
        self.dispatcher.message.register(self._on_message)
        self.dispatcher.callback_query.register(self._on_callback)
        self.dispatcher.startup.register(self._on_polling_started)
        self.bot_username: str | None = None
        self._chat_locks = _ChatLocks()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._polling_started = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start (getMe, command menu) and long-poll until ``stop()``; then let in-flight updates finish."""
        if self._running:
            raise RuntimeError("TelegramChannel.run() is already running")
        self._running = True
        try:
            me = await self.bot.me()  # getMe, cached: aiogram's polling asks for it again
            self.bot_username = me.username
            if me.username and self.conversation.bot.username != me.username:
                self.conversation.bot = BotInfo(username=me.username)
            await self._register_commands()
            await self._poll()
        finally:
            try:
                await self._drain()
            finally:
                await self.bot.session.close()
                self._stopped.set()
                log.info("telegram channel stopped")

    async def stop(self) -> None:
        """Ask ``run()`` to stop, and wait until it has (in-flight updates finished, session closed)."""
        self._stop_requested.set()
        if self._running:
            await self._stopped.wait()

    @property
    def started(self) -> bool:
        """Polling has begun: the command menu is registered and updates are being fetched."""
        return self._polling_started.is_set()

    async def wait_started(self) -> None:
        await self._polling_started.wait()

    async def _on_polling_started(self) -> None:
        self._polling_started.set()

    async def _poll(self) -> None:
        polling = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot,
                polling_timeout=self.polling_timeout,
                handle_as_tasks=True,
                handle_signals=False,
                close_bot_session=False,  # closed by run() once in-flight updates are done with it
            )
        )
        started = asyncio.create_task(self._polling_started.wait())
        stop = asyncio.create_task(self._stop_requested.wait())
        try:
            await asyncio.wait({polling, started}, return_when=asyncio.FIRST_COMPLETED)
            if not polling.done():
                log.info("telegram channel polling as @%s", self.bot_username)
                await asyncio.wait({polling, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
            stop.cancel()
            if not polling.done():
                if self._polling_started.is_set():
                    await self.dispatcher.stop_polling()  # waits for start_polling's own clean-up
                else:
                    polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling

    async def _drain(self) -> None:
        pending = {task for task in self._in_flight if task is not asyncio.current_task() and not task.done()}
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self.shutdown_grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("cancelled %d telegram updates still in flight at shutdown", len(late))
            await asyncio.gather(*late, return_exceptions=True)

    async def _register_commands(self) -> None:
        if not self.localized_commands:
            return
        default_language = (
            DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in self.localized_commands else next(iter(self.localized_commands))
        )
        menus: list[tuple[str | None, list[tuple[str, str]]]] = [
            (None, self.localized_commands[default_language]),
            *((telegram_language_code(lang), cmds) for lang, cmds in self.localized_commands.items()),
        ]
        for language_code, commands in menus:
            bot_commands = [BotCommand(command=name, description=description) for name, description in commands]
            await self._call(
                "setMyCommands",
                language_code or "default",
                functools.partial(self.bot.set_my_commands, bot_commands, language_code=language_code),
            )

    # ---- incoming --------------------------------------------------------------------------------------------

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None and task not in self._in_flight:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _on_message(self, message: Message) -> None:
        self._track()
        user = message.from_user
        if message.chat.type != ChatType.PRIVATE or user is None:
            log.debug("ignored a message in a %s chat", message.chat.type)
            return
        payload: Payload
        if message.contact is not None:
            contact = message.contact
            payload = ContactShared(
                phone=contact.phone_number,
                contact_account_id=str(contact.user_id) if contact.user_id is not None else None,
            )
        elif message.text is not None:
            payload = parse_command(message.text, self.bot_username) or TextInput(message.text)
        elif message.photo:
            largest = message.photo[-1]  # Telegram lists the sizes smallest first
            payload = FileShared("photo", largest.file_id, caption=message.caption or "")
        elif message.document is not None:
            document = message.document
            payload = FileShared("document", document.file_id, document.file_name, message.caption or "")
        else:
            log.debug("ignored a message without text, contact, photo or document")
            return
        sender = Sender(
            channel=CHANNEL,
            account_id=str(user.id),
            chat_id=str(message.chat.id),
            display_name=user.full_name,
            language_code=user.language_code,
            username=user.username,
        )
        await self._handle(clean_event(Event(sender=sender, payload=payload)))

    async def _on_callback(self, query: CallbackQuery) -> None:
        self._track()
        message = query.message
        if query.data is None or message is None or message.chat.type != ChatType.PRIVATE:
            log.debug("ignored a callback query without data or outside a private chat")
            await self._answer(query.id)
            return
        user = query.from_user
        sender = Sender(
            channel=CHANNEL,
            account_id=str(user.id),
            chat_id=str(message.chat.id),
            display_name=user.full_name,
            language_code=user.language_code,
            username=user.username,
        )
        payload = ButtonPress(data=query.data, message_id=str(message.message_id), callback_id=query.id)
        await self._handle(clean_event(Event(sender=sender, payload=payload)))

    async def _handle(self, event: Event) -> None:
        payload = event.payload
        callback_id = payload.callback_id if isinstance(payload, ButtonPress) else None
        async with self._chat_locks.hold(event.sender.chat_id):
            try:
                replies = await self.conversation.handle(event, menus=True)
            except BaseException:
                # A bug in a handler: aiogram's dispatcher logs it (without the update's text); the press is
                # still answered so the person's client stops spinning.
                if callback_id is not None:
                    await self._answer(callback_id)
                raise
            await self.execute(event, replies)

    # ---- outgoing --------------------------------------------------------------------------------------------

    async def execute(self, event: Event, replies: Sequence[Reply]) -> None:
        """Carry out the replies to ``event`` in order; a failed one is logged and the rest still go out.

        A button press is answered exactly once: by the first AnswerButton, else right away (so the client's
        spinner stops at once), and in any case before this returns."""
        payload = event.payload
        callback_id = payload.callback_id if isinstance(payload, ButtonPress) else None
        answered = False
        if callback_id is not None and not any(isinstance(reply, AnswerButton) for reply in replies):
            answered = True
            await self._answer(callback_id)
        try:
            for reply in replies:
                if isinstance(reply, AnswerButton):
                    if callback_id is None or answered:
                        continue
                    answered = True
                try:
                    await self._execute_one(event, reply, callback_id)
                except Exception as error:  # noqa: BLE001 - one reply failing must not stop the rest
                    # A bug, not Telegram refusing (that is logged in _call): log it, send the rest.
                    log_failure(log, failure_reference(), error, f"sending a {type(reply).__name__}")
        finally:
            if callback_id is not None and not answered:
                await self._answer(callback_id)

    async def _execute_one(self, event: Event, reply: Reply, callback_id: str | None) -> None:
        if isinstance(reply, AnswerButton):
            if callback_id is not None:
                await self._answer(callback_id, reply.text, reply.alert)
        elif isinstance(reply, SendText):
            chat = self._target(event, reply.to)
            if chat is not None:
                await self._send_text(chat, reply)
        elif isinstance(reply, EditText):
            await self._edit_text(event.sender.chat_id, reply)
        elif isinstance(reply, SendFile):
            chat = self._target(event, reply.to)
            if chat is not None:
                await self._send_file(chat, reply)
        elif isinstance(reply, SendMedia):
            chat = self._target(event, reply.to)
            if chat is not None:
                await self._send_media(chat, reply)
        elif isinstance(reply, EditButtons):
            await self._edit_buttons(event.sender.chat_id, reply)
        elif isinstance(reply, SetCommands):
            chat = self._target(event, reply.to)
            if chat is not None:
                await self._set_chat_commands(chat, reply)

    @staticmethod
    def _target(event: Event, to: ChatRef | None) -> str | None:
        if to is None:
            return event.sender.chat_id
        if to.channel != CHANNEL:
            log.warning("a reply addressed to a %s chat was not sent by the telegram channel", to.channel)
            return None
        return to.chat_id

    async def _send_text(self, chat_id: str, reply: SendText) -> None:
        parts = split_html(reply.text, TELEGRAM_TEXT_LIMIT)
        if not parts:
            log.warning("skipped an empty text reply to chat %s", chat_id)
            return
        await self._send_parts(chat_id, parts, self._markups(len(parts), reply))

    async def _send_parts(self, chat_id: str, parts: Sequence[str], markups: Sequence[ReplyMarkup | None]) -> None:
        for part, markup in zip(parts, markups, strict=True):
            sent = await self._call(
                "sendMessage",
                chat_id,
                functools.partial(
                    self.bot.send_message, _chat_id(chat_id), part, parse_mode=ParseMode.HTML, reply_markup=markup
                ),
            )
            if sent is None:
                return  # the rest of a refused message would make no sense alone

    @staticmethod
    def _markups(count: int, reply: SendText) -> list[ReplyMarkup | None]:
        """Which part carries which keyboard: inline buttons under the last part, a reply keyboard (share
        contact, or its removal) with the first. One message can carry only one: on a single part a contact
        request wins over inline buttons, and inline buttons win over a removal (the contact keyboard is
        one-time and hides itself anyway)."""
        markups: list[ReplyMarkup | None] = [None] * count
        inline = inline_keyboard(reply.buttons)
        keyboard: ReplyMarkup | None = None
        if reply.request_contact:
            keyboard = ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text=reply.request_contact, request_contact=True)]],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        elif reply.remove_keyboard:
            keyboard = ReplyKeyboardRemove(remove_keyboard=True)
        markups[-1] = inline
        if keyboard is not None:
            if count > 1 or inline is None:
                markups[0] = keyboard
            elif reply.request_contact:
                log.warning("inline buttons dropped: a message can carry a contact request or buttons, not both")
                markups[0] = keyboard
        return markups

    async def _edit_text(self, chat_id: str, reply: EditText) -> None:
        try:
            message_id = int(reply.message_id)
        except ValueError:
            log.warning("cannot edit a telegram message with a non-numeric id")
            return
        parts = split_html(reply.text, TELEGRAM_TEXT_LIMIT)
        if not parts:
            log.warning("skipped an edit to empty text in chat %s", chat_id)
            return
        inline = inline_keyboard(reply.buttons)
        first, rest = parts[0], parts[1:]
        await self._call(
            "editMessageText",
            chat_id,
            lambda: self.bot.edit_message_text(
                text=first,
                chat_id=_chat_id(chat_id),
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=None if rest else inline,
            ),
        )
        if rest:  # too long for one message: the rest follows as new messages, the buttons under the last
            await self._send_parts(chat_id, rest, [*([None] * (len(rest) - 1)), inline])

    async def _send_file(self, chat_id: str, reply: SendFile) -> None:
        # Telegram tells the type from the file name; BufferedInputFile has no content type to set.
        caption_parts = split_html(reply.caption, TELEGRAM_CAPTION_LIMIT)
        caption: str | None = None
        if len(caption_parts) == 1:
            caption = caption_parts[0]
        elif caption_parts:  # too long for a caption: send it as text first
            await self._send_text(chat_id, SendText(reply.caption))
        document = BufferedInputFile(reply.content, filename=reply.filename)
        await self._call(
            "sendDocument",
            chat_id,
            lambda: self.bot.send_document(
                _chat_id(chat_id),
                document,
                caption=caption,
                parse_mode=ParseMode.HTML if caption else None,
            ),
        )

    async def _send_media(self, chat_id: str, reply: SendMedia) -> None:
        """A photo or document by the file_id Telegram gave us; a caption too long for one goes first as text."""
        caption_parts = split_html(reply.caption, TELEGRAM_CAPTION_LIMIT)
        caption: str | None = None
        if len(caption_parts) == 1:
            caption = caption_parts[0]
        elif caption_parts:
            await self._send_text(chat_id, SendText(reply.caption))
        markup = inline_keyboard(reply.buttons)
        parse_mode = ParseMode.HTML if caption else None
        target = _chat_id(chat_id)
        if reply.kind == "photo":
            await self._call(
                "sendPhoto",
                chat_id,
                lambda: self.bot.send_photo(
                    target, reply.file_ref, caption=caption, parse_mode=parse_mode, reply_markup=markup
                ),
            )
        else:
            await self._call(
                "sendDocument",
                chat_id,
                lambda: self.bot.send_document(
                    target, reply.file_ref, caption=caption, parse_mode=parse_mode, reply_markup=markup
                ),
            )

    async def _edit_buttons(self, chat_id: str, reply: EditButtons) -> None:
        try:
            message_id = int(reply.message_id)
        except ValueError:
            log.warning("cannot edit a telegram message with a non-numeric id")
            return
        await self._call(
            "editMessageReplyMarkup",
            chat_id,
            lambda: self.bot.edit_message_reply_markup(
                chat_id=_chat_id(chat_id), message_id=message_id, reply_markup=inline_keyboard(reply.buttons)
            ),
        )

    async def _set_chat_commands(self, chat_id: str, reply: SetCommands) -> None:
        """One chat's command menu: the commands that person may use, in their language (any client language)."""
        commands = [BotCommand(command=name, description=description) for name, description in reply.commands]
        scope = BotCommandScopeChat(chat_id=_chat_id(chat_id))
        await self._call("setMyCommands", chat_id, lambda: self.bot.set_my_commands(commands, scope=scope))

    async def _answer(self, callback_id: str, text: str | None = None, alert: bool = False) -> None:
        await self._call(
            "answerCallbackQuery",
            "-",
            lambda: self.bot.answer_callback_query(callback_id, text=text, show_alert=alert or None),
        )

    async def _call(self, method: str, chat_id: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """One Bot API call; waits and retries when Telegram asks us to slow down; logs and returns ``None`` on
        failure. Logs name the method and chat, never the text sent, and never the token."""
        for attempt in range(_RETRIES + 1):
            try:
                return await call()
            except TelegramRetryAfter as err:
                if attempt == _RETRIES or err.retry_after > _MAX_RETRY_AFTER:
                    self._log_failure(method, chat_id, err)
                    return None
                log.info("telegram asks to retry %s to chat %s in %ss", method, chat_id, err.retry_after)
                await asyncio.sleep(err.retry_after)
            except TelegramBadRequest as err:
                if _NOT_MODIFIED in err.message.lower():
                    log.debug("%s to chat %s: message not modified", method, chat_id)
                else:
                    self._log_failure(method, chat_id, err)
                return None
            except TelegramForbiddenError as err:
                log.info(
                    "%s to chat %s refused (the person may have blocked the bot): %s",
                    method,
                    chat_id,
                    self._redact(err.message),
                )
                return None
            except TelegramAPIError as err:
                self._log_failure(method, chat_id, err)
                return None
            except ClientDecodeError:
                log.error("%s to chat %s: the Bot API answered something that is not a valid response", method, chat_id)
                return None
        return None  # pragma: no cover - the loop always returns

    def _log_failure(self, method: str, chat_id: str, err: TelegramAPIError) -> None:
        log.error("%s to chat %s failed: %s: %s", method, chat_id, type(err).__name__, self._redact(err.message))

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text
