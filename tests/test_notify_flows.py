"""Messages to other people go through the outbox (community.notify), on both databases: the join request to the
workers, the decision to the requester, the moderation request to the moderators and the decision to the author.

Told as what each person's chat receives from the delivery engine: a requester on another channel than the
worker still hears the decision; a process that dies right after the commit, before anything was sent, loses
nothing (the next sender delivers it); when one moderator (or worker) decides, the others' copies of the request
change to say who decided and how; and an account that blocked the bot is not written to again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.consultations.cards import ModerateStatement, Verdict
from bot.conversation import Conversation
from bot.delivery.sender import Sender as DeliverySender
from bot.delivery.sender import SenderOptions
from bot.delivery.transport import Delivered, Refused, SendResult, Unreachable
from bot.events import ButtonPress, Command, Event, Sender, TextInput
from bot.handlers.join import DecideJoin, FormAction, JoinForm
from bot.handlers.start import StartWay, Way
from bot.html import html_to_plain
from bot.rendering import Localizer
from community import outbox
from community.anonymity import Anonymity
from community.clock import FakeClock
from community.communities import add_community, add_member
from community.models import ChannelAccount
from community.notice_models import DeliveryStatus, OutboxMessage
from community.notify import Recipient, Rendered
from community.outbox import OutboxButton, buttons_from_json
from community.people import identify
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from consultation import moderation
from consultation.consultations import submit_statement
from tests.support.demo_consultation import demo_consultation

COMMUNITY = "康乐社区"
HOME = "12号楼 3单元 501"


@pytest.fixture
def anonymity() -> Anonymity:
    return Anonymity(min_group_size=2)


@dataclass
class Chats:
    """A channel's transport that records what each chat received, as the people there would read it; chats in
    ``blocked`` answer as Telegram does for a person who blocked the bot."""

    channel: str
    messages: dict[str, list[str]] = field(default_factory=dict)  # chat -> texts, in order
    edits: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # chat -> (message id, new text)
    buttons: dict[str, list[tuple[tuple[OutboxButton, ...], ...]]] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)  # chats the channel refuses a message for (a 400)
    attempts: dict[str, int] = field(default_factory=dict)

    async def send(self, message: OutboxMessage) -> SendResult:
        self.attempts[message.chat_id] = self.attempts.get(message.chat_id, 0) + 1
        if message.chat_id in self.blocked:
            return Unreachable("Forbidden: bot was blocked by the user")
        if message.chat_id in self.refused:
            return Refused("Bad Request: message is too long")
        texts = self.messages.setdefault(message.chat_id, [])
        texts.append(html_to_plain(message.text))
        self.buttons.setdefault(message.chat_id, []).append(buttons_from_json(message.buttons))
        return Delivered(f"{message.chat_id}/{len(texts)}")

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: tuple[tuple[OutboxButton, ...], ...] = ()
    ) -> SendResult:
        self.edits.setdefault(chat_id, []).append((message_id, html_to_plain(text)))
        return Delivered(message_id)


async def deliver(uows: UnitOfWorkFactory, *channels: Chats) -> None:
    """A sender (as `linli run` or `linli deliver` runs it, freshly started) until nothing is due."""
    options = SenderOptions(rate=1000.0, flush_interval=0.01)
    await DeliverySender(uows, {chats.channel: chats for chats in channels}, options).run(until_idle=True)


def person(channel: str, key: str, name: str, language: str) -> Sender:
    return Sender(channel, key, key, name, language)


async def say(conversation: Conversation, who: Sender, *payloads: object) -> None:
    """What the person does in their own chat; the answers to their own chat are not what these tests are about
    (and a process that died after the commit never showed them)."""
    for payload in payloads:
        await conversation.handle(Event(who, payload))  # type: ignore[arg-type]


LI_NA = person("console", "li-na", "李娜", "zh-hans")  # worker on the console
ZHOU = person("telegram", "7002", "Zhou Min", "en")  # worker on Telegram
APPLICANT = person("telegram", "7001", "Wang Fang", "en")  # asks to join from Telegram


@pytest.fixture
async def community_id(uows: UnitOfWorkFactory) -> int:
    """康乐社区 with two community workers: 李娜 on the console, Zhou Min on Telegram."""
    async with uows() as uow:
        community = await add_community(uow, name=COMMUNITY, kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        for worker in (LI_NA, ZHOU):
            me = await identify(
                uow,
                channel=worker.channel,
                external_id=worker.account_id,
                chat_id=worker.chat_id,
                display_name=worker.display_name,
                language_code=worker.language_code,
            )
            await add_member(
                uow, person_id=me.person_id, community_id=community.id, roles={Role.COMMUNITY_WORKER}, reason="test"
            )
        await uow.commit()
    return community.id


async def ask_to_join(conversation: Conversation, who: Sender = APPLICANT, name: str = "王芳") -> None:
    await say(
        conversation,
        who,
        Command("start", ""),
        ButtonPress(StartWay(Way.ASK).pack()),
        TextInput(name),
        TextInput(HOME),
        ButtonPress(JoinForm(FormAction.SKIP_PHONE).pack()),
        ButtonPress(JoinForm(FormAction.SUBMIT).pack()),
    )


async def test_a_requester_on_another_channel_hears_the_decision_and_the_other_workers_copy_changes(
    conversation: Conversation, uows: UnitOfWorkFactory, community_id: int, zh: Localizer
) -> None:
    console, telegram = Chats("console"), Chats("telegram")
    await ask_to_join(conversation)
    await deliver(uows, console, telegram)

    # Both workers get the request, each on their own channel and in their own language, with the buttons.
    (to_li_na,) = console.messages["li-na"]
    assert to_li_na.startswith(zh.text("Request to join %(community)s", community=COMMUNITY))
    (to_zhou,) = telegram.messages["7002"]
    assert to_zhou.startswith(f"Request to join {COMMUNITY}") and "Name: 王芳" in to_zhou
    assert [b.label for b in telegram.buttons["7002"][0][0]] == ["✅ Approve", "❌ Reject"]

    # 李娜 approves on the console, under her copy.
    approve = ButtonPress(DecideJoin(1, approve=True).pack(), message_id="li-na/1")
    await say(conversation, LI_NA, approve)
    await deliver(uows, console, telegram)

    # The requester, on Telegram, is told (the Telegram adapter used to drop a reply addressed to a console
    # worker's chat and the other way round; the outbox row goes out through its own channel's process).
    assert telegram.messages["7001"][-1].splitlines()[:2] == [
        f"Welcome to {COMMUNITY}!",
        "A community worker approved your request to join.",
    ]
    # Zhou Min's copy now says who decided, and how; 李娜's own copy is left to her chat's reply.
    ((message_id, text),) = telegram.edits["7002"]
    assert message_id == "7002/1" and text.endswith("✅ Approved by 李娜.")
    assert "li-na" not in console.edits


async def test_a_process_that_dies_after_the_commit_loses_no_message(
    conversation: Conversation, uows: UnitOfWorkFactory, community_id: int
) -> None:
    # The request is committed and the process dies before anything is sent: the channel never got to send the
    # replies (say() drops them), and no sender ran.
    await ask_to_join(conversation)
    async with uows() as uow:
        waiting = (await uow.session.exec(select(OutboxMessage.chat_id, OutboxMessage.status))).all()
    assert sorted(waiting) == [("7002", DeliveryStatus.QUEUED), ("li-na", DeliveryStatus.QUEUED)]

    # After the restart, the sender delivers what the dead process committed, once.
    console, telegram = Chats("console"), Chats("telegram")
    await deliver(uows, console, telegram)
    await deliver(uows, console, telegram)
    assert len(console.messages["li-na"]) == 1 and len(telegram.messages["7002"]) == 1

    # The same for the decision: committed, then the crash; the next sender tells the requester.
    await say(conversation, ZHOU, ButtonPress(DecideJoin(1, approve=True).pack(), message_id="7002/1"))
    await deliver(uows, console, telegram)
    assert telegram.messages["7001"][-1].startswith(f"Welcome to {COMMUNITY}!")


async def test_a_copy_not_sent_yet_is_sent_already_decided(
    conversation: Conversation, uows: UnitOfWorkFactory, community_id: int
) -> None:
    # The console process is down: 李娜's copy waits. Zhou Min decides on Telegram meanwhile.
    telegram = Chats("telegram")
    await ask_to_join(conversation)
    await deliver(uows, telegram)
    await say(conversation, ZHOU, ButtonPress(DecideJoin(1, approve=True).pack(), message_id="7002/1"))
    await deliver(uows, telegram)
    assert "7002" not in telegram.edits  # the tapped copy is his chat's own reply's to change

    # When the console comes back, 李娜 gets the request as it stands now: decided, by whom, no buttons.
    console = Chats("console")
    await deliver(uows, console)
    (text,) = console.messages["li-na"]
    assert text.endswith("✅ Zhou Min 已通过。") and console.buttons["li-na"] == [()]
    assert console.edits == {}


async def test_an_account_that_blocked_the_bot_is_skipped(
    conversation: Conversation, uows: UnitOfWorkFactory, community_id: int
) -> None:
    console, telegram = Chats("console"), Chats("telegram", blocked={"7002"})
    await ask_to_join(conversation)
    await deliver(uows, console, telegram)
    assert telegram.attempts == {"7002": 1} and len(console.messages["li-na"]) == 1
    async with uows() as uow:
        account = (await uow.session.exec(select(ChannelAccount).where(ChannelAccount.chat_id == "7002"))).one()
    assert account.unreachable_since is not None

    # A second request: 李娜 gets it; Zhou Min's account is not tried again, its row ends as unreachable.
    await ask_to_join(conversation, person("telegram", "7003", "Chen Xiao", "en"), "陈晓")
    await deliver(uows, console, telegram)
    assert telegram.attempts == {"7002": 1} and len(console.messages["li-na"]) == 2
    async with uows() as uow:
        statuses = (
            await uow.session.exec(
                select(OutboxMessage.status).where(OutboxMessage.chat_id == "7002").order_by(col(OutboxMessage.id))
            )
        ).all()
    assert statuses == [DeliveryStatus.UNREACHABLE, DeliveryStatus.UNREACHABLE]


async def test_one_moderator_decides_the_other_moderators_copies_change_and_the_author_is_told(
    conversation: Conversation, uows: UnitOfWorkFactory, clock: FakeClock, zh: Localizer
) -> None:
    made = await demo_consultation(
        uows, clock, title="A bicycle shed?", background="Part of the lawn.", statements=("A shed keeps bikes dry.",)
    )
    async with uows() as uow:  # 陈晓 of the demo adds a statement; the consultation is moderated
        me = await identify(uow, channel="console", external_id="chen", chat_id="chen", display_name="陈晓")
        statement = await moderation.submit_statement(uow, me.person_id, made.consultation_id, "Ask the neighbours.")
        await uow.commit()
    assert statement.id is not None
    console = Chats("console")
    await deliver(uows, console)

    # Every moderator of 梧桐社区 got the statement with Approve / Reject: 李娜, 张伟, and 周敏 from the street.
    moderators = ("worker", "committee", "street")
    for chat in moderators:
        assert "Ask the neighbours." in console.messages[chat][0]
        assert len(console.buttons[chat][0][0]) == 2

    # 张伟 approves under his copy; the two others' copies change to say so; 陈晓 is told.
    tapped = f"committee/{len(console.messages['committee'])}"
    approve = ButtonPress(ModerateStatement(statement.id, Verdict.APPROVE).pack(), message_id=tapped)
    await say(conversation, person("console", "committee", "张伟", "zh-hans"), approve)
    await deliver(uows, console)
    decided = zh.text("✅ Approved by %(name)s: participants now vote on it.", name="张伟")  # they read Chinese
    for chat in ("worker", "street"):
        ((message_id, text),) = console.edits[chat]
        assert message_id == f"{chat}/1" and text.endswith(decided)
    assert "committee" not in console.edits
    assert console.messages["chen"][-1].startswith("Your statement in “A bicycle shed?” is published")


async def test_a_statement_submitted_through_the_service_alone_tells_no_one(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """The plain service (consultation.consultations.submit_statement) only stores; the use case tells."""
    made = await demo_consultation(uows, clock, title="T", background="B", statements=("S",))
    async with uows() as uow:
        me = await identify(uow, channel="console", external_id="chen", chat_id="chen", display_name="陈晓")
        await submit_statement(uow, me.person_id, made.consultation_id, "Ask the neighbours.")
        await uow.commit()
    async with uows() as uow:
        assert (await uow.session.exec(select(OutboxMessage))).all() == []


# --- editing a copy that is still on its way, or never arrived -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Note:
    """A toy notification for the kernel's own tests."""

    text: str


def note_renderers(uows: UnitOfWorkFactory) -> None:
    uows.renderers.register(Note, lambda note, reader: Rendered(f"[{reader.language}] {note.text}"))


async def test_an_edit_waits_for_the_copy_on_the_wire_and_is_dropped_when_the_copy_never_arrived(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    note_renderers(uows)
    to = [Recipient(None, None, "console", chat, "en") for chat in ("a", "b")]
    async with uows() as uow:
        assert await uow.notify(to, Note("waiting"), topic="toy:1") == 2
        await uow.commit()
    # A sender takes both copies and dies with them on the wire: their leases run for 30 s.
    async with uows() as uow:
        now = clock.now()
        assert len(await outbox.claim(uow, "dead", now, 10, now + timedelta(seconds=30), ["console"])) == 2
        await uow.commit()
    async with uows() as uow:
        assert await uow.edit_notified("toy:1", Note("decided")) == 2  # one edit row per copy
        await uow.commit()

    # The edits are not sent before their copies: they wait (no attempt used), the copies still on the wire.
    console = Chats("console")
    await deliver(uows, console)
    assert console.edits == {} and console.messages == {}

    # The lease runs out; the channel refuses chat "b" its copy. "a" gets its copy, then the edit of it; "b" never
    # got its copy, so its edit is dropped rather than sent.
    console.refused.add("b")
    clock.advance(timedelta(seconds=31))
    await deliver(uows, console)
    clock.advance(timedelta(seconds=3))
    await deliver(uows, console)
    assert console.messages == {"a": ["[en] waiting"]}
    assert console.edits == {"a": [("a/1", "[en] decided")]}
    async with uows() as uow:
        rows = (await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    assert [(row.chat_id, row.edit_of is not None, row.status) for row in rows] == [
        ("a", False, DeliveryStatus.SENT),
        ("b", False, DeliveryStatus.FAILED),
        ("a", True, DeliveryStatus.SENT),
        ("b", True, DeliveryStatus.CANCELLED),
    ]
