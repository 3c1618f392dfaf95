"""The form engine: a chat form is declared (FormDeclaration), and this module renders and drives it.

A declaration says
- which command starts it and which permission (Action) it needs; staff of several communities first pick one;
- its **steps**: questions answered by typing (or a photo or document), asked in order the first time through;
  each parses what was typed and calls the domain's validators, whose refusal (a ValidationFailed) leaves the
  question standing and nothing written;
- its **pages**: screens of buttons (who it reaches, the options), with lists of toggles (Listing);
- its **questions**: typed answers reached from a page ("send later…", "add a version…"), which return to the hub;
- its **buttons**: what each of its callback actions and toggles does (Do, Pick): change the form through a
  validator, then go somewhere (a page, a question, the hub, back, the preview, the commit, cancel);
- its **preview**: the messages exactly as recipients will get them, how many it reaches, and the commit button
  (or none, with the reason in the summary);
- its **commit**: one domain use case, and the confirmation.

The engine keeps the form (a StateForm dataclass) in the dialogue state under one state per question, so a
restart or another process carries on where the person was; it answers a button whose form is gone, has moved
on, or whose data names nothing the form shows as out of date (forms.stale), and changes nothing then."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Generic, Protocol, TypeVar, get_type_hints

from bot import forms
from bot.callbacks import CallbackData
from bot.context import Context
from bot.events import Command, ContactShared, FileShared, TextInput
from bot.replies import AnswerButton, Button, Keyboard, Reply, SendText
from bot.router import Router
from community.errors import PermissionDenied, ValidationFailed
from community.models import Community
from community.roles import Action
from community.verification import staff_communities
from i18n import N_

USE_BUTTONS = N_("Use the buttons above, or send /cancel to stop.")
EDIT = N_("Edit")
CANCEL = N_("Cancel")
COMMUNITY_CHOSEN = N_("Community: %(community)s")

Typed = TextInput | ContactShared | FileShared


# --- the callback data a declared form's buttons carry ------------------------------------------------------------
# Each form subclasses these with its own prefix and its own StrEnum for ``action`` / ``toggle``.


@dataclass(frozen=True)
class FormPress(CallbackData):
    """A button of the form: one of its actions (the subclass narrows the type to its StrEnum)."""

    action: StrEnum


@dataclass(frozen=True)
class FormPick(CallbackData):
    """A toggle of the form: which one, and the index of the option where it is one of a list."""

    toggle: StrEnum
    index: int = 0


@dataclass(frozen=True)
class FormCommunity(CallbackData):
    """Staff of several communities pick the one the form is for."""

    community_id: int


# --- the form as the engine needs it ----------------------------------------------------------------------------


class FormData(Protocol):
    """What the engine reads of a form: its community, and whether the person has passed the pages once (a step
    answered again then returns to the hub instead of going on in order)."""

    community_id: int
    done: bool

    async def save(self, ctx: Context, state: str) -> None: ...


F = TypeVar("F", bound=FormData)


# --- where a button leads ------------------------------------------------------------------------------------------


class Move(StrEnum):
    HUB = "hub"  # the options page; the pages count as passed from now on
    BACK = "back"  # from a question back to the hub (once passed), else from a list back to the first page
    PREVIEW = "preview"
    COMMIT = "commit"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Show:
    """A page, with one of its lists open."""

    page: str
    listing: StrEnum | None = None


@dataclass(frozen=True, slots=True)
class Ask:
    """A step or a question, asked in place of the page whose button was pressed."""

    step: str


Target = Move | Show | Ask


@dataclass(frozen=True)
class Do(Generic[F]):
    """What an action's button does: ``change`` the form (a validator may refuse: nothing is saved), then go."""

    then: Target
    change: Callable[[Context, F], None] | None = None


@dataclass(frozen=True)
class Pick(Generic[F]):
    """What a toggle does with its index: ``change`` returns False when the index names nothing (a stale or
    forged button), else the form goes ``then``."""

    change: Callable[[Context, F, int], bool]
    then: Target = Move.HUB


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a list: the index its button carries, its label, whether it is chosen."""

    index: int
    label: str
    chosen: bool


@dataclass(frozen=True)
class Listing(Generic[F]):
    """A list of toggles on a page (buildings, residents' groups, roles): opened by the action ``open``, its
    toggles carry ``key``; shown only where it has choices."""

    key: StrEnum
    open: StrEnum
    label: str  # message id of the button that opens it
    choices: Callable[[Context, F], Sequence[Choice]]
    toggle: Callable[[F, int], bool]  # False: no such choice
    chosen: Callable[[F], int]  # how many are chosen
    clear: Callable[[F], None]


@dataclass(frozen=True)
class Page(Generic[F]):
    """A screen of buttons: ``render`` gives its text and keyboard with one of its lists open, or none;
    ``actions``: what the buttons it brings do (the lists' open actions need no entry)."""

    render: Callable[[Context, F, StrEnum | None], Awaitable[tuple[str, Keyboard]]]
    listings: Sequence[Listing[F]] = ()
    actions: Mapping[StrEnum, Do[F] | Target] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Controls:
    """A form's callback data types, and its actions that every form has: the engine does them."""

    press: type[FormPress]
    pick: type[FormPick]
    community: type[FormCommunity]
    back: StrEnum  # Move.BACK
    cancel: StrEnum  # Move.CANCEL
    edit: StrEnum  # from the preview to the hub
    preview: StrEnum
    confirm: StrEnum  # the commit

    @classmethod
    def standard(
        cls, press: type[FormPress], pick: type[FormPick], community: type[FormCommunity], *, confirm: StrEnum
    ) -> Controls:
        """A form's controls where its actions' StrEnum names them BACK, CANCEL, EDIT and PREVIEW."""
        actions: type[StrEnum] = get_type_hints(press)["action"]
        return cls(
            press, pick, community, actions["BACK"], actions["CANCEL"], actions["EDIT"], actions["PREVIEW"], confirm
        )

    def button(self, label: str, action: StrEnum) -> Button:
        """A button of the form: ``label`` is already translated."""
        return Button(label, self.press(action).pack())

    def toggle(self, label: str, toggle: StrEnum, index: int = 0) -> Button:
        """A toggle of the form, ``label`` already translated (and marked where chosen)."""
        return Button(label, self.pick(toggle, index).pack())

    def row(self, ctx: Context, *buttons: tuple[str, StrEnum]) -> tuple[Button, ...]:
        """A row of the form's buttons: label message ids and their actions."""
        return tuple(self.button(ctx.l.label(label), action) for label, action in buttons)


@dataclass(frozen=True)
class Step(Generic[F]):
    """A question answered by typing. ``take`` parses the text and calls the validators (ValidationFailed: the
    question stands, nothing is written); ``take_file`` likewise for a photo or document, where it takes one.
    ``repeat``: the step takes answer after answer (statements to start with) and acknowledges each with this
    text, keeping its buttons; its refusals keep them too."""

    name: str
    prompt: Callable[[Context, F], Awaitable[str]]
    take: Callable[[Context, F, str], Awaitable[None]]
    not_text: str  # message id: what it says to a contact or a file it does not take
    buttons: Sequence[tuple[str, StrEnum]] = ()  # one row under the question: label message id, action
    take_file: Callable[[Context, F, FileShared], Awaitable[None]] | None = None
    repeat: Callable[[Context, F], str] | None = None


@dataclass(frozen=True, slots=True)
class Preview:
    """What the preview shows: ``intro`` in place of the page, ``messages`` as recipients get them, then the
    summary with the commit button (``commit_label``; None: it cannot be committed as it stands, the summary says
    why), Edit and Cancel."""

    intro: str
    messages: Sequence[Reply]
    summary: str
    commit_label: str | None


@dataclass(frozen=True)
class FormDeclaration(Generic[F]):
    name: str  # the dialogue states are "<name>.<step>", "<name>.form", "<name>.community"
    command: str
    description: str  # message id, for the command menu
    action: Action  # who may use it; the services check it again
    which_community: str  # message id: the question for staff of several communities
    cancelled: str  # message id
    load: Callable[[Context], F]  # the form from the dialogue state
    new: Callable[[Context, Community], Awaitable[F]]
    steps: Sequence[Step[F]]  # asked in order at the start (only Cancel works meanwhile)
    pages: Mapping[str, Page[F]]
    first_page: str  # after the last step, the first time
    hub: str  # the options: where questions and steps answered again return
    questions: Sequence[Step[F]]  # reached from a page; back to the hub once answered
    actions: Mapping[StrEnum, Do[F] | Target]  # the lists' open actions need no entry
    picks: Mapping[StrEnum, Pick[F]]
    preview: Callable[[Context, F], Awaitable[Preview]]
    commit: Callable[[Context, F], Awaitable[str]]  # the domain use case; returns the confirmation
    controls: Controls
    named_steps: dict[str, Step[F]] = field(init=False, repr=False)
    all_actions: dict[StrEnum, Do[F] | Target] = field(init=False, repr=False)

    FORM: ClassVar[str] = "form"  # on a page
    PREVIEWED: ClassVar[str] = "preview"  # the preview is the last thing shown: only now does its commit work
    COMMUNITY: ClassVar[str] = "community"

    def __post_init__(self) -> None:
        steps = {step.name: step for step in (*self.steps, *self.questions)}
        if (
            len(steps) != len(self.steps) + len(self.questions)
            or {
                self.FORM,
                self.PREVIEWED,
                self.COMMUNITY,
            }
            & steps.keys()
        ):
            raise ValueError(f"form {self.name!r}: step names must be unique and not the engine's own")
        object.__setattr__(self, "named_steps", steps)
        controls = self.controls
        actions: dict[StrEnum, Do[F] | Target] = {
            controls.back: Move.BACK,
            controls.cancel: Move.CANCEL,
            controls.edit: Move.HUB,
            controls.preview: Move.PREVIEW,
            controls.confirm: Move.COMMIT,
        }
        for name, page in self.pages.items():
            actions.update({listing.open: Show(name, listing.key) for listing in page.listings})
            actions.update(page.actions)
        actions.update(self.actions)
        object.__setattr__(self, "all_actions", actions)

    def state(self, step: str) -> str:
        return f"{self.name}.{step}"

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(self.state(name) for name in (self.COMMUNITY, self.FORM, self.PREVIEWED, *self.named_steps))


class FormEngine(Generic[F]):
    """Drives one declared form: registers its command, buttons and states with the router."""

    def __init__(self, form: FormDeclaration[F]) -> None:
        self.form = form
        self.first_steps = frozenset(step.name for step in form.steps)

    # --- where the person is ------------------------------------------------------------------------------

    def _at(self, ctx: Context) -> str | None:
        """The step or page the person is at in this form (FORM for the pages), or None outside it."""
        if ctx.state is None or ctx.state.name not in self.form.states:
            return None
        return ctx.state.name.removeprefix(self.form.name + ".")

    # --- start ----------------------------------------------------------------------------------------------

    async def start(self, ctx: Context, _: Command) -> Sequence[Reply]:
        await ctx.clear_state()
        communities = await staff_communities(ctx.uow, ctx.person_id, self.form.action)
        if not communities:
            raise PermissionDenied(action=self.form.action.value)
        if len(communities) == 1:
            return await self._ask(ctx, await self.form.new(ctx, communities[0]), self.form.steps[0], in_place=False)
        await ctx.set_state(self.form.state(self.form.COMMUNITY))
        buttons = tuple((Button(c.name, self.form.controls.community(c.id or 0).pack()),) for c in communities)
        return (SendText(ctx.l.text(self.form.which_community), buttons=buttons),)

    async def chose_community(self, ctx: Context, data: FormCommunity) -> Sequence[Reply]:
        if self._at(ctx) != self.form.COMMUNITY:
            return forms.stale(ctx)
        communities = await staff_communities(ctx.uow, ctx.person_id, self.form.action)
        community = next((c for c in communities if c.id == data.community_id), None)
        if community is None:
            return forms.stale(ctx)
        form = await self.form.new(ctx, community)
        return (
            AnswerButton(),
            forms.show(ctx, ctx.l.text(COMMUNITY_CHOSEN, community=community.name)),
            *(await self._ask(ctx, form, self.form.steps[0], in_place=False)),
        )

    # --- screens --------------------------------------------------------------------------------------------

    def _answered(self, ctx: Context, reply: Reply) -> tuple[Reply, ...]:
        """A screen: after a button, the press is answered and the screen replaces its message."""
        return (AnswerButton(), reply) if forms.pressed_message_id(ctx) is not None else (reply,)

    async def _ask(self, ctx: Context, form: F, step: Step[F], *, in_place: bool) -> Sequence[Reply]:
        """A step's question: in place of the page whose button asked for it, else a new message."""
        await form.save(ctx, self.form.state(step.name))
        text = await step.prompt(ctx, form)
        keyboard = self._step_buttons(ctx, step)
        if in_place and forms.pressed_message_id(ctx) is not None:
            return (AnswerButton(), forms.show(ctx, text, keyboard))
        return (SendText(text, buttons=keyboard),)

    def _step_buttons(self, ctx: Context, step: Step[F]) -> Keyboard:
        return (self.form.controls.row(ctx, *step.buttons),) if step.buttons else ()

    async def _page(self, ctx: Context, form: F, show: Show) -> Sequence[Reply]:
        if show.page == self.form.hub:
            form.done = True
        await form.save(ctx, self.form.state(self.form.FORM))
        text, keyboard = await self.form.pages[show.page].render(ctx, form, show.listing)
        return self._answered(ctx, forms.show(ctx, text, keyboard))

    async def _preview(self, ctx: Context, form: F) -> Sequence[Reply]:
        shown = await self.form.preview(ctx, form)  # the validators run again: e.g. a time passed meanwhile
        await form.save(ctx, self.form.state(self.form.PREVIEWED))
        buttons: list[Button] = []
        if shown.commit_label is not None:
            buttons.append(self.form.controls.button(shown.commit_label, self.form.controls.confirm))
        buttons.append(self.form.controls.button(ctx.l.label(EDIT), self.form.controls.edit))
        buttons.append(self.form.controls.button(ctx.l.label(CANCEL), self.form.controls.cancel))
        return (
            *self._answered(ctx, forms.show(ctx, shown.intro)),
            *shown.messages,
            SendText(shown.summary, buttons=(tuple(buttons),)),
        )

    async def _go(self, ctx: Context, form: F, target: Target, at: str) -> Sequence[Reply]:
        match target:
            case Show():
                return await self._page(ctx, form, target)
            case Ask(step=name):
                return await self._ask(ctx, form, self.form.named_steps[name], in_place=True)
            case Move.HUB:
                return await self._page(ctx, form, Show(self.form.hub))
            case Move.BACK:
                if form.done and at != self.form.FORM:  # back from a question
                    return await self._page(ctx, form, Show(self.form.hub))
                return await self._page(ctx, form, Show(self.form.first_page))
            case Move.PREVIEW:
                return await self._preview(ctx, form)
            case Move.COMMIT:
                text = await self.form.commit(ctx, form)
                await ctx.clear_state()
                return (AnswerButton(), forms.show(ctx, text))
            case Move.CANCEL:
                return await self._cancel(ctx)
        raise AssertionError(target)

    async def _cancel(self, ctx: Context) -> Sequence[Reply]:
        await ctx.clear_state()
        return (AnswerButton(), forms.show(ctx, ctx.l.text(self.form.cancelled)))

    # --- buttons ----------------------------------------------------------------------------------------------

    def _listing(self, key: StrEnum) -> tuple[str, Listing[F]] | None:
        for name, page in self.form.pages.items():
            for listing in page.listings:
                if listing.key == key:
                    return name, listing
        return None

    async def pressed(self, ctx: Context, data: FormPress) -> Sequence[Reply]:
        at = self._at(ctx)
        if at is None:
            return forms.stale(ctx)
        action = self.form.all_actions.get(data.action)
        if action is Move.CANCEL:
            return await self._cancel(ctx)
        if action is None or at == self.form.COMMUNITY or at in self.first_steps:
            return forms.stale(ctx)  # only Cancel works until the first steps are answered
        then = action.then if isinstance(action, Do) else action
        if then is Move.PREVIEW and at not in (self.form.FORM, self.form.PREVIEWED):
            return forms.stale(ctx)  # from a page the form has moved on from
        if then is Move.COMMIT and at != self.form.PREVIEWED:
            return forms.stale(ctx)  # only what the preview showed last is committed
        form = self.form.load(ctx)
        if isinstance(action, Do) and action.change is not None:
            action.change(ctx, form)
        return await self._go(ctx, form, then, at)

    async def picked(self, ctx: Context, data: FormPick) -> Sequence[Reply]:
        at = self._at(ctx)
        if at not in (self.form.FORM, self.form.PREVIEWED):
            return forms.stale(ctx)
        form = self.form.load(ctx)
        found = self._listing(data.toggle)
        if found is not None:
            page, listing = found
            if not listing.toggle(form, data.index):
                return forms.stale(ctx)
            return await self._page(ctx, form, Show(page, listing.key))
        pick = self.form.picks.get(data.toggle)
        if pick is None or not pick.change(ctx, form, data.index):
            return forms.stale(ctx)
        return await self._go(ctx, form, pick.then, at)

    # --- typed answers ----------------------------------------------------------------------------------------

    async def typed(self, ctx: Context, payload: Typed) -> Sequence[Reply]:
        at = self._at(ctx)
        step = self.form.named_steps.get(at or "")
        if step is None:  # the community or the pages: they are answered with buttons
            return (SendText(ctx.l.text(USE_BUTTONS)),)
        if not isinstance(payload, TextInput):
            return (SendText(ctx.l.text(step.not_text)),)
        form = self.form.load(ctx)
        if step.repeat is not None:
            try:
                await step.take(ctx, form, payload.text)
            except ValidationFailed as refused:
                # Answered here rather than by the conversation, so that the step's buttons stay at hand;
                # nothing was written.
                text = ctx.l.text(refused.message, **refused.params)
                return (SendText(text, buttons=self._step_buttons(ctx, step)),)
            await form.save(ctx, self.form.state(step.name))
            return (SendText(step.repeat(ctx, form), buttons=self._step_buttons(ctx, step)),)
        await step.take(ctx, form, payload.text)
        return await self._after(ctx, form, step)

    async def file(self, ctx: Context, payload: FileShared) -> Sequence[Reply]:
        at = self._at(ctx)
        step = self.form.named_steps.get(at or "")
        if step is None or step.take_file is None:
            return await self.typed(ctx, payload)
        form = self.form.load(ctx)
        await step.take_file(ctx, form, payload)
        return await self._after(ctx, form, step)

    async def _after(self, ctx: Context, form: F, step: Step[F]) -> Sequence[Reply]:
        """After an answer: the next first step, or the first page; once the pages were passed, the hub."""
        if step.name in self.first_steps and not form.done:
            index = [s.name for s in self.form.steps].index(step.name)
            if index + 1 < len(self.form.steps):
                return await self._ask(ctx, form, self.form.steps[index + 1], in_place=False)
            return await self._page(ctx, form, Show(self.form.first_page))
        return await self._page(ctx, form, Show(self.form.hub))

    # --- registration -------------------------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        form = self.form
        router.command(form.command, self.start, description=form.description, action=form.action)
        router.button(form.controls.community, self.chose_community)
        router.button(form.controls.press, self.pressed)
        router.button(form.controls.pick, self.picked)
        for name in (form.COMMUNITY, form.FORM, form.PREVIEWED, *form.named_steps):
            router.state(form.state(name), self.typed)
        for step in form.named_steps.values():
            if step.take_file is not None:
                router.file_state(form.state(step.name), self.file)
