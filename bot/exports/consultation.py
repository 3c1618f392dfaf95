"""One consultation's outcome as a file for one reader: XLSX (every table, and the raw votes), CSV (the raw votes
in Pol.is's votes.csv layout), PDF (the committee's report, with the opinion map and charts) or JSON (the outcome,
machine-readable).

The figures come from consultation.outcome (which also checks that the reader may have them: the committee and
staff); this module only lays them out. The raw votes carry pseudonyms, never a person.

While fewer than k have voted (Outcome.withheld, community.anonymity) the domain hands over no vote counts, groups
or opinion map: the files say why in their place, and the CSV of raw votes is refused (FiguresWithheld)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from bot.consultations.buttons import ExportFormat
from bot.exports.csvfile import write_csv
from bot.exports.formats import Formats
from bot.exports.jsonfile import write_json
from bot.exports.rows import Batches, Row, Rows
from bot.exports.xlsx import Column, Kind, Sheet, excel_serial, write_xlsx
from bot.notices.render import describe_audience
from bot.rendering import Localizer
from community.communities import get_community
from community.unit_of_work import UnitOfWork
from consultation.errors import FiguresWithheld
from consultation.models import ConsultationStatus, Eligibility
from consultation.opinion_map import Stance
from consultation.outcome import Outcome, VoteCounts, compute_outcome, require_export, vote_batches
from i18n import N_

FILENAMES: Mapping[ExportFormat, str] = {
    ExportFormat.XLSX: "consultation-{id}-outcome.xlsx",
    ExportFormat.CSV: "consultation-{id}-votes.csv",
    ExportFormat.PDF: "consultation-{id}-outcome.pdf",
    ExportFormat.JSON: "consultation-{id}-outcome.json",
}
MIME_TYPES: Mapping[ExportFormat, str] = {
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.CSV: "text/csv",
    ExportFormat.PDF: "application/pdf",
    ExportFormat.JSON: "application/json",
}
# Pol.is's votes.csv, column for column (tests/data/polis/*/votes.csv): voter-id is the pseudonym here.
POLIS_VOTES_HEADER = ("timestamp", "datetime", "comment-id", "voter-id", "vote")
JSON_FORMAT = "linli.consultation.outcome"
JSON_VERSION = 1
REPORT_TEMPLATE = "consultation_report.html.j2"
CHART_STATEMENTS = 30  # statements in the report's vote chart, the most voted on
COMMON_GROUND = 5  # statements in the report's group-informed consensus

STATUS_LABELS: Mapping[ConsultationStatus, str] = {
    ConsultationStatus.DRAFT: N_("being prepared"),
    ConsultationStatus.SCHEDULED: N_("scheduled"),
    ConsultationStatus.OPEN: N_("open"),
    ConsultationStatus.CLOSED: N_("closed"),
}
ELIGIBILITY_LABELS: Mapping[Eligibility, str] = {
    Eligibility.RESIDENTS: N_("residents"),
    Eligibility.HOUSEHOLD_REPRESENTATIVES: N_("household representatives, one voice per household"),
    Eligibility.MEMBERS: N_("every member of the community"),
}
STANCE_LABELS: Mapping[Stance, str] = {Stance.AGREE: N_("agree"), Stance.DISAGREE: N_("disagree")}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class ExportedFile:
    filename: str
    mime_type: str


def export_filename(consultation_id: int, fmt: ExportFormat) -> str:
    return FILENAMES[fmt].format(id=consultation_id)


async def export_consultation(
    uow: UnitOfWork,
    actor_id: int | None,
    consultation_id: int,
    fmt: ExportFormat,
    l: Localizer,  # noqa: E741 - the house name for a localizer
    stream: IO[bytes],
) -> ExportedFile:
    """Write the consultation's outcome in ``fmt`` to ``stream`` for the reader ``l`` (their language; times in the
    consultation's community's time zone). actor_id: the person asking (committee or staff), None for the operator.
    Refused (ExportNotAllowed, ConsultationNotFound) before anything is written."""
    # Every row of a CSV is one pseudonym's vote: refused before a byte is written while fewer than k have voted.
    consultation = await require_export(uow, actor_id, consultation_id, per_vote=fmt.per_vote)
    exported = ExportedFile(export_filename(consultation_id, fmt), MIME_TYPES[fmt])
    if fmt == ExportFormat.CSV:
        zone = ZoneInfo((await get_community(uow, consultation.community_id)).timezone)
        await write_csv(
            stream, POLIS_VOTES_HEADER, Batches(_polis_rows(uow, actor_id, consultation_id, zone)), lineterminator="\n"
        )
        return exported
    outcome = await compute_outcome(uow, actor_id, consultation_id)
    reader = l.with_timezone(outcome.timezone)
    if fmt == ExportFormat.JSON:
        write_json(stream, outcome_document(outcome))
    elif fmt == ExportFormat.XLSX:
        await write_xlsx(
            stream, outcome_sheets(outcome, reader, Batches(_vote_rows(uow, actor_id, consultation_id, reader)))
        )
    else:
        from bot.exports.pdf import write_pdf  # WeasyPrint and matplotlib load only when a report is asked for

        # Charts and layout take seconds of CPU: in a thread, so the event loop keeps serving other chats (on
        # PostgreSQL; on SQLite their units of work still wait for this one's turn).
        html = await asyncio.to_thread(report_html, outcome, reader)
        await asyncio.to_thread(write_pdf, stream, html)
    return exported


# --- shared labels ---------------------------------------------------------------------------------------------


def group_name(l: Localizer, index: int) -> str:  # noqa: E741
    """Groups are lettered as on Pol.is: Group A is the largest."""
    return l.label("Group %(name)s", name=chr(ord("A") + index))


def _by_whom(l: Localizer, by_staff: bool) -> str:  # noqa: E741
    return l.label("staff") if by_staff else l.label("a participant")


def _stance(l: Localizer, stance: Stance) -> str:  # noqa: E741
    return l.label(STANCE_LABELS[stance])


def withheld_note(l: Localizer, outcome: Outcome) -> str | None:  # noqa: E741
    """Why the outcome shows no vote counts, groups or opinion map (fewer than k voted); None when it shows them."""
    if not outcome.withheld:
        return None
    f = Formats(l)
    return l.label(FiguresWithheld.message, k=f.number(outcome.min_group_size), voters=f.number(outcome.figures.voters))


def _share(counts: VoteCounts, stance: Stance) -> float | None:
    if not counts.seen:
        return None
    return (counts.agree if stance is Stance.AGREE else counts.disagree) / counts.seen


# --- CSV: the raw votes, Pol.is's layout --------------------------------------------------------------------------


def polis_datetime(moment: datetime, zone: ZoneInfo) -> str:
    """Pol.is's datetime column ("Wed Jun 18 08:16:54 WIB 2014"), in the community's time zone, in English
    whatever the machine's locale."""
    local = moment.astimezone(zone)
    return (
        f"{_DAYS[local.weekday()]} {_MONTHS[local.month - 1]} {local.day:02d} "
        f"{local:%H:%M:%S} {local.tzname()} {local.year}"
    )


async def _polis_rows(
    uow: UnitOfWork, actor_id: int | None, consultation_id: int, zone: ZoneInfo
) -> AsyncIterator[Sequence[Row]]:
    async for votes in vote_batches(uow, actor_id, consultation_id):
        yield [
            (round(at.timestamp() * 1000), polis_datetime(at, zone), statement_id, participant, value)
            for at, statement_id, participant, value in votes
        ]


# --- JSON ----------------------------------------------------------------------------------------------------------


def _counts(counts: VoteCounts | None) -> dict[str, int] | None:
    if counts is None:
        return None
    return {"agree": counts.agree, "disagree": counts.disagree, "pass": counts.passed, "votes": counts.seen}


def outcome_document(outcome: Outcome) -> dict[str, Any]:
    """The outcome as one JSON document: English keys, times in ISO 8601 (UTC), days in the community's time zone."""
    f = outcome.figures
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "computed_at": outcome.computed_at,
        "final": outcome.is_final,
        # Fewer voters than min_group_size (k): no vote counts (null), groups, opinion map or consensus.
        "withheld": outcome.withheld,
        "min_group_size": outcome.min_group_size,
        "consultation": {
            "id": outcome.consultation_id,
            "community": {"id": outcome.community_id, "name": outcome.community_name, "timezone": outcome.timezone},
            "title": outcome.title,
            "background": outcome.background,
            "language": outcome.language,
            "status": outcome.status,
            "eligibility": outcome.eligibility,
            "audience": {
                "buildings": list(outcome.audience.buildings),
                "groups": list(outcome.audience.groups),
                "roles": [role.value for role in outcome.audience.roles],
            },
            "allow_statements": outcome.allow_statements,
            "moderated": outcome.moderated,
            "opens_at": outcome.opens_at,
            "closes_at": outcome.closes_at,
            "opened_at": outcome.opened_at,
            "closed_at": outcome.closed_at,
        },
        "figures": {
            "participants": f.participants,
            "voters": f.voters,
            "votes": f.votes,
            "agree": f.agree,
            "disagree": f.disagree,
            "pass": f.passed,
            "statements": {"approved": f.approved, "pending": f.pending, "rejected": f.rejected},
        },
        "opinion_map": {
            "min_votes": outcome.min_votes,
            "clustered": outcome.clustered,
            "silhouette": outcome.silhouette,
        },
        "groups": [
            {
                "id": group.id,
                "label": chr(ord("A") + group.id),
                "size": group.size,
                "centre": list(group.centre),
                "representative": [
                    {
                        "statement_id": r.statement_id,
                        "stance": r.stance,
                        "n_success": r.n_success,
                        "n_trials": r.n_trials,
                        "p_success": r.p_success,
                        "p_test": r.p_test,
                        "repness": r.repness,
                        "repness_test": r.repness_test,
                        "best_agree": r.best_agree,
                    }
                    for r in group.representative
                ],
            }
            for group in outcome.groups
        ],
        "statements": [
            {
                "id": s.id,
                "text": s.text,
                "by_staff": s.by_staff,
                "overall": _counts(s.overall),
                "groups": [_counts(counts) for counts in s.by_group],
            }
            for s in outcome.statements
        ],
        "consensus": {
            stance: [
                {
                    "statement_id": c.statement_id,
                    "n_success": c.n_success,
                    "n_trials": c.n_trials,
                    "p_success": c.p_success,
                    "p_test": c.p_test,
                }
                for c in chosen
            ]
            for stance, chosen in (("agree", outcome.consensus_agree), ("disagree", outcome.consensus_disagree))
        },
        "group_informed_consensus": [
            {"statement_id": c.statement_id, "agree": c.agree, "disagree": c.disagree}
            for c in outcome.group_informed_consensus
        ],
        "divisive": [
            {"statement_id": d.statement_id, "divisiveness": d.divisiveness, "group_support": list(d.group_support)}
            for d in outcome.divisive
        ],
        "participation": [
            {"day": day.day, "new_participants": day.new_participants, "votes": day.votes}
            for day in outcome.participation
        ],
    }


# --- XLSX ----------------------------------------------------------------------------------------------------------


async def _vote_rows(
    uow: UnitOfWork,
    actor_id: int | None,
    consultation_id: int,
    l: Localizer,  # noqa: E741
) -> AsyncIterator[Sequence[Row]]:
    zone = ZoneInfo(l.timezone)
    async for votes in vote_batches(uow, actor_id, consultation_id):
        yield [
            (excel_serial(at.astimezone(zone)), statement_id, participant, value)
            for at, statement_id, participant, value in votes
        ]


def _summary_rows(outcome: Outcome, l: Localizer) -> Iterator[Row]:  # noqa: E741
    f = Formats(l)
    figures = outcome.figures
    yield l.label("Consultation"), outcome.title
    yield l.label("Number"), outcome.consultation_id
    yield l.label("Community"), outcome.community_name
    yield l.label("Status"), l.label(STATUS_LABELS[outcome.status])
    yield l.label("Opens"), f.datetime(outcome.opened_at or outcome.opens_at)
    yield l.label("Closes"), f.datetime(outcome.closed_at or outcome.closes_at)
    yield l.label("Who may take part"), l.label(ELIGIBILITY_LABELS[outcome.eligibility])
    yield l.label("Audience"), describe_audience(l, outcome.audience)
    yield l.label("Background"), outcome.background
    yield l.label("Participants"), figures.participants
    yield l.label("Participants who voted"), figures.voters
    yield l.label("Votes"), figures.votes
    withheld = withheld_note(l, outcome)
    if withheld is not None:
        yield l.label("Agree, disagree, pass, opinion groups"), withheld
    else:
        yield l.label("Agree"), figures.agree
        yield l.label("Disagree"), figures.disagree
        yield l.label("Pass"), figures.passed
    yield l.label("Statements voted on"), figures.approved
    yield l.label("Statements rejected by a moderator"), figures.rejected
    yield l.label("Statements waiting for a moderator"), figures.pending
    if withheld is None:
        yield l.label("Opinion groups"), len(outcome.groups)
        yield l.label("Participants in a group"), outcome.clustered
        yield l.label("Votes needed to be placed in a group"), outcome.min_votes
    yield l.label("Computed at"), f.datetime(outcome.computed_at)


def _statement_columns(outcome: Outcome, l: Localizer) -> list[Column]:  # noqa: E741
    columns = [
        Column(l.label("No."), Kind.INTEGER, 7),
        Column(l.label("Statement"), Kind.TEXT, 60),
        Column(l.label("Written by"), Kind.CODE, 12),
    ]
    if outcome.withheld:
        return columns
    columns += [
        Column(l.label("Agree"), Kind.INTEGER),
        Column(l.label("Disagree"), Kind.INTEGER),
        Column(l.label("Pass"), Kind.INTEGER),
        Column(l.label("Votes"), Kind.INTEGER),
        Column(l.label("Share agreeing"), Kind.PERCENT),
        Column(l.label("Share disagreeing"), Kind.PERCENT),
    ]
    for index in range(len(outcome.groups)):
        name = group_name(l, index)
        columns += [
            Column(l.label("%(group)s: agree", group=name), Kind.INTEGER),
            Column(l.label("%(group)s: disagree", group=name), Kind.INTEGER),
            Column(l.label("%(group)s: pass", group=name), Kind.INTEGER),
        ]
    return columns


def _statement_rows(outcome: Outcome, l: Localizer) -> Iterator[Row]:  # noqa: E741
    for s in outcome.statements:
        if s.overall is None:  # withheld
            yield s.id, s.text, _by_whom(l, s.by_staff)
            continue
        row: list[Any] = [
            s.id,
            s.text,
            _by_whom(l, s.by_staff),
            s.overall.agree,
            s.overall.disagree,
            s.overall.passed,
            s.overall.seen,
            _share(s.overall, Stance.AGREE),
            _share(s.overall, Stance.DISAGREE),
        ]
        for counts in s.by_group:
            row += [counts.agree, counts.disagree, counts.passed]
        yield row


def _group_rows(outcome: Outcome, l: Localizer) -> Iterator[Row]:  # noqa: E741
    for group in outcome.groups:
        name = group_name(l, group.id)
        if not group.representative:
            yield name, group.size, None, None, None, None, None, None
        for r in group.representative:
            yield (
                name,
                group.size,
                r.statement_id,
                outcome.statement(r.statement_id).text,
                _stance(l, r.stance),
                r.n_success,
                r.n_trials,
                r.n_success / r.n_trials if r.n_trials else None,
            )


def _consensus_rows(outcome: Outcome, l: Localizer) -> Iterator[Row]:  # noqa: E741
    for chosen in (outcome.consensus_agree, outcome.consensus_disagree):
        for c in chosen:
            yield (
                _stance(l, c.stance),
                c.statement_id,
                outcome.statement(c.statement_id).text,
                c.n_success,
                c.n_trials,
                c.n_success / c.n_trials if c.n_trials else None,
            )


def _group_informed_rows(outcome: Outcome) -> Iterator[Row]:
    for c in outcome.group_informed_consensus:
        yield c.statement_id, outcome.statement(c.statement_id).text, c.agree, c.disagree


def _divisive_rows(outcome: Outcome) -> Iterator[Row]:
    for d in outcome.divisive:
        yield (d.statement_id, outcome.statement(d.statement_id).text, d.divisiveness, *d.group_support)


def outcome_sheets(outcome: Outcome, l: Localizer, votes: Rows) -> list[Sheet]:  # noqa: E741
    """The workbook: a summary, the statements with their counts overall and per group, the groups, consensus,
    group-informed consensus, the most divisive statements, participation per day and every vote."""
    f = Formats(l)
    provisional = (
        (
            l.label(
                "Provisional: the consultation has not closed yet. Computed at %(when)s.",
                when=f.datetime(outcome.computed_at),
            ),
        )
        if not outcome.is_final
        else ()
    )
    title = (outcome.title,)
    group_note = l.label(
        "Groups hold the participants with at least %(votes)s votes: %(clustered)s of %(voters)s.",
        votes=f.number(outcome.min_votes),
        clustered=f.number(outcome.clustered),
        voters=f.number(outcome.figures.voters),
    )
    groups = [group_name(l, g.id) for g in outcome.groups]
    withheld = withheld_note(l, outcome)
    summary = Sheet(
        l.label("Summary"),
        (Column(l.label("Item"), Kind.CODE, 34), Column(l.label("Value"), Kind.TEXT, 70)),
        _summary_rows(outcome, l),
        preface=title + provisional + ((withheld,) if withheld is not None else ()),
    )
    participation = Sheet(
        l.label("Participation"),
        (
            Column(l.label("Day"), Kind.DATE),
            Column(l.label("New participants"), Kind.INTEGER, 16),
            Column(l.label("Votes"), Kind.INTEGER),
        ),
        ((day.day, day.new_participants, day.votes) for day in outcome.participation),
        preface=(l.label("Days in the community's time zone (%(timezone)s).", timezone=outcome.timezone),),
    )
    if withheld is not None:
        # Fewer than k voted: no counts, groups, consensus or votes, only what was put and who took part.
        statements = Sheet(
            l.label("Statements"), _statement_columns(outcome, l), _statement_rows(outcome, l), preface=(withheld,)
        )
        return [summary, statements, participation]
    return [
        summary,
        Sheet(
            l.label("Statements"), _statement_columns(outcome, l), _statement_rows(outcome, l), preface=(group_note,)
        ),
        Sheet(
            l.label("Groups"),
            (
                Column(l.label("Group"), Kind.CODE, 10),
                Column(l.label("Participants"), Kind.INTEGER),
                Column(l.label("No."), Kind.INTEGER, 7),
                Column(l.label("Representative statement"), Kind.TEXT, 60),
                Column(l.label("The group mostly votes"), Kind.CODE, 12),
                Column(l.label("Votes so"), Kind.INTEGER),
                Column(l.label("Group votes"), Kind.INTEGER),
                Column(l.label("Share"), Kind.PERCENT),
            ),
            _group_rows(outcome, l),
            preface=(group_note,),
        ),
        Sheet(
            l.label("Consensus"),
            (
                Column(l.label("Most participants"), Kind.CODE, 14),
                Column(l.label("No."), Kind.INTEGER, 7),
                Column(l.label("Statement"), Kind.TEXT, 60),
                Column(l.label("Votes so"), Kind.INTEGER),
                Column(l.label("Votes"), Kind.INTEGER),
                Column(l.label("Share"), Kind.PERCENT),
            ),
            _consensus_rows(outcome, l),
            preface=(
                l.label("Statements most participants agree on, or disagree with, across the whole consultation."),
            ),
        ),
        Sheet(
            l.label("Group-informed consensus"),
            (
                Column(l.label("No."), Kind.INTEGER, 7),
                Column(l.label("Statement"), Kind.TEXT, 60),
                Column(l.label("Agreement across groups"), Kind.DECIMAL, 14),
                Column(l.label("Disagreement across groups"), Kind.DECIMAL, 14),
            ),
            _group_informed_rows(outcome),
            preface=(
                l.label(
                    "How likely every group is to agree (or disagree) with each statement, from 0 to 1: high only "
                    "where all groups agree."
                ),
            ),
        ),
        Sheet(
            l.label("Divisive"),
            (
                Column(l.label("No."), Kind.INTEGER, 7),
                Column(l.label("Statement"), Kind.TEXT, 60),
                Column(l.label("Divisiveness"), Kind.DECIMAL, 12),
                *(Column(l.label("%(group)s: support", group=name), Kind.DECIMAL, 12) for name in groups),
            ),
            _divisive_rows(outcome),
            preface=(
                l.label(
                    "Statements the groups see most differently. Support runs from -1 (all disagree) to 1 (all agree)."
                ),
            ),
        ),
        participation,
        Sheet(
            l.label("Votes"),
            (
                Column(l.label("Time"), Kind.DATETIME),
                Column(l.label("No."), Kind.INTEGER, 9),
                Column(l.label("Participant (pseudonym)"), Kind.CODE, 20),
                Column(l.label("Vote (1 agree, -1 disagree, 0 pass)"), Kind.INTEGER, 16),
            ),
            votes,
        ),
    ]


# --- PDF -----------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ReportCharts:
    """The report's charts as inline SVG; None where there is nothing to draw (no votes yet, no groups), so the
    template asks for each one and never meets an undefined name."""

    map: Markup | None = None
    votes_per_day: Markup | None = None
    participants_per_day: Markup | None = None
    statements: Markup | None = None
    divisive: Markup | None = None


def _charts(outcome: Outcome, l: Localizer) -> ReportCharts:  # noqa: E741
    # matplotlib loads here, when a report is asked for, not with every command and bot start.
    from bot.exports.charts import AGREE, DISAGREE, PASS, bars_svg, group_colour, opinion_map_svg

    f = Formats(l)
    charts = ReportCharts()
    names = [group_name(l, g.id) for g in outcome.groups]
    if outcome.positions.shape[0]:
        charts.map = Markup(opinion_map_svg(outcome.positions, outcome.group_of, names, l.label("not in a group")))
    if outcome.participation:
        days = [f.date(day.day, "MMMd") for day in outcome.participation]
        charts.votes_per_day = Markup(
            bars_svg(
                days,
                [("", [day.votes for day in outcome.participation], "#0072B2")],
                ylabel=l.label("Votes"),
                width=3.3,
            )
        )
        charts.participants_per_day = Markup(
            bars_svg(
                days,
                [("", [day.new_participants for day in outcome.participation], "#E69F00")],
                ylabel=l.label("New participants"),
                width=3.3,
            )
        )
    counted = [(s.id, s.overall) for s in outcome.statements if s.overall is not None]  # none while withheld
    voted = sorted(counted, key=lambda pair: (-pair[1].seen, pair[0]))[:CHART_STATEMENTS]
    if voted and any(counts.seen for _, counts in voted):
        voted.sort(key=lambda pair: pair[0])
        charts.statements = Markup(
            bars_svg(
                [f"#{sid}" for sid, _ in voted],
                [
                    (l.label("agree"), [counts.agree for _, counts in voted], AGREE),
                    (l.label("disagree"), [counts.disagree for _, counts in voted], DISAGREE),
                    (l.label("pass"), [counts.passed for _, counts in voted], PASS),
                ],
                ylabel=l.label("Votes"),
                stacked=True,
            )
        )
    if outcome.divisive:
        charts.divisive = Markup(
            bars_svg(
                [f"#{d.statement_id}" for d in outcome.divisive],
                [
                    (name, [d.group_support[index] for d in outcome.divisive], group_colour(index))
                    for index, name in enumerate(names)
                ],
                ylabel=l.label("Support"),
                value_range=(-1.0, 1.0),
            )
        )
    return charts


def report_html(outcome: Outcome, l: Localizer) -> str:  # noqa: E741
    """The committee's report as HTML (templates/consultation_report.html.j2), for WeasyPrint."""
    from bot.exports.charts import group_colour

    f = Formats(l)
    texts = {s.id: s.text for s in outcome.statements}

    def share(counts: VoteCounts, stance: str) -> str:
        return f.share(counts.agree if stance == "agree" else counts.disagree, counts.seen)

    helpers: dict[str, Callable[..., Any]] = {
        "text_of": texts.__getitem__,
        "group": lambda index: group_name(l, index),
        "stance": lambda stance: _stance(l, stance),
        "share": share,
        "by_whom": lambda by_staff: _by_whom(l, by_staff),
        "colour": group_colour,
    }
    # Common ground: statements whose group-informed agreement (a product over the groups) is at least what every
    # group agreeing with one chance in two would give, best first.
    floor = 0.5 ** len(outcome.groups)
    common_ground = [c for c in outcome.group_informed_consensus if c.agree >= floor][:COMMON_GROUND]
    return l.render(
        REPORT_TEMPLATE,
        o=outcome,
        f=f,
        status=l.label(STATUS_LABELS[outcome.status]),
        eligibility=l.label(ELIGIBILITY_LABELS[outcome.eligibility]),
        audience=describe_audience(l, outcome.audience),
        charts=_charts(outcome, l),
        withheld=withheld_note(l, outcome),
        lang="zh-Hans" if l.language == "zh_Hans" else l.language,
        common_ground=common_ground,
        **helpers,
    )
