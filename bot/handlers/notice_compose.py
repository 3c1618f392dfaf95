"""/notice: a community worker writes a notice, a form declared for bot.forms.engine.

1. the text, or a photo or document with the text as its caption;
2. who receives it: the whole community, or buildings, residents' groups and role segments (toggles);
3. options as toggles: category, important, please confirm, a version in the other language, a send time;
4. the preview, exactly as residents will get it, with the number of recipients, and Send / Edit / Cancel.

Send calls community.notice_messages.publish_or_schedule. The rules (who may, who receives it, limits, a time already
past) are the service's; this module declares the form and renders it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from bot import forms
from bot.context import Context
from bot.events import FileShared
from bot.forms.engine import (
    Ask,
    Choice,
    Controls,
    Do,
    FormDeclaration,
    FormEngine,
    Listing,
    Move,
    Page,
    Pick,
    Preview,
    Show,
    Step,
)
from bot.forms.kit import audience_page, place_listings, place_options, summary, time_step
from bot.notices.buttons import PREVIEW_NOTICE_ID, FormAction, NoticeCommunity, NoticeForm, NoticeToggle, Toggle
from bot.notices.form import Form
from bot.notices.render import (
    CATEGORIES,
    category_label,
    language_name,
    moment,
    render_notice,
    segment_label,
)
from bot.replies import Keyboard, Reply, SendText
from bot.router import Router
from community import notices
from community.communities import get_community
from community.models import Community
from community.notice_messages import NoticeLook, publish_or_schedule
from community.notice_models import NoticeCategory
from community.notices import SEGMENT_ROLES
from community.roles import Action
from i18n import N_

AUDIENCE, OPTIONS = "audience", "options"
CONTROLS = Controls.standard(NoticeForm, NoticeToggle, NoticeCommunity, confirm=FormAction.SEND)


async def _new(ctx: Context, community: Community) -> Form:
    assert community.id is not None
    roles = await notices.segment_roles(ctx.uow, ctx.person_id, community.id)
    return Form(
        community_id=community.id,
        language=ctx.l.language,
        role_options=[role.value for role in roles],
        **await place_options(ctx, community.id),
    )


async def _count(ctx: Context, form: Form) -> int:
    return await notices.count_recipients(
        ctx.uow, form.community_id, form.audience(), category=NoticeCategory(form.category), important=form.important
    )


def _validate(ctx: Context, form: Form) -> None:
    notices.validate_draft(form.draft(), ctx.uow.clock.now())  # refused: the question stands


# --- step 1: the text; the questions reached from the options ------------------------------------------------


async def _ask_body(ctx: Context, form: Form) -> str:
    return ctx.l.render(
        "notice_ask_body.j2",
        community=(await get_community(ctx.uow, form.community_id)).name,
        again=form.done,
        has_file=form.attachment is not None,
        caption_limit=notices.MAX_CAPTION,
        body_limit=notices.MAX_BODY,
    )


async def _take_body(ctx: Context, form: Form, text: str) -> None:
    form.body = text.strip()
    _validate(ctx, form)


async def _take_body_file(ctx: Context, form: Form, payload: FileShared) -> None:
    form.body = payload.caption.strip()
    form.attachment = forms.shared_attachment(ctx, payload)
    _validate(ctx, form)


def _keep_time(ctx: Context, form: Form, when: datetime) -> None:
    form.send_at = when.isoformat()
    _validate(ctx, form)  # a time already past is refused here


async def _ask_translation(ctx: Context, form: Form) -> str:
    return ctx.l.render(
        "notice_ask_translation.j2", language=language_name(ctx.l, form.other_language), original=form.body
    )


async def _take_translation(ctx: Context, form: Form, text: str) -> None:
    form.translation = text.strip()
    _validate(ctx, form)


TYPE_THE_TEXT = N_("Please type the text of the notice.")
BODY = Step[Form](
    "body",
    _ask_body,
    _take_body,
    TYPE_THE_TEXT,
    buttons=((N_("Cancel"), FormAction.CANCEL),),
    take_file=_take_body_file,
)
TIME = time_step("time", "notice_ask_time.j2", _keep_time, ((N_("Send now instead"), FormAction.NOW),))
TRANSLATION = Step[Form](
    "translation", _ask_translation, _take_translation, TYPE_THE_TEXT, buttons=((N_("‹ Back"), FormAction.BACK),)
)


# --- step 2: who receives it --------------------------------------------------------------------------------------


def _role_choices(ctx: Context, form: Form) -> list[Choice]:
    allowed = set(form.role_options)
    return [
        Choice(SEGMENT_ROLES.index(role), segment_label(ctx.l, role), role.value in form.roles)
        for role in SEGMENT_ROLES
        if role.value in allowed
    ]


def _toggle_role(form: Form, index: int) -> bool:
    if not 0 <= index < len(SEGMENT_ROLES) or SEGMENT_ROLES[index].value not in form.role_options:
        return False
    form.roles = forms.toggled(form.roles, SEGMENT_ROLES[index].value)
    return True


def _clear_roles(form: Form) -> None:
    form.roles = []


LISTINGS: tuple[Listing[Form], ...] = (
    *place_listings((Toggle.BUILDING, FormAction.BUILDINGS), (Toggle.GROUP, FormAction.GROUPS)),
    Listing(
        Toggle.ROLE, FormAction.ROLES, N_("Roles"), _role_choices, _toggle_role, lambda f: len(f.roles), _clear_roles
    ),
)


# --- step 3: the options ------------------------------------------------------------------------------------------


async def _summary(ctx: Context, form: Form, question: str, count: int) -> str:
    """count: the people the notice would reach (_count), which the caller may need as well."""
    reader = ctx.l.with_timezone((await get_community(ctx.uow, form.community_id)).timezone)
    languages = [language_name(reader, form.language)]
    if form.translation:
        languages.append(language_name(reader, form.other_language))
    attachment = form.attachment_value()
    return await summary(
        ctx,
        form,
        "notice_summary.j2",
        audience=form.audience(),
        count=count,
        category=category_label(reader, NoticeCategory(form.category)),
        important=form.important,
        ack=form.ack,
        attachment=(attachment.name or None) if attachment else None,
        has_attachment=attachment is not None,
        languages=" · ".join(languages),
        send_at=form.when(),
        question=question,
    )


async def _options(ctx: Context, form: Form, _: object) -> tuple[str, Keyboard]:
    l, mark, button = ctx.l, forms.mark, CONTROLS.button  # noqa: E741
    other = language_name(l, form.other_language)
    categories = [
        CONTROLS.toggle(mark(form.category == each.value, category_label(l, each)), Toggle.CATEGORY, i)
        for i, each in enumerate(CATEGORIES)
    ]
    rows = forms.rows(categories)
    rows.append(
        (
            CONTROLS.toggle(mark(form.important, l.label("Important")), Toggle.IMPORTANT),
            CONTROLS.toggle(mark(form.ack, l.label("Please confirm")), Toggle.ACK),
        )
    )
    if form.translation:
        change = button(l.label("Change the %(language)s version", language=other), FormAction.TRANSLATION)
        rows.append((change, button(l.label("Remove it"), FormAction.DROP_TRANSLATION)))
    else:
        rows.append((button(l.label("Add a %(language)s version", language=other), FormAction.TRANSLATION),))
    rows.append(
        (
            button(mark(form.send_at is None, l.label("Send now")), FormAction.NOW),
            button(mark(form.send_at is not None, l.label("Send later…")), FormAction.LATER),
        )
    )
    rows.append(CONTROLS.row(ctx, (N_("Recipients"), FormAction.AUDIENCE), (N_("Edit the text"), FormAction.TEXT)))
    rows.append(CONTROLS.row(ctx, (N_("Preview ›"), FormAction.PREVIEW), (N_("Cancel"), FormAction.CANCEL)))
    return await _summary(ctx, form, "options", await _count(ctx, form)), tuple(rows)


def _drop_translation(_: Context, form: Form) -> None:
    form.translation = None


def _send_now(_: Context, form: Form) -> None:
    form.send_at = None


def _pick_category(_: Context, form: Form, index: int) -> bool:
    if not 0 <= index < len(CATEGORIES):
        return False
    form.category = CATEGORIES[index].value
    return True


def _flip(name: str) -> Pick[Form]:
    def flip(_: Context, form: Form, __: int) -> bool:
        setattr(form, name, not getattr(form, name))
        return True

    return Pick(flip)


# --- step 4: the preview, and sending -----------------------------------------------------------------------------


async def _preview(ctx: Context, form: Form) -> Preview:
    _validate(ctx, form)  # e.g. the send time has passed meanwhile
    community = await get_community(ctx.uow, form.community_id)
    attachment = form.attachment_value()
    look = NoticeLook(
        notice_id=PREVIEW_NOTICE_ID,
        community=community.name,
        category=NoticeCategory(form.category),
        important=form.important,
        ack_requested=form.ack,
        attachment_kind=attachment.kind if attachment else None,
        attachment_name=attachment.name if attachment else None,
    )
    with_file = forms.file_shown_here(ctx, attachment)
    versions = [(form.language, form.body)]
    if form.translation:
        versions.append((form.other_language, form.translation))
    if len(versions) == 1:
        intro = ctx.l.text("Preview: this is the notice exactly as residents will receive it.")
    else:
        intro = ctx.l.text(
            "Preview: residents who read %(first)s receive the first message, those who read %(second)s the second.",
            first=language_name(ctx.l, versions[0][0]),
            second=language_name(ctx.l, versions[1][0]),
        )
    messages: list[Reply] = []
    for language, body in versions:
        shown = render_notice(ctx.localizers.get(language, community.timezone), look, body, with_file=with_file)
        messages.append(forms.as_received(shown.text, shown.buttons, attachment, with_file=with_file))
    send = ctx.l.label("Send") if form.send_at is None else ctx.l.label("Schedule")
    count = await _count(ctx, form)
    return Preview(intro, messages, await _summary(ctx, form, "preview", count), send if count else None)


async def _send(ctx: Context, form: Form) -> str:
    # The progress message goes to the chat the worker sent it from.
    sender = ctx.event.sender
    published = await publish_or_schedule(ctx.uow, ctx.identity, form.draft(), (sender.channel, sender.chat_id))
    notice, count = published.notice, published.reached
    reader = ctx.l.with_timezone((await get_community(ctx.uow, form.community_id)).timezone)
    return reader.render(
        "notice_published.j2", notice_id=notice.id, count=count, send_at=notice.send_at, at=partial(moment, reader)
    )


NOTICE = FormDeclaration[Form](
    name="notice",
    command="notice",
    description=N_("Send a notice to residents"),
    action=Action.SEND_NOTICE,
    which_community=N_("Which community is the notice for?"),
    cancelled=N_("Cancelled. Nothing was sent."),
    load=Form.of,
    new=_new,
    steps=(BODY,),
    pages={
        AUDIENCE: audience_page(
            AUDIENCE,
            CONTROLS,
            "notice_audience.j2",
            _count,
            LISTINGS,
            everyone=FormAction.EVERYONE,
            done=FormAction.AUDIENCE_DONE,
        ),
        OPTIONS: Page(_options),
    },
    first_page=AUDIENCE,
    hub=OPTIONS,
    questions=(TIME, TRANSLATION),
    actions={
        FormAction.AUDIENCE: Show(AUDIENCE),
        FormAction.TEXT: Ask(BODY.name),
        FormAction.TRANSLATION: Ask(TRANSLATION.name),
        FormAction.DROP_TRANSLATION: Do(Move.HUB, _drop_translation),
        FormAction.NOW: Do(Move.HUB, _send_now),
        FormAction.LATER: Ask(TIME.name),
    },
    picks={Toggle.CATEGORY: Pick(_pick_category), Toggle.IMPORTANT: _flip("important"), Toggle.ACK: _flip("ack")},
    preview=_preview,
    commit=_send,
    controls=CONTROLS,
)


async def file_elsewhere(ctx: Context, _: FileShared) -> Sequence[Reply]:
    return (
        SendText(
            ctx.l.text(
                "I take photos and documents only as part of a notice. Community workers start one with /notice."
            )
        ),
    )


def register(router: Router) -> None:
    FormEngine(NOTICE).register(router)
    router.file_fallback(file_elsewhere)
