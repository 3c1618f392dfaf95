"""What a handler gets: the event, the person behind it, their language, their dialogue state and a unit of
work to call services with. Handlers parse, call a service and render; the rules live in the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.events import Event
from bot.manifest import Features
from bot.rendering import Localizer, Localizers
from community.dialogue import DialogueState, clear_state, save_state
from community.people import Identity, MembershipView
from community.unit_of_work import UnitOfWork
from i18n import negotiate_language


@dataclass(frozen=True, slots=True)
class BotInfo:
    """Facts about the running bot that replies need (deep links name the bot)."""

    username: str = "linli_bot"

    def deep_link(self, start_parameter: str) -> str:
        return f"https://t.me/{self.username}?start={start_parameter}"


def state_key(event: Event) -> str:
    sender = event.sender
    return f"{sender.channel}:{sender.chat_id}:{sender.account_id}"


@dataclass(slots=True)
class Context:
    event: Event
    uow: UnitOfWork
    identity: Identity
    l: Localizer  # noqa: E741 - short on purpose: every handler writes l.text(...) many times
    localizers: Localizers
    bot: BotInfo
    state: DialogueState | None = None
    # The app's features (bot.manifest): the menu's entries, the personal-data providers, the settings' values.
    features: Features = field(default_factory=Features)

    @property
    def person_id(self) -> int:
        return self.identity.person_id

    @property
    def membership(self) -> MembershipView | None:
        return self.identity.primary

    async def set_state(self, name: str, **data: Any) -> None:
        self.state = DialogueState(name=name, data=data)
        await save_state(self.uow, state_key(self.event), self.state)

    async def clear_state(self) -> None:
        if self.state is not None:
            self.state = None
            await clear_state(self.uow, state_key(self.event))

    def refresh_command_menu(self) -> None:
        """Set this person's command menu again once the event is handled (channels that have one): /start and
        /menu do, so a menu that went stale (roles changed from the command line) heals."""
        self.uow.people_changed.add(self.person_id)

    def localizer_for(self, own_choice: str | None, client_language: str | None = None) -> Localizer:
        """How to speak to someone else (e.g. telling a requester the outcome) in their own language."""
        membership = self.membership
        default = membership.community.default_language if membership else None
        language = negotiate_language(own_choice, client_language, default)
        return self.localizers.get(language, self.l.timezone)
