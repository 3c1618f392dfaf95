"""Every screen, as every role: no one is shown a sensitive field their roles may not see (issue 10, "Viewer-masked
data"; DESIGN, "Privacy and integrity").

The world is the demo with 李娜's open consultation for 梧桐社区 (tests/support/demo_consultation), a statement
waiting for a moderator, a notice, everyone of the demo holding a phone number, 吴强 a party member, and a join
request from someone outside with their phone number. Then each viewer (a stranger, that applicant, a resident, a
household representative, a villager of another community, a committee member, the community worker and the street
administrator above them) runs every command the router registers and presses, breadth first and a few levels
deep, every button those screens show them: exports (the files' text) included. The registered commands and the
buttons on screen drive it, so a new command or button is covered without a change here. Messages to other people
go through the outbox (uow.notify: join requests to the workers, decisions, moderation, invitations, notices), so
every outbox row is read too, as it is after each step (a copy rewritten in place is read in each version), with
its buttons' labels, and counted as a screen of the person it is for. (Checked by hand: _tell_staff sending the
number to the committee too fails here, and passed when only the chat's replies were read.)

Checked: the phone numbers of other people and the label of party membership appear on no screen for a viewer whose
roles do not unlock them (community.permissions.SENSITIVE_FIELDS), whoever the message is for; and they do appear
for those whose roles do (the applicant's number to the worker and the street administrator, 吴强's number and party
membership in the worker's members list), so masking too much fails as well. A second test moves the phone
number to another action in the kernel's table alone, and the screens follow: no handler decides."""

from __future__ import annotations

import io
import re
import zipfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from sqlmodel import col, select

import community.permissions
from bot.app import build_router
from bot.context import BotInfo
from bot.conversation import Conversation
from bot.events import ButtonPress, Command, Event, Payload, Sender, TextInput
from bot.handlers.privacy import ForgetChoice
from bot.labels import role_label
from bot.rendering import Localizers
from bot.replies import AnswerButton, ChatRef, EditButtons, EditText, Keyboard, Reply, SendFile, SendMedia, SendText
from community.clock import FakeClock
from community.communities import grant_role
from community.demo import demo_people
from community.models import Person
from community.notice_messages import fan_out
from community.notice_models import OutboxMessage
from community.notices import NoticeDraft, publish
from community.outbox import buttons_from_json
from community.people import identify
from community.roles import Action, Role, SensitiveField
from community.unit_of_work import UnitOfWorkFactory
from community.verification import submit_join_request
from community.viewers import viewer_in
from consultation.moderation import submit_statement
from tests.support.demo_consultation import demo_consultation

CHANNEL = "console"
APPLICANT = "applicant"  # asks to join 梧桐社区 with their phone number; never at the terminal here
APPLICANT_PHONE = "+8613700000042"
PARTY_MEMBER = "wu"  # 吴强, resident of 梧桐社区
STRANGER = "stranger"  # writes for the first time


@dataclass(frozen=True, slots=True)
class Someone:
    key: str
    name: str
    language_code: str | None
    sees_sensitive: bool  # what the design says; the test checks the kernel agrees


# Who is at the terminal. The worker and the street administrator above 梧桐社区 need phone numbers for their work;
# the committee member lists the members but sees neither phone numbers nor party membership.
VIEWERS: tuple[Someone, ...] = (
    Someone(STRANGER, "Stranger", None, sees_sensitive=False),
    Someone(APPLICANT, "申请人", "zh-hans", sees_sensitive=False),  # waits for an answer to their join request
    Someone("liu", "刘洋", "zh-hans", sees_sensitive=False),  # resident
    Someone("wang", "王芳", "zh-hans", sees_sensitive=False),  # household representative
    Someone("zhao", "赵大山", "zh-hans", sees_sensitive=False),  # villager of 稻香村
    Someone("committee", "张伟", "zh-hans", sees_sensitive=False),  # residents' committee member
    Someone("worker", "李娜", "en", sees_sensitive=True),  # community worker
    Someone("street", "周敏", "zh-hans", sees_sensitive=True),  # street administrator
)

MAX_DEPTH = 4  # presses and typed answers below a command's screen
TYPED = "Water is off tomorrow from 9 to 12."  # what the crawl types where a form asks for text
MAX_EVENTS = 400  # per viewer: a guard against a loop of screens, far above what the crawl needs
# Buttons the crawl never presses: erasing the viewer would end the story for the screens after it.
NEVER_PRESSED = (ForgetChoice.prefix,)


@dataclass(slots=True)
class World:
    uows: UnitOfWorkFactory
    conversation: Conversation
    phones: dict[str, str]  # console key -> phone number, of everyone who has one
    party_labels: tuple[str, ...]  # how a screen names party membership, in every language
    community_id: int
    person_ids: dict[str, int]


@dataclass(slots=True)
class Seen:
    """What the crawl showed each reader: (reader key, text, the step that showed it)."""

    screens: list[tuple[str, str, str]] = field(default_factory=list)
    events: int = 0
    outbox: set[tuple[int, str]] = field(default_factory=set)  # (row id, text) read already


async def _world(uows: UnitOfWorkFactory, clock: FakeClock, localizers: Localizers) -> World:
    consultation = await demo_consultation(
        uows,
        clock,
        title="The east gate plot",
        background="Parking spaces or a pocket park?",
        statements=("Make it parking.", "Make it a pocket park."),
    )
    phones: dict[str, str] = {}
    async with uows() as uow:
        people = await demo_people(uow)
        ids = {person.key: person.person_id for person in people}
        for person in people:
            row = await uow.session.get(Person, person.person_id)
            assert row is not None
            if person.phone is not None:
                row.phone = phones[person.key] = person.phone
            uow.session.add(row)
        await grant_role(
            uow, person_id=ids[PARTY_MEMBER], community_id=consultation.community_id, role=Role.PARTY_MEMBER
        )
        applicant = await identify(
            uow, channel=CHANNEL, external_id=APPLICANT, chat_id=APPLICANT, display_name="申请人"
        )
        ids[APPLICANT] = applicant.person_id
        await submit_join_request(
            uow,
            person_id=applicant.person_id,
            community_id=consultation.community_id,
            name="申请人",
            household_label="9号楼 1单元 101",
            phone=APPLICANT_PHONE,
        )
        phones[APPLICANT] = APPLICANT_PHONE
        await uow.commit()
    async with uows() as uow:
        # As a resident submits it: the moderators are told through the outbox.
        await submit_statement(uow, ids["wang"], consultation.consultation_id, "Evenings are hard for parking.")
        worker = await identify(uow, channel=CHANNEL, external_id="worker", chat_id="worker", display_name="李娜")
        notice = await publish(
            uow, worker, NoticeDraft(community_id=consultation.community_id, body="No water tomorrow.", language="en")
        )
        await fan_out(uow, notice)
        await uow.commit()
    labels = tuple(role_label(localizers.get(language), Role.PARTY_MEMBER) for language in ("en", "zh_Hans"))
    conversation = Conversation(uows, build_router(), localizers, BotInfo("linli_test_bot"))
    return World(uows, conversation, phones, labels, consultation.community_id, ids)


def _texts(reply: Reply) -> list[str]:
    """Everything of a reply a person reads, the files' content included (inside an XLSX's zip too)."""
    if isinstance(reply, SendText | EditText):
        return [reply.text]
    if isinstance(reply, AnswerButton):
        return [reply.text or ""]
    if isinstance(reply, SendMedia):
        return [reply.caption, reply.file_name or ""]
    if isinstance(reply, SendFile):
        texts = [reply.caption, reply.filename, reply.content.decode("utf-8", "replace")]
        if reply.content.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(reply.content)) as archive:
                texts += [archive.read(name).decode("utf-8", "replace") for name in archive.namelist()]
        return texts
    return []


async def _read_outbox(world: World, seen: Seen, step: str) -> None:
    """The outbox rows (new ones, and old ones whose text changed) as screens of the person each is for: their
    console chat, the same key as the crawl's senders."""
    async with world.uows() as uow:
        rows = (await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    for row in rows:
        assert row.id is not None
        labels = [button.label for line in buttons_from_json(row.buttons) for button in line]
        shown = "\n".join([row.text, row.file_name or "", *labels])
        if (row.id, shown) in seen.outbox:
            continue
        seen.outbox.add((row.id, shown))
        reader = row.chat_id if row.channel == CHANNEL else f"{row.channel}:{row.chat_id}"
        seen.screens.append((reader, shown, f"outbox #{row.id} after {step}"))


def _buttons(reply: Reply) -> Keyboard:
    if isinstance(reply, SendText | EditText | SendMedia | EditButtons):
        return reply.buttons
    return ()


def _reader(reply: Reply, sender: str) -> str:
    to: ChatRef | None = getattr(reply, "to", None)
    return sender if to is None else to.chat_id


_SEPARATORS = re.compile(r"[\s\-]")


def _shows_phone(text: str, phone: str) -> bool:
    """The number as stored, or its national digits however spaced."""
    return phone in text or phone.removeprefix("+86") in _SEPARATORS.sub("", text)


def _shows_party_membership(text: str, labels: Sequence[str]) -> bool:
    return any(label.casefold() in text.casefold() for label in labels)


async def _crawl(world: World, viewer: Someone, commands: Sequence[str] | None = None) -> Seen:
    """Every command (or these), each followed breadth first by every button its screens show that was not pressed
    yet, MAX_DEPTH steps deep; a prompt (a last message with a Cancel button at most) gets TYPED at once, so forms
    go on to their next screens."""
    seen = Seen()
    sender = Sender(CHANNEL, viewer.key, viewer.key, viewer.name, viewer.language_code)
    # Each button and each prompt once for the viewer: a menu's buttons run the same commands as typing them.
    pressed: set[str] = set()
    answered: set[str] = set()
    await _read_outbox(world, seen, "the world was made")
    for name in world.conversation.router.command_names if commands is None else commands:
        queue: deque[tuple[Payload, int, str]] = deque([(Command(name), 0, f"/{name}")])
        while queue and seen.events < MAX_EVENTS:
            payload, depth, step = queue.popleft()
            seen.events += 1
            replies = await world.conversation.handle(Event(sender, payload))
            await _read_outbox(world, seen, step)
            for reply in replies:
                reader = _reader(reply, viewer.key)
                seen.screens.extend((reader, text, step) for text in _texts(reply) if text)
                if reader != viewer.key or depth >= MAX_DEPTH:
                    continue
                for row in _buttons(reply):
                    for button in row:
                        data = button.data
                        if data is None or data in pressed or data.startswith(NEVER_PRESSED):
                            continue
                        pressed.add(data)
                        press = ButtonPress(data, message_id=str(seen.events))
                        queue.append((press, depth + 1, f"{step} > {button.label}"))
            last = replies[-1] if replies else None
            prompt = isinstance(last, SendText) and last.to is None and sum(map(len, last.buttons)) <= 1
            if prompt and isinstance(last, SendText) and depth < MAX_DEPTH and last.text not in answered:
                answered.add(last.text)
                # Answered before the presses waiting in the queue, while the form still expects it.
                queue.appendleft((TextInput(TYPED), depth + 1, f"{step} > (typed)"))
    assert seen.events < MAX_EVENTS, f"the crawl as {viewer.key} did not end: a loop of screens?"
    return seen


def _sees_sensitive(reader: str) -> bool:
    return any(viewer.sees_sensitive for viewer in VIEWERS if viewer.key == reader)


def _leaks(world: World, seen: Seen) -> list[str]:
    """Each screen that shows someone a field their roles may not see."""
    found = []
    for reader, text, step in seen.screens:
        if _sees_sensitive(reader):
            continue
        for owner, phone in world.phones.items():
            if owner != reader and _shows_phone(text, phone):
                found.append(f"{reader} was shown {owner}'s phone number after {step}")
        if reader != PARTY_MEMBER and _shows_party_membership(text, world.party_labels):
            found.append(f"{reader} was shown party membership after {step}")
    return found


def _shown_to(seen: Seen, reader: str, fragment: str) -> bool:
    return any(who == reader and _shows_phone(text, fragment) for who, text, _ in seen.screens)


@pytest.mark.parametrize("viewer", VIEWERS, ids=[viewer.key for viewer in VIEWERS])
async def test_no_screen_shows_a_role_a_field_it_may_not_see(
    viewer: Someone, uows: UnitOfWorkFactory, clock: FakeClock, localizers: Localizers
) -> None:
    world = await _world(uows, clock, localizers)
    if viewer.key in world.person_ids:
        async with uows() as uow:
            kernel = await viewer_in(uow, world.person_ids[viewer.key], world.community_id)
        assert kernel.sees(SensitiveField.PHONE) is viewer.sees_sensitive
        assert kernel.sees(SensitiveField.PARTY_MEMBERSHIP) is viewer.sees_sensitive

    seen = await _crawl(world, viewer)

    assert _leaks(world, seen) == []
    if viewer.sees_sensitive:
        # Masking too much fails too: the join requests show the applicant's number, and the worker's members list
        # 吴强's number and party membership (a street administrator's /members is the street's own list).
        assert _shown_to(seen, viewer.key, APPLICANT_PHONE)
        # The outbox is read: the copy of the join request sent to them shows the number as well.
        assert any(
            who == viewer.key and step.startswith("outbox") and _shows_phone(text, APPLICANT_PHONE)
            for who, text, step in seen.screens
        )
    if viewer.key == "committee":
        # The outbox is read for those who see no numbers too: the statement waiting for a moderator reached them.
        assert any(
            who == viewer.key and step.startswith("outbox") and "Evenings are hard" in text
            for who, text, step in seen.screens
        )
    if viewer.key == "worker":
        assert _shown_to(seen, viewer.key, world.phones[PARTY_MEMBER])
        assert any(
            who == viewer.key and _shows_party_membership(text, world.party_labels) for who, text, _ in seen.screens
        )
    if viewer.key == "committee":
        # The committee member does reach the members list: what it leaves out is masked, not out of reach.
        assert any(who == viewer.key and "吴强" in text for who, text, _ in seen.screens)


@pytest.mark.parametrize("key", ["worker", "street"])
async def test_the_screens_follow_the_kernels_table_alone(
    key: str, uows: UnitOfWorkFactory, clock: FakeClock, localizers: Localizers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Phone numbers moved, in the kernel's table only, to an action the street administrator holds and the worker
    does not: the worker's screens lose them, the street administrator's keep them."""
    fields = dict(community.permissions.SENSITIVE_FIELDS)
    fields[SensitiveField.PHONE] = Action.ADD_COMMUNITY
    monkeypatch.setattr(community.permissions, "SENSITIVE_FIELDS", fields)
    world = await _world(uows, clock, localizers)
    viewer = next(v for v in VIEWERS if v.key == key)
    seen = await _crawl(world, viewer, ("members", "requests"))
    mine = [text for who, text, _ in seen.screens if who == key]
    if key == "street":
        assert any(_shows_phone(text, APPLICANT_PHONE) for text in mine)
        return
    assert not any(_shows_phone(text, phone) for text in mine for owner, phone in world.phones.items() if owner != key)
    # Party membership is still unlocked for the worker: only the phone number moved.
    assert any("吴强" in text and _shows_party_membership(text, world.party_labels) for text in mine)
