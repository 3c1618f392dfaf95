"""A consultation on Telegram, end to end: the real router and handlers behind the aiogram adapter, over real
HTTP against the fake Bot API, on SQLite and on PostgreSQL.

A resident opens the consultation from /consult, votes with callback queries and sees the card edited in place
into the next statement; she adds a statement, the community worker gets it with Approve / Reject, approves it in
one tap (her message edited to show the decision), the author is told, and a neighbour then votes on it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.consultations.buttons import OpenConsultation
from bot.consultations.cards import CastVote, Choice, ConsultStep, ModerateStatement, Step, Verdict
from bot.delivery.sender import Sender
from bot.rendering import Localizer
from community.anonymity import Anonymity
from community.clock import FakeClock
from community.communities import add_community
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import ConsultationDraft, add_statement, create, open_consultation
from tests.support.fake_bot_api import FakeBotApi
from tests.support.telegram import TelegramUser, callback_data, labels, member_on_telegram, seen

pytestmark = pytest.mark.e2e

COMMUNITY = "康乐社区"
LI_NA = 4001  # community worker, reads Chinese
WANG_FANG = 4002  # resident, reads Chinese
CHEN_XIAO = 4003  # resident, reads English

TITLE = "楼下空地改成自行车棚？"
BACKGROUND = "居委会想听听大家的意见：<空地> 一部分改建为有顶棚的车棚 & 车架。"
SEEDED = ("车棚能让自行车不淋雨。", "空地比车棚更重要。")
WANG_SAYS = "先征求一楼住户的意见。"


@pytest.fixture
def anonymity() -> Anonymity:
    """Two residents, fewer than the default k = 5: this is about Telegram's side of taking part, so k = 2
    (test_consultation_anonymity holds k itself)."""
    return Anonymity(min_group_size=2)


@pytest.fixture
async def consultation_id(uows: UnitOfWorkFactory, clock: FakeClock) -> int:
    """康乐社区 with 李娜 (worker) and two residents on Telegram; 李娜's consultation, open, two statements."""
    async with uows() as uow:
        community = await add_community(uow, name=COMMUNITY, kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        people = (
            (LI_NA, "李娜", "zh-hans", None, {Role.COMMUNITY_WORKER}),
            (WANG_FANG, "王芳", "zh-hans", "3号楼 2单元 501", {Role.RESIDENT}),
            (CHEN_XIAO, "Chen Xiao", "en", "3号楼 1单元 302", {Role.RESIDENT}),
        )
        ids: dict[int, int] = {}
        for user_id, name, language, home, roles in people:
            ids[user_id] = await member_on_telegram(uow, community.id, user_id, name, language, roles, home=home)
        consultation = await create(
            uow,
            ids[LI_NA],
            ConsultationDraft(
                community_id=community.id,
                title=TITLE,
                background=BACKGROUND,
                language="zh_Hans",
                opens_at=clock.now(),
                closes_at=clock.now() + timedelta(days=3),
            ),
        )
        assert consultation.id is not None
        for text in SEEDED:
            await add_statement(uow, ids[LI_NA], consultation.id, text)
        await open_consultation(uow, consultation.id)
        await uow.commit()
    return consultation.id


async def test_a_resident_votes_in_place_adds_a_statement_and_the_worker_approves_it(
    telegram: FakeBotApi, telegram_delivery: Sender, consultation_id: int, zh: Localizer
) -> None:
    li_na = TelegramUser(telegram, LI_NA, "李娜", "zh-hans")
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    chen = TelegramUser(telegram, CHEN_XIAO, "Chen Xiao", "en")

    # /consult lists it; a tap opens it: the background, escaped as typed, then the first card.
    wang.sends("/consult")
    (listing,) = await wang.receives(1)
    assert seen(listing).splitlines()[0] == zh.label("Consultations open for you")
    assert callback_data(listing) == [OpenConsultation(consultation_id).pack()]
    wang.taps(listing, OpenConsultation(consultation_id).pack())
    intro, card = await wang.receives(2)
    assert BACKGROUND in seen(intro).splitlines()
    assert seen(card).splitlines()[2] == SEEDED[0]
    first, second = (CastVote(sid, Choice.AGREE).pack() for sid in (1, 2))
    assert callback_data(card)[:3] == [first, CastVote(1, Choice.DISAGREE).pack(), CastVote(1, Choice.PASS).pack()]
    assert labels(card)[:3] == [zh.label("👍 Agree"), zh.label("👎 Disagree"), zh.label("🤷 Pass")]

    # A vote edits the same message into the next statement; the last one into the thank-you.
    wang.taps(card, first)
    (edited,) = await wang.receives(1)
    assert (edited.method, edited.message_id) == ("editMessageText", card.message_id)
    assert seen(edited).splitlines()[2] == SEEDED[1]
    wang.taps(edited, second)
    (done,) = await wang.receives(1)
    assert (done.method, done.message_id) == ("editMessageText", card.message_id)
    assert zh.label("Thank you! You have voted on every statement so far.") in seen(done).splitlines()
    add = ConsultStep(consultation_id, Step.ADD).pack()
    assert callback_data(done) == [add, ConsultStep(consultation_id, Step.MY_VOTES).pack()]

    # Her own statement: asked, typed, waiting; the worker gets it with Approve / Reject.
    wang.taps(done, add)
    (ask,) = await wang.receives(1)
    assert ask.method == "sendMessage"
    wang.sends(WANG_SAYS)
    (thanks,) = await wang.receives(1)
    assert seen(thanks).splitlines()[0] == zh.label(
        "Thank you. Your statement waits for a moderator; you will be told once it is decided."
    )
    (request,) = await li_na.receives(1)
    assert WANG_SAYS in seen(request).splitlines()
    approve = ModerateStatement(3, Verdict.APPROVE).pack()
    assert callback_data(request) == [approve, ModerateStatement(3, Verdict.REJECT).pack()]

    # One tap: her message shows the decision, without buttons; the author is told.
    li_na.taps(request, approve)
    (decided,) = await li_na.receives(1)
    assert (decided.method, decided.message_id) == ("editMessageText", request.message_id)
    assert zh.label("✅ Approved: participants now vote on it.") in seen(decided).splitlines()
    assert callback_data(decided) == []
    (told,) = await wang.receives(1)
    assert seen(told).splitlines()[0] == zh.label(
        "Your statement in “%(title)s” is published: other participants now vote on it.", title=TITLE
    )

    # Chen Xiao reads English, and gets the new statement among the others to vote on.
    chen.sends("/consult")
    (listing,) = await chen.receives(1)
    chen.taps(listing, OpenConsultation(consultation_id).pack())
    _, card = await chen.receives(2)
    assert labels(card)[:3] == ["👍 Agree", "👎 Disagree", "🤷 Pass"]
    assert "Still waiting for your vote: 3" in seen(card).splitlines()
    statements = [seen(card).splitlines()[2]]
    for _ in range(2):
        chen.taps(card, callback_data(card)[2])  # pass
        (card,) = await chen.receives(1)
        statements.append(seen(card).splitlines()[2])
    assert sorted(statements) == sorted((*SEEDED, WANG_SAYS))
