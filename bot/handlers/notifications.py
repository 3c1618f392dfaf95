"""A resident's side of notices: /notifications (mute categories, the daily digest) and the Acknowledge button
under a notice that asks for it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from babel.lists import format_list

from bot.context import Context
from bot.events import ButtonPress, Command
from bot.notices.buttons import PREVIEW_NOTICE_ID, AcknowledgeNotice, DigestChoice, MuteCategory
from bot.notices.render import CATEGORIES, ack_keyboard, category_label
from bot.rendering import Localizer
from bot.replies import AnswerButton, Button, EditButtons, EditText, Keyboard, Reply, SendText
from bot.router import Router
from community import notices
from community.notice_models import MessageKind
from community.roles import Action
from community.settings import show_time_of_day
from i18n import N_

if TYPE_CHECKING:
    from jinja2 import Environment

    from i18n import Translator

ON = "🔔 "
OFF = "🔕 "


def _message_id(ctx: Context) -> str | None:
    payload = ctx.event.payload
    return payload.message_id if isinstance(payload, ButtonPress) else None


# ---------------------------------------------------------------------------------------------------------------
# /notifications


async def _screen(ctx: Context, chosen: notices.NotificationSettings | None = None) -> tuple[str, Keyboard]:
    """The screen for the person's settings: chosen when the caller already knows them, read otherwise."""
    if chosen is None:
        chosen = await notices.notification_settings(ctx.uow, ctx.person_id)
    return _render(ctx.l.t, ctx.l.env, chosen)


@functools.lru_cache(maxsize=256)
def _render(translator: Translator, env: Environment, chosen: notices.NotificationSettings) -> tuple[str, Keyboard]:
    """The screen's text and buttons, rendered once per language and settings: rendering cost half the press, and
    people share a few combinations of settings. Everything shown follows from these arguments (the screen has
    no date, so the reader's time zone plays no part), and what is returned is immutable."""
    l = Localizer(translator, env)  # noqa: E741 - the house name for a localizer
    muted, digest = chosen.muted, chosen.daily_digest
    names = [category_label(l, category) for category in CATEGORIES if category in muted]
    text = l.render(
        "notice_notifications.j2",
        muted=str(format_list(names, locale=l.t.locale)) if names else None,
        digest=digest,
        digest_time=str(format_list([show_time_of_day(at) for at in chosen.digest_times], locale=l.t.locale)),
    )
    toggles = [
        Button((OFF if category in muted else ON) + category_label(l, category), MuteCategory(index).pack())
        for index, category in enumerate(CATEGORIES)
    ]
    rows: list[tuple[Button, ...]] = [tuple(toggles[i : i + 2]) for i in range(0, len(toggles), 2)]
    digest_label = l.label("Daily digest: on") if digest else l.label("Daily digest: off")
    rows.append((Button(digest_label, DigestChoice(on=not digest).pack()),))
    return text, tuple(rows)


async def show(ctx: Context, _: Command) -> Sequence[Reply]:
    text, buttons = await _screen(ctx)
    return (SendText(text, buttons=buttons),)


async def _refresh(ctx: Context, answer: str, chosen: notices.NotificationSettings | None = None) -> Sequence[Reply]:
    text, buttons = await _screen(ctx, chosen)
    message_id = _message_id(ctx)
    shown: Reply = EditText(message_id, text, buttons) if message_id is not None else SendText(text, buttons)
    return (AnswerButton(answer), shown)


async def toggle_mute(ctx: Context, data: MuteCategory) -> Sequence[Reply]:
    if not 0 <= data.index < len(CATEGORIES):
        return (AnswerButton(ctx.l.label("This button is out of date. Send /menu to start again."), alert=True),)
    category = CATEGORIES[data.index]
    before = await notices.notification_settings(ctx.uow, ctx.person_id)
    mute = category not in before.muted
    await notices.set_muted(ctx.uow, ctx.person_id, category, mute)
    # The screen after the change is the settings just read with this one category toggled: no second read.
    after = replace(before, muted=before.muted | {category} if mute else before.muted - {category})
    name = category_label(ctx.l, category)
    if mute:
        return await _refresh(
            ctx, ctx.l.label("Muted: %(category)s. Important notices still reach you.", category=name), after
        )
    return await _refresh(ctx, ctx.l.label("You receive %(category)s notices again.", category=name), after)


async def choose_digest(ctx: Context, data: DigestChoice) -> Sequence[Reply]:
    await notices.set_daily_digest(ctx.uow, ctx.person_id, data.on)
    if data.on:
        return await _refresh(ctx, ctx.l.label("Non-urgent notices now come together once a day."))
    return await _refresh(ctx, ctx.l.label("Notices now come as soon as they are sent."))


# ---------------------------------------------------------------------------------------------------------------
# Acknowledge


async def acknowledge(ctx: Context, data: AcknowledgeNotice) -> Sequence[Reply]:
    if data.notice_id == PREVIEW_NOTICE_ID:
        text = ctx.l.label("This is the preview: residents tap here to confirm that they have read the notice.")
        return (AnswerButton(text, alert=True),)
    if not await notices.acknowledge(ctx.uow, ctx.person_id, data.notice_id):
        if await notices.has_acknowledged(ctx.uow, ctx.person_id, data.notice_id):
            return (AnswerButton(ctx.l.label("You have already acknowledged this notice.")),)
        return (AnswerButton(ctx.l.label("This button is out of date. Send /menu to start again."), alert=True),)
    replies: list[Reply] = [AnswerButton(ctx.l.label("Thank you. Your confirmation has been counted."))]
    message_id = _message_id(ctx)
    if message_id is not None:
        done = ack_keyboard(ctx.l, data.notice_id, done=True)
        sender = ctx.event.sender
        sent = await notices.copy_in_chat(ctx.uow, data.notice_id, ctx.person_id, sender.channel, sender.chat_id)
        if sent is not None and sent.kind is MessageKind.TEXT:
            replies.append(EditText(message_id, sent.text, done))  # the same text, the button replaced
        else:
            replies.append(EditButtons(message_id, done))  # a caption stays as it is
    return replies


def register(router: Router) -> None:
    router.command(
        "notifications",
        show,
        description=N_("Choose which notices reach you, and when"),
        action=Action.USE_RESIDENT_MENU,
    )
    router.button(MuteCategory, toggle_mute)
    router.button(DigestChoice, choose_digest)
    router.button(AcknowledgeNotice, acknowledge)
