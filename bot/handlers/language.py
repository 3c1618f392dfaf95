"""/language: the person chooses 中文 or English; Linli answers in the new language at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from bot.callbacks import CallbackData
from bot.context import Context
from bot.events import ButtonPress, Command
from bot.handlers.menu import main_menu
from bot.replies import AnswerButton, Button, EditText, Reply, SendText
from bot.router import Router
from community.people import set_language
from i18n import LANGUAGES, N_

# Each language named in itself, so a reader who cannot read the current language still finds their own.
ENDONYMS: Mapping[str, str] = {"zh_Hans": "中文", "en": "English"}
CURRENT_MARK = "✓ "


@dataclass(frozen=True)
class ChooseLanguage(CallbackData):
    prefix: ClassVar[str] = "lang"
    language: str


async def show_languages(ctx: Context, _: Command) -> Sequence[Reply]:
    current = ctx.identity.person.language
    buttons = tuple(
        Button(
            (CURRENT_MARK if language == current else "") + ENDONYMS.get(language, language),
            ChooseLanguage(language).pack(),
        )
        for language in LANGUAGES
    )
    return (SendText(ctx.l.text("Choose the language Linli writes to you in."), buttons=(buttons,)),)


async def choose_language(ctx: Context, data: ChooseLanguage) -> Sequence[Reply]:
    if data.language not in LANGUAGES:
        return (AnswerButton(ctx.l.label("This button is out of date. Send /menu to start again."), alert=True),)
    await set_language(ctx.uow, ctx.identity.person, data.language)
    ctx.l = ctx.localizers.get(data.language, ctx.l.timezone)
    done = ctx.l.text("Done: Linli will write to you in this language from now on.")
    payload = ctx.event.payload
    message_id = payload.message_id if isinstance(payload, ButtonPress) else None
    confirmation: Reply = EditText(message_id, done) if message_id is not None else SendText(done)
    return (AnswerButton(), confirmation, await main_menu(ctx))


def register(router: Router) -> None:
    router.command("language", show_languages, description=N_("Switch between 中文 and English"))
    router.button(ChooseLanguage, choose_language)
