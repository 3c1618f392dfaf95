"""/notices for community workers: the community's recent notices with their status; a tap shows a notice's
delivery figures (queued, delivered, failed, unreachable, acknowledged, by building), refreshable while it goes
out, with Cancel (after a confirmation) for one that is scheduled or going out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from bot import forms
from bot.context import Context
from bot.events import Command
from bot.notices.buttons import CancelNotice, ViewNotice
from bot.notices.progress import Progress, progress_keyboard, progress_text
from bot.notices.render import category_label, describe_audience, moment
from bot.rendering import Localizer
from bot.replies import AnswerButton, Button, EditText, Keyboard, Reply, SendText
from bot.router import Router, RunCommand
from community import notices
from community.models import Community
from community.notice_models import Notice, NoticeStatus
from community.roles import Action
from community.scope import Scope
from community.verification import require_staff_communities
from i18n import N_

RECENT = 10
EXCERPT = 40  # characters of the body shown in the list

STATUS_LABELS: Mapping[NoticeStatus, str] = {
    NoticeStatus.DRAFT: N_("draft"),
    NoticeStatus.SCHEDULED: N_("scheduled"),
    NoticeStatus.SENDING: N_("going out"),
    NoticeStatus.SENT: N_("sent"),
    NoticeStatus.CANCELLED: N_("cancelled"),
}


def status_label(l: Localizer, status: NoticeStatus) -> str:  # noqa: E741
    return l.label(STATUS_LABELS[status])


def excerpt(body: str, limit: int = EXCERPT) -> str:
    line = " ".join(body.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------------------------


async def list_notices(ctx: Context, _: Command) -> Sequence[Reply]:
    replies: list[Reply] = []
    for community in await require_staff_communities(ctx.uow, ctx.person_id, Action.SEND_NOTICE):
        assert community.id is not None
        reader = ctx.l.with_timezone(community.timezone)
        found = await notices.recent(ctx.uow, community.id, limit=RECENT)
        items = [
            {
                "id": notice.id,
                "status": status_label(reader, notice.status),
                "when": notice.send_at if notice.status is NoticeStatus.SCHEDULED else notice.created_at,
                "excerpt": excerpt(notice.body),
            }
            for notice in found
        ]
        text = reader.render("notice_list.j2", community=community.name, items=items, at=partial(moment, reader))
        buttons = tuple(
            (
                Button(
                    reader.label("#%(id)s · %(status)s", id=notice.id or 0, status=status_label(reader, notice.status)),
                    ViewNotice(notice.id or 0).pack(),
                ),
            )
            for notice in found
        )
        replies.append(SendText(text, buttons=buttons))
    return replies


async def _figures_text(ctx: Context, notice: Notice, community: Community, question: str | None = None) -> str:
    assert notice.id is not None
    reader = ctx.l.with_timezone(community.timezone)
    figures = await notices.figures(ctx.uow, notice.id)
    return reader.render(
        "notice_figures.j2",
        at=partial(moment, reader),
        notice=notice,
        status=status_label(reader, notice.status),
        category=category_label(reader, notice.category),
        audience=describe_audience(reader, Scope.from_json(notice.audience)),
        excerpt=excerpt(notice.body, 200),
        f=figures,
        question=question,
    )


def _figures_buttons(ctx: Context, notice: Notice) -> Keyboard:
    notice_id = notice.id or 0
    rows: list[tuple[Button, ...]] = [(Button(ctx.l.label("Refresh"), ViewNotice(notice_id).pack()),)]
    if notices.cancellable(notice):
        rows.append((Button(ctx.l.label("Cancel this notice"), CancelNotice(notice_id, confirm=False).pack()),))
    rows.append((Button(ctx.l.label("‹ All notices"), RunCommand("notices").pack()),))
    return tuple(rows)


async def view(ctx: Context, data: ViewNotice) -> Sequence[Reply]:
    notice, community = await notices.notice_for_sender(ctx.uow, ctx.person_id, data.notice_id)
    text = await _figures_text(ctx, notice, community)
    return (AnswerButton(), forms.show(ctx, text, _figures_buttons(ctx, notice)))


async def cancel(ctx: Context, data: CancelNotice) -> Sequence[Reply]:
    notice, community = await notices.notice_for_sender(ctx.uow, ctx.person_id, data.notice_id)
    notice_id = data.notice_id
    if not notices.cancellable(notice):
        text = await _figures_text(ctx, notice, community)
        return (AnswerButton(), forms.show(ctx, text, _figures_buttons(ctx, notice)))
    if not data.confirm:
        question = "scheduled" if notice.status is NoticeStatus.SCHEDULED else "sending"
        text = await _figures_text(ctx, notice, community, question=question)
        buttons = (
            (
                Button(ctx.l.label("Yes, cancel it"), CancelNotice(notice_id, confirm=True).pack()),
                Button(ctx.l.label("No"), ViewNotice(notice_id).pack()),
            ),
        )
        return (AnswerButton(), forms.show(ctx, text, buttons))
    notice = await notices.cancel(ctx.uow, ctx.identity, notice_id)
    replies: list[Reply] = [
        AnswerButton(ctx.l.label("Notice #%(id)s is cancelled.", id=notice_id)),
        forms.show(ctx, await _figures_text(ctx, notice, community), _figures_buttons(ctx, notice)),
    ]
    progress = await _final_progress(ctx, notice, community)
    if progress is not None:
        replies.append(progress)
    return replies


async def _final_progress(ctx: Context, notice: Notice, community: Community) -> Reply | None:
    """The author's progress message, when it is in this chat, says the notice was cancelled (the sender has
    nothing more to report on it)."""
    sender = ctx.event.sender
    message_id = notices.progress_message_shown(notice)
    if (
        notice.id is None
        or message_id is None
        or (notice.progress_channel, notice.progress_chat_id) != (sender.channel, sender.chat_id)
    ):
        return None
    reader = ctx.l.with_timezone(community.timezone)
    figures = await notices.figures(ctx.uow, notice.id)
    progress = Progress.of(figures, notice.queued_at, ctx.uow.clock.now())
    text = progress_text(reader, notice, progress, finished=True)
    return EditText(message_id, text, progress_keyboard(reader, notice.id))


def register(router: Router) -> None:
    router.command(
        "notices",
        list_notices,
        description=N_("Your community's recent notices and how they went"),
        action=Action.SEND_NOTICE,
    )
    router.button(ViewNotice, view)
    router.button(CancelNotice, cancel)
