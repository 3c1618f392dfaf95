"""/notice: a community worker writes a notice in a short form kept in the dialogue state.

1. the text, or a photo or document with the text as its caption;
2. who receives it: the whole community, or buildings, residents' groups and role segments (toggles);
3. options as toggles: category, important, please confirm, a version in the other language, a send time;
4. the preview, exactly as residents will get it, with the number of recipients, and Send / Edit / Cancel.

Send publishes the notice (community.notices.publish). Sent now, it is fanned out into the outbox in the same
transaction; scheduled, publish records its job (community.notices.SEND) in it. The rules (who may,
who receives it, limits) are the service's; this module only keeps the form and renders it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from zoneinfo import ZoneInfo

from babel.dates import get_timezone_location

from bot import forms
from bot.context import Context
from bot.events import Command, ContactShared, FileShared, TextInput
from bot.notices.buttons import (
    PREVIEW_NOTICE_ID,
    FormAction,
    NoticeCommunity,
    NoticeForm,
    NoticeToggle,
    Toggle,
)
from bot.notices.form import TIME_FORMAT, Form, parse_send_time
from bot.notices.render import (
    CATEGORIES,
    category_label,
    describe_audience,
    language_name,
    moment,
    render_notice,
    segment_label,
)
from bot.replies import AnswerButton, Button, Keyboard, Reply, SendText
from bot.router import Router
from community import notices
from community.communities import effective_roles, get_community
from community.errors import PermissionDenied
from community.models import Community
from community.notice_messages import NoticeLook, fan_out
from community.notice_models import NoticeCategory, NoticeStatus
from community.notices import SEGMENT_ROLES, segment_roles_for
from community.roles import Action, Role
from community.verification import staff_communities
from i18n import N_

STATE_COMMUNITY = "notice.community"
STATE_BODY = "notice.body"
STATE_FORM = "notice.form"
STATE_TIME = "notice.time"
STATE_TRANSLATION = "notice.translation"
STATES = (STATE_COMMUNITY, STATE_BODY, STATE_FORM, STATE_TIME, STATE_TRANSLATION)


def _in_form(ctx: Context) -> bool:
    return ctx.state is not None and ctx.state.name in STATES


def _button(ctx: Context, label: str, action: FormAction) -> Button:
    return Button(label, NoticeForm(action).pack())


async def _community(ctx: Context, form: Form) -> Community:
    return await get_community(ctx.uow, form.community_id)


# ---------------------------------------------------------------------------------------------------------------
# Step 0 and 1: the community, the text


async def compose(ctx: Context, _: Command) -> Sequence[Reply]:
    await ctx.clear_state()
    communities = await staff_communities(ctx.uow, ctx.person_id, Action.SEND_NOTICE)
    if not communities:
        raise PermissionDenied(action=Action.SEND_NOTICE.value)
    if len(communities) == 1:
        return await _ask_body(ctx, await _new_form(ctx, communities[0]))
    await ctx.set_state(STATE_COMMUNITY)
    buttons = tuple((Button(c.name, NoticeCommunity(c.id or 0).pack()),) for c in communities)
    return (SendText(ctx.l.text("Which community is the notice for?"), buttons=buttons),)


async def _new_form(ctx: Context, community: Community) -> Form:
    assert community.id is not None
    options = await notices.audience_options(ctx.uow, community.id)
    roles = segment_roles_for(await effective_roles(ctx.uow, ctx.person_id, community.id))
    return Form(
        community_id=community.id,
        language=ctx.l.language,
        building_options=list(options.buildings),
        group_options=list(options.groups),
        role_options=[role.value for role in roles],
    )


async def chose_community(ctx: Context, data: NoticeCommunity) -> Sequence[Reply]:
    if not _in_form(ctx):
        return forms.stale(ctx)
    communities = await staff_communities(ctx.uow, ctx.person_id, Action.SEND_NOTICE)
    community = next((c for c in communities if c.id == data.community_id), None)
    if community is None:
        return forms.stale(ctx)
    return (
        AnswerButton(),
        forms.show(ctx, ctx.l.text("Community: %(community)s", community=community.name)),
        *(await _ask_body(ctx, await _new_form(ctx, community))),
    )


async def _ask_body(ctx: Context, form: Form) -> Sequence[Reply]:
    """The question for the text: a new message, or in place of the options when the text is edited."""
    await form.save(ctx, STATE_BODY)
    community = await _community(ctx, form)
    cancel = ((_button(ctx, ctx.l.label("Cancel"), FormAction.CANCEL),),)
    text = ctx.l.render(
        "notice_ask_body.j2",
        community=community.name,
        again=form.audience_done,
        has_file=form.attachment is not None,
        caption_limit=notices.MAX_CAPTION,
        body_limit=notices.MAX_BODY,
    )
    if forms.pressed_message_id(ctx) is not None and form.audience_done:
        return (AnswerButton(), forms.show(ctx, text, cancel))
    return (SendText(text, buttons=cancel),)


async def got_body(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type the text of the notice.")),)
    form = Form.of(ctx)
    form.body = payload.text.strip()
    return await _after_body(ctx, form)


async def got_body_file(ctx: Context, payload: FileShared) -> Sequence[Reply]:
    form = Form.of(ctx)
    form.body = payload.caption.strip()
    form.attachment = forms.shared_attachment(ctx, payload)
    return await _after_body(ctx, form)


async def _after_body(ctx: Context, form: Form) -> Sequence[Reply]:
    notices.validate_draft(form.draft(), ctx.uow.clock.now())  # refused: the question stands
    if form.audience_done:
        await form.save(ctx, STATE_FORM)
        return (await _options_screen(ctx, form),)
    await form.save(ctx, STATE_FORM)
    text, buttons = await _audience_screen(ctx, form)
    return (SendText(text, buttons=buttons),)


async def file_elsewhere(ctx: Context, _: FileShared) -> Sequence[Reply]:
    return (
        SendText(
            ctx.l.text(
                "I take photos and documents only as part of a notice. Community workers start one with /notice."
            )
        ),
    )


# ---------------------------------------------------------------------------------------------------------------
# Step 2: who receives it


def _role_choices(form: Form) -> list[Role]:
    allowed = set(form.role_options)
    return [role for role in SEGMENT_ROLES if role.value in allowed]


async def _count(ctx: Context, form: Form) -> int:
    return await notices.count_recipients(
        ctx.uow,
        form.community_id,
        form.audience(),
        category=NoticeCategory(form.category),
        important=form.important,
    )


async def _audience_screen(ctx: Context, form: Form, listing: Toggle | None = None) -> tuple[str, Keyboard]:
    """The audience: the summary, and either the main choices or one list (buildings, groups, roles)."""
    text = ctx.l.render(
        "notice_audience.j2",
        audience=describe_audience(ctx.l, form.audience()),
        count=await _count(ctx, form),
        listing=listing.value if listing is not None else None,
    )
    rows: list[tuple[Button, ...]] = []
    if listing is None:
        everyone = form.audience().is_everyone()
        rows.append((_button(ctx, forms.mark(everyone, ctx.l.label("Whole community")), FormAction.EVERYONE),))
        lists = forms.place_lists(
            ctx, form, buildings=NoticeForm(FormAction.BUILDINGS).pack(), groups=NoticeForm(FormAction.GROUPS).pack()
        )
        if _role_choices(form):
            lists.append(_button(ctx, forms.list_label(ctx, N_("Roles"), len(form.roles)), FormAction.ROLES))
        rows.extend(forms.rows(lists))
        rows.append(
            (
                _button(ctx, ctx.l.label("Next ›"), FormAction.AUDIENCE_DONE),
                _button(ctx, ctx.l.label("Cancel"), FormAction.CANCEL),
            )
        )
        return text, tuple(rows)
    toggles: list[Button] = []
    if listing is Toggle.BUILDING:
        toggles = forms.toggle_buttons(form.building_options, form.buildings, lambda i: NoticeToggle(listing, i).pack())
    elif listing is Toggle.GROUP:
        toggles = forms.toggle_buttons(form.group_options, form.groups, lambda i: NoticeToggle(listing, i).pack())
    else:
        for role in _role_choices(form):
            index = SEGMENT_ROLES.index(role)
            toggles.append(
                Button(
                    forms.mark(role.value in form.roles, segment_label(ctx.l, role)),
                    NoticeToggle(listing, index).pack(),
                )
            )
    rows.extend(forms.rows(toggles))
    rows.append((_button(ctx, ctx.l.label("‹ Back"), FormAction.BACK),))
    return text, tuple(rows)


async def toggle(ctx: Context, data: NoticeToggle) -> Sequence[Reply]:
    if ctx.state is None or ctx.state.name != STATE_FORM:
        return forms.stale(ctx)
    form = Form.of(ctx)
    listing: Toggle | None = None
    if data.toggle is Toggle.BUILDING and 0 <= data.index < len(form.building_options):
        form.buildings = forms.toggled(form.buildings, form.building_options[data.index])
        listing = data.toggle
    elif data.toggle is Toggle.GROUP and 0 <= data.index < len(form.group_options):
        form.groups = forms.toggled(form.groups, form.group_options[data.index])
        listing = data.toggle
    elif data.toggle is Toggle.ROLE and 0 <= data.index < len(SEGMENT_ROLES):
        role = SEGMENT_ROLES[data.index]
        if role.value not in form.role_options:
            return forms.stale(ctx)
        form.roles = forms.toggled(form.roles, role.value)
        listing = data.toggle
    elif data.toggle is Toggle.CATEGORY and 0 <= data.index < len(CATEGORIES):
        form.category = CATEGORIES[data.index].value
    elif data.toggle is Toggle.IMPORTANT:
        form.important = not form.important
    elif data.toggle is Toggle.ACK:
        form.ack = not form.ack
    else:
        return forms.stale(ctx)
    await form.save(ctx, STATE_FORM)
    if listing is not None:
        text, buttons = await _audience_screen(ctx, form, listing)
        return (AnswerButton(), forms.show(ctx, text, buttons))
    return (AnswerButton(), await _options_screen(ctx, form))


# ---------------------------------------------------------------------------------------------------------------
# Step 3: the options


async def _summary(ctx: Context, form: Form, question: str) -> str:
    community = await _community(ctx, form)
    reader = ctx.l.with_timezone(community.timezone)
    languages = [language_name(reader, form.language)]
    if form.translation:
        languages.append(language_name(reader, form.other_language))
    attachment = form.attachment_value()
    return reader.render(
        "notice_summary.j2",
        at=partial(moment, reader),
        community=community.name,
        audience=describe_audience(reader, form.audience()),
        count=await _count(ctx, form),
        category=category_label(reader, NoticeCategory(form.category)),
        important=form.important,
        ack=form.ack,
        attachment=(attachment.name or None) if attachment else None,
        has_attachment=attachment is not None,
        languages=" · ".join(languages),
        send_at=form.when(),
        question=question,
    )


async def _options_screen(ctx: Context, form: Form) -> Reply:
    l = ctx.l  # noqa: E741
    other = language_name(l, form.other_language)
    categories = [
        Button(
            forms.mark(form.category == category.value, category_label(l, category)),
            NoticeToggle(Toggle.CATEGORY, index).pack(),
        )
        for index, category in enumerate(CATEGORIES)
    ]
    rows: list[tuple[Button, ...]] = forms.rows(categories)
    rows.append(
        (
            Button(forms.mark(form.important, l.label("Important")), NoticeToggle(Toggle.IMPORTANT).pack()),
            Button(forms.mark(form.ack, l.label("Please confirm")), NoticeToggle(Toggle.ACK).pack()),
        )
    )
    if form.translation:
        rows.append(
            (
                _button(ctx, l.label("Change the %(language)s version", language=other), FormAction.TRANSLATION),
                _button(ctx, l.label("Remove it"), FormAction.DROP_TRANSLATION),
            )
        )
    else:
        rows.append((_button(ctx, l.label("Add a %(language)s version", language=other), FormAction.TRANSLATION),))
    later = l.label("Send later…")
    rows.append(
        (
            _button(ctx, forms.mark(form.send_at is None, l.label("Send now")), FormAction.NOW),
            _button(ctx, forms.mark(form.send_at is not None, later), FormAction.LATER),
        )
    )
    rows.append(
        (
            _button(ctx, l.label("Recipients"), FormAction.AUDIENCE),
            _button(ctx, l.label("Edit the text"), FormAction.TEXT),
        )
    )
    rows.append(
        (
            _button(ctx, l.label("Preview ›"), FormAction.PREVIEW),
            _button(ctx, l.label("Cancel"), FormAction.CANCEL),
        )
    )
    return forms.show(ctx, await _summary(ctx, form, "options"), tuple(rows))


async def _ask_time(ctx: Context, form: Form) -> Sequence[Reply]:
    await form.save(ctx, STATE_TIME)
    community = await _community(ctx, form)
    zone = ZoneInfo(community.timezone)
    tomorrow = (ctx.uow.clock.now().astimezone(zone) + timedelta(days=1)).replace(hour=9, minute=0)
    text = ctx.l.render(
        "notice_ask_time.j2",
        zone=get_timezone_location(zone, locale=ctx.l.t.locale),
        example=tomorrow.strftime(TIME_FORMAT),
    )
    now = ((_button(ctx, ctx.l.label("Send now instead"), FormAction.NOW),),)
    return (AnswerButton(), forms.show(ctx, text, now))


async def got_time(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type the date and time.")),)
    form = Form.of(ctx)
    community = await _community(ctx, form)
    when = parse_send_time(payload.text, community.timezone)
    form.send_at = when.isoformat()
    notices.validate_draft(form.draft(), ctx.uow.clock.now())  # a time already past is refused here
    await form.save(ctx, STATE_FORM)
    return (await _options_screen(ctx, form),)


async def _ask_translation(ctx: Context, form: Form) -> Sequence[Reply]:
    await form.save(ctx, STATE_TRANSLATION)
    text = ctx.l.render(
        "notice_ask_translation.j2",
        language=language_name(ctx.l, form.other_language),
        original=form.body,
    )
    back = ((_button(ctx, ctx.l.label("‹ Back"), FormAction.BACK),),)
    return (AnswerButton(), forms.show(ctx, text, back))


async def got_translation(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type the text of the notice.")),)
    form = Form.of(ctx)
    form.translation = payload.text.strip()
    notices.validate_draft(form.draft(), ctx.uow.clock.now())
    await form.save(ctx, STATE_FORM)
    return (await _options_screen(ctx, form),)


async def use_buttons(ctx: Context, _: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    return (SendText(ctx.l.text("Use the buttons above, or send /cancel to stop.")),)


# ---------------------------------------------------------------------------------------------------------------
# Step 4: the preview, and sending


async def _preview(ctx: Context, form: Form) -> Sequence[Reply]:
    notices.validate_draft(form.draft(), ctx.uow.clock.now())  # e.g. the send time has passed meanwhile
    await form.save(ctx, STATE_FORM)
    community = await _community(ctx, form)
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
    replies: list[Reply] = [AnswerButton()]
    if len(versions) == 1:
        intro = ctx.l.text("Preview: this is the notice exactly as residents will receive it.")
    else:
        intro = ctx.l.text(
            "Preview: residents who read %(first)s receive the first message, those who read %(second)s the second.",
            first=language_name(ctx.l, versions[0][0]),
            second=language_name(ctx.l, versions[1][0]),
        )
    replies.append(forms.show(ctx, intro))
    for language, body in versions:
        reader = ctx.localizers.get(language, community.timezone)
        shown = render_notice(reader, look, body, with_file=with_file)
        replies.append(forms.as_received(shown.text, shown.buttons, attachment, with_file=with_file))
    count = await _count(ctx, form)
    buttons: list[Button] = []
    if count:
        send = ctx.l.label("Send") if form.send_at is None else ctx.l.label("Schedule")
        buttons.append(_button(ctx, send, FormAction.SEND))
    buttons.append(_button(ctx, ctx.l.label("Edit"), FormAction.EDIT))
    buttons.append(_button(ctx, ctx.l.label("Cancel"), FormAction.CANCEL))
    replies.append(SendText(await _summary(ctx, form, "preview"), buttons=(tuple(buttons),)))
    return replies


async def _send(ctx: Context, form: Form) -> Sequence[Reply]:
    notice = await notices.publish(ctx.uow, ctx.identity, form.draft())
    assert notice.id is not None
    notice_id = notice.id
    # The progress message goes to the chat the worker sent it from.
    await notices.set_progress_target(ctx.uow, notice_id, ctx.event.sender.channel, ctx.event.sender.chat_id)
    await ctx.clear_state()
    community = await _community(ctx, form)
    reader = ctx.l.with_timezone(community.timezone)
    if notice.status is NoticeStatus.SENDING:
        count = await fan_out(ctx.uow, notice)
        text = reader.render(
            "notice_published.j2", notice_id=notice_id, count=count, send_at=None, at=partial(moment, reader)
        )
    else:
        assert notice.send_at is not None
        send_at = notice.send_at
        text = reader.render(
            "notice_published.j2",
            notice_id=notice_id,
            count=notice.recipients,
            send_at=send_at,
            at=partial(moment, reader),
        )
    return (AnswerButton(), forms.show(ctx, text))


async def form_action(ctx: Context, data: NoticeForm) -> Sequence[Reply]:
    action = data.action
    if ctx.state is None or ctx.state.name not in STATES:
        return forms.stale(ctx)
    if action is FormAction.CANCEL:
        await ctx.clear_state()
        return (AnswerButton(), forms.show(ctx, ctx.l.text("Cancelled. Nothing was sent.")))
    if ctx.state.name in (STATE_COMMUNITY, STATE_BODY):
        return forms.stale(ctx)  # only Cancel works until the text is in
    form = Form.of(ctx)
    if action is FormAction.EVERYONE:
        form.buildings, form.groups, form.roles = [], [], []
    listing = {FormAction.BUILDINGS: Toggle.BUILDING, FormAction.GROUPS: Toggle.GROUP, FormAction.ROLES: Toggle.ROLE}
    if action in (FormAction.EVERYONE, FormAction.BACK, FormAction.AUDIENCE, *listing):
        if action is FormAction.BACK and form.audience_done and ctx.state.name != STATE_FORM:
            await form.save(ctx, STATE_FORM)  # back from typing a time or a translation
            return (AnswerButton(), await _options_screen(ctx, form))
        await form.save(ctx, STATE_FORM)
        text, buttons = await _audience_screen(ctx, form, listing.get(action))
        return (AnswerButton(), forms.show(ctx, text, buttons))
    if action is FormAction.AUDIENCE_DONE or action is FormAction.EDIT:
        form.audience_done = True
        await form.save(ctx, STATE_FORM)
        return (AnswerButton(), await _options_screen(ctx, form))
    if action is FormAction.TEXT:
        return await _ask_body(ctx, form)
    if action is FormAction.TRANSLATION:
        return await _ask_translation(ctx, form)
    if action is FormAction.DROP_TRANSLATION:
        form.translation = None
        await form.save(ctx, STATE_FORM)
        return (AnswerButton(), await _options_screen(ctx, form))
    if action is FormAction.NOW:
        form.send_at = None
        await form.save(ctx, STATE_FORM)
        return (AnswerButton(), await _options_screen(ctx, form))
    if action is FormAction.LATER:
        return await _ask_time(ctx, form)
    if action is FormAction.PREVIEW:
        return await _preview(ctx, form)
    if action is FormAction.SEND and ctx.state.name == STATE_FORM:
        return await _send(ctx, form)
    return forms.stale(ctx)


def register(router: Router) -> None:
    router.command("notice", compose, description=N_("Send a notice to residents"), action=Action.SEND_NOTICE)
    router.button(NoticeCommunity, chose_community)
    router.button(NoticeForm, form_action)
    router.button(NoticeToggle, toggle)
    router.state(STATE_COMMUNITY, use_buttons)
    router.state(STATE_BODY, got_body)
    router.file_state(STATE_BODY, got_body_file)
    router.state(STATE_FORM, use_buttons)
    router.state(STATE_TIME, got_time)
    router.state(STATE_TRANSLATION, got_translation)
    router.file_fallback(file_elsewhere)
