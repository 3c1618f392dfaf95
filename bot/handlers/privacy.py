"""/privacy shows a person everything Linli holds about them, as a message and as a file; /forget erases it
after they confirm. What the features hold comes from their personal-data providers (ctx.features.privacy, from
the manifests): each shows its section here and erases its rows on /forget."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from babel.lists import format_list
from markupsafe import Markup

from bot.callbacks import CallbackData
from bot.context import Context
from bot.events import ButtonPress, Command
from bot.handlers.language import ENDONYMS
from bot.labels import role_list
from bot.notices.render import category_label
from bot.replies import AnswerButton, Button, EditText, Reply, SendFile, SendText
from bot.router import Router, RunCommand
from community.models import JoinRequestStatus
from community.privacy import forget, personal_data
from community.roles import Role
from i18n import N_

EXPORT_FILENAME = "linli-my-data.json"

STATUS_LABELS: Mapping[JoinRequestStatus, str] = {
    JoinRequestStatus.PENDING: N_("waiting for a decision"),
    JoinRequestStatus.APPROVED: N_("approved"),
    JoinRequestStatus.REJECTED: N_("rejected"),
}


@dataclass(frozen=True)
class ForgetChoice(CallbackData):
    """Confirm or cancel erasure. Carries whose erasure was offered, so only that person can confirm it."""

    prefix: ClassVar[str] = "fg"
    person_id: int
    confirm: bool


async def show_privacy(ctx: Context, _: Command) -> Sequence[Reply]:
    features = ctx.features
    data = await personal_data(ctx.uow, ctx.person_id, features.providers)
    renderers = {section.provider.key: section.render for section in features.privacy}
    # Localizer output is safe HTML: the section templates escape what people wrote.
    sections = [Markup(renderers[found.key](ctx.l, found.section)) for found in data.features]

    def roles(held: Iterable[Role]) -> str:
        return role_list(ctx.l, held)

    def status(value: JoinRequestStatus) -> str:
        return ctx.l.label(STATUS_LABELS[value])

    text = ctx.l.render(
        "privacy.j2",
        data=data,
        language=ENDONYMS.get(data.language, data.language) if data.language else None,
        roles=roles,
        status=status,
        sections=sections,
        muted=format_list([category_label(ctx.l, c) for c in data.muted_categories], locale=ctx.l.t.locale)
        if data.muted_categories
        else None,
    )
    erase = Button(ctx.l.label("Erase my data"), RunCommand("forget").pack())
    return (
        SendText(text, buttons=((erase,),)),
        SendFile(
            EXPORT_FILENAME,
            data.to_json_bytes(),
            caption=ctx.l.text("Everything above, as a file for you to keep."),
            mime_type="application/json",
        ),
    )


async def ask_forget(ctx: Context, _: Command) -> Sequence[Reply]:
    buttons = (
        (
            Button(ctx.l.label("Erase my data"), ForgetChoice(ctx.person_id, confirm=True).pack()),
            Button(ctx.l.label("Cancel"), ForgetChoice(ctx.person_id, confirm=False).pack()),
        ),
    )
    return (SendText(ctx.l.render("forget.j2"), buttons=buttons),)


async def decide_forget(ctx: Context, choice: ForgetChoice) -> Sequence[Reply]:
    payload = ctx.event.payload
    message_id = payload.message_id if isinstance(payload, ButtonPress) else None
    if choice.person_id != ctx.person_id:
        # Someone else's question (a group chat), or one asked before an earlier erasure.
        return (AnswerButton(ctx.l.label("This button is out of date. Send /menu to start again."), alert=True),)
    if choice.confirm:
        # ctx.l was chosen before erasure, so the answer comes in the language the person used.
        await forget(ctx.uow, ctx.person_id, ctx.features.erasers)
        text = ctx.l.text("Everything Linli held about you has been erased. Send /start any time to begin again.")
    else:
        text = ctx.l.text("Nothing was erased.")
    reply: Reply = EditText(message_id, text) if message_id is not None else SendText(text)
    return (AnswerButton(), reply)


def register(router: Router) -> None:
    router.command("privacy", show_privacy, description=N_("See what Linli holds about you"))
    router.command("forget", ask_forget, description=N_("Erase what Linli holds about you"))
    router.button(ForgetChoice, decide_forget)
