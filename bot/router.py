"""The conversation router: one incoming event goes to exactly one handler.

Commands by name, buttons by the prefix of their typed callback data, text and contacts by the dialogue
state the person is in, else a short hint; files (photos, documents) to a state that takes them, or to the text
state the person is in, which answers what it expects instead.
Handler modules register themselves with ``register(router)``, called for each feature's manifest (bot.manifest)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from bot.callbacks import CallbackData, CallbackDataError
from bot.context import Context
from bot.events import ButtonPress, Command, ContactShared, FileShared, TextInput
from bot.manifest import Features
from bot.replies import Reply
from community.features import AnyAction

CD = TypeVar("CD", bound=CallbackData)
Replies = Sequence[Reply]
CommandHandler = Callable[[Context, Command], Awaitable[Replies]]
ButtonHandler = Callable[[Context, Any], Awaitable[Replies]]
InputHandler = Callable[[Context, TextInput | ContactShared], Awaitable[Replies]]
# A state's handler also gets the files sent in a state that has no file_state, and says what it expects.
StateHandler = Callable[[Context, TextInput | ContactShared | FileShared], Awaitable[Replies]]
FileHandler = Callable[[Context, FileShared], Awaitable[Replies]]


@dataclass(frozen=True)
class RunCommand(CallbackData):
    """A button that runs a command, so every menu entry is also reachable by typing its command."""

    prefix: ClassVar[str] = "c"
    name: str


@dataclass(frozen=True, slots=True)
class MenuCommand:
    """A command shown in the client's command menu (Telegram's setMyCommands), described per language. action:
    who may use it (community.permissions); None: anyone, a stranger too. bot/command_menu.py draws each
    person's menu from it."""

    name: str
    description: str  # English message id
    action: AnyAction | None = None


class Router:
    def __init__(self, features: Features | None = None) -> None:
        """features: the app's features, composed from the manifests whose handlers register here (bot.app
        build_router); handlers read them as ctx.features."""
        self.features = features if features is not None else Features()
        self._commands: dict[str, CommandHandler] = {}
        self._buttons: dict[str, tuple[type[CallbackData], ButtonHandler]] = {}
        self._states: dict[str, StateHandler] = {}
        self._file_states: dict[str, FileHandler] = {}
        self._fallback: InputHandler | None = None
        self._file_fallback: FileHandler | None = None
        self._unknown_command: CommandHandler | None = None
        self._stale_button: ButtonHandler | None = None
        self.menu_commands: list[MenuCommand] = []

    def command(
        self,
        name: str,
        handler: CommandHandler,
        *,
        description: str | None = None,
        action: AnyAction | None = None,
    ) -> None:
        """description: shown in the command menu of those who may use it: anyone (action None) or those whose
        roles allow ``action``. The handler's service checks the permission again; the menu only hides."""
        if name in self._commands:
            raise ValueError(f"command /{name} registered twice")
        self._commands[name] = handler
        if description is not None:
            self.menu_commands.append(MenuCommand(name, description, action))

    def button(self, data_type: type[CD], handler: Callable[[Context, CD], Awaitable[Replies]]) -> None:
        if data_type.prefix in self._buttons:
            raise ValueError(f"callback prefix {data_type.prefix!r} registered twice")
        self._buttons[data_type.prefix] = (data_type, handler)

    def state(self, name: str, handler: StateHandler) -> None:
        """The handler of what a person sends in this state: text, a contact, or a file where the state has no
        file_state (it then says what it expects)."""
        if name in self._states:
            raise ValueError(f"state {name!r} registered twice")
        self._states[name] = handler

    def file_state(self, name: str, handler: FileHandler) -> None:
        """A state that takes a photo or a document as well as text (register its text handler with state())."""
        if name in self._file_states:
            raise ValueError(f"file state {name!r} registered twice")
        self._file_states[name] = handler

    def file_fallback(self, handler: FileHandler) -> None:
        """A file where no form expects one."""
        self._file_fallback = handler

    def fallback(self, handler: InputHandler) -> None:
        """Free text or a contact where no form expects one."""
        self._fallback = handler

    def unknown_command(self, handler: CommandHandler) -> None:
        self._unknown_command = handler

    def stale_button(self, handler: ButtonHandler) -> None:
        """A press on a button this version no longer understands (an old message)."""
        self._stale_button = handler

    def has_command(self, name: str) -> bool:
        return name in self._commands

    @property
    def command_names(self) -> tuple[str, ...]:
        """Every registered command, in registration order."""
        return tuple(self._commands)

    @property
    def button_types(self) -> tuple[type[CallbackData], ...]:
        """The callback data type of every registered button handler (RunCommand is the router's own)."""
        return tuple(data_type for data_type, _ in self._buttons.values())

    async def dispatch(self, ctx: Context) -> Replies:
        payload = ctx.event.payload
        if isinstance(payload, Command):
            command_handler = self._commands.get(payload.name) or self._unknown_command
            return await command_handler(ctx, payload) if command_handler else ()
        if isinstance(payload, ButtonPress):
            if CallbackData.prefix_of(payload.data) == RunCommand.prefix:
                try:
                    name = RunCommand.unpack(payload.data).name
                except CallbackDataError:
                    name = ""
                if name in self._commands:
                    return await self._commands[name](ctx, Command(name))
            entry = self._buttons.get(CallbackData.prefix_of(payload.data))
            if entry is not None:
                data_type, button_handler = entry
                try:
                    data = data_type.unpack(payload.data)
                except CallbackDataError:
                    entry = None
                else:
                    return await button_handler(ctx, data)
            return await self._stale_button(ctx, payload) if self._stale_button else ()
        state = ctx.state
        if isinstance(payload, FileShared):
            file_handler = self._file_states.get(state.name) if state is not None else None
            if file_handler is None and state is not None and state.name in self._states:
                # A prompt that takes text (a code, a name, a statement): it says itself what it expects.
                return await self._states[state.name](ctx, payload)
            file_handler = file_handler or self._file_fallback
            return await file_handler(ctx, payload) if file_handler else ()
        if state is not None and state.name in self._states:
            return await self._states[state.name](ctx, payload)
        return await self._fallback(ctx, payload) if self._fallback else ()
