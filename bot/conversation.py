"""One event in, replies out: identify the person, pick their language, load their dialogue state, dispatch,
and commit the whole unit of work, or roll it back whole and say so in the reader's language."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from bot.command_menu import command_menu
from bot.context import BotInfo, Context, state_key
from bot.events import ButtonPress, Event
from bot.failures import failure_reference, log_failure
from bot.rendering import Localizer, Localizers
from bot.replies import AnswerButton, ChatRef, Reply, SendText, SetCommands
from bot.router import Router
from community.errors import LinliError
from community.people import Arriving, arrive, find_account, identities_of
from community.roles import Action
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory
from community.viewers import home_viewer
from i18n import N_, negotiate_language

log = logging.getLogger(__name__)

FAILED = N_(
    "Something went wrong on our side and nothing was saved. Please try again. "
    "If it happens again, tell the community worker the reference %(reference)s."
)


class Conversation:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        router: Router,
        localizers: Localizers,
        bot: BotInfo,
    ) -> None:
        self.uows = uows
        self.router = router
        self.localizers = localizers
        self.bot = bot

    async def handle(self, event: Event, *, menus: bool = False) -> Sequence[Reply]:
        """The replies to one event. menus: the channel shows each chat a command menu of its own (Telegram):
        when the event changed someone's roles or language, the replies end with their new menus (SetCommands),
        for the people this channel reaches."""
        sender = event.sender
        localizer = self.localizers.get(negotiate_language(None, sender.language_code, None))
        async with self.uows() as uow:
            try:
                arriving = Arriving(
                    channel=sender.channel,
                    external_id=sender.account_id,
                    chat_id=sender.chat_id,
                    display_name=sender.display_name,
                    language_code=sender.language_code,
                    username=sender.username,
                )
                arrival = await arrive(uow, arriving, state_key(event))
                identity = arrival.identity
                primary = identity.primary
                localizer = self.localizers.get(
                    negotiate_language(
                        identity.person.language,
                        sender.language_code,
                        primary.community.default_language if primary else None,
                    ),
                    primary.community.timezone if primary else "Asia/Shanghai",
                )
                ctx = Context(
                    event=event,
                    uow=uow,
                    identity=identity,
                    l=localizer,
                    localizers=self.localizers,
                    bot=self.bot,
                    state=arrival.state,
                    features=self.router.features,
                )
                replies = await self.router.dispatch(ctx)
                await uow.commit()
            except LinliError as err:
                await uow.rollback()
                return self._refusal(event, localizer, localizer.text(err.message, **err.params))
            except Exception as error:  # noqa: BLE001 - the one dispatch boundary, see below
                # Whatever else a handler or the database raised (a bug, a lost connection, a value a driver
                # refused) ends here, and only here: the unit of work is rolled back whole, the person is told with
                # a reference that is also in the log line, and the bot and the console go on with the next event.
                # Logged without the event's content or the exception's message: either may hold personal data.
                reference = failure_reference()
                log_failure(log, reference, error, f"handling {type(event.payload).__name__} from {sender.channel}")
                await self._roll_back(uow, reference)
                return self._refusal(event, localizer, localizer.text(FAILED, reference=reference))
            if menus and uow.people_changed:
                replies = [*replies, *await self._menus(uow, event, sorted(uow.people_changed))]
        return replies

    async def _menus(self, uow: UnitOfWork, event: Event, people: Sequence[int]) -> list[Reply]:
        """The command menu of each of these people, for each of their chats on the event's channel (read after
        the event's change committed; a failure here loses a menu, never the change). The sender is found by
        their account, so one who has just erased themselves (/forget) gets the public menu."""
        try:
            return await self._read_menus(uow, event, people)
        except SQLAlchemyError as error:
            doing = f"reading command menus after {type(event.payload).__name__} from {event.sender.channel}"
            log_failure(log, failure_reference(), error, doing)
            await uow.rollback()
            return []

    async def _read_menus(self, uow: UnitOfWork, event: Event, people: Sequence[int]) -> list[Reply]:
        sender = event.sender
        found: list[SetCommands] = []
        identities = await identities_of(uow, people, sender.channel)
        mine = [identity for identity in identities if identity.account.external_id == sender.account_id]
        if not mine and await find_account(uow, sender.channel, sender.account_id) is None:
            # Erased in this event (/forget): what a stranger sees.
            localizer = self.localizers.get(negotiate_language(None, sender.language_code, None))
            found.append(SetCommands(command_menu(self.router, localizer, frozenset())))
        actions: dict[int, frozenset[Action]] = {}  # the same for each of a person's accounts
        for identity in identities:
            person, account, primary = identity.person, identity.account, identity.primary
            language = negotiate_language(
                person.language, account.language_code, primary.community.default_language if primary else None
            )
            if identity.person_id not in actions:
                actions[identity.person_id] = (await home_viewer(uow, identity, read_now=True)).actions
            commands = command_menu(self.router, self.localizers.get(language), actions[identity.person_id])
            to = None if account.external_id == sender.account_id else ChatRef(account.channel, account.chat_id)
            found.append(SetCommands(commands, to=to))
        return list(found)

    @staticmethod
    async def _roll_back(uow: UnitOfWork, reference: str) -> None:
        try:
            await uow.rollback()
        except (SQLAlchemyError, OSError) as error:
            # The connection broke: closing the unit of work discards the transaction anyway.
            log_failure(log, reference, error, "rolling back")

    @staticmethod
    def _refusal(event: Event, localizer: Localizer, text: str) -> Sequence[Reply]:
        if isinstance(event.payload, ButtonPress):
            return (AnswerButton(), SendText(text))
        return (SendText(text),)
