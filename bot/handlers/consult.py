"""/consult: residents take part in consultations. The list of open ones; a consultation's background, then
its statements one card at a time with Agree / Disagree / Pass, the card edited in place into the next one;
"My votes" to look back and change a vote; "Add a statement" as a one-question dialogue.

Who may take part, when, and what counts are the services' (consultation.consultations, .participation);
refusals (closed, not open yet, not eligible) are theirs, translated by the conversation."""

from __future__ import annotations

from collections.abc import Sequence

from bot import forms
from bot.consultations.buttons import OpenConsultation
from bot.consultations.cards import (
    VOTE_OF,
    CastVote,
    ConsultStep,
    ShowStatement,
    Step,
    card_keyboard,
    card_text,
    choice_label,
)
from bot.context import Context
from bot.events import Command, ContactShared, FileShared, TextInput
from bot.notices.render import attachment_label, moment
from bot.replies import AnswerButton, Button, Keyboard, Reply, SendMedia, SendText
from bot.router import Router
from community.communities import get_community
from community.roles import Action
from consultation import moderation, participation
from consultation.consultations import (
    MAX_STATEMENT,
    get_consultation,
    get_statement,
    open_with_communities,
    takes_votes,
    votes_of,
)
from consultation.errors import DuplicateStatement, HiddenDuplicateStatement, StatementNotVotable
from consultation.participation import Card
from i18n import N_

STATE_STATEMENT = "consult.statement"
PAGE = 8  # statements per page of "My votes"
EXCERPT = 60  # characters of a statement on a "My votes" button
TITLE_ON_BUTTON = 40


def _excerpt(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


async def _card(ctx: Context, card: Card, *, review: bool = False) -> tuple[str, Keyboard]:
    voted_any = True
    if card.statement_id is None:
        voted_any = bool(await votes_of(ctx.uow, ctx.person_id, card.consultation.id))
    return card_text(ctx.l, card, voted_any=voted_any), card_keyboard(ctx.l, card, review=review)


# --- the list, and opening one ----------------------------------------------------------------------------------


async def list_open(ctx: Context, _: Command) -> Sequence[Reply]:
    found = await open_with_communities(ctx.uow, ctx.person_id)
    if not found:
        return (
            SendText(ctx.l.text("No consultation is open for you right now. You get an invitation when one opens.")),
        )
    items = []
    buttons: list[tuple[Button, ...]] = []
    for consultation, community in found:
        reader = ctx.l.with_timezone(community.timezone)
        items.append(
            {"title": consultation.title, "community": community.name, "closes": moment(reader, consultation.closes_at)}
        )
        label = _excerpt(consultation.title, TITLE_ON_BUTTON)
        buttons.append((Button(label, OpenConsultation(consultation.id or 0).pack()),))
    return (SendText(ctx.l.render("consult_list.j2", items=items), buttons=tuple(buttons)),)


async def open_consultation(ctx: Context, data: OpenConsultation) -> Sequence[Reply]:
    """From the list or an invitation: the background as a message of its own (with its photo or document where
    this channel holds it), then the first card, which later taps edit in place."""
    card = await participation.take_part(ctx.uow, ctx.person_id, data.consultation_id)
    consultation = await get_consultation(ctx.uow, data.consultation_id)
    community = await get_community(ctx.uow, consultation.community_id)
    reader = ctx.l.with_timezone(community.timezone)
    kind, ref = consultation.attachment_kind, consultation.attachment_ref
    # A file reference is good only on the channel that took it; elsewhere the intro names the attachment.
    with_file = kind is not None and ref is not None and consultation.attachment_channel == ctx.event.sender.channel
    intro = reader.render(
        "consult_intro.j2",
        title=consultation.title,
        community=community.name,
        closes=moment(reader, consultation.closes_at),
        background=consultation.background,
        attachment=None if with_file else attachment_label(reader, kind, consultation.attachment_name),
    )
    replies: list[Reply] = [AnswerButton()]
    if with_file and kind is not None and ref is not None:
        # A caption holds 1,024 characters and a background up to 4,000: the file comes with the title only.
        caption = reader.text("🗳 %(title)s", title=consultation.title)
        replies.append(SendMedia(kind.value, ref, caption, consultation.attachment_name))
    replies.append(SendText(intro))
    text, buttons = await _card(ctx, card)
    replies.append(SendText(text, buttons=buttons))
    return replies


# --- votes ------------------------------------------------------------------------------------------------------


async def cast_vote(ctx: Context, data: CastVote) -> Sequence[Reply]:
    chosen = VOTE_OF[data.choice]
    cast = await participation.cast(ctx.uow, ctx.person_id, data.statement_id, chosen)
    card = (await participation.review(ctx.uow, ctx.person_id, data.statement_id))[0] if data.review else cast.next
    if cast.previous is None:
        toast = None
    elif cast.previous is chosen:
        # A tap on an older message of the same statement: the database holds one vote whatever the taps.
        toast = ctx.l.label("You had already voted on that statement; it counts once.")
    else:
        toast = ctx.l.label("Your vote is changed to “%(choice)s”.", choice=choice_label(ctx.l, chosen))
    text, buttons = await _card(ctx, card, review=data.review)
    return (AnswerButton(toast), forms.show(ctx, text, buttons))


async def show_statement(ctx: Context, data: ShowStatement) -> Sequence[Reply]:
    try:
        card, _ = await participation.review(ctx.uow, ctx.person_id, data.statement_id)
    except StatementNotVotable as refused:
        return (AnswerButton(ctx.l.label(refused.message), alert=True),)  # a toast: the card in view stays
    text, buttons = await _card(ctx, card, review=True)
    return (AnswerButton(), forms.show(ctx, text, buttons))


async def my_votes(ctx: Context, consultation_id: int, page: int) -> Sequence[Reply]:
    consultation = await get_consultation(ctx.uow, consultation_id)
    voted = await participation.my_votes(ctx.uow, ctx.person_id, consultation_id)
    pages = max(1, -(-len(voted) // PAGE))
    page = min(max(page, 0), pages - 1)
    shown = voted[page * PAGE : (page + 1) * PAGE]
    items = [{"choice": choice_label(ctx.l, value), "text": statement.text} for statement, value in shown]
    text = ctx.l.render("consult_my_votes.j2", title=consultation.title, items=items, page=page + 1, pages=pages)
    rows: list[tuple[Button, ...]] = [
        (Button(_excerpt(statement.text, EXCERPT), ShowStatement(statement.id or 0).pack()),) for statement, _ in shown
    ]
    nav: list[Button] = []
    if page > 0:
        nav.append(Button(ctx.l.label("‹ Previous"), ConsultStep(consultation_id, Step.MY_VOTES, page - 1).pack()))
    if page < pages - 1:
        nav.append(Button(ctx.l.label("Next page ›"), ConsultStep(consultation_id, Step.MY_VOTES, page + 1).pack()))
    if nav:
        rows.append(tuple(nav))
    rows.append((Button(ctx.l.label("Continue voting ›"), ConsultStep(consultation_id, Step.NEXT).pack()),))
    return (AnswerButton(), forms.show(ctx, text, tuple(rows)))


# --- a statement of one's own -----------------------------------------------------------------------------------


def _cancel_keyboard(ctx: Context, consultation_id: int) -> Keyboard:
    return ((Button(ctx.l.label("Cancel"), ConsultStep(consultation_id, Step.CANCEL).pack()),),)


async def ask_statement(ctx: Context, consultation_id: int) -> Sequence[Reply]:
    consultation = await participation.may_add_statement(ctx.uow, ctx.person_id, consultation_id)
    await ctx.set_state(STATE_STATEMENT, consultation_id=consultation_id)
    text = ctx.l.render(
        "consult_ask_statement.j2", title=consultation.title, limit=MAX_STATEMENT, moderated=consultation.moderated
    )
    return (AnswerButton(), SendText(text, buttons=_cancel_keyboard(ctx, consultation_id)))


async def got_statement(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    assert ctx.state is not None
    consultation_id = int(ctx.state.data["consultation_id"])
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type your statement."), buttons=_cancel_keyboard(ctx, consultation_id)),)
    try:
        # The use case sends the moderators the statement when it waits for them.
        statement = await moderation.submit_statement(ctx.uow, ctx.person_id, consultation_id, payload.text)
    except DuplicateStatement as duplicate:
        # Refused, the question stands; the existing statement is one tap away where it can be voted on.
        existing = await get_statement(ctx.uow, duplicate.statement_id)
        rows: list[tuple[Button, ...]] = []
        if takes_votes(existing):
            rows.append((Button(ctx.l.label("Vote on it"), ShowStatement(duplicate.statement_id).pack()),))
        rows.extend(_cancel_keyboard(ctx, consultation_id))
        text = ctx.l.text(duplicate.message, **duplicate.params)
        return (SendText(text, buttons=tuple(rows)),)
    except HiddenDuplicateStatement as hidden:
        # Someone else's statement nobody may see yet (or rejected): refused without pointing to it.
        return (SendText(ctx.l.text(hidden.message), buttons=_cancel_keyboard(ctx, consultation_id)),)
    await ctx.clear_state()
    pending = not takes_votes(statement)  # a moderator sees it first
    buttons = (
        (
            Button(ctx.l.label("Continue voting ›"), ConsultStep(consultation_id, Step.NEXT).pack()),
            Button(ctx.l.label("My votes"), ConsultStep(consultation_id, Step.MY_VOTES).pack()),
        ),
    )
    return (
        SendText(ctx.l.render("consult_statement_added.j2", pending=pending, text=statement.text), buttons=buttons),
    )


async def cancel_statement(ctx: Context, consultation_id: int) -> Sequence[Reply]:
    if ctx.state is not None and ctx.state.name == STATE_STATEMENT:
        await ctx.clear_state()
    buttons = ((Button(ctx.l.label("Continue voting ›"), ConsultStep(consultation_id, Step.NEXT).pack()),),)
    return (AnswerButton(), forms.show(ctx, ctx.l.text("Cancelled. No statement was added."), buttons))


# --- the steps ----------------------------------------------------------------------------------------------------


async def step(ctx: Context, data: ConsultStep) -> Sequence[Reply]:
    if data.step is Step.ADD:
        return await ask_statement(ctx, data.consultation_id)
    if data.step is Step.CANCEL:
        return await cancel_statement(ctx, data.consultation_id)
    if data.step is Step.MY_VOTES:
        return await my_votes(ctx, data.consultation_id, data.page)
    card = await participation.take_part(ctx.uow, ctx.person_id, data.consultation_id)
    text, buttons = await _card(ctx, card)
    return (AnswerButton(), forms.show(ctx, text, buttons))


def register(router: Router) -> None:
    router.command(
        "consult",
        list_open,
        description=N_("Take part in your community's consultations"),
        action=Action.USE_RESIDENT_MENU,
    )
    router.button(OpenConsultation, open_consultation)
    router.button(CastVote, cast_vote)
    router.button(ShowStatement, show_statement)
    router.button(ConsultStep, step)
    router.state(STATE_STATEMENT, got_statement)
