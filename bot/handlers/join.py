"""Asking to join without a code: a short form (community, name, household, optionally the phone), then the
community's workers get the request with Approve / Reject buttons, and the requester hears the outcome.

Also /cancel, which leaves whatever form the person is in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from markupsafe import Markup

from bot import forms
from bot.callbacks import CallbackData
from bot.context import Context
from bot.delivery.transport import outbox_buttons
from bot.events import Command, ContactShared, FileShared, TextInput
from bot.rendering import Localizer, Localizers
from bot.replies import AnswerButton, Button, Keyboard, Reply, SendText
from bot.router import Router
from community.communities import get_community
from community.errors import ValidationFailed
from community.join_messages import JoinDecided, JoinRequestNotice
from community.models import Community, JoinRequest, JoinRequestStatus
from community.notify import Reader, Rendered, Renderers
from community.verification import (
    JoinDecision,
    JoinRequestView,
    RejectionReason,
    clean_household_label,
    clean_person_name,
    clean_phone,
    decide_join_request,
    joinable_communities,
    pending_request_of,
    submit_join_request,
    view_join_request,
)
from i18n import N_

STATE_COMMUNITY = "join.community"
STATE_NAME = "join.name"
STATE_HOUSEHOLD = "join.household"
STATE_PHONE = "join.phone"
STATE_CONFIRM = "join.confirm"

REASON_LABELS: dict[RejectionReason, str] = {
    RejectionReason.NOT_RESIDENT: N_("Not a resident here"),
    RejectionReason.HOUSEHOLD_UNCONFIRMED: N_("Can't confirm the household"),
    RejectionReason.DUPLICATE: N_("Duplicate"),
    RejectionReason.OTHER: N_("Other"),
}


@dataclass(frozen=True)
class JoinCommunity(CallbackData):
    """The requester picks the community they live in."""

    prefix: ClassVar[str] = "jn"
    community_id: int


class FormAction(StrEnum):
    SKIP_PHONE = "skip"
    SUBMIT = "submit"
    CANCEL = "cancel"


@dataclass(frozen=True)
class JoinForm(CallbackData):
    prefix: ClassVar[str] = "jf"
    action: FormAction


@dataclass(frozen=True)
class DecideJoin(CallbackData):
    """A worker's Approve, or Reject (which asks for a reason first)."""

    prefix: ClassVar[str] = "jd"
    request_id: int
    approve: bool


@dataclass(frozen=True)
class RejectJoin(CallbackData):
    prefix: ClassVar[str] = "jx"
    request_id: int
    reason: RejectionReason


@dataclass(frozen=True)
class ReviewJoin(CallbackData):
    """Back from the reasons to Approve / Reject."""

    prefix: ClassVar[str] = "jv"
    request_id: int


# ---------------------------------------------------------------------------------------------------------------
# The requester's form


async def start_form(ctx: Context) -> Sequence[Reply]:
    """Begin asking to join: choose the community, or go straight to the name where there is only one."""
    communities = await joinable_communities(ctx.uow, ctx.person_id)
    if not communities:
        await ctx.clear_state()
        waiting = await pending_request_of(ctx.uow, ctx.person_id)
        if waiting is not None:
            community = await get_community(ctx.uow, waiting.community_id)
            text = ctx.l.text(
                "Your request to join %(community)s is waiting for a community worker. You will get a message here.",
                community=community.name,
            )
        else:
            text = ctx.l.text("There is no community you can ask to join right now.")
        return (SendText(text),)
    if len(communities) == 1:
        return await _ask_name(ctx, communities[0])
    await ctx.set_state(STATE_COMMUNITY)
    buttons = tuple((Button(c.name, JoinCommunity(c.id or 0).pack()),) for c in communities)
    return (SendText(ctx.l.render("join_choose_community.j2"), buttons=buttons),)


async def _ask_name(ctx: Context, community: Community) -> Sequence[Reply]:
    await ctx.set_state(STATE_NAME, community_id=community.id)
    return (SendText(ctx.l.render("join_ask_name.j2", community=community.name)),)


async def choose_community(ctx: Context, data: JoinCommunity) -> Sequence[Reply]:
    if ctx.state is None or ctx.state.name != STATE_COMMUNITY:
        return forms.stale(ctx)
    chosen = next((c for c in await joinable_communities(ctx.uow, ctx.person_id) if c.id == data.community_id), None)
    if chosen is None:
        return forms.stale(ctx)
    return (
        AnswerButton(),
        forms.show(ctx, ctx.l.text("Community: %(community)s", community=chosen.name)),
        *(await _ask_name(ctx, chosen)),
    )


def _form(ctx: Context) -> dict[str, Any]:
    assert ctx.state is not None
    return dict(ctx.state.data)


async def got_community_text(ctx: Context, _: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    return (SendText(ctx.l.text("Tap your community in the list above, or send /cancel.")),)


async def got_name(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type your name.")),)
    name = clean_person_name(payload.text)
    await ctx.set_state(STATE_HOUSEHOLD, **_form(ctx), person_name=name)
    return (SendText(ctx.l.render("join_ask_household.j2")),)


def _phone_prompt(ctx: Context) -> Sequence[Reply]:
    share = ctx.l.label("Share my phone number")
    skip = Button(ctx.l.label("Skip"), JoinForm(FormAction.SKIP_PHONE).pack())
    return (
        SendText(ctx.l.render("join_ask_phone.j2"), request_contact=share),
        SendText(ctx.l.text("Rather not share it?"), buttons=((skip,),)),
    )


async def got_household(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type your building, unit and room.")),)
    label = clean_household_label(payload.text)
    await ctx.set_state(STATE_PHONE, **_form(ctx), household=label)
    return _phone_prompt(ctx)


async def got_phone(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, ContactShared):
        # A typed number proves nothing; the channel's own button shares the number of the account itself.
        return _phone_prompt(ctx)
    if payload.contact_account_id != ctx.event.sender.account_id:
        raise ValidationFailed(N_("Please share your own phone number with the button, not someone else's contact."))
    phone = clean_phone(payload.phone)
    await ctx.set_state(STATE_CONFIRM, **_form(ctx), phone=phone)
    return (SendText(ctx.l.text("Thank you."), remove_keyboard=True), await _summary(ctx))


async def _summary(ctx: Context) -> SendText:
    form = _form(ctx)
    community = await get_community(ctx.uow, form["community_id"])
    text = ctx.l.render(
        "join_summary.j2",
        community=community.name,
        name=form["person_name"],
        household=form["household"],
        phone=form.get("phone"),
    )
    buttons = (
        (
            Button(ctx.l.label("Send the request"), JoinForm(FormAction.SUBMIT).pack()),
            Button(ctx.l.label("Cancel"), JoinForm(FormAction.CANCEL).pack()),
        ),
    )
    return SendText(text, buttons=buttons)


async def got_confirm_text(ctx: Context, _: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    return (SendText(ctx.l.text("Tap “Send the request” or “Cancel” above.")),)


async def form_action(ctx: Context, data: JoinForm) -> Sequence[Reply]:
    state = ctx.state.name if ctx.state is not None else None
    if data.action is FormAction.CANCEL and state is not None and state.startswith("join."):
        await ctx.clear_state()
        return (AnswerButton(), forms.show(ctx, ctx.l.text("Cancelled. Nothing was sent.")))
    if data.action is FormAction.SKIP_PHONE and state == STATE_PHONE:
        await ctx.set_state(STATE_CONFIRM, **_form(ctx), phone=None)
        return (
            AnswerButton(),
            forms.show(ctx, ctx.l.text("No phone number then.")),
            SendText(ctx.l.text("Almost done."), remove_keyboard=True),
            await _summary(ctx),
        )
    if data.action is FormAction.SUBMIT and state == STATE_CONFIRM:
        return await _submit(ctx)
    return forms.stale(ctx)


async def _submit(ctx: Context) -> Sequence[Reply]:
    form = _form(ctx)
    request = await submit_join_request(
        ctx.uow,
        person_id=ctx.person_id,
        community_id=form["community_id"],
        name=form["person_name"],
        household_label=form["household"],
        phone=form.get("phone"),
    )
    await ctx.clear_state()
    community = await get_community(ctx.uow, request.community_id)
    # The workers are sent the request by the use case (through the outbox): this chat only hears it went.
    return (AnswerButton(), forms.show(ctx, ctx.l.render("join_submitted.j2", community=community.name)))


async def cancel(ctx: Context, _: Command) -> Sequence[Reply]:
    if ctx.state is None:
        return (SendText(ctx.l.text("There is nothing to cancel."), remove_keyboard=True),)
    await ctx.clear_state()
    return (SendText(ctx.l.text("Cancelled. Nothing was saved."), remove_keyboard=True),)


# ---------------------------------------------------------------------------------------------------------------
# The worker's side


def request_text(
    reader: Localizer,
    request: JoinRequestView | JoinRequestNotice,
    community: Community | str,
    *,
    outcome: str | None = None,
) -> str:
    """A join request as a worker sees it, masked for them by the service; outcome (already translated) replaces
    the question once decided."""
    return reader.render(
        "join_request.j2",
        request=request,
        community=community if isinstance(community, str) else community.name,
        phone=request.phone,  # masked for this reader by the service (verification.view_join_request, _tell_staff)
        outcome=Markup(outcome) if outcome is not None else None,  # localizer output is safe HTML
    )


def decision_buttons(reader: Localizer, request: JoinRequestView | int) -> Keyboard:
    request_id = request if isinstance(request, int) else request.id
    return (
        (
            Button(reader.label("✅ Approve"), DecideJoin(request_id, approve=True).pack()),
            Button(reader.label("❌ Reject"), DecideJoin(request_id, approve=False).pack()),
        ),
    )


def register_renderers(renderers: Renderers, localizers: Localizers) -> None:
    """How joining's notifications (community.join_messages) read, for the composition root."""

    def request(message: JoinRequestNotice, reader: Reader) -> Rendered:
        local = localizers.get(reader.language, message.timezone)
        outcome = None if message.awaits_decision else _decided_by(local, message)
        text = request_text(local, message, message.community, outcome=outcome)
        buttons = decision_buttons(local, message.request_id) if outcome is None else ()
        return Rendered(text, outbox_buttons(buttons))

    def decided(message: JoinDecided, reader: Reader) -> Rendered:
        local = localizers.get(reader.language, message.timezone)
        if message.approved:
            return Rendered(local.render("join_approved.j2", community=message.community, household=message.household))
        text = local.render(
            "join_rejected.j2",
            community=message.community,
            reason=message.reason_message,
            free_reason=message.free_reason,
        )
        return Rendered(text)

    renderers.register(JoinRequestNotice, request)
    renderers.register(JoinDecided, decided)


def _decided_by(reader: Localizer, message: JoinRequestNotice) -> str:
    name = message.decided_by
    if not name:
        return _outcome(reader, message)
    if message.status == JoinRequestStatus.APPROVED:
        return reader.text("✅ Approved by %(name)s.", name=name)
    return reader.text("❌ Rejected by %(name)s.", name=name)


def _reason_buttons(reader: Localizer, request_id: int) -> Keyboard:
    rows = [
        (Button(reader.label(label), RejectJoin(request_id, reason).pack()),) for reason, label in REASON_LABELS.items()
    ]
    rows.append((Button(reader.label("← Back"), ReviewJoin(request_id).pack()),))
    return tuple(rows)


async def _worker_view(ctx: Context, request: JoinRequestView, outcome: str | None = None) -> str:
    community = await get_community(ctx.uow, request.community_id)
    reader = ctx.l.with_timezone(community.timezone)
    return request_text(reader, request, community, outcome=outcome)


async def decide(ctx: Context, data: DecideJoin) -> Sequence[Reply]:
    if not data.approve:
        request = await view_join_request(ctx.uow, viewer_id=ctx.person_id, request_id=data.request_id)
        if not request.awaits_decision:
            return (AnswerButton(), forms.show(ctx, await _worker_view(ctx, request, _outcome(ctx.l, request))))
        text = await _worker_view(ctx, request, ctx.l.text("Why do you reject this request? The requester is told."))
        return (AnswerButton(), forms.show(ctx, text, _reason_buttons(ctx.l, data.request_id)))
    decision = await decide_join_request(
        ctx.uow, actor_id=ctx.person_id, request_id=data.request_id, approve=True, answered=forms.tapped(ctx)
    )
    return await _decided(ctx, decision)


async def reject(ctx: Context, data: RejectJoin) -> Sequence[Reply]:
    decision = await decide_join_request(
        ctx.uow,
        actor_id=ctx.person_id,
        request_id=data.request_id,
        approve=False,
        reason=data.reason,
        answered=forms.tapped(ctx),
    )
    return await _decided(ctx, decision)


async def review(ctx: Context, data: ReviewJoin) -> Sequence[Reply]:
    request = await view_join_request(ctx.uow, viewer_id=ctx.person_id, request_id=data.request_id)
    if not request.awaits_decision:
        return (AnswerButton(), forms.show(ctx, await _worker_view(ctx, request, _outcome(ctx.l, request))))
    return (AnswerButton(), forms.show(ctx, await _worker_view(ctx, request), decision_buttons(ctx.l, request)))


def _outcome(reader: Localizer, request: JoinRequest | JoinRequestView | JoinRequestNotice) -> str:
    if request.status == JoinRequestStatus.APPROVED:
        return reader.text("✅ Approved.")
    return reader.text("❌ Rejected.")


async def _decided(ctx: Context, decision: JoinDecision) -> Sequence[Reply]:
    """The tapped message shows the decision; the requester and the other workers hear through the outbox."""
    request = decision.request
    seen = await view_join_request(ctx.uow, viewer_id=ctx.person_id, request_id=request.id or 0)
    return (AnswerButton(), forms.show(ctx, await _worker_view(ctx, seen, _outcome(ctx.l, request))))


def register(router: Router) -> None:
    router.command("cancel", cancel, description=N_("Stop the form you are filling in"))
    router.button(JoinCommunity, choose_community)
    router.button(JoinForm, form_action)
    router.button(DecideJoin, decide)
    router.button(RejectJoin, reject)
    router.button(ReviewJoin, review)
    router.state(STATE_COMMUNITY, got_community_text)
    router.state(STATE_NAME, got_name)
    router.state(STATE_HOUSEHOLD, got_household)
    router.state(STATE_PHONE, got_phone)
    router.state(STATE_CONFIRM, got_confirm_text)
