"""Transcripts of a consultation in the console channel, with the demo's people, on both databases.

李娜 (community worker of 梧桐社区) puts a matter to buildings 3 and 7 through the service, with three statements
of her own, and it opens. Residents find it with /consult, read the background, vote through every statement
and change a vote; 陈晓 (English) and 王芳 (Chinese) add statements, which wait for a moderator; 张伟 (committee)
approves one and rejects the other with a reason; each author is told in their own language; 刘洋 then gets the
approved statement to vote on. The worker follows the figures in /consultations, closes it, and voting after the
close is refused. 赵大山 (another community) never sees it, nor does 张伟, who lives in building 12."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.channels.console import ConsoleSession
from bot.consultations.buttons import ExportConsultation, ExportFormat, OpenConsultation
from bot.consultations.cards import CastVote, Choice, RejectStatement
from bot.conversation import Conversation
from bot.events import ButtonPress, Event, Sender, TextInput
from bot.rendering import Localizer, Localizers
from bot.replies import AnswerButton
from community.anonymity import Anonymity
from community.clock import FakeClock
from community.demo import WUTONG, seed_demo
from community.notice_models import AttachmentKind
from community.notices import Attachment
from community.scope import Scope
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import (
    add_statement,
    figures,
    rejection_message,
)
from consultation.models import Statement, StatementRejection, StatementStatus, Vote
from tests.support.console import DeliveringSession
from tests.support.console import buttons as _buttons
from tests.support.console import press as _press
from tests.support.console import script as _script
from tests.support.console import tap as _tap
from tests.support.demo_consultation import demo_consultation
from tests.support.demo_people import CHEN, COMMITTEE, LIU, STREET, WANG, WORKER, ZHAO

PEOPLE = (WORKER, WANG, LIU, CHEN, COMMITTEE, STREET, ZHAO)

TITLE = "A bicycle shed <by> building 3?"
BACKGROUND = "Part of the lawn could become a covered shed & racks. <Tell us> what you think."
SEEDED = ("A shed keeps bicycles dry.", "The lawn matters more than bicycles.", "Racks without a roof are enough.")
CHEN_SAYS = "Bicycles <b>belong</b> indoors & dry."
WANG_SAYS = "先问问邻居们的意见。"


@pytest.fixture
def anonymity() -> Anonymity:
    """李娜's consultations here are for 3号楼 and 7号楼 (three residents) or fewer, below the default k = 5, and
    their figures are read after two or three votes: these are transcripts of taking part, so k = 2 (test_demo holds
    the demo's whole community at the default k, test_consultation_anonymity holds k itself)."""
    return Anonymity(min_group_size=2)


async def _consultation(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    *,
    buildings: tuple[str, ...] = (),
    opened: bool = True,
    moderated: bool = True,
    attachment: Attachment | None = None,
) -> int:
    """李娜's consultation, made through the service with three statements of her own, and opened."""
    made = await demo_consultation(
        uows,
        clock,
        title=TITLE,
        background=BACKGROUND,
        statements=SEEDED,
        opened=opened,
        audience=Scope(buildings=buildings),
        moderated=moderated,
        attachment=attachment,
    )
    return made.consultation_id


@pytest.fixture
def session(
    uows: UnitOfWorkFactory, conversation: Conversation, localizers: Localizers, tmp_path: Path
) -> ConsoleSession:
    """The console as `linli run` runs it: each line's messages to other people are delivered before the next."""
    return DeliveringSession(uows, conversation, PEOPLE, localizers.get("en"), files_dir=tmp_path / "files")


async def _open(session: ConsoleSession, key: str) -> list[str]:
    """/as KEY, /consult, tap the consultation: the background, then the first card."""
    out = await _script(session, f"/as {key}", "/consult")
    return await session.feed(_press(out, TITLE))


async def _statement(uows: UnitOfWorkFactory, text: str) -> Statement:
    async with uows() as uow:
        found = (await uow.session.exec(select(Statement).where(Statement.text == text))).one()
    return found


# --- the whole consultation -------------------------------------------------------------------------------------


async def test_a_whole_consultation_in_the_console(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, zh: Localizer
) -> None:
    consultation_id = await _consultation(uows, clock, buildings=("3号楼", "7号楼"))

    # 陈晓 finds it in the menu and in /consult: the background escaped as typed, the closing time in
    # China time in her language, then the first statement with how many are left.
    out = await _script(session, "/as chen", "/menu")
    assert "Consultations" in _buttons(out)
    out = await session.feed("/consult")
    assert out[:5] == ["Consultations open for you", "", TITLE, f"{WUTONG} · closes Mar 8, 2026, 5:00\u202fPM", ""]
    assert _buttons(out) == [TITLE]
    out = await _tap(session, out, TITLE)
    assert out[:5] == [
        f"🗳 {TITLE}",
        f"A consultation of {WUTONG}",
        "Open until Mar 8, 2026, 5:00\u202fPM",
        "",
        BACKGROUND,
    ]
    card = out[out.index(f"🗳 {TITLE}", 1) :]
    assert card[1:4] == ["", SEEDED[0], ""]
    assert "Still waiting for your vote: 3" in card
    assert _buttons(card) == ["👍 Agree", "👎 Disagree", "🤷 Pass", "✍️ Add a statement", "My votes"]

    # Each vote turns the card into the next statement, in place; after the last, a thank-you.
    out = await _tap(session, out, "👍 Agree")
    assert out[0] == "(the message above was changed)" and SEEDED[1] in out
    assert "Still waiting for your vote: 2" in out
    out = await _tap(session, out, "👎 Disagree")
    assert SEEDED[2] in out and "Still waiting for your vote: 1" in out
    out = await _tap(session, out, "🤷 Pass")
    assert out[0] == "(the message above was changed)"
    assert "Thank you! You have voted on every statement so far." in out
    assert _buttons(out) == ["✍️ Add a statement", "My votes"]

    # My votes: each statement with her current choice; she changes one.
    out = await _tap(session, out, "My votes")
    assert out[1] == f"Your votes in {TITLE}"
    assert f"👍 Agree · {SEEDED[0]}" in out and f"🤷 Pass · {SEEDED[2]}" in out
    out = await _tap(session, out, SEEDED[2])
    assert SEEDED[2] in out and "Your vote: 🤷 Pass" in out
    assert _buttons(out)[:3] == ["👍 Agree", "👎 Disagree", "✓ 🤷 Pass"]
    out = await _tap(session, out, "👍 Agree")
    assert out[0] == "(Your vote is changed to “👍 Agree”.)"
    assert "Your vote: 👍 Agree" in out and _buttons(out)[:3] == ["✓ 👍 Agree", "👎 Disagree", "🤷 Pass"]

    # Her own statement: it waits for a moderator, and the community's moderators are asked.
    out = await _tap(session, out, "✍️ Add a statement")
    assert out[0] == f"✍️ A statement for {TITLE}"
    assert "Write one short statement others can agree or disagree with, at most 280 characters." in out
    out = await session.feed(CHEN_SAYS)
    assert out[:3] == [
        "Thank you. Your statement waits for a moderator; you will be told once it is decided.",
        "",
        CHEN_SAYS,
    ]
    assert out[-3:] == ["→ a message was sent to 李娜", "→ a message was sent to 张伟", "→ a message was sent to 周敏"]

    # 王芳 reads Chinese: everything around the worker's text is Chinese. She votes and adds a statement too.
    out = await _open(session, "wang")
    assert out[1] == zh.text("A consultation of %(community)s", community=WUTONG)
    assert _buttons(out)[:3] == [zh.label("👍 Agree"), zh.label("👎 Disagree"), zh.label("🤷 Pass")]
    out = await _tap(session, out, zh.label("👍 Agree"), zh.label("👍 Agree"))
    out = await _tap(session, out, zh.label("✍️ Add a statement"))
    out = await session.feed(WANG_SAYS)
    assert out[0] == zh.text("Thank you. Your statement waits for a moderator; you will be told once it is decided.")

    wang_id = (await _statement(uows, WANG_SAYS)).id or 0

    # 张伟 moderates from his chat: both statements arrived, escaped, with Approve / Reject.
    out = await session.feed("/as committee")
    assert out.count("📝 " + zh.text("A statement waits for moderation")) == 2
    assert CHEN_SAYS in out and WANG_SAYS in out
    # The last message is 王芳's: approve it.
    out = await _tap(session, out, zh.label("✅ Approve"))
    assert out[-2:] == [zh.text("✅ Approved: participants now vote on it."), "→ a message was sent to 王芳"]
    # The worker rejects 陈晓's from the overview's list, with a reason.
    out = await _script(session, "/as worker", "/consultations")
    assert f"🗳 {TITLE} · open" in out
    assert "Participants: 2, of whom 2 voted" in out
    assert "Votes: 5 (agree 4, disagree 1, pass 0)" in out
    assert "Statements: 4 published, 1 waiting for moderation, 0 rejected" in out
    assert _buttons(out) == [
        "Moderate (1 waiting)",
        "Refresh",
        "Close now",
        "🗺 Opinion map",
        "Spreadsheet (XLSX)",
        "Votes (CSV)",
        "Report (PDF)",
    ]
    out = await _tap(session, out, "Moderate (1 waiting)")
    assert out[0] == "📝 A statement waits for moderation" and CHEN_SAYS in out
    out = await _tap(session, out, "❌ Reject")
    assert _buttons(out) == [
        "Off topic",
        "Offensive",
        "Personal data",
        "Unclear",
        "Repeats another",
        "Another reason",
        "← Back",
    ]
    out = await _tap(session, out, "Repeats another")
    assert "❌ Rejected: Repeats another" in out and _buttons(out) == []
    assert out[-1] == "→ a message was sent to 陈晓"

    # The third moderator's copies changed meanwhile: who decided each statement and how, no buttons left.
    out = await session.feed("/as street")
    assert out.count("(the message above was changed)") == 2
    assert zh.text("✅ Approved by %(name)s: participants now vote on it.", name="张伟") in out
    rejected = zh.text("❌ Rejected by %(name)s: %(reason)s", name="李娜", reason=zh.label("Repeats another"))
    last_change = len(out) - out[::-1].index("(the message above was changed)")
    assert out[-1] == rejected and _buttons(out[last_change:]) == []
    # A tap on a copy from before the change finds the decision made, and nothing changes.
    replies = await session.conversation.handle(
        Event(
            Sender("console", "street", "street", "周敏", "zh-hans"),
            ButtonPress(RejectStatement(wang_id, StatementRejection.OFF_TOPIC).pack(), message_id="2"),
        )
    )
    assert replies[0] == AnswerButton(zh.label("Another moderator has decided this statement already."))
    assert (await _statement(uows, WANG_SAYS)).status is StatementStatus.APPROVED

    # Each author is told in their own language: 陈晓 in English with the reason, 王芳 in Chinese.
    out = await session.feed("/as chen")
    assert out[1:5] == [
        f"Your statement in “{TITLE}” was not published.",
        rejection_message(StatementRejection.REPEATS_ANOTHER),
        "",
        CHEN_SAYS,
    ]
    out = await session.feed("/as wang")
    assert out[1] == zh.label(
        "Your statement in “%(title)s” is published: other participants now vote on it.", title=TITLE
    )

    # 刘洋 gets the approved statement among the others (and never the rejected one).
    out = await _open(session, "liu")
    assert zh.text("Still waiting for your vote: %(left)s", left=4) in out
    seen: list[str] = []
    for _ in range(4):
        seen.extend(line for line in out if line in (*SEEDED, WANG_SAYS, CHEN_SAYS))
        out = await _tap(session, out, zh.label("🤷 Pass"))
    assert sorted(seen) == sorted({*SEEDED, WANG_SAYS}) and len(seen) == len(set(seen))
    assert zh.text("Thank you! You have voted on every statement so far.") in out

    # The worker's figures, counts only; then Close now, after a question.
    out = await _script(session, "/as worker", "/consultations")
    assert "Participants: 3, of whom 3 voted" in out
    assert "Votes: 9 (agree 4, disagree 1, pass 4)" in out
    assert "Statements: 4 published, 0 waiting for moderation, 1 rejected" in out
    assert not any(name in line for line in out for name in ("王芳", "刘洋", "陈晓"))
    out = await _tap(session, out, "Close now")
    assert "Close this consultation now? Nobody can vote or add statements after that." in out
    assert _buttons(out) == ["Yes, close it", "No, keep it open"]
    out = await _tap(session, out, "Yes, close it")
    assert out[0] == "(The consultation is closed.)"
    assert f"🗳 {TITLE} · closed" in out and "Close now" not in _buttons(out)
    assert _buttons(out)[-3:] == ["Spreadsheet (XLSX)", "Votes (CSV)", "Report (PDF)"]
    async with uows() as uow:
        assert (await figures(uow, consultation_id)).votes == 9

    # After the close: an old card's vote is refused, and /consult has nothing.
    press = CastVote((await _statement(uows, SEEDED[0])).id or 0, Choice.DISAGREE).pack()
    replies = await session.conversation.handle(
        Event(Sender("console", "liu", "liu", "刘洋", "zh-hans"), ButtonPress(press, message_id="1"))
    )
    assert zh.text("This consultation has closed: it no longer takes votes or statements.") in [
        getattr(reply, "text", None) for reply in replies
    ]
    out = await _script(session, "/as liu", "/consult")
    assert out == [zh.text("No consultation is open for you right now. You get an invitation when one opens.")]
    async with uows() as uow:
        assert (await figures(uow, consultation_id)).votes == 9


async def test_residents_out_of_scope_do_not_see_it_and_cannot_open_it(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, zh: Localizer
) -> None:
    consultation_id = await _consultation(uows, clock, buildings=("3号楼",))
    out = await _script(session, "/as chen", "/consult")  # 7号楼
    assert out == ["No consultation is open for you right now. You get an invitation when one opens."]
    out = await _script(session, "/as zhao", "/consult")  # another community
    assert out == [zh.text("No consultation is open for you right now. You get an invitation when one opens.")]
    # An invitation's button forwarded to her does not let her in either.
    replies = await session.conversation.handle(
        Event(
            Sender("console", "zhao", "zhao", "赵大山", "zh-hans"),
            ButtonPress(OpenConsultation(consultation_id).pack()),
        )
    )
    texts = [getattr(reply, "text", None) for reply in replies]
    assert zh.text("This consultation is for other residents of the community, so you cannot take part in it.") in texts
    out = await _script(session, "/as wang", "/consult")  # 3号楼
    assert _buttons(out) == [TITLE]


async def test_a_second_tap_on_an_old_card_counts_once_and_says_so(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await _consultation(uows, clock)
    first = await _open(session, "chen")
    old_card = first[first.index(f"🗳 {TITLE}", 1) :]
    await _tap(session, old_card, "👍 Agree")
    # The same statement's card, from opening it a second time before the vote, is tapped again.
    again = CastVote((await _statement(uows, SEEDED[0])).id or 0, Choice.AGREE).pack()
    replies = await session.conversation.handle(
        Event(Sender("console", "chen", "chen", "陈晓", "en"), ButtonPress(again, message_id="1"))
    )
    out = session._show(replies)  # as the terminal shows these replies
    assert out[0] == "(You had already voted on that statement; it counts once.)"
    assert SEEDED[1] in out  # and the card moves on
    async with uows() as uow:
        votes = (await uow.session.exec(select(Vote).order_by(col(Vote.id)))).all()
    assert [vote.value for vote in votes] == [1]


async def test_a_statement_too_long_empty_or_a_duplicate_is_refused_and_the_question_stands(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await _consultation(uows, clock)
    out = await _open(session, "chen")
    out = await _tap(session, out, "✍️ Add a statement")
    out = await session.feed("x" * 281)
    assert out == ["A statement can be at most 280 characters long; this one has 281."]
    replies = await session.conversation.handle(Event(Sender("console", "chen", "chen", "陈晓", "en"), TextInput("  ")))
    assert [getattr(reply, "text", None) for reply in replies] == ["A statement needs some text."]
    out = await session.feed("  a shed KEEPS bicycles   dry. ")
    statement_id = (await _statement(uows, SEEDED[0])).id
    assert out[0] == f"That statement is already in this consultation (number {statement_id}): vote on it instead."
    assert _buttons(out) == ["Vote on it", "Cancel"]
    shown = await _tap(session, out, "Vote on it")
    assert SEEDED[0] in shown and _buttons(shown)[:3] == ["👍 Agree", "👎 Disagree", "🤷 Pass"]
    # The question still stands: the next text is taken as the statement.
    out = await session.feed("Ask the neighbours first.")
    assert out[0] == "Thank you. Your statement waits for a moderator; you will be told once it is decided."
    async with uows() as uow:
        count = len((await uow.session.exec(select(Statement))).all())
    assert count == len(SEEDED) + 1


async def test_a_photo_at_the_statement_prompt_is_answered_by_the_prompt(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, zh: Localizer
) -> None:
    """A resident (not a worker) sends a photo where a statement is expected: the prompt says what it wants,
    in the reader's language, and the question stands; nothing about notices."""
    await _consultation(uows, clock)
    out = await _open(session, "chen")
    out = await _tap(session, out, "✍️ Add a statement")
    out = await session.feed("/photo shed.jpg the shed I mean")
    assert out == ["Please type your statement.", "  [1] Cancel"]
    out = await session.feed("Ask the neighbours first.")
    assert out[0] == "Thank you. Your statement waits for a moderator; you will be told once it is decided."

    out = await _open(session, "wang")  # reads Chinese
    out = await _tap(session, out, zh.label("✍️ Add a statement"))
    out = await session.feed("/photo shed.jpg")
    assert out[0] == zh.text("Please type your statement.") != "Please type your statement."


async def test_my_votes_come_in_pages(session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    consultation_id = await _consultation(uows, clock)
    async with uows() as uow:
        worker = (await seed_demo(uow)).by_key("worker").person_id
        for number in range(1, 10):
            await add_statement(uow, worker, consultation_id, f"Statement number {number}.")
        await uow.commit()
    out = await _open(session, "chen")
    for _ in range(len(SEEDED) + 9):
        out = await _tap(session, out, "👍 Agree")
    out = await _tap(session, out, "My votes")
    assert "Page 1 of 2" in out and _buttons(out)[-2:] == ["Next page ›", "Continue voting ›"]
    out = await _tap(session, out, "Next page ›")
    assert "Page 2 of 2" in out and _buttons(out)[-2:] == ["‹ Previous", "Continue voting ›"]
    assert len(_buttons(out)) == 12 - 8 + 2


async def test_the_staff_overview_is_for_staff_and_shows_the_exports(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    consultation_id = await _consultation(uows, clock)
    out = await _script(session, "/as chen", "/consultations")
    assert out == ["Your role in this community does not allow that."]
    out = await _script(session, "/as worker", "/menu")
    assert {"Run consultations", "Consultations"} <= set(_buttons(out))
    out = await session.feed("/consultations")
    chat = session._chat("worker")  # the buttons' data, which the transcript does not show
    assert [button.data for button in chat.keyboard][-3:] == [
        ExportConsultation(consultation_id, ExportFormat.XLSX).pack(),
        ExportConsultation(consultation_id, ExportFormat.CSV).pack(),
        ExportConsultation(consultation_id, ExportFormat.PDF).pack(),
    ]
    # Refresh edits the figures in place.
    out = await _tap(session, out, "Refresh")
    assert out[0] == "(the message above was changed)" and "Participants: 0, of whom 0 voted" in out


async def test_the_background_comes_with_its_photo_and_an_unmoderated_statement_is_published_at_once(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, zh: Localizer
) -> None:
    photo = Attachment(AttachmentKind.PHOTO, "console", "console:lawn.jpg", "lawn.jpg")
    await _consultation(uows, clock, moderated=False, attachment=photo)
    out = await _open(session, "chen")
    assert out[:3] == ["📎 lawn.jpg", f"🗳 {TITLE}", f"🗳 {TITLE}"]
    out = await _tap(session, out, "✍️ Add a statement")
    assert "A moderator reads it before others see it." not in out
    out = await session.feed(CHEN_SAYS)
    assert out[:3] == ["Thank you. Your statement is published: other participants now vote on it.", "", CHEN_SAYS]
    assert not any(line.startswith("→ a message was sent") for line in out)  # nobody to ask
    out = await _open(session, "liu")
    assert CHEN_SAYS in (await _tap(session, out, *([zh.label("🤷 Pass")] * 3)))  # hers comes after the older three


async def test_a_consultation_not_open_yet_is_refused_and_the_worker_sees_it_scheduled(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    consultation_id = await _consultation(uows, clock, opened=False)
    out = await _script(session, "/as chen", "/consult")
    assert out == ["No consultation is open for you right now. You get an invitation when one opens."]
    replies = await session.conversation.handle(
        Event(Sender("console", "chen", "chen", "陈晓", "en"), ButtonPress(OpenConsultation(consultation_id).pack()))
    )
    assert "This consultation has not opened yet." in [getattr(reply, "text", None) for reply in replies]
    out = await _script(session, "/as worker", "/consultations")
    assert f"🗳 {TITLE} · scheduled" in out
    assert "Opens on Mar 1, 2026, 5:00\u202fPM, closes on Mar 8, 2026, 5:00\u202fPM" in out
    assert _buttons(out) == ["Refresh", "Close now"]  # nothing to export yet
