"""Reading a consultation's votes in bulk (consultation.vote_reading, consultations.vote_matrix): PostgreSQL's binary
COPY parsed whatever the chunks it arrives in, and the same matrix on both databases as a plain query gives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import insert
from sqlmodel import select

import consultation.vote_reading as vote_reading
from community.models import Community
from community.roles import CommunityKind
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import _positions, vote_matrix
from consultation.models import Consultation, ConsultationStatus, Participant, Statement, StatementStatus, Vote

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ROW = vote_reading._ROW


def binary_copy(participants: list[int], statements: list[int], values: list[int], extension: bytes = b"") -> bytes:
    """What PostgreSQL sends for COPY (SELECT int4, int4, int2) TO STDOUT (FORMAT binary)."""
    rows = np.zeros(len(values), dtype=ROW)
    rows["fields"] = 3
    rows["participant_length"], rows["participant"] = 4, participants
    rows["statement_length"], rows["statement"] = 4, statements
    rows["value_length"], rows["value"] = 2, values
    header = vote_reading._SIGNATURE + (0).to_bytes(4, "big") + len(extension).to_bytes(4, "big") + extension
    return header + rows.tobytes() + vote_reading._TRAILER


def fed(data: bytes, sizes: list[int]) -> vote_reading.StoredVotes:
    parser = vote_reading._BinaryRows()
    start = 0
    for size in sizes:
        asyncio.run(parser.write(data[start : start + size]))
        start += size
    asyncio.run(parser.write(data[start:]))
    return parser.finish()


@pytest.mark.parametrize("extension", [b"", b"\x01\x02\x03"])
def test_the_binary_copy_is_read_whatever_chunks_it_arrives_in(
    monkeypatch: pytest.MonkeyPatch, extension: bytes
) -> None:
    monkeypatch.setattr(vote_reading, "_PARSE_BYTES", 1)  # parse after every chunk: rows split across them
    rng = np.random.default_rng(0)
    participants = rng.integers(1, 2**31 - 1, size=500).tolist()
    statements = rng.integers(1, 2**31 - 1, size=500).tolist()
    values = rng.integers(-1, 2, size=500).tolist()
    data = binary_copy(participants, statements, values, extension)
    for sizes in ([1] * 40, rng.integers(1, 60, size=200).tolist(), [len(data)]):
        stored = fed(data, sizes)
        assert stored.participant_ids.tolist() == participants
        assert stored.statement_ids.tolist() == statements
        assert stored.values.tolist() == values
    empty = fed(binary_copy([], [], []), [3])
    assert empty.participant_ids.size == empty.statement_ids.size == empty.values.size == 0


def test_a_binary_copy_of_another_shape_or_cut_short_is_refused() -> None:
    good = binary_copy([1, 2], [3, 4], [1, -1])
    with pytest.raises(ValueError):
        fed(good[:-1], [])  # no trailer
    nulled = bytearray(good)
    nulled[len(nulled) - 2 - ROW.itemsize + 18 : len(nulled) - 2 - ROW.itemsize + 22] = b"\xff\xff\xff\xff"
    with pytest.raises(ValueError):
        fed(bytes(nulled), [])  # the last row's value is NULL


async def test_the_vote_matrix_is_the_stored_votes_on_both_databases(
    uows: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two consultations' votes interleaved: the matrix of one holds its own, every one, and only those on its
    approved statements and on the rejected ones voted on (moderated out); read in pieces of a few rows."""
    monkeypatch.setattr(vote_reading, "_PARSE_BYTES", 100)
    monkeypatch.setattr(vote_reading, "FETCH_BATCH", 37)
    rng = np.random.default_rng(1)
    async with uows() as uow:
        connection = await uow.session.connection()  # Core inserts, many rows at once
        await connection.execute(
            insert(Community), [{"name": "梧桐社区", "kind": CommunityKind.NEIGHBOURHOOD, "created_at": NOW}]
        )
        consultation = {
            "community_id": 1,
            "title": "t",
            "background": "b",
            "language": "zh_Hans",
            "audience": "{}",
            "opens_at": NOW,
            "closes_at": NOW,
            "status": ConsultationStatus.OPEN,
            "created_at": NOW,
        }
        await connection.execute(insert(Consultation), [consultation, consultation])
        # Statements of both consultations, alternating, in every status.
        statuses = [StatementStatus.APPROVED] * 7 + [StatementStatus.REJECTED] * 2 + [StatementStatus.PENDING]
        statement_rows = [
            {"consultation_id": 1 + n % 2, "text": f"s{n}", "normalized": f"s{n}", "status": statuses[n // 2 % 10]}
            for n in range(20)
        ]
        await connection.execute(insert(Statement), [{**row, "created_at": NOW} for row in statement_rows])
        await connection.execute(
            insert(Participant),
            [{"consultation_id": 1 + n % 2, "pseudonym": f"p{n:03d}", "created_at": NOW} for n in range(120)],
        )
        statement_of = {n + 1: row for n, row in enumerate(statement_rows)}
        votes = []
        for participant in range(1, 121):
            for statement, row in statement_of.items():
                same = row["consultation_id"] == 1 + (participant - 1) % 2
                voted_on = row["status"] != StatementStatus.PENDING and statement != 5  # 5: rejected, no vote
                if same and voted_on and rng.random() < 0.6:
                    votes.append((participant, statement, int(rng.integers(-1, 2))))
        await connection.execute(
            insert(Vote), [{"participant_id": p, "statement_id": s, "value": v, "at": NOW} for p, s, v in votes]
        )
        await uow.commit()

    async with uows() as uow:
        matrix = await vote_matrix(uow, 1)
        rows = (await uow.session.exec(select(Participant.id, Participant.pseudonym))).all()
    pseudonyms = {pid: pseudonym for pid, pseudonym in rows}

    mine = [(p, s, v) for p, s, v in votes if statement_of[s]["consultation_id"] == 1]
    approved = [s for s, row in statement_of.items() if row["consultation_id"] == 1 and row["status"] == "approved"]
    voted_rejected = {s for _, s, _ in mine if statement_of[s]["status"] == "rejected"}
    assert voted_rejected and 5 not in voted_rejected
    assert matrix.statement_ids == tuple(sorted({*approved, *voted_rejected}))
    assert matrix.moderated_out == frozenset(voted_rejected)
    voters = sorted({p for p, _, _ in mine})
    assert matrix.participants == tuple(pseudonyms[p] for p in voters)
    expected = np.full((len(voters), len(matrix.statement_ids)), np.nan)
    for p, s, v in mine:
        expected[voters.index(p), matrix.statement_ids.index(s)] = v
    assert np.array_equal(matrix.votes, expected, equal_nan=True)


@pytest.mark.parametrize("spread", [1, 10_000_000])  # ids close together (a table), or far apart (a search)
def test_ids_are_found_in_place_and_strangers_are_minus_one(spread: int) -> None:
    known = np.array([3, 5, 9, 12], dtype=np.int64) * spread
    wanted = np.array([5, 3, 12, 9, 9], dtype=np.int32) * np.int32(spread)
    assert _positions(known, wanted).tolist() == [1, 0, 3, 2, 2]
    strangers = np.array([1, 4, 5, 13, 2**31 - 1], dtype=np.int64)
    assert _positions(known, strangers).tolist() == [-1, -1, 1 if spread == 1 else -1, -1, -1]
    assert _positions(known, np.empty(0, dtype=np.int64)).size == 0
