"""/newconsultation: a community worker or committee member (Action.RUN_CONSULTATION) sets up a consultation, a
form declared for bot.forms.engine.

1. the community (for staff of several), the title, the background (or a photo or document with the background
   as its caption);
2. who it is for: the whole community, or some buildings or residents' groups (toggles);
3. the options: who may take part, when it opens (now, or a typed time) and closes (3 / 7 / 14 days after it
   opens, or a typed time), whether residents may add statements and whether those wait for a moderator, and a
   few statements to start with, typed one per message;
4. the preview: the invitation exactly as residents will get it, with how many it reaches; Create / Edit /
   Cancel. An audience smaller than k (community.anonymity) gets no Create button but the reason, from
   consultations.check_audience, the check consultations.create makes too.

Create calls the use case consultations.create_consultation with the statements to start with (it schedules the
opening and closing, or opens at once when the opening time has come), then invites to what it opened. Every
check is the services': a refused answer leaves the question standing and nothing written."""

from __future__ import annotations

from datetime import datetime
from functools import partial

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
from bot.events import FileShared
from bot.forms.engine import (
    Ask,
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
from bot.notices.render import moment
from bot.rendering import Localizer
from bot.replies import Keyboard
from bot.router import Router
from community import settings
from community.communities import get_community
from community.models import Community
from community.roles import Action
from consultation import consultations, reach
from consultation.consultations import (
    MAX_BACKGROUND,
    MAX_STATEMENT,
    MAX_TITLE,
    ConsultationDraft,
    check_opening_time,
    clean_background,
    clean_title,
)
from consultation.errors import AudienceTooSmall
from consultation.messages import ConsultationLook
from consultation.models import Eligibility
from consultation.settings import CLOSING_DAYS, default_closing_days
from i18n import N_

SCOPE, OPTIONS = "scope", "options"
CONTROLS = Controls.standard(ComposeForm, ComposeChoice, ComposeCommunity, confirm=ComposeAction.CREATE)

ELIGIBILITY_LABELS: dict[Eligibility, str] = {
    Eligibility.RESIDENTS: N_("Residents"),
    Eligibility.HOUSEHOLD_REPRESENTATIVES: N_("Household representatives"),
    Eligibility.MEMBERS: N_("All members"),
}


def eligibility_label(l: Localizer, eligibility: Eligibility) -> str:  # noqa: E741
    return l.label(ELIGIBILITY_LABELS[eligibility])


async def _new(ctx: Context, community: Community) -> Form:
    assert community.id is not None
    closing = await settings.value(ctx.uow, community.id, CLOSING_DAYS)
    return Form(
        community_id=community.id,
        language=ctx.l.language,
        closes_days=default_closing_days(closing),
        closing_choices=list(closing),
        **await place_options(ctx, community.id),
    )


async def _count(ctx: Context, form: Form) -> int:
    return await reach.count_eligible(ctx.uow, form.community_id, form.audience(), form.eligibility_value())


def _validate(form: Form, now: datetime) -> None:
    consultations.validate_draft(form.draft(now), now)


# --- step 1: the title, the background; the questions reached from the options ---------------------------------


async def _ask_title(ctx: Context, form: Form) -> str:
    community = await get_community(ctx.uow, form.community_id)
    return ctx.l.render("consult_ask_title.j2", community=community.name, limit=MAX_TITLE)


async def _take_title(_: Context, form: Form, text: str) -> None:
    form.title = clean_title(text)


async def _ask_background(ctx: Context, _: Form) -> str:
    return ctx.l.render("consult_ask_background.j2", limit=MAX_BACKGROUND)


async def _take_background(_: Context, form: Form, text: str) -> None:
    form.background = clean_background(text)


async def _take_background_file(ctx: Context, form: Form, payload: FileShared) -> None:
    form.background = clean_background(payload.caption)
    form.attachment = forms.shared_attachment(ctx, payload)


def _keep_opening(ctx: Context, form: Form, when: datetime) -> None:
    now = ctx.uow.clock.now()
    check_opening_time(when, now)
    form.opens_at = when.isoformat()
    _validate(form, now)  # e.g. after a typed closing time


def _keep_closing(ctx: Context, form: Form, when: datetime) -> None:
    form.closes_at = when.isoformat()
    _validate(form, ctx.uow.clock.now())


async def _ask_seeds(ctx: Context, form: Form) -> str:
    return ctx.l.render("consult_ask_seeds.j2", limit=MAX_STATEMENT, count=len(form.seeds))


async def _take_seed(_: Context, form: Form, text: str) -> None:
    form.seeds.append(consultations.next_seed(form.seeds, text))


def _seed_added(ctx: Context, form: Form) -> str:
    return ctx.l.text("Statement %(number)s added. Type the next one, or tap Done.", number=len(form.seeds))


CANCEL_ROW = ((N_("Cancel"), ComposeAction.CANCEL),)
BACK_ROW = ((N_("‹ Back"), ComposeAction.BACK),)
TITLE = Step[Form]("title", _ask_title, _take_title, N_("Please type the title."), CANCEL_ROW)
BACKGROUND = Step[Form](
    "background",
    _ask_background,
    _take_background,
    N_("Please type the background."),
    CANCEL_ROW,
    take_file=_take_background_file,
)
OPENS = time_step("opens", "consult_ask_time.j2", _keep_opening, BACK_ROW, which="opens")
CLOSES = time_step("closes", "consult_ask_time.j2", _keep_closing, BACK_ROW, days_later=7, which="closes")
SEEDS = Step[Form](
    "seeds",
    _ask_seeds,
    _take_seed,
    N_("Please type the statement."),
    ((N_("Done"), ComposeAction.SEEDS_DONE),),
    repeat=_seed_added,
)


# --- step 2: who it is for ----------------------------------------------------------------------------------------

LISTINGS: tuple[Listing[Form], ...] = place_listings(
    (ComposeToggle.BUILDING, ComposeAction.BUILDINGS), (ComposeToggle.GROUP, ComposeAction.GROUPS)
)


# --- step 3: the options ------------------------------------------------------------------------------------------


async def _summary(ctx: Context, form: Form, question: str, count: int, refusal: str | None = None) -> str:
    """The form so far; count: the people it would reach (_count); refusal: why it cannot be created as it stands
    (the preview's last line instead of "Create it?")."""
    reader = ctx.l.with_timezone((await get_community(ctx.uow, form.community_id)).timezone)
    return await summary(
        ctx,
        form,
        "consult_summary.j2",
        audience=form.audience(),
        count=count,
        title=form.title,
        eligibility=eligibility_label(reader, form.eligibility_value()),
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


async def _options(ctx: Context, form: Form, _: object) -> tuple[str, Keyboard]:
    l, mark, button = ctx.l, forms.mark, CONTROLS.button  # noqa: E741
    eligibilities = [
        CONTROLS.toggle(mark(form.eligibility == each.value, eligibility_label(l, each)), ComposeToggle.ELIGIBILITY, i)
        for i, each in enumerate(ELIGIBILITIES)
    ]
    closing = [
        CONTROLS.toggle(
            mark(form.closes_at is None and form.closes_days == days, l.plural("%(num)s day", "%(num)s days", days)),
            ComposeToggle.CLOSING_DAYS,
            i,
        )
        for i, days in enumerate(form.closing_choices)
    ]
    closing.append(button(mark(form.closes_at is not None, l.label("Close at…")), ComposeAction.CLOSE_LATER))
    rows = forms.rows(eligibilities, per_row=3)
    rows.append(
        (
            button(mark(form.opens_at is None, l.label("Open now")), ComposeAction.OPEN_NOW),
            button(mark(form.opens_at is not None, l.label("Open later…")), ComposeAction.OPEN_LATER),
        )
    )
    rows.append(tuple(closing))
    rows.append(
        (
            button(mark(form.allow_statements, l.label("Residents add statements")), ComposeAction.STATEMENTS),
            button(mark(form.moderated, l.label("Moderated")), ComposeAction.MODERATED),
        )
    )
    drop = ((N_("Remove them"), ComposeAction.DROP_SEEDS),) if form.seeds else ()
    rows.append(CONTROLS.row(ctx, (N_("Add statements"), ComposeAction.SEEDS), *drop))
    rows.append(
        CONTROLS.row(
            ctx,
            (N_("Who it is for"), ComposeAction.SCOPE),
            (N_("Edit the title"), ComposeAction.TITLE),
            (N_("Edit the background"), ComposeAction.BACKGROUND),
        )
    )
    rows.append(CONTROLS.row(ctx, (N_("Preview ›"), ComposeAction.PREVIEW), (N_("Cancel"), ComposeAction.CANCEL)))
    return await _summary(ctx, form, "options", await _count(ctx, form)), tuple(rows)


def _open_now(ctx: Context, form: Form) -> None:
    form.opens_at = None
    _validate(form, ctx.uow.clock.now())


def _flip_statements(_: Context, form: Form) -> None:
    form.allow_statements = not form.allow_statements


def _flip_moderated(_: Context, form: Form) -> None:
    form.moderated = not form.moderated


def _drop_seeds(_: Context, form: Form) -> None:
    form.seeds = []


def _pick_eligibility(_: Context, form: Form, index: int) -> bool:
    if not 0 <= index < len(ELIGIBILITIES):
        return False
    form.eligibility = ELIGIBILITIES[index].value
    return True


def _pick_closing_days(ctx: Context, form: Form, index: int) -> bool:
    if not 0 <= index < len(form.closing_choices):
        return False
    form.closes_days, form.closes_at = form.closing_choices[index], None
    _validate(form, ctx.uow.clock.now())
    return True


# --- step 4: the preview, and creating it -------------------------------------------------------------------------


def _checked_draft(form: Form, now: datetime) -> ConsultationDraft:
    """The draft after its own checks, and a typed opening time must still lie ahead ("open now" is its own
    choice); returned so the preview builds it once."""
    draft = form.draft(now)
    consultations.validate_draft(draft, now)  # e.g. the closing time has passed meanwhile
    if form.opens_at is not None:
        check_opening_time(draft.opens_at, now)
    return draft


async def _preview(ctx: Context, form: Form) -> Preview:
    draft = _checked_draft(form, ctx.uow.clock.now())
    community = await get_community(ctx.uow, form.community_id)
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
    shown = render_invitation(ctx.l.with_timezone(community.timezone), look, with_file=with_file)
    refusal: str | None = None
    try:
        # The service's own check (create() makes it again): an audience below k cannot be created.
        count = await consultations.check_audience(
            ctx.uow, form.community_id, form.audience(), form.eligibility_value()
        )
    except AudienceTooSmall as too_small:
        count = too_small.audience
        refusal = ctx.l.label(too_small.message, **too_small.params)
    return Preview(
        ctx.l.text("Preview: this is the invitation exactly as residents will receive it."),
        (forms.as_received(shown.text, shown.buttons, attachment, with_file=with_file),),
        await _summary(ctx, form, "preview", count, refusal),
        ctx.l.label("Create") if refusal is None else None,
    )


async def _create(ctx: Context, form: Form) -> str:
    now = ctx.uow.clock.now()
    opening = form.opening()
    if opening is not None:
        check_opening_time(opening, now)
    created = await consultations.create_consultation(ctx.uow, ctx.person_id, form.draft(now), form.seeds)
    count = created.invited  # when it opened at once, the invitations it queued
    consultation = created.consultation
    reader = ctx.l.with_timezone((await get_community(ctx.uow, form.community_id)).timezone)
    return reader.render(
        "consult_created.j2",
        consultation_id=consultation.id,
        opened=count is not None,
        count=count or 0,
        opens_at=consultation.opens_at,
        closes_at=consultation.closes_at,
        at=partial(moment, reader),
    )


CONSULTATION = FormDeclaration[Form](
    name="consult",
    command="newconsultation",
    description=N_("Start a consultation of residents"),
    action=Action.RUN_CONSULTATION,
    which_community=N_("Which community is the consultation for?"),
    cancelled=N_("Cancelled. Nothing was created."),
    load=Form.of,
    new=_new,
    steps=(TITLE, BACKGROUND),
    pages={
        SCOPE: audience_page(
            SCOPE,
            CONTROLS,
            "consult_scope.j2",
            _count,
            LISTINGS,
            everyone=ComposeAction.EVERYONE,
            done=ComposeAction.SCOPE_DONE,
        ),
        OPTIONS: Page(_options),
    },
    first_page=SCOPE,
    hub=OPTIONS,
    questions=(OPENS, CLOSES, SEEDS),
    actions={
        ComposeAction.SCOPE: Show(SCOPE),
        ComposeAction.TITLE: Ask(TITLE.name),
        ComposeAction.BACKGROUND: Ask(BACKGROUND.name),
        ComposeAction.OPEN_NOW: Do(Move.HUB, _open_now),
        ComposeAction.OPEN_LATER: Ask(OPENS.name),
        ComposeAction.CLOSE_LATER: Ask(CLOSES.name),
        ComposeAction.STATEMENTS: Do(Move.HUB, _flip_statements),
        ComposeAction.MODERATED: Do(Move.HUB, _flip_moderated),
        ComposeAction.SEEDS: Ask(SEEDS.name),
        ComposeAction.DROP_SEEDS: Do(Move.HUB, _drop_seeds),
        ComposeAction.SEEDS_DONE: Move.HUB,
    },
    picks={ComposeToggle.ELIGIBILITY: Pick(_pick_eligibility), ComposeToggle.CLOSING_DAYS: Pick(_pick_closing_days)},
    preview=_preview,
    commit=_create,
    controls=CONTROLS,
)


def register(router: Router) -> None:
    FormEngine(CONSULTATION).register(router)
