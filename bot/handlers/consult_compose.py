"""/newconsultation: a community worker or committee member (Action.RUN_CONSULTATION) sets up a consultation in
a short form kept in the dialogue state.

1. the community (for staff of several), the title, the background (or a photo or document with the background
   as its caption);
2. who it is for: the whole community, or some buildings or residents' groups (toggles);
3. the options: who may take part, when it opens (now, or a typed time) and closes (3 / 7 / 14 days after it
   opens, or a typed time), whether residents may add statements and whether those wait for a moderator, and a
   few statements to start with, typed one per message;
4. the preview: the invitation exactly as residents will get it, with how many it reaches; Create / Edit /
   Cancel. An audience smaller than k (community.anonymity) gets no Create button but the reason, from
   consultations.check_audience, the check consultations.create makes too.

Create calls the use case consultations.create_consultation in the event's one unit of work, which creates it
with its statements and schedules its opening and closing, or opens it at once when the opening time has come,
which invites at once when it opened the consultation. Every check is the services': a
refused answer leaves the question standing and nothing written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from babel.dates import get_timezone_location

from bot import forms
from bot.consultations.form import (
    ELIGIBILITIES,
    ComposeAction,
    ComposeChoice,
    ComposeCommunity,
    ComposeForm,
    ComposeToggle,
    Form,
)
from bot.consultations.render import PREVIEW_CONSULTATION_ID, render_invitation
from bot.context import Context
from bot.events import Command, ContactShared, FileShared, TextInput
from bot.notices.form import TIME_FORMAT, parse_send_time
from bot.notices.render import describe_audience, moment
from bot.rendering import Localizer
from bot.replies import AnswerButton, Button, Keyboard, Reply, SendText
from bot.router import Router
from community import notices, settings
from community.communities import get_community
from community.errors import PermissionDenied, ValidationFailed
from community.models import Community
from community.roles import Action
from community.verification import staff_communities
from consultation import consultations, reach
from consultation.consultations import (
    MAX_BACKGROUND,
    MAX_STATEMENT,
    MAX_TITLE,
    check_opening_time,
    clean_background,
    clean_title,
)
from consultation.errors import AudienceTooSmall
from consultation.messages import ConsultationLook
from consultation.models import Eligibility
from consultation.settings import CLOSING_DAYS, default_closing_days
from i18n import N_

STATE_COMMUNITY = "consult.community"
STATE_TITLE = "consult.title"
STATE_BACKGROUND = "consult.background"
STATE_FORM = "consult.form"
STATE_OPENS = "consult.opens"
STATE_CLOSES = "consult.closes"
STATE_SEEDS = "consult.seeds"
STATES = (STATE_COMMUNITY, STATE_TITLE, STATE_BACKGROUND, STATE_FORM, STATE_OPENS, STATE_CLOSES, STATE_SEEDS)


ELIGIBILITY_LABELS: dict[Eligibility, str] = {
    Eligibility.RESIDENTS: N_("Residents"),
    Eligibility.HOUSEHOLD_REPRESENTATIVES: N_("Household representatives"),
    Eligibility.MEMBERS: N_("All members"),
}


def eligibility_label(l: Localizer, eligibility: Eligibility) -> str:  # noqa: E741
    return l.label(ELIGIBILITY_LABELS[eligibility])


def _button(label: str, action: ComposeAction) -> Button:
    return Button(label, ComposeForm(action).pack())


async def _community(ctx: Context, form: Form) -> Community:
    return await get_community(ctx.uow, form.community_id)


async def _reader(ctx: Context, form: Form) -> Localizer:
    """The composer in their language, at the community's time zone."""
    return ctx.l.with_timezone((await _community(ctx, form)).timezone)


async def _count(ctx: Context, form: Form) -> int:
    return await reach.count_eligible(ctx.uow, form.community_id, form.audience(), form.eligibility_value())


# ---------------------------------------------------------------------------------------------------------------
# Step 1: the community, the title, the background


async def compose(ctx: Context, _: Command) -> Sequence[Reply]:
    await ctx.clear_state()
    communities = await staff_communities(ctx.uow, ctx.person_id, Action.RUN_CONSULTATION)
    if not communities:
        raise PermissionDenied(action=Action.RUN_CONSULTATION.value)
    if len(communities) == 1:
        return await _ask_title(ctx, await _new_form(ctx, communities[0]))
    await ctx.set_state(STATE_COMMUNITY)
    buttons = tuple((Button(c.name, ComposeCommunity(c.id or 0).pack()),) for c in communities)
    return (SendText(ctx.l.text("Which community is the consultation for?"), buttons=buttons),)


async def _new_form(ctx: Context, community: Community) -> Form:
    assert community.id is not None
    options = await notices.audience_options(ctx.uow, community.id)
    closing = await settings.value(ctx.uow, community.id, CLOSING_DAYS)
    return Form(
        community_id=community.id,
        closes_days=default_closing_days(closing),
        language=ctx.l.language,
        building_options=list(options.buildings),
        group_options=list(options.groups),
    )


async def chose_community(ctx: Context, data: ComposeCommunity) -> Sequence[Reply]:
    if ctx.state is None or ctx.state.name != STATE_COMMUNITY:
        return forms.stale(ctx)
    communities = await staff_communities(ctx.uow, ctx.person_id, Action.RUN_CONSULTATION)
    community = next((c for c in communities if c.id == data.community_id), None)
    if community is None:
        return forms.stale(ctx)
    return (
        AnswerButton(),
        forms.show(ctx, ctx.l.text("Community: %(community)s", community=community.name)),
        *(await _ask_title(ctx, await _new_form(ctx, community))),
    )


def _cancel_row(ctx: Context) -> Keyboard:
    return ((_button(ctx.l.label("Cancel"), ComposeAction.CANCEL),),)


async def _ask_title(ctx: Context, form: Form) -> Sequence[Reply]:
    await form.save(ctx, STATE_TITLE)
    community = await _community(ctx, form)
    text = ctx.l.render("consult_ask_title.j2", community=community.name, limit=MAX_TITLE)
    if forms.pressed_message_id(ctx) is not None and form.scope_done:
        return (AnswerButton(), forms.show(ctx, text, _cancel_row(ctx)))
    return (SendText(text, buttons=_cancel_row(ctx)),)


async def got_title(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type the title.")),)
    form = Form.of(ctx)
    form.title = clean_title(payload.text)  # refused: the question stands
    if form.scope_done:
        await form.save(ctx, STATE_FORM)
        return (await _options_screen(ctx, form),)
    return await _ask_background(ctx, form)


async def _ask_background(ctx: Context, form: Form) -> Sequence[Reply]:
    await form.save(ctx, STATE_BACKGROUND)
    text = ctx.l.render("consult_ask_background.j2", limit=MAX_BACKGROUND)
    if forms.pressed_message_id(ctx) is not None:
        return (AnswerButton(), forms.show(ctx, text, _cancel_row(ctx)))
    return (SendText(text, buttons=_cancel_row(ctx)),)


async def got_background(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type the background.")),)
    form = Form.of(ctx)
    form.background = clean_background(payload.text)
    return await _after_background(ctx, form)


async def got_background_file(ctx: Context, payload: FileShared) -> Sequence[Reply]:
    form = Form.of(ctx)
    form.background = clean_background(payload.caption)
    form.attachment = forms.shared_attachment(ctx, payload)
    return await _after_background(ctx, form)


async def _after_background(ctx: Context, form: Form) -> Sequence[Reply]:
    await form.save(ctx, STATE_FORM)
    if form.scope_done:
        return (await _options_screen(ctx, form),)
    text, buttons = await _scope_screen(ctx, form)
    return (SendText(text, buttons=buttons),)


# ---------------------------------------------------------------------------------------------------------------
# Step 2: who it is for


async def _scope_screen(ctx: Context, form: Form, listing: ComposeToggle | None = None) -> tuple[str, Keyboard]:
    text = ctx.l.render(
        "consult_scope.j2",
        audience=describe_audience(ctx.l, form.audience()),
        count=await _count(ctx, form),
        listing=listing.value if listing is not None else None,
    )
    rows: list[tuple[Button, ...]] = []
    if listing is None:
        everyone = form.audience().is_everyone()
        rows.append((_button(forms.mark(everyone, ctx.l.label("Whole community")), ComposeAction.EVERYONE),))
        buildings, groups = ComposeForm(ComposeAction.BUILDINGS).pack(), ComposeForm(ComposeAction.GROUPS).pack()
        lists = forms.place_lists(ctx, form, buildings=buildings, groups=groups)
        rows.extend(forms.rows(lists))
        rows.append(
            (
                _button(ctx.l.label("Next ›"), ComposeAction.SCOPE_DONE),
                _button(ctx.l.label("Cancel"), ComposeAction.CANCEL),
            )
        )
        return text, tuple(rows)
    names, chosen = (
        (form.building_options, form.buildings)
        if listing is ComposeToggle.BUILDING
        else (form.group_options, form.groups)
    )
    toggles = forms.toggle_buttons(names, chosen, lambda index: ComposeChoice(listing, index).pack())
    rows.extend(forms.rows(toggles))
    rows.append((_button(ctx.l.label("‹ Back"), ComposeAction.BACK),))
    return text, tuple(rows)


async def choice(ctx: Context, data: ComposeChoice) -> Sequence[Reply]:
    if ctx.state is None or ctx.state.name != STATE_FORM:
        return forms.stale(ctx)
    form = Form.of(ctx)
    listing: ComposeToggle | None = None
    if data.toggle is ComposeToggle.BUILDING and 0 <= data.index < len(form.building_options):
        form.buildings = forms.toggled(form.buildings, form.building_options[data.index])
        listing = data.toggle
    elif data.toggle is ComposeToggle.GROUP and 0 <= data.index < len(form.group_options):
        form.groups = forms.toggled(form.groups, form.group_options[data.index])
        listing = data.toggle
    elif data.toggle is ComposeToggle.ELIGIBILITY and 0 <= data.index < len(ELIGIBILITIES):
        form.eligibility = ELIGIBILITIES[data.index].value
    elif data.toggle is ComposeToggle.CLOSING_DAYS and 0 <= data.index < len(
        closing := await settings.value(ctx.uow, form.community_id, CLOSING_DAYS)
    ):
        form.closes_days = closing[data.index]
        form.closes_at = None
        consultations.validate_draft(form.draft(ctx.uow.clock.now()), ctx.uow.clock.now())
    else:
        return forms.stale(ctx)
    await form.save(ctx, STATE_FORM)
    if listing is not None:
        text, buttons = await _scope_screen(ctx, form, listing)
        return (AnswerButton(), forms.show(ctx, text, buttons))
    return (AnswerButton(), await _options_screen(ctx, form))


# ---------------------------------------------------------------------------------------------------------------
# Step 3: the options


async def _summary(ctx: Context, form: Form, question: str, refusal: str | None = None) -> str:
    """The form so far; refusal: why it cannot be created as it stands (the preview's last line instead of
    "Create it?")."""
    community = await _community(ctx, form)
    reader = ctx.l.with_timezone(community.timezone)
    return reader.render(
        "consult_summary.j2",
        at=partial(moment, reader),
        community=community.name,
        title=form.title,
        audience=describe_audience(reader, form.audience()),
        eligibility=eligibility_label(reader, form.eligibility_value()),
        count=await _count(ctx, form),
        opens_at=form.opening(),
        closes_at=form.closing(),
        closes_days=form.closes_days,
        allow_statements=form.allow_statements,
        moderated=form.moderated,
        has_attachment=form.attachment is not None,
        seeds=form.seeds,
        question=question,
        refusal=refusal,
    )


async def _options_screen(ctx: Context, form: Form) -> Reply:
    l = ctx.l  # noqa: E741
    rows: list[tuple[Button, ...]] = []
    rows.extend(
        forms.rows(
            [
                Button(
                    forms.mark(form.eligibility == eligibility.value, eligibility_label(l, eligibility)),
                    ComposeChoice(ComposeToggle.ELIGIBILITY, index).pack(),
                )
                for index, eligibility in enumerate(ELIGIBILITIES)
            ],
            per_row=3,
        )
    )
    rows.append(
        (
            _button(forms.mark(form.opens_at is None, l.label("Open now")), ComposeAction.OPEN_NOW),
            _button(forms.mark(form.opens_at is not None, l.label("Open later…")), ComposeAction.OPEN_LATER),
        )
    )
    choices = await settings.value(ctx.uow, form.community_id, CLOSING_DAYS)
    closing = [
        Button(
            forms.mark(
                form.closes_at is None and form.closes_days == days, l.plural("%(num)s day", "%(num)s days", days)
            ),
            ComposeChoice(ComposeToggle.CLOSING_DAYS, index).pack(),
        )
        for index, days in enumerate(choices)
    ]
    closing.append(_button(forms.mark(form.closes_at is not None, l.label("Close at…")), ComposeAction.CLOSE_LATER))
    rows.append(tuple(closing))
    rows.append(
        (
            _button(forms.mark(form.allow_statements, l.label("Residents add statements")), ComposeAction.STATEMENTS),
            _button(forms.mark(form.moderated, l.label("Moderated")), ComposeAction.MODERATED),
        )
    )
    seeds = [_button(l.label("Add statements"), ComposeAction.SEEDS)]
    if form.seeds:
        seeds.append(_button(l.label("Remove them"), ComposeAction.DROP_SEEDS))
    rows.append(tuple(seeds))
    rows.append(
        (
            _button(l.label("Who it is for"), ComposeAction.SCOPE),
            _button(l.label("Edit the title"), ComposeAction.TITLE),
            _button(l.label("Edit the background"), ComposeAction.BACKGROUND),
        )
    )
    rows.append(
        (
            _button(l.label("Preview ›"), ComposeAction.PREVIEW),
            _button(l.label("Cancel"), ComposeAction.CANCEL),
        )
    )
    return forms.show(ctx, await _summary(ctx, form, "options"), tuple(rows))


async def _ask_time(ctx: Context, form: Form, state: str) -> Sequence[Reply]:
    await form.save(ctx, state)
    community = await _community(ctx, form)
    zone = ZoneInfo(community.timezone)
    tomorrow = (ctx.uow.clock.now().astimezone(zone) + timedelta(days=1)).replace(hour=9, minute=0)
    example = tomorrow if state == STATE_OPENS else tomorrow + timedelta(days=7)
    text = ctx.l.render(
        "consult_ask_time.j2",
        which="opens" if state == STATE_OPENS else "closes",
        zone=get_timezone_location(zone, locale=ctx.l.t.locale),
        example=example.strftime(TIME_FORMAT),
    )
    back = ((_button(ctx.l.label("‹ Back"), ComposeAction.BACK),),)
    return (AnswerButton(), forms.show(ctx, text, back))


async def _typed_time(ctx: Context, payload: TextInput | ContactShared | FileShared, form: Form) -> datetime:
    if not isinstance(payload, TextInput):
        raise ValidationFailed(N_("Please type the date and time."))
    return parse_send_time(payload.text, (await _community(ctx, form)).timezone)


async def got_opening(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    form = Form.of(ctx)
    when = await _typed_time(ctx, payload, form)
    now = ctx.uow.clock.now()
    check_opening_time(when, now)
    form.opens_at = when.isoformat()
    consultations.validate_draft(form.draft(now), now)  # e.g. after a typed closing time
    await form.save(ctx, STATE_FORM)
    return (await _options_screen(ctx, form),)


async def got_closing(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    form = Form.of(ctx)
    when = await _typed_time(ctx, payload, form)
    now = ctx.uow.clock.now()
    form.closes_at = when.isoformat()
    consultations.validate_draft(form.draft(now), now)
    await form.save(ctx, STATE_FORM)
    return (await _options_screen(ctx, form),)


async def _ask_seeds(ctx: Context, form: Form) -> Sequence[Reply]:
    await form.save(ctx, STATE_SEEDS)
    text = ctx.l.render("consult_ask_seeds.j2", limit=MAX_STATEMENT, count=len(form.seeds))
    done = ((_button(ctx.l.label("Done"), ComposeAction.SEEDS_DONE),),)
    if forms.pressed_message_id(ctx) is not None:
        return (AnswerButton(), forms.show(ctx, text, done))
    return (SendText(text, buttons=done),)


async def got_seed(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type the statement.")),)
    form = Form.of(ctx)
    done = ((_button(ctx.l.label("Done"), ComposeAction.SEEDS_DONE),),)
    try:
        form.seeds.append(consultations.next_seed(form.seeds, payload.text))
    except ValidationFailed as refused:
        # Answered here rather than by the conversation, so that the Done button stays at hand; nothing was
        # written yet.
        return (SendText(ctx.l.text(refused.message, **refused.params), buttons=done),)
    await form.save(ctx, STATE_SEEDS)
    added = ctx.l.text("Statement %(number)s added. Type the next one, or tap Done.", number=len(form.seeds))
    return (SendText(added, buttons=done),)


async def use_buttons(ctx: Context, _: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    return (SendText(ctx.l.text("Use the buttons above, or send /cancel to stop.")),)


# ---------------------------------------------------------------------------------------------------------------
# Step 4: the preview, and creating it


async def _preview(ctx: Context, form: Form) -> Sequence[Reply]:
    now = ctx.uow.clock.now()
    draft = form.draft(now)
    consultations.validate_draft(draft, now)  # e.g. the closing time has passed meanwhile
    if form.opens_at is not None:
        check_opening_time(draft.opens_at, now)
    await form.save(ctx, STATE_FORM)
    community = await _community(ctx, form)
    attachment = form.attachment_value()
    look = ConsultationLook(
        consultation_id=PREVIEW_CONSULTATION_ID,
        community=community.name,
        title=draft.title.strip(),
        background=draft.background,
        closes_at=draft.closes_at,
        allow_statements=form.allow_statements,
        attachment_kind=attachment.kind if attachment else None,
        attachment_name=attachment.name if attachment else None,
    )
    with_file = forms.file_shown_here(ctx, attachment)
    reader = ctx.l.with_timezone(community.timezone)
    shown = render_invitation(reader, look, with_file=with_file)
    replies: list[Reply] = [
        AnswerButton(),
        forms.show(ctx, ctx.l.text("Preview: this is the invitation exactly as residents will receive it.")),
    ]
    replies.append(forms.as_received(shown.text, shown.buttons, attachment, with_file=with_file))
    buttons: list[Button] = []
    refusal: str | None = None
    try:
        # The service's own check (create() makes it again): an audience below k cannot be created.
        await consultations.check_audience(ctx.uow, form.community_id, form.audience(), form.eligibility_value())
    except AudienceTooSmall as too_small:
        refusal = ctx.l.label(too_small.message, **too_small.params)
    else:
        buttons.append(_button(ctx.l.label("Create"), ComposeAction.CREATE))
    buttons.append(_button(ctx.l.label("Edit"), ComposeAction.EDIT))
    buttons.append(_button(ctx.l.label("Cancel"), ComposeAction.CANCEL))
    replies.append(SendText(await _summary(ctx, form, "preview", refusal), buttons=(tuple(buttons),)))
    return replies


async def _create(ctx: Context, form: Form) -> Sequence[Reply]:
    now = ctx.uow.clock.now()
    if form.opens_at is not None:
        check_opening_time(datetime.fromisoformat(form.opens_at), now)
    created = await consultations.create_consultation(ctx.uow, ctx.person_id, form.draft(now), form.seeds)
    consultation = created.consultation
    consultation_id = consultation.id
    count = created.invited
    opened = created.opened
    await ctx.clear_state()
    reader = await _reader(ctx, form)
    text = reader.render(
        "consult_created.j2",
        consultation_id=consultation_id,
        opened=opened,
        count=count or 0,
        opens_at=consultation.opens_at,
        closes_at=consultation.closes_at,
        at=partial(moment, reader),
    )
    return (AnswerButton(), forms.show(ctx, text))


async def form_action(ctx: Context, data: ComposeForm) -> Sequence[Reply]:
    action = data.action
    if ctx.state is None or ctx.state.name not in STATES:
        return forms.stale(ctx)
    if action is ComposeAction.CANCEL:
        await ctx.clear_state()
        return (AnswerButton(), forms.show(ctx, ctx.l.text("Cancelled. Nothing was created.")))
    if ctx.state.name in (STATE_COMMUNITY, STATE_TITLE, STATE_BACKGROUND):
        return forms.stale(ctx)  # only Cancel works until the title and background are in
    form = Form.of(ctx)
    lists = {ComposeAction.BUILDINGS: ComposeToggle.BUILDING, ComposeAction.GROUPS: ComposeToggle.GROUP}
    if action is ComposeAction.EVERYONE:
        form.buildings, form.groups = [], []
    if action in (ComposeAction.EVERYONE, ComposeAction.BACK, ComposeAction.SCOPE, *lists):
        if action is ComposeAction.BACK and form.scope_done and ctx.state.name != STATE_FORM:
            await form.save(ctx, STATE_FORM)  # back from typing a time
            return (AnswerButton(), await _options_screen(ctx, form))
        await form.save(ctx, STATE_FORM)
        text, buttons = await _scope_screen(ctx, form, lists.get(action))
        return (AnswerButton(), forms.show(ctx, text, buttons))
    if action in (ComposeAction.SCOPE_DONE, ComposeAction.EDIT, ComposeAction.SEEDS_DONE):
        form.scope_done = True
        await form.save(ctx, STATE_FORM)
        return (AnswerButton(), await _options_screen(ctx, form))
    if action is ComposeAction.TITLE:
        return await _ask_title(ctx, form)
    if action is ComposeAction.BACKGROUND:
        return await _ask_background(ctx, form)
    if action is ComposeAction.OPEN_NOW:
        form.opens_at = None
        now = ctx.uow.clock.now()
        consultations.validate_draft(form.draft(now), now)
        await form.save(ctx, STATE_FORM)
        return (AnswerButton(), await _options_screen(ctx, form))
    if action is ComposeAction.OPEN_LATER:
        return await _ask_time(ctx, form, STATE_OPENS)
    if action is ComposeAction.CLOSE_LATER:
        return await _ask_time(ctx, form, STATE_CLOSES)
    if action is ComposeAction.STATEMENTS or action is ComposeAction.MODERATED:
        if action is ComposeAction.STATEMENTS:
            form.allow_statements = not form.allow_statements
        else:
            form.moderated = not form.moderated
        await form.save(ctx, STATE_FORM)
        return (AnswerButton(), await _options_screen(ctx, form))
    if action is ComposeAction.SEEDS:
        return await _ask_seeds(ctx, form)
    if action is ComposeAction.DROP_SEEDS:
        form.seeds = []
        await form.save(ctx, STATE_FORM)
        return (AnswerButton(), await _options_screen(ctx, form))
    if action is ComposeAction.PREVIEW and ctx.state.name == STATE_FORM:
        return await _preview(ctx, form)
    if action is ComposeAction.CREATE and ctx.state.name == STATE_FORM:
        return await _create(ctx, form)
    return forms.stale(ctx)


def register(router: Router) -> None:
    router.command(
        "newconsultation", compose, description=N_("Start a consultation of residents"), action=Action.RUN_CONSULTATION
    )
    router.button(ComposeCommunity, chose_community)
    router.button(ComposeForm, form_action)
    router.button(ComposeChoice, choice)
    router.state(STATE_COMMUNITY, use_buttons)
    router.state(STATE_TITLE, got_title)
    router.state(STATE_BACKGROUND, got_background)
    router.file_state(STATE_BACKGROUND, got_background_file)
    router.state(STATE_FORM, use_buttons)
    router.state(STATE_OPENS, got_opening)
    router.state(STATE_CLOSES, got_closing)
    router.state(STATE_SEEDS, got_seed)
