"""A resident's part in consultations in /privacy and /forget, through the consultations' personal-data provider
(consultation.personal_data), on both databases.

陈晓 (reads English) votes on 李娜's statement and writes two of her own: 李娜 approves one, the other still waits for
a moderator. /privacy lists the consultation, her vote and both statements with where they stand, and the file
holds each vote and statement. After /forget: her vote is withdrawn, the statement no one was shown is gone,
the approved one stays for the others who vote on it, and nothing links it to anyone. A consultation already
closed keeps her vote, counted, and lists as closed while she is still there."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bot.channels.console import ConsoleSession, ConsoleUser
from bot.features import DEFAULT_MANIFESTS
from bot.manifest import Features
from bot.rendering import Localizer
from community.clock import FakeClock
from community.models import Person
from community.privacy import forget, personal_data
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import close_consultation, moderate, submit_statement, vote
from consultation.models import ParticipantLink, Statement, StatementStatus, Vote
from consultation.personal_data import ConsultationPersonalData, ConsultationsProvider
from tests.support.console import has, press, script, tap
from tests.support.demo_consultation import demo_consultation
from tests.support.demo_people import CHEN, WANG, WORKER

TITLE = "Trees by the east gate?"
SEEDED = "Trees give shade in summer."
APPROVED = "More shade for the benches, please."
WAITING = "Ask the gardeners first."


@pytest.fixture
def session(console: Callable[[Sequence[ConsoleUser]], ConsoleSession]) -> ConsoleSession:
    return console((WORKER, CHEN, WANG))


async def _person(uows: UnitOfWorkFactory, name: str) -> int:
    async with uows() as uow:
        person_id = (await uow.session.exec(select(Person.id).where(Person.display_name == name))).one()
    assert person_id is not None
    return person_id


async def test_privacy_lists_her_votes_and_statements_and_forget_withdraws_or_unlinks_them(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, tmp_path: Path
) -> None:
    made = await demo_consultation(uows, clock, title=TITLE, background="Four trees.", statements=[SEEDED])
    cid = made.consultation_id

    # She agrees with 李娜's statement and writes one of her own in the chat.
    out = await script(session, "/as chen", "/consult")
    out = await tap(session, out, TITLE, "👍 Agree", "✍️ Add a statement")
    out = await session.feed(APPROVED)
    assert has(out, "waits for a moderator")
    chen = await _person(uows, CHEN.name)
    async with uows() as uow:
        mine = (await uow.session.exec(select(Statement.id).where(Statement.text == APPROVED))).one()
        assert mine is not None
        await moderate(uow, made.worker_id, mine, approve=True)
        await submit_statement(uow, chen, cid, WAITING)  # a second one, still waiting
        await uow.commit()

    out = await script(session, "/as chen", "/privacy")
    assert has(out, "Consultations")
    assert has(out, f"{TITLE}, open until")
    assert has(out, "You voted on 1 statement.")
    assert has(out, f"You wrote: “{APPROVED}” (shown to participants)")
    assert has(out, f"You wrote: “{WAITING}” (waiting for a moderator)")
    exported = json.loads((tmp_path / "files" / "chen" / "linli-my-data.json").read_text(encoding="utf-8"))
    [taken] = exported["consultations"]["participations"]
    assert taken["consultation"] == TITLE and taken["status"] == "open"
    assert [(v["statement"], v["vote"]) for v in taken["votes"]] == [(SEEDED, "agree")]
    assert [(s["text"], s["status"]) for s in taken["statements"]] == [(APPROVED, "approved"), (WAITING, "pending")]

    # The question says what happens to her statements before she confirms.
    out = await session.feed("/forget")
    assert has(out, "• your statements in consultations still open that no participant has been shown")
    out = await session.feed(press(out, "Erase my data"))
    assert has(out, "has been erased")

    async with uows() as uow:
        texts = {s.text: s for s in (await uow.session.exec(select(Statement))).all()}
        votes = (await uow.session.exec(select(func.count()).select_from(Vote))).one()
        links = (await uow.session.exec(select(func.count()).select_from(ParticipantLink))).one()
        assert WAITING not in texts  # no one was shown it: withdrawn
        assert texts[APPROVED].status == StatementStatus.APPROVED  # the others vote on it: it stays
        assert texts[APPROVED].author_id is not None  # under her pseudonym, which now leads to no one:
        assert links == 0
        assert votes == 0  # her vote in the open consultation: withdrawn

    # Whoever comes to this chat next is someone new, with no part in any consultation.
    out = await script(session, "/privacy")
    assert has(out, "Phone: none") and not has(out, TITLE)


async def test_a_chinese_reader_sees_her_part_in_chinese(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, zh: Localizer
) -> None:
    await demo_consultation(uows, clock, title=TITLE, background="Four trees.", statements=[SEEDED])
    out = await script(session, "/as wang", "/consult")
    out = await tap(session, out, TITLE, zh.label("👍 Agree"))
    out = await session.feed("/privacy")
    assert has(out, zh.text("Consultations"))
    assert has(out, zh.plural("You voted on %(num)s statement.", "You voted on %(num)s statements.", 1, num=1))
    assert has(out, zh.text("Your votes and statements in consultations are listed one by one in the file."))


async def test_votes_in_a_closed_consultation_are_listed_and_stay_counted_after_forget(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    made = await demo_consultation(uows, clock, title=TITLE, background="Four trees.", statements=[SEEDED])
    chen_id = await _person(uows, CHEN.name)
    features = Features.of(DEFAULT_MANIFESTS)
    async with uows() as uow:
        await vote(uow, chen_id, made.statement_ids[0], 1)
        await submit_statement(uow, chen_id, made.consultation_id, WAITING)
        await uow.commit()
    clock.advance(timedelta(days=8))
    async with uows() as uow:
        assert await close_consultation(uow, made.consultation_id)
        await uow.commit()

    async with uows() as uow:
        data = await personal_data(uow, chen_id, features.providers)
    [found] = data.features
    assert found.key == ConsultationsProvider.key
    assert isinstance(found.section, ConsultationPersonalData)
    [taken] = found.section.participations
    assert not taken.open and len(taken.votes) == 1 and [s.text for s in taken.statements] == [WAITING]

    async with uows() as uow:
        await forget(uow, chen_id, features.erasers)
        await uow.commit()
    async with uows() as uow:
        counted = (await uow.session.exec(select(func.count()).select_from(Vote))).one()
        kept = (await uow.session.exec(select(Statement.text).where(col(Statement.text) == WAITING))).all()
    assert counted == 1  # in the closed outcome, leading to no one
    assert kept == [WAITING]  # the closed outcome counted it as it stood
