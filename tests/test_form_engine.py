"""The form engine (bot.forms.engine) on a toy form declared here, through the real conversation on both
databases: its steps in order, a validator's refusal that leaves the question standing, a list of toggles, the
hub and a question reached from it, Back, the preview and Edit, the commit, Cancel, out-of-date and forged
buttons, and a restart in the middle of the form (a new conversation over the same database carries on)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

import pytest

from bot import forms
from bot.app import build_router
from bot.context import BotInfo, Context
from bot.conversation import Conversation
from bot.events import ButtonPress, Command, Event, Payload, Sender, TextInput
from bot.forms.engine import (
    Ask,
    Controls,
    FormCommunity,
    FormDeclaration,
    FormEngine,
    FormPick,
    FormPress,
    Listing,
    Move,
    Page,
    Pick,
    Preview,
    Show,
    Step,
)
from bot.forms.kit import names_listing
from bot.rendering import Localizers
from bot.replies import AnswerButton, Button, EditText, Keyboard, Reply, SendText
from community.models import Community
from community.roles import Action
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import MAX_TITLE, clean_title
from tests.support.demo_people import CHEN, WORKER

STALE = "This button is out of date. Send /menu to start again."
REFUSED = f"A title needs 1 to {MAX_TITLE} characters."


class Act(StrEnum):
    COLOURS = "c"
    NEXT = "n"
    NAME = "name"
    NOTE = "note"
    BACK = "b"
    CANCEL = "x"
    EDIT = "e"
    PREVIEW = "p"
    GO = "go"


class Flip(StrEnum):
    COLOUR = "c"
    LOUD = "l"


@dataclass(frozen=True)
class ToyPress(FormPress):
    prefix: ClassVar[str] = "tyf"
    action: Act


@dataclass(frozen=True)
class ToyPick(FormPick):
    prefix: ClassVar[str] = "tyt"
    toggle: Flip
    index: int = 0


@dataclass(frozen=True)
class ToyCommunity(FormCommunity):
    prefix: ClassVar[str] = "tyc"
    community_id: int


@dataclass(slots=True)
class Toy(forms.StateForm):
    community_id: int
    done: bool = False
    title: str = ""  # (not "name": set_state takes the state's name)
    note: str = ""
    loud: bool = False
    colours: list[str] = field(default_factory=list)
    colour_options: list[str] = field(default_factory=lambda: ["red", "green"])


CONTROLS = Controls.standard(ToyPress, ToyPick, ToyCommunity, confirm=Act.GO)


async def _ask_name(ctx: Context, form: Toy) -> str:
    return "Your name?" if not form.done else "Your new name?"


async def _take_name(ctx: Context, form: Toy, text: str) -> None:
    form.title = clean_title(text)  # the domain's validator: refuses an empty or over-long title, translated


async def _ask_note(ctx: Context, form: Toy) -> str:
    return "A note?"


async def _take_note(ctx: Context, form: Toy, text: str) -> None:
    form.note = text.strip()


COLOURS: Listing[Toy] = names_listing(
    Flip.COLOUR, Act.COLOURS, "Colours", lambda toy: toy.colour_options, lambda toy: toy.colours
)


async def _first(ctx: Context, form: Toy, listing: StrEnum | None) -> tuple[str, Keyboard]:
    if listing is None:
        return f"Colours: {','.join(form.colours) or '-'}", (
            (CONTROLS.button("Colours", Act.COLOURS), CONTROLS.button("Next", Act.NEXT)),
        )
    toggles = tuple(
        CONTROLS.toggle(forms.mark(c.chosen, c.label), Flip.COLOUR, c.index) for c in COLOURS.choices(ctx, form)
    )
    return "Which colours?", (toggles, (CONTROLS.button("Back", Act.BACK),))


async def _hub(ctx: Context, form: Toy, _: StrEnum | None) -> tuple[str, Keyboard]:
    return f"{form.title} loud={form.loud} note={form.note or '-'}", (
        (CONTROLS.toggle("Loud", Flip.LOUD), CONTROLS.button("Note", Act.NOTE), CONTROLS.button("Name", Act.NAME)),
        (CONTROLS.button("Preview", Act.PREVIEW), CONTROLS.button("Cancel", Act.CANCEL)),
    )


def _flip_loud(_: Context, form: Toy, __: int) -> bool:
    form.loud = not form.loud
    return True


def _toy(committed: list[str]) -> FormDeclaration[Toy]:
    async def new(_: Context, community: Community) -> Toy:
        assert community.id is not None
        return Toy(community_id=community.id)

    async def preview(ctx: Context, form: Toy) -> Preview:
        shown = form.title.upper() if form.loud else form.title
        refusal = form.title == "nobody"  # as a service would refuse an audience too small
        return Preview("As they will see it:", (SendText(shown),), "Send it?", None if refusal else "Go")

    async def commit(ctx: Context, form: Toy) -> str:
        committed.append(f"{form.title}:{form.loud}:{form.note}:{','.join(form.colours)}")
        return "Sent."

    return FormDeclaration[Toy](
        name="toy",
        command="toy",
        description="A toy form",
        action=Action.SEND_NOTICE,
        which_community="Which community?",
        cancelled="Cancelled.",
        load=Toy.of,
        new=new,
        steps=(Step("name", _ask_name, _take_name, "Please type a name.", (("Cancel", Act.CANCEL),)),),
        pages={"first": Page(_first, (COLOURS,), {Act.NEXT: Move.HUB}), "hub": Page(_hub)},
        first_page="first",
        hub="hub",
        questions=(Step("note", _ask_note, _take_note, "Please type a note.", (("Back", Act.BACK),)),),
        actions={Act.NOTE: Ask("note"), Act.NAME: Ask("name"), Act.COLOURS: Show("first", Flip.COLOUR)},
        picks={Flip.LOUD: Pick(_flip_loud)},
        preview=preview,
        commit=commit,
        controls=CONTROLS,
    )


class Chat:
    """The worker's chat with a conversation whose router has the toy form too."""

    def __init__(self, uows: UnitOfWorkFactory, localizers: Localizers, committed: list[str]) -> None:
        router = build_router()
        FormEngine(_toy(committed)).register(router)
        self.conversation = Conversation(uows, router, localizers, BotInfo("linli_test_bot"))
        self.worker = Sender("console", WORKER.key, WORKER.key, WORKER.name, WORKER.language_code)

    async def send(self, payload: Payload, sender: Sender | None = None) -> Sequence[Reply]:
        return await self.conversation.handle(Event(sender or self.worker, payload))

    async def type(self, text: str) -> Sequence[Reply]:
        return await self.send(TextInput(text))

    async def press(self, data: str) -> Sequence[Reply]:
        return await self.send(ButtonPress(data, message_id="9", callback_id="1"))


def texts(replies: Sequence[Reply]) -> list[str]:
    return [reply.text for reply in replies if isinstance(reply, SendText | EditText) and reply.text]


def labels(replies: Sequence[Reply]) -> list[str]:
    return [
        button.label
        for reply in replies
        if isinstance(reply, SendText | EditText)
        for row in reply.buttons
        for button in row
    ]


def press(action: Act) -> str:
    return ToyPress(action).pack()


def pick(toggle: Flip, index: int = 0) -> str:
    return ToyPick(toggle, index).pack()


@pytest.fixture
def committed() -> list[str]:
    return []


@pytest.fixture
def chat(uows: UnitOfWorkFactory, localizers: Localizers, committed: list[str]) -> Chat:
    return Chat(uows, localizers, committed)


pytestmark = pytest.mark.usefixtures("demo")


async def test_the_steps_a_list_the_hub_a_question_the_preview_and_the_commit(chat: Chat, committed: list[str]) -> None:
    replies = await chat.send(Command("toy"))
    assert replies == (SendText("Your name?", ((Button("Cancel", press(Act.CANCEL)),),)),)
    assert texts(await chat.type("  Mei  ")) == ["Colours: -"]
    # A list opens in place, its toggles carry indexes; Back returns to the page.
    replies = await chat.press(press(Act.COLOURS))
    assert replies[0] == AnswerButton() and texts(replies) == ["Which colours?"]
    assert labels(await chat.press(pick(Flip.COLOUR, 1))) == ["red", "✓ green", "Back"]
    assert texts(await chat.press(press(Act.BACK))) == ["Colours: green"]
    assert texts(await chat.press(press(Act.NEXT))) == ["Mei loud=False note=-"]
    assert texts(await chat.press(pick(Flip.LOUD))) == ["Mei loud=True note=-"]
    # A question from the hub, and back to the hub once answered.
    assert texts(await chat.press(press(Act.NOTE))) == ["A note?"]
    assert texts(await chat.type("by noon")) == ["Mei loud=True note=by noon"]
    # Answering a first step again returns to the hub, not to the next step.
    assert texts(await chat.press(press(Act.NAME))) == ["Your new name?"]
    assert texts(await chat.type("Lan")) == ["Lan loud=True note=by noon"]
    replies = await chat.press(press(Act.PREVIEW))
    assert texts(replies) == ["As they will see it:", "LAN", "Send it?"]
    assert labels(replies) == ["Go", "Edit", "Cancel"]
    assert texts(await chat.press(press(Act.EDIT))) == ["Lan loud=True note=by noon"]
    # After Edit the old preview's button commits nothing: only what a preview showed last is committed.
    assert await chat.press(press(Act.GO)) == (AnswerButton(STALE, alert=True),)
    await chat.press(press(Act.PREVIEW))
    assert texts(await chat.press(press(Act.GO))) == ["Sent."]
    assert committed == ["Lan:True:by noon:green"]
    # The form is gone: its buttons are out of date, and typing is no longer taken as an answer.
    assert await chat.press(press(Act.GO)) == (AnswerButton(STALE, alert=True),)
    assert "Lan" not in " ".join(texts(await chat.type("Lan")))
    assert committed == ["Lan:True:by noon:green"]


async def test_a_validators_refusal_leaves_the_question_standing(chat: Chat) -> None:
    await chat.send(Command("toy"))
    assert texts(await chat.type("   ")) == [REFUSED]
    assert texts(await chat.type("x" * (MAX_TITLE + 1))) == [REFUSED]
    assert texts(await chat.type("Mei")) == ["Colours: -"]


async def test_a_preview_the_service_refuses_has_no_commit_button(chat: Chat, committed: list[str]) -> None:
    await chat.send(Command("toy"))
    await chat.type("nobody")
    await chat.press(press(Act.NEXT))
    assert labels(await chat.press(press(Act.PREVIEW))) == ["Edit", "Cancel"]


async def test_back_from_a_question_returns_to_the_hub(chat: Chat) -> None:
    await chat.send(Command("toy"))
    await chat.type("Mei")
    await chat.press(press(Act.NEXT))
    await chat.press(press(Act.NOTE))
    assert texts(await chat.press(press(Act.BACK))) == ["Mei loud=False note=-"]


async def test_stale_and_forged_buttons_change_nothing(chat: Chat, committed: list[str]) -> None:
    stale = (AnswerButton(STALE, alert=True),)
    assert await chat.press(press(Act.NEXT)) == stale  # no form at all
    await chat.send(Command("toy"))
    # Until the first steps are answered only Cancel works.
    assert await chat.press(press(Act.NEXT)) == stale
    assert await chat.press(pick(Flip.LOUD)) == stale
    await chat.type("Mei")
    assert await chat.press(pick(Flip.COLOUR, 2)) == stale  # no third colour
    assert await chat.press(press(Act.GO)) == stale  # no preview shown: nothing to commit
    await chat.press(press(Act.NEXT))
    await chat.press(press(Act.NOTE))
    assert await chat.press(press(Act.PREVIEW)) == stale  # from the hub the question replaced
    assert texts(await chat.type("ok")) == ["Mei loud=False note=ok"]
    # Someone else pressing the worker's buttons has no form of theirs.
    chen = Sender("console", CHEN.key, CHEN.key, CHEN.name, CHEN.language_code)
    assert await chat.send(ButtonPress(press(Act.GO), "9", "1"), chen) == stale
    assert committed == []
    assert texts(await chat.press(press(Act.CANCEL))) == ["Cancelled."]
    assert await chat.press(press(Act.PREVIEW)) == stale


async def test_a_resident_may_not_start_it(chat: Chat) -> None:
    chen = Sender("console", CHEN.key, CHEN.key, CHEN.name, CHEN.language_code)
    replies = await chat.send(Command("toy"), chen)
    assert texts(replies) and "Your name?" not in texts(replies)


async def test_a_restart_in_the_middle_of_the_form_carries_on(
    uows: UnitOfWorkFactory, localizers: Localizers, committed: list[str]
) -> None:
    before = Chat(uows, localizers, committed)
    await before.send(Command("toy"))
    await before.type("Mei")
    await before.press(press(Act.COLOURS))
    await before.press(pick(Flip.COLOUR, 0))
    await before.press(press(Act.BACK))
    await before.press(press(Act.NEXT))
    await before.press(press(Act.NOTE))
    after = Chat(uows, localizers, committed)  # a new process: nothing of the form in memory
    assert texts(await after.type("at six")) == ["Mei loud=False note=at six"]
    await after.press(press(Act.PREVIEW))
    assert texts(await after.press(press(Act.GO))) == ["Sent."]
    assert committed == ["Mei:False:at six:red"]
