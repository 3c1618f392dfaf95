"""The fuzz test that stays (issue 9): random sequences of events from the demo's people, on both databases,
through the real Conversation and every handler the router registers.

Each example starts from a database of its own: the demo street (a community worker, a committee member, a street
administrator, four residents and a villager, each with a phone number), four more residents of 梧桐社区, an open
consultation with votes and a statement waiting for a moderator, a notice asking for acknowledgements, a join
request and an invitation code; a newcomer (guest) and a stranger whose client sends what it likes. Then up to
EVENTS events: every registered command (and unknown ones), typed text with hostile characters, photos and
documents, contacts, and button presses with valid data (from the buttons of the replies the person received),
stale data (from earlier replies), borrowed data (from someone else's replies), forged data (a registered prefix
with random fields) and out-of-range ids. After each event:

- it raised nothing, and nothing was logged at ERROR (the dispatch boundary logs there what it caught);
- it got at most MAX_REPLIES replies;
- no reply showed a person another person's phone number, unless the reader is staff of a community where that
  person is a member or asked to join (community.permissions.SENSITIVE_FIELDS);
and after the run the audit chain verifies.

Profiles (HYPOTHESIS_PROFILE): "ci" (the default, in make test) is derandomized, so every run tries the same
examples; "fuzz" (make fuzz) tries many more, at random."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.app import build_router
from bot.callbacks import MAX_CALLBACK_BYTES, CallbackData
from bot.context import BotInfo
from bot.conversation import Conversation
from bot.events import ButtonPress, Command, ContactShared, Event, FileShared, Payload, Sender, TextInput, clean_event
from bot.handlers.invitations import REQUESTS_SHOWN
from bot.notices.fanout import fan_out
from bot.rendering import Localizers
from bot.replies import ChatRef, EditButtons, EditText, Keyboard, Reply, SendFile, SendMedia, SendText
from bot.router import RunCommand
from community.audit import verify
from community.clock import FakeClock
from community.communities import add_member, effective_roles, household
from community.db import create_engine, session_factory
from community.demo import NEWCOMER_KEY, NEWCOMER_NAME, WUTONG, seed_demo
from community.keys import SiteKey
from community.models import ChannelAccount, Community, JoinRequest, Membership, Person
from community.notices import NoticeDraft, publish
from community.people import identify
from community.permissions import may_see
from community.roles import Role, SensitiveField
from community.unit_of_work import UnitOfWorkFactory
from community.verification import create_invitation, submit_join_request
from consultation.consultations import (
    ConsultationDraft,
    VoteValue,
    add_statement,
    create,
    open_consultation,
    submit_statement,
    vote,
)
from tests.conftest import _truncate

# The longest answer to one event is /requests: a header, REQUESTS_SHOWN requests (one message each) and a line
# saying how many more wait. Fan-outs (a join request or a new statement to every moderator) reach fewer people
# than that in this world; anything longer is a loop.
MAX_REPLIES = REQUESTS_SHOWN + 2

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
SETTINGS = {
    # 40 examples of up to 25 events: about 7 s on SQLite and 16 s on PostgreSQL (where each example truncates
    # every table first) on a busy two-core machine.
    # No shrinking in CI: a failure names its event at once (shrinking a database run takes minutes); make fuzz
    # shrinks.
    "ci": settings(
        max_examples=40,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=_HEALTH,
    ),
    "fuzz": settings(max_examples=1000, deadline=None, suppress_health_check=_HEALTH),
}
EVENTS = {"ci": 25, "fuzz": 60}

CHANNEL = "console"
STRANGER = "stranger"
EXTRA_RESIDENTS = 4  # 梧桐社区 then has eight residents: a consultation's audience is not too small to exist
OUT_OF_RANGE_IDS = (2**31, 2**63, 10**30)
# Who sends the events: staff more often than residents, since they have more to press. The extra residents
# r2..r4 only hold phone numbers that must not leak.
SENDERS: tuple[str, ...] = ("worker", "worker", "committee", "committee", "street", "wang", "wang", "liu", "chen")
SENDERS += ("zhao", "r1", NEWCOMER_KEY, STRANGER)
GUEST_PHONE = "+8613700000009"


# --- the world ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Someone:
    key: str  # console account id and chat id
    name: str
    language_code: str | None
    phone: str | None


@dataclass(slots=True)
class World:
    engine: AsyncEngine
    uows: UnitOfWorkFactory
    clock: FakeClock
    conversation: Conversation
    people: dict[str, Someone]
    person_ids: dict[str, int]  # by key; the guest and the stranger once they wrote
    code: str  # a resident invitation to 梧桐社区
    current: dict[str, list[str]] = field(default_factory=dict)  # button data of the last message each got
    seen: dict[str, list[str]] = field(default_factory=dict)  # button data each ever got
    codes: list[str] = field(default_factory=list)  # invitation codes that reached anyone
    prompted: set[str] = field(default_factory=set)  # whose last message asks them to type (a Cancel button at most)


async def _fresh_engine(backend: str, template: Path, postgres_url: str, folder: Path) -> AsyncEngine:
    if backend == "sqlite":
        path = folder / f"{uuid.uuid4().hex}.sqlite3"
        shutil.copyfile(template, path)
        return create_engine(f"sqlite:///{path}")
    engine = create_engine(postgres_url)
    await _truncate(engine)
    return engine


async def _build_world(engine: AsyncEngine, localizers: Localizers) -> World:
    clock = FakeClock()
    uows = UnitOfWorkFactory(session_factory(engine), clock, SiteKey.generate())
    people: dict[str, Someone] = {}
    ids: dict[str, int] = {}
    async with uows() as uow:
        demo = await seed_demo(uow)
        for person in demo.people:
            people[person.key] = Someone(person.key, person.name, person.language_code, person.phone)
            ids[person.key] = person.person_id
        wutong = (await uow.session.exec(select(Community).where(Community.name == WUTONG))).one()
        assert wutong.id is not None
        for n in range(1, EXTRA_RESIDENTS + 1):
            key = f"r{n}"
            me = await identify(uow, channel=CHANNEL, external_id=key, chat_id=key, display_name=f"居民{n}")
            home = await household(uow, wutong.id, f"9号楼 {n}01")
            await add_member(
                uow,
                person_id=me.person_id,
                community_id=wutong.id,
                roles={Role.RESIDENT},
                household_id=home.id,
                reason="test",
            )
            people[key] = Someone(key, f"居民{n}", "zh-hans", f"+86139000000{n:02d}")
            ids[key] = me.person_id
        for key, someone in people.items():
            row = await uow.session.get(Person, ids[key])
            assert row is not None
            row.phone = someone.phone
            uow.session.add(row)
        # The guest's phone number is in the join request below: only staff of 梧桐社区 may see it.
        people[NEWCOMER_KEY] = Someone(NEWCOMER_KEY, NEWCOMER_NAME, "zh-hans", GUEST_PHONE)
        people[STRANGER] = Someone(STRANGER, "Stranger", None, None)
        await uow.commit()

    worker, now = ids["worker"], clock.now()
    async with uows() as uow:
        consultation = await create(
            uow,
            worker,
            ConsultationDraft(
                community_id=wutong.id,
                title="东门空地改造",
                background="东门空地可以改成停车位，也可以改成口袋公园。",
                language="zh_Hans",
                opens_at=now + timedelta(hours=1),
                closes_at=now + timedelta(days=7),
            ),
        )
        assert consultation.id is not None
        assert await open_consultation(uow, consultation.id, worker)
        statements = [
            await add_statement(uow, worker, consultation.id, text)
            for text in ("应改成停车位。", "应改成口袋公园。", "保留现有的树。")
        ]
        await uow.commit()
    async with uows() as uow:
        await submit_statement(uow, ids["wang"], consultation.id, "晚上停车太难了。")
        for key in ("committee", "chen", "r1"):
            for statement, value in zip(statements, VoteValue, strict=False):
                assert statement.id is not None
                await vote(uow, ids[key], statement.id, value)
        await uow.commit()
    async with uows() as uow:
        me = await identify(
            uow, channel=CHANNEL, external_id="worker", chat_id="worker", display_name=people["worker"].name
        )
        notice = await publish(
            uow, me, NoticeDraft(community_id=wutong.id, body="明天停水。", language="zh_Hans", ack_requested=True)
        )
        await fan_out(uow, localizers, notice)
        guest = await identify(uow, channel=CHANNEL, external_id=NEWCOMER_KEY, chat_id=NEWCOMER_KEY, display_name="新")
        ids[NEWCOMER_KEY] = guest.person_id
        await submit_join_request(
            uow,
            person_id=guest.person_id,
            community_id=wutong.id,
            name="新居民",
            household_label="12号楼 3单元 501",
            phone=GUEST_PHONE,
        )
        issued = await create_invitation(uow, actor_id=None, community_id=wutong.id, max_uses=3)
        await uow.commit()

    conversation = Conversation(uows, build_router(), localizers, BotInfo("linli_test_bot"))
    return World(engine, uows, clock, conversation, people, ids, issued.code, codes=[issued.code])


# --- strategies -----------------------------------------------------------------------------------------------


def hostile_values() -> list[str]:
    """Text no one should type, but someone will."""
    values = [
        "<b>bold</b> <i>x</i> <a href='javascript:alert(1)'>x</a> <script>",
        "&amp; &lt; <",
        "%(name)s %s {{ title }} {% raw %}",
        "\u202eRTL\u200f override\u200e",
        "😀👨‍👩‍👧‍👦🏳️‍🌈",
        "2026-02-30 25:61",
        "0001-01-01 00:00",
        "组" * 281,
        "a" * 4097,
        "é" * 1001,
    ]
    values += ["\x00", "a\x00b", "\ud800", "x\udfffy"]
    values += ["字" * 10_000, "x" * 10_000]
    values += ["9999-12-31 23:59", "9999-01-01", "9999-12-31"]
    return values


def hostile_text() -> st.SearchStrategy[str]:
    """What people type, from the ordinary to the hostile."""
    ordinary = [
        "",
        " ",
        "\n\n",
        "1",
        "0",
        "-1",
        "3",
        "/",
        "东门空地可以改成停车位。",
        "应改成停车位。",
        "Please fix the lights",
        "12号楼 3单元 501",
        "5组 12号",
        "王芳",
        "+8613912345678",
        "138 0000 0000",
        "2026-03-02 09:00",
        "2026-03-10",
        "03-02 9:00",
        "2026-03-01 08:59",
    ]
    alphabet = st.characters()
    return st.one_of(st.sampled_from(ordinary), st.sampled_from(hostile_values()), st.text(alphabet, max_size=40))


def field_value(kind: Any) -> st.SearchStrategy[str]:
    """A forged value for one field of callback data, as its packed text."""
    if kind is bool:
        return st.sampled_from(["0", "1", "2", ""])
    if kind is int:
        values = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "20", "0", "-1", "x", ""]
        values += [str(number) for number in (*OUT_OF_RANGE_IDS, -(2**63) - 1)]
        return st.sampled_from(values)
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return st.sampled_from([*(member.value for member in kind), "nope"])
    words = st.sampled_from(["", "start", "menu", "members", "consultations", "x", "../", "zh_Hans", "en"])
    return st.one_of(words, hostile_text().map(lambda text: text.replace(":", "")[:20]))


def forged_data(data_type: type[CallbackData]) -> st.SearchStrategy[str]:
    hints = get_type_hints(data_type)
    parts = [field_value(hints[f.name]) for f in fields(data_type)]
    return st.tuples(*parts).map(lambda values: ":".join((data_type.prefix, *values)))


def out_of_range_data(data_type: type[CallbackData]) -> st.SearchStrategy[str]:
    """Forged data whose every id is past the column's range (valid-looking otherwise)."""
    hints = get_type_hints(data_type)
    huge = st.sampled_from(OUT_OF_RANGE_IDS).map(str)
    parts = [huge if hints[f.name] is int else field_value(hints[f.name]) for f in fields(data_type)]
    return st.tuples(*parts).map(lambda values: ":".join((data_type.prefix, *values)))


def _fits(data: str) -> bool:
    """Telegram carries at most 64 bytes of callback data."""
    return 0 < len(data.encode("utf-8", "surrogatepass")) <= MAX_CALLBACK_BYTES


# What a person does next, and how often: pressing a button of the message in front of them most, so that forms
# get filled in and flows go deep; "wait" lets time pass (lockouts expire, closing times pass).
KINDS = (
    ("press", 8),
    ("press-stale", 2),
    ("press-borrowed", 2),
    ("press-forged", 3),
    ("press-out-of-range", 1),
    ("command", 4),
    ("text", 5),
    ("text-hostile", 2),
    ("file", 1),
    ("contact", 1),
    ("wait", 1),
)


KIND_CHOICES = tuple(kind for kind, weight in KINDS for _ in range(weight))
# After a prompt (a message with a Cancel button at most), typing is what the person is asked for.
PROMPTED_CHOICES = (*KIND_CHOICES, *(["text"] * 10), "text-hostile", "text-hostile", "file")


def event_payload(
    world: World, who: str, kind: str, commands: Sequence[str], types: Sequence[type[CallbackData]]
) -> st.SearchStrategy[Payload | None]:
    """The strategy for what ``who`` does next, given what they and the others were shown so far."""
    message = st.one_of(st.none(), st.integers(1, 40).map(str))
    pools = {
        "press": world.current.get(who, []),
        "press-stale": world.seen.get(who, []),
        "press-borrowed": sorted({data for key, got in world.seen.items() if key != who for data in got}),
    }
    if kind in pools:
        pool = pools[kind]
        if pool:
            return st.builds(ButtonPress, data=st.sampled_from(pool), message_id=message)
        kind = "press-forged"
    with_ids = [data_type for data_type in types if int in get_type_hints(data_type).values()]
    if kind == "press-out-of-range":
        forged = st.sampled_from(with_ids).flatmap(out_of_range_data).filter(_fits)
        return st.builds(ButtonPress, data=forged, message_id=message)
    if kind.startswith("press"):
        forged = st.sampled_from([*types, RunCommand]).flatmap(forged_data).filter(_fits)
        return st.builds(ButtonPress, data=forged, message_id=message)
    if kind == "command":
        arguments = st.one_of(st.just(""), st.sampled_from(world.codes), hostile_text())
        return st.builds(Command, name=st.sampled_from([*commands, "nosuch", "as"]), args=arguments)
    if kind == "text":
        return st.builds(TextInput, text=hostile_text())
    if kind == "text-hostile":
        return st.builds(TextInput, text=st.sampled_from(hostile_values()))
    if kind == "file":
        return st.builds(
            FileShared,
            kind=st.sampled_from(["photo", "document", "video"]),
            file_ref=st.text(max_size=10).map(lambda ref: f"console:{ref}"),
            file_name=st.one_of(st.none(), st.sampled_from(["poster.jpg", "plan.pdf", "../../etc/passwd"])),
            caption=hostile_text(),
        )
    if kind == "contact":
        return st.builds(
            ContactShared,
            phone=st.sampled_from(["+8613912345678", "13912345678", "+86 139-1234-5678", "abc", "", "+" * 40]),
            contact_account_id=st.sampled_from([who, "someone-else", None]),
        )
    return st.none()  # time passes


def stranger_sender() -> st.SearchStrategy[Sender]:
    """A client that sends what it likes as a name and a language."""
    names = st.sampled_from(["Stranger", "<b>X</b>", "😀", "\u202eevil", ""])
    languages: list[str | None] = [None, "en", "zh-hans", "zh-TW", "fr", "", "xx-yy-zz"]
    names = st.one_of(names, st.sampled_from(["a\x00b", "\ud800"]))
    names = st.one_of(names, st.just("名" * 10_000))
    languages.append("x" * 17)
    return st.builds(
        Sender,
        channel=st.just(CHANNEL),
        account_id=st.just(STRANGER),
        chat_id=st.just(STRANGER),
        display_name=names,
        language_code=st.sampled_from(languages),
    )


# --- what the checks read -------------------------------------------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _errors_logged() -> Iterator[_Errors]:
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def _texts(reply: Reply) -> list[str]:
    """Everything of a reply a person reads, files included (inside the XLSX's zip too)."""
    if isinstance(reply, SendText | EditText):
        return [reply.text]
    if isinstance(reply, SendMedia):
        return [reply.caption, reply.file_name or ""]
    if isinstance(reply, SendFile):
        texts = [reply.caption, reply.filename, reply.content.decode("utf-8", "replace")]
        if reply.content.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(reply.content)) as archive:
                texts += [archive.read(name).decode("utf-8", "replace") for name in archive.namelist()]
        return texts
    return []


def _keyboard(reply: Reply) -> Keyboard | None:
    if isinstance(reply, SendText | EditText | SendMedia | EditButtons):
        return reply.buttons
    return None


def _reader(reply: Reply, sender: str) -> str:
    to: ChatRef | None = getattr(reply, "to", None)
    return sender if to is None else to.chat_id


_NOT_DIGITS = re.compile(r"[\s\-]")


def _shows(text: str, phone: str) -> bool:
    national = phone.removeprefix("+86")
    return phone in text or national in _NOT_DIGITS.sub("", text)


async def _may_see_phone(world: World, reader: str, owner: str) -> bool:
    """Staff see the phone numbers of the members of their communities and of the people asking to join them."""
    reader_id, owner_id = world.person_ids.get(reader), world.person_ids[owner]
    if reader_id is None:
        return False
    async with world.uows() as uow:
        communities = set(
            (await uow.session.exec(select(Membership.community_id).where(Membership.person_id == owner_id))).all()
        )
        communities |= set(
            (await uow.session.exec(select(JoinRequest.community_id).where(JoinRequest.person_id == owner_id))).all()
        )
        for community_id in communities:
            if may_see(await effective_roles(uow, reader_id, community_id), SensitiveField.PHONE):
                return True
    return False


async def _note_person_id(world: World, key: str) -> None:
    """Someone's person id once their first message made them a person (it may have been refused)."""
    async with world.uows() as uow:
        found = (
            await uow.session.exec(
                select(ChannelAccount.person_id).where(
                    ChannelAccount.channel == CHANNEL, ChannelAccount.external_id == key
                )
            )
        ).first()
    if found is not None:
        world.person_ids[key] = found


_DEEP_LINK = re.compile(r"start=([A-Za-z0-9_-]+)")


async def _check_replies(world: World, sender: str, replies: Sequence[Reply], step: str) -> None:
    assert len(replies) <= MAX_REPLIES, f"{len(replies)} replies to {step}"
    for reply in replies:
        reader = _reader(reply, sender)
        texts = _texts(reply)
        for other, someone in world.people.items():
            if other == reader or someone.phone is None:
                continue
            if any(_shows(text, someone.phone) for text in texts):
                assert await _may_see_phone(world, reader, other), f"{reader} was shown {other}'s phone after {step}"
        world.codes.extend(code for text in texts for code in _DEEP_LINK.findall(text))
        keyboard = _keyboard(reply)
        if keyboard is None:
            continue
        shown = [button.data for row in keyboard for button in row if button.data is not None]
        world.current[reader] = shown
        if len(shown) <= 1 and not isinstance(reply, EditButtons):
            world.prompted.add(reader)
        else:
            world.prompted.discard(reader)
        world.seen.setdefault(reader, []).extend(data for data in shown if data not in world.seen[reader])


# --- the test -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@SETTINGS[PROFILE]
@given(data=st.data())
async def test_random_events_from_everyone_never_crash_leak_or_break_the_audit_chain(
    backend: str,
    data: st.DataObject,
    sqlite_template: Path,
    postgres_url: str,
    localizers: Localizers,
    fuzz_dir: Path,
) -> None:
    engine = await _fresh_engine(backend, sqlite_template, postgres_url, fuzz_dir)
    try:
        world = await _build_world(engine, localizers)
        router = world.conversation.router
        commands, types = router.command_names, router.button_types
        who = "worker"
        with _errors_logged() as errors:
            for number in range(data.draw(st.integers(1, EVENTS[PROFILE]), label="events")):
                # Mostly the same person again (three in four), so forms get filled in; sometimes someone else.
                who = data.draw(st.sampled_from([who] * 3 * len(SENDERS) + list(SENDERS)), label="who")
                choices = PROMPTED_CHOICES if who in world.prompted else KIND_CHOICES
                kind = data.draw(st.sampled_from(choices), label="kind")
                payload = data.draw(event_payload(world, who, kind, commands, types), label=f"{who} does")
                if payload is None:
                    world.clock.advance(timedelta(minutes=data.draw(st.sampled_from([1, 16, 60 * 24 * 8]))))
                    continue
                someone = world.people[who]
                sender = (
                    data.draw(stranger_sender(), label="client")
                    if who == STRANGER
                    else Sender(CHANNEL, who, who, someone.name, someone.language_code)
                )
                step = f"event {number + 1}: {who} {payload!r}"[:300]
                # Cleaned as every channel cleans what it receives (bot.events.clean_event), then handled.
                replies = await world.conversation.handle(clean_event(Event(sender, payload)))
                assert not errors.records, f"{step} logged: {errors.records[0].getMessage()}"
                if who not in world.person_ids:
                    await _note_person_id(world, who)
                await _check_replies(world, who, replies, step)
        async with world.uows() as uow:
            report = await verify(uow)
        assert report.ok, f"the audit chain broke at entry {report.first_broken_id}: {report.problem}"
    finally:
        await engine.dispose()
