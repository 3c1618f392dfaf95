"""The outcome for the committee: the domain's Outcome and raw votes, and the files made of them (XLSX, CSV in
Pol.is's layout, JSON, PDF), on both databases; the Export buttons in a console transcript.

The consultation is tests/support/consultation_world.py's: two opposed blocs of six, a common-ground statement,
a resident's own statement, a rejected one, and a resident who voted too little to be placed in a group."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from fontTools.pens.recordingPen import RecordingPen
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.console import ConsoleUser
from bot.consultations.buttons import ExportConsultation, ExportFormat
from bot.exports import xlsx
from bot.exports.consultation import POLIS_VOTES_HEADER, export_consultation, export_filename, polis_datetime
from bot.exports.fonts import CJK_POSTSCRIPT_NAME, cjk_font_path
from bot.handlers.consult_export import export_keyboard
from bot.rendering import Localizer, Localizers
from bot.replies import SendText
from community.clock import FakeClock
from community.models import Person
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import ConsultationDraft, add_statement, create, open_consultation
from consultation.errors import ConsultationNotFound, ExportNotAllowed, FiguresWithheld
from consultation.models import Participant
from consultation.outcome import compute_outcome, stream_votes
from tests.support.consultation_world import (
    BLOC_SIZE,
    COMMON_GROUND,
    COMMUNITY,
    REJECTED_STATEMENT,
    RESIDENT_NAMES,
    RESIDENT_STATEMENT,
    TITLE,
    World,
    build_world,
)
from tests.support.exports import ExportRig
from tests.support.polis_data import POLIS_DATA

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def world(uows: UnitOfWorkFactory, clock: FakeClock) -> World:
    return await build_world(uows, clock)


async def _export(uows: UnitOfWorkFactory, world: World, fmt: ExportFormat, reader: Localizer) -> bytes:
    buffer = io.BytesIO()
    async with uows() as uow:
        exported = await export_consultation(uow, world.committee, world.consultation_id, fmt, reader, buffer)
    assert exported.filename == export_filename(world.consultation_id, fmt)
    return buffer.getvalue()


async def _pseudonyms(uows: UnitOfWorkFactory, consultation_id: int) -> set[str]:
    async with uows() as uow:
        return set(
            (
                await uow.session.exec(
                    select(Participant.pseudonym).where(Participant.consultation_id == consultation_id)
                )
            ).all()
        )


# --- the domain ------------------------------------------------------------------------------------------------


async def test_the_outcome_counts_every_approved_statement_overall_and_per_group(
    uows: UnitOfWorkFactory, world: World
) -> None:
    async with uows() as uow:
        outcome = await compute_outcome(uow, world.committee, world.consultation_id)

    assert outcome.title == TITLE and outcome.community_name == COMMUNITY and outcome.is_final
    assert (outcome.figures.participants, outcome.figures.voters, outcome.figures.votes) == (13, 13, 122)
    assert (outcome.figures.approved, outcome.figures.rejected, outcome.figures.pending) == (10, 1, 0)
    assert [s.id for s in outcome.statements] == list(world.statements)  # the rejected one counts nowhere
    assert REJECTED_STATEMENT not in {s.text for s in outcome.statements}

    # Two groups: fewer than 15 people have the 7 votes to be placed, so, as in Pol.is, the most active are placed
    # too and the sparse voter joins the nearer bloc, B, which is now the larger group and comes first.
    assert [g.size for g in outcome.groups] == [BLOC_SIZE + 1, BLOC_SIZE]
    assert outcome.clustered == 13 and outcome.min_votes == 2  # what the sparse voter had
    first_a = outcome.statement(world.bloc_a[0])
    assert first_a.overall is not None and not outcome.withheld  # thirteen voters, k = 5
    assert (first_a.overall.agree, first_a.overall.disagree, first_a.overall.passed) == (6, 6, 0)
    assert [(c.agree, c.disagree, c.passed) for c in first_a.by_group] == [(0, 6, 0), (6, 0, 0)]
    assert first_a.by_staff
    first_b = outcome.statement(world.bloc_b[0])
    assert [(c.agree, c.disagree, c.passed) for c in first_b.by_group] == [(6, 0, 0), (0, 6, 0)]
    written = outcome.statement(world.written)
    assert written.text == RESIDENT_STATEMENT and not written.by_staff and written.overall is not None
    assert (written.overall.agree, written.overall.disagree, written.overall.passed) == (6, 1, 6)
    assert [(c.agree, c.disagree, c.passed) for c in written.by_group] == [(0, 1, 6), (6, 0, 0)]

    # What the opinion map says, passed through: each group stands for its own bloc's statements, everyone
    # agrees on the common ground, and the blocs' statements divide.
    group_b, group_a = outcome.groups
    assert {r.statement_id for r in group_a.representative} <= {*world.bloc_a, *world.bloc_b, world.written}
    assert any(r.statement_id in world.bloc_a and r.stance == "agree" for r in group_a.representative)
    assert any(r.statement_id in world.bloc_b and r.stance == "agree" for r in group_b.representative)
    assert [c.statement_id for c in outcome.consensus_agree][:1] == [world.common]
    assert outcome.group_informed_consensus[0].statement_id == world.common
    assert {d.statement_id for d in outcome.divisive} <= {*world.bloc_a, *world.bloc_b}
    assert len(outcome.divisive) == 5
    assert outcome.positions.shape == (13, 2)
    assert sorted(outcome.group_of.tolist()) == [0] * 7 + [1] * 6


async def test_participation_is_counted_per_day_in_the_community_time_zone(
    uows: UnitOfWorkFactory, world: World
) -> None:
    async with uows() as uow:
        outcome = await compute_outcome(uow, world.worker, world.consultation_id)
    # The fake clock starts at 09:00 UTC, 17:00 in Shanghai; bloc A votes on 1 March, bloc B on the 2nd, the sparse
    # voter on the 3rd.
    assert [(d.day, d.new_participants, d.votes) for d in outcome.participation] == [
        (date(2026, 3, 1), 6, 60),
        (date(2026, 3, 2), 6, 60),
        (date(2026, 3, 3), 1, 2),
    ]


async def test_only_the_committee_and_staff_may_export(uows: UnitOfWorkFactory, world: World, en: Localizer) -> None:
    async with uows() as uow:
        assert (await compute_outcome(uow, world.worker, world.consultation_id)).figures.votes == 122
        assert (await compute_outcome(uow, None, world.consultation_id)).figures.votes == 122  # the operator
        with pytest.raises(ExportNotAllowed):
            await compute_outcome(uow, world.residents[0], world.consultation_id)
        with pytest.raises(ExportNotAllowed):
            await anext(aiter(stream_votes(uow, world.residents[0], world.consultation_id)))
        with pytest.raises(ConsultationNotFound):
            await compute_outcome(uow, world.committee, world.consultation_id + 100)
    for fmt in ExportFormat:
        buffer = io.BytesIO()
        async with uows() as uow:
            with pytest.raises(ExportNotAllowed):
                await export_consultation(uow, world.residents[0], world.consultation_id, fmt, en, buffer)
        assert buffer.getvalue() == b""  # refused before anything is written


async def test_the_raw_votes_stream_in_batches_with_pseudonyms_only(uows: UnitOfWorkFactory, world: World) -> None:
    async with uows() as uow:
        votes = [vote async for vote in stream_votes(uow, world.committee, world.consultation_id, batch=7)]
    assert len(votes) == 122
    assert [v.statement_id for v in votes] == sorted(v.statement_id for v in votes)
    assert {v.participant for v in votes} == await _pseudonyms(uows, world.consultation_id)
    assert {v.value for v in votes} == {-1, 0, 1}
    assert world.rejected not in {v.statement_id for v in votes}


# --- the files -------------------------------------------------------------------------------------------------


def _sheet_rows(workbook: Any, name: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in workbook[name].iter_rows(values_only=True)]


async def test_the_xlsx_has_every_statement_with_its_counts_overall_and_per_group(
    uows: UnitOfWorkFactory, world: World, zh: Localizer
) -> None:
    content = await _export(uows, world, ExportFormat.XLSX, zh)
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    names = [zh.label(n) for n in ("Summary", "Statements", "Groups", "Consensus", "Group-informed consensus")]
    assert workbook.sheetnames[:5] == names
    assert workbook.sheetnames[5:] == [zh.label(n) for n in ("Divisive", "Participation", "Votes")]

    rows = _sheet_rows(workbook, zh.label("Statements"))
    header = rows[1]  # under the note on who is in a group
    group_a = zh.label("Group %(name)s", name="A")
    assert header[:7] == tuple(
        zh.label(n) for n in ("No.", "Statement", "Written by", "Agree", "Disagree", "Pass", "Votes")
    )
    assert header[9:] == tuple(
        zh.label(f"%(group)s: {stance}", group=group)
        for group in (group_a, zh.label("Group %(name)s", name="B"))
        for stance in ("agree", "disagree", "pass")
    )
    by_id = {row[0]: row for row in rows[2:]}
    assert sorted(by_id) == list(world.statements)
    first_a = by_id[world.bloc_a[0]]
    assert first_a[3:7] == (6, 6, 0, 12)
    assert first_a[7] == pytest.approx(0.5)
    assert first_a[9:] == (0, 6, 0, 6, 0, 0)  # group A is bloc B and the sparse voter (the larger)
    written = by_id[world.written]
    assert written[1] == RESIDENT_STATEMENT and written[2] == zh.label("a participant")
    assert written[3:7] == (6, 1, 6, 13) and written[9:] == (0, 1, 6, 6, 0, 0)
    assert by_id[world.common][3:7] == (13, 0, 0, 13)

    summary = dict(row for row in _sheet_rows(workbook, zh.label("Summary"))[2:] if row[0])
    assert summary[zh.label("Consultation")] == TITLE
    assert summary[zh.label("Status")] == zh.label("closed")
    assert summary[zh.label("Votes")] == 122

    participation = _sheet_rows(workbook, zh.label("Participation"))[2:]
    assert [(row[0].date(), row[1], row[2]) for row in participation] == [
        (date(2026, 3, 1), 6, 60),
        (date(2026, 3, 2), 6, 60),
        (date(2026, 3, 3), 1, 2),
    ]
    votes = _sheet_rows(workbook, zh.label("Votes"))[1:]
    assert len(votes) == 122
    assert {row[2] for row in votes} == await _pseudonyms(uows, world.consultation_id)
    assert votes[0][0] == datetime(2026, 3, 1, 17, 0)  # Shanghai time, as a spreadsheet date
    groups = _sheet_rows(workbook, zh.label("Groups"))[2:]
    assert {row[0] for row in groups} == {group_a, zh.label("Group %(name)s", name="B")}


def test_a_sheet_longer_than_excel_allows_goes_on_in_another(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.setattr(xlsx, "EXCEL_MAX_ROWS", 4)
    buffer = io.BytesIO()
    sheet = xlsx.Sheet("投票记录", (xlsx.Column("n", xlsx.Kind.INTEGER),), ((n,) for n in range(7)))
    asyncio.run(xlsx.write_xlsx(buffer, [sheet]))
    workbook = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()), read_only=True)
    assert workbook.sheetnames == ["投票记录", "投票记录 (2)", "投票记录 (3)"]
    assert [_sheet_rows(workbook, name) for name in workbook.sheetnames] == [
        [("n",), (0,), (1,), (2,)],
        [("n",), (3,), (4,), (5,)],
        [("n",), (6,)],
    ]


async def test_the_csv_is_polis_votes_layout_with_pseudonyms_only(
    uows: UnitOfWorkFactory, world: World, en: Localizer
) -> None:
    content = await _export(uows, world, ExportFormat.CSV, en)
    with (POLIS_DATA / "15-per-hour-seattle" / "votes.csv").open(encoding="utf-8") as polis:
        polis_header = polis.readline().rstrip("\n")
    text = content.decode("utf-8")
    assert text.split("\n", 1)[0] == polis_header == ",".join(POLIS_VOTES_HEADER)
    assert "\r" not in text  # line ends as in Pol.is's files
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 122
    assert {row["comment-id"] for row in rows} == {str(s) for s in world.statements}
    assert {row["vote"] for row in rows} == {"1", "-1", "0"}

    pseudonyms = await _pseudonyms(uows, world.consultation_id)
    assert {row["voter-id"] for row in rows} == pseudonyms
    async with uows() as uow:
        names = set((await uow.session.exec(select(Person.display_name))).all())
    person_ids = {str(pid) for pid in world.person_ids()}
    for row in rows:
        assert row["voter-id"] not in person_ids
        moment = datetime.fromtimestamp(int(row["timestamp"]) / 1000, UTC)
        assert row["datetime"] == polis_datetime(moment, SHANGHAI)
        assert datetime.strptime(row["datetime"].replace(" CST ", " "), "%a %b %d %H:%M:%S %Y") == moment.astimezone(
            SHANGHAI
        ).replace(tzinfo=None)
    assert not any(name in text for name in names if name)
    assert not any(name in text for name in RESIDENT_NAMES)
    # Bloc A agrees with its first statement, bloc B disagrees.
    first = [row for row in rows if row["comment-id"] == str(world.bloc_a[0])]
    assert sorted(row["vote"] for row in first) == ["-1"] * 6 + ["1"] * 6


async def test_the_json_is_the_outcome_machine_readable(uows: UnitOfWorkFactory, world: World, zh: Localizer) -> None:
    document = json.loads(await _export(uows, world, ExportFormat.JSON, zh))
    assert document["format"] == "linli.consultation.outcome" and document["version"] == 1
    assert document["final"] is True
    consultation = document["consultation"]
    assert consultation["title"] == TITLE and consultation["status"] == "closed"
    assert consultation["community"] == {"id": world.community_id, "name": COMMUNITY, "timezone": "Asia/Shanghai"}
    assert datetime.fromisoformat(consultation["closed_at"]).tzinfo is not None
    assert document["figures"]["votes"] == 122 and document["figures"]["statements"]["rejected"] == 1
    statements = {s["id"]: s for s in document["statements"]}
    assert statements[world.bloc_a[0]]["overall"] == {"agree": 6, "disagree": 6, "pass": 0, "votes": 12}
    assert statements[world.bloc_a[0]]["groups"] == [
        {"agree": 0, "disagree": 6, "pass": 0, "votes": 6},
        {"agree": 6, "disagree": 0, "pass": 0, "votes": 6},
    ]
    assert statements[world.common]["text"] == COMMON_GROUND
    assert [(g["label"], g["size"]) for g in document["groups"]] == [("A", 7), ("B", 6)]
    assert document["consensus"]["agree"][0]["statement_id"] == world.common
    assert document["participation"][0] == {"day": "2026-03-01", "new_participants": 6, "votes": 60}
    assert document["opinion_map"]["clustered"] == 13


def _outline(font: TTFont, glyph: str) -> list[tuple[str, tuple[Any, ...]]]:
    pen = RecordingPen()
    font.getGlyphSet()[glyph].draw(pen)
    return list(pen.value)


def _embedded_fonts(reader: PdfReader) -> list[TTFont]:
    fonts = []
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for ref in resources.get("/Font", {}).values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            descriptor = (descendants[0].get_object() if descendants else font)["/FontDescriptor"].get_object()
            program = next(descriptor[key] for key in ("/FontFile3", "/FontFile2", "/FontFile") if key in descriptor)
            fonts.append(TTFont(io.BytesIO(program.get_object().get_data())))
    return fonts


async def test_the_pdf_report_is_in_chinese_set_in_the_shipped_font(
    uows: UnitOfWorkFactory, world: World, zh: Localizer
) -> None:
    content = await _export(uows, world, ExportFormat.PDF, zh)
    reader = PdfReader(io.BytesIO(content))
    text = "".join(page.extract_text() for page in reader.pages)
    for expected in (TITLE, COMMUNITY, RESIDENT_STATEMENT, COMMON_GROUND, zh.label("Opinion map"), "A组"):
        assert expected in text.replace(" ", "").replace("\n", ""), expected
    assert REJECTED_STATEMENT not in text

    shipped = TTFont(str(cjk_font_path()), lazy=True)
    fonts = _embedded_fonts(reader)
    assert fonts
    with_title = 0
    for font in fonts:
        # Every font in the PDF is a cut of the shipped one: its names and version, none of the system's ...
        assert font["name"].getDebugName(6) == CJK_POSTSCRIPT_NAME
        assert font["name"].getDebugName(5) == shipped["name"].getDebugName(5)
        cmap = font.getBestCmap() or {}
        if ord("停") in cmap:
            # ... and its glyphs are the shipped font's own outlines.
            with_title += 1
            assert _outline(font, cmap[ord("停")]) == _outline(shipped, shipped.getBestCmap()[ord("停")])
    assert with_title


async def test_the_pdf_report_in_english(uows: UnitOfWorkFactory, world: World, en: Localizer) -> None:
    reader = PdfReader(io.BytesIO(await _export(uows, world, ExportFormat.PDF, en)))
    text = "".join(page.extract_text() for page in reader.pages)
    assert "Opinion map" in text and "Group A" in text and TITLE in text.replace(" ", "")


# --- the chat ------------------------------------------------------------------------------------------------------


def test_the_export_keyboard_offers_xlsx_csv_and_pdf(en: Localizer) -> None:
    (row,) = export_keyboard(en, 12)
    assert [button.label for button in row] == ["Spreadsheet (XLSX)", "Votes (CSV)", "Report (PDF)"]
    assert [ExportConsultation.unpack(button.data or "").format for button in row] == [
        ExportFormat.XLSX,
        ExportFormat.CSV,
        ExportFormat.PDF,
    ]
    assert {ExportConsultation.unpack(button.data or "").consultation_id for button in row} == {12}


COMMITTEE = ConsoleUser(key="committee", name="张伟", language_code="en")
RESIDENT = ConsoleUser(key="r1", name=RESIDENT_NAMES[0], language_code="en")


async def test_a_committee_member_taps_export_and_gets_the_file_a_resident_is_refused(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    engine: AsyncEngine,
    localizers: Localizers,
    en: Localizer,
    tmp_path: Path,
) -> None:
    world = await build_world(uows, clock, channel="console")
    rig = ExportRig(uows, localizers, clock, engine, tmp_path, [COMMITTEE, RESIDENT])
    session = rig.session

    def offer(key: str) -> list[str]:
        # What the staff overview shows under a consultation: its Export buttons.
        _, lines = session.deliver(key, SendText(f"<b>{TITLE}</b>", buttons=export_keyboard(en, world.consultation_id)))
        return lines

    await session.feed("/as committee")
    shown = offer("committee")
    assert "  [1] Spreadsheet (XLSX)" in shown and "  [3] Report (PDF)" in shown
    # Answered at once; the file is made by the jobs' process and comes through the outbox.
    out = await session.feed("1")
    assert out == ["Preparing the file… It will arrive in this chat when it is ready."]
    printed = await rig.finish()
    assert any("consultation-1-outcome.xlsx saved to" in line for line in printed), printed
    assert f"The outcome of “{TITLE}”." in printed
    workbook = openpyxl.load_workbook(rig.saved("committee", "consultation-1-outcome.xlsx"), read_only=True)
    rows = _sheet_rows(workbook, "Statements")
    assert {row[0]: row[3:7] for row in rows[2:]}[world.bloc_a[0]] == (6, 6, 0, 12)

    offer("committee")
    out = await session.feed("2")
    assert out == ["Preparing the file… It will arrive in this chat when it is ready."]
    printed = await rig.finish()
    assert any("consultation-1-votes.csv saved to" in line for line in printed), printed
    saved_csv = rig.saved("committee", "consultation-1-votes.csv")
    assert saved_csv.read_text(encoding="utf-8").startswith(",".join(POLIS_VOTES_HEADER) + "\n")

    await session.feed("/as r1")
    offer("r1")
    out = await session.feed("1")
    assert "Only the committee and the community's staff can export a consultation's outcome." in out
    assert not rig.scheduler.jobs  # nothing asked of the jobs' process
    assert await rig.finish() == []
    assert not (tmp_path / "files" / "r1").exists()


# --- a consultation nobody voted in yet -------------------------------------------------------------------------


async def _unvoted(uows: UnitOfWorkFactory, clock: FakeClock, *, channel: str = "telegram") -> World:
    """The world's community and people, and a second consultation, open, with a statement and no vote."""
    world = await build_world(uows, clock, channel=channel)
    now = clock.now()
    async with uows() as uow:
        consultation = await create(
            uow,
            world.worker,
            ConsultationDraft(
                community_id=world.community_id,
                title=UNVOTED_TITLE,
                background="还没有人表态。",
                language="zh_Hans",
                opens_at=now + timedelta(hours=1),
                closes_at=now + timedelta(days=7),
            ),
        )
        assert consultation.id is not None
        assert await open_consultation(uow, consultation.id, world.worker)
        await add_statement(uow, world.worker, consultation.id, "东门应装路灯。")
        await uow.commit()
    return replace(world, consultation_id=consultation.id)


UNVOTED_TITLE = "东门路灯"


@pytest.mark.parametrize("language", ["zh_Hans", "en"])
async def test_the_pdf_report_of_a_consultation_without_votes_says_there_are_none_yet(
    uows: UnitOfWorkFactory, clock: FakeClock, localizers: Localizers, language: str
) -> None:
    world = await _unvoted(uows, clock)
    reader = localizers.get(language)
    content = await _export(uows, world, ExportFormat.PDF, reader)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    flat = text.replace(" ", "").replace("\n", "")
    assert UNVOTED_TITLE in flat
    assert reader.label("Nobody has voted yet.").replace(" ", "") in flat
    # The other files of a consultation without votes are fine too, but the per-pseudonym CSV, withheld below k.
    for fmt in (ExportFormat.XLSX, ExportFormat.JSON):
        assert await _export(uows, world, fmt, reader)
    with pytest.raises(FiguresWithheld):
        await _export(uows, world, ExportFormat.CSV, reader)


async def test_a_committee_member_gets_the_report_of_a_consultation_without_votes_in_the_chat(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    engine: AsyncEngine,
    localizers: Localizers,
    en: Localizer,
    tmp_path: Path,
) -> None:
    world = await _unvoted(uows, clock, channel="console")
    rig = ExportRig(uows, localizers, clock, engine, tmp_path, [COMMITTEE])
    rig.session.deliver("committee", SendText(UNVOTED_TITLE, buttons=export_keyboard(en, world.consultation_id)))
    out = await rig.session.feed("3")
    assert out == ["Preparing the file… It will arrive in this chat when it is ready."]
    printed = await rig.finish()
    name = export_filename(world.consultation_id, ExportFormat.PDF)
    assert any(f"{name} saved to" in line for line in printed), printed
    saved = rig.saved("committee", name)
    assert "Nobody has voted yet." in "".join(page.extract_text() for page in PdfReader(saved).pages)
