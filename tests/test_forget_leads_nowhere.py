"""After /forget nothing leads from the person's id to their name or address, and the audit log still verifies.

孙小梅 lives alone at 9号楼 1单元 902 in 梧桐社区 (the demo's): she asks to join, the worker approves her, she
votes and adds a statement in a consultation, then erases her data. Then every path from her old person id is
walked as someone reading the database would: each column that refers to a person, the audit entries by
actor, subject and the ids in their data, and every row those lead to, a level or two on (households,
invitations, join requests). Neither her name, nor her address, nor her phone is found on the way."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select

from bot.channels.console import ConsoleSession, ConsoleUser
from bot.conversation import Conversation
from bot.rendering import Localizer, Localizers
from community import audit
from community.clock import FakeClock
from community.communities import add_community, add_member, household
from community.demo import WUTONG
from community.models import AuditEntry, Household, Invitation, Person
from community.notice_models import OutboxMessage
from community.people import identify
from community.privacy import forget
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWork, UnitOfWorkFactory
from community.verification import create_invitation, redeem_invitation
from tests.support.console import DeliveringSession, buttons, has, press, script, tap
from tests.support.demo_consultation import demo_consultation
from tests.support.demo_people import WORKER

NAME = "孙小梅"
ADDRESS = "9号楼 1单元 902"
PHONE = "+8613700001234"
SUN = ConsoleUser("sun", NAME, "en")
TITLE = "Trees by the east gate?"


# ---- the walk ------------------------------------------------------------------------------------------------


def _table(name: str) -> Table | None:
    found = SQLModel.metadata.tables.get(name)
    if found is None:
        found = SQLModel.metadata.tables.get(f"consultation_{name}")
    return found


async def _rows(uow: UnitOfWork, table: Table, column: str, value: Any) -> list[dict[str, Any]]:
    connection = await uow.session.connection()
    result = await connection.execute(sa_select(table).where(table.c[column] == value))
    return [dict(row._mapping) for row in result]


async def _follow(uow: UnitOfWork, table: Table, row: dict[str, Any], depth: int, seen: list[str]) -> None:
    """Record the row's values, then the rows its foreign keys point at, depth levels on."""
    seen.append(f"{table.name}: {row!r}")
    if depth == 0:
        return
    for column in table.columns:
        value = row.get(column.name)
        for foreign in column.foreign_keys:
            if value is None:
                continue
            target = foreign.column.table
            assert isinstance(target, Table)
            for found in await _rows(uow, target, foreign.column.name, value):
                await _follow(uow, target, found, depth - 1, seen)


def _ids_in(data: Any) -> list[tuple[str, int]]:
    """("household", 3) for every "household_id": 3 in an entry's data, at any depth."""
    found: list[tuple[str, int]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key.endswith("_id") and isinstance(value, int):
                found.append((key.removesuffix("_id"), value))
            found.extend(_ids_in(value))
    elif isinstance(data, list):
        for value in data:
            found.extend(_ids_in(value))
    return found


async def reachable(uow: UnitOfWork, person_id: int) -> tuple[list[str], list[AuditEntry]]:
    """Everything a query starting from this person id reaches, as text, and the audit entries on the way."""
    seen: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            refers = any(foreign.column.table.name == "person" for foreign in column.foreign_keys)
            if refers or (table.name == "person" and column.name == "id"):
                for row in await _rows(uow, table, column.name, person_id):
                    await _follow(uow, table, row, 2, seen)
    mentioning: list[AuditEntry] = []
    for entry in (await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all():
        data = json.loads(entry.data)
        by_subject = entry.subject_type == "person" and entry.subject_id == person_id
        if entry.actor_id == person_id or by_subject or ("person", person_id) in _ids_in(data):
            mentioning.append(entry)
    for entry in mentioning:
        seen.append(f"audit_entry: {entry!r}")
        leads = [(entry.subject_type, entry.subject_id), *_ids_in(json.loads(entry.data))]
        for name, value in leads:
            target = _table(name)
            if target is not None and value is not None:
                for row in await _rows(uow, target, "id", value):
                    await _follow(uow, target, row, 2, seen)
    return seen, mentioning


def assert_leads_nowhere(seen: Sequence[str], *secrets: str) -> None:
    for secret in secrets:
        leaks = [line for line in seen if secret in line]
        assert not leaks, f"{secret} is reachable: {leaks}"


# ---- the story in the console ----------------------------------------------------------------------------------


@pytest.fixture
async def consultation_id(uows: UnitOfWorkFactory, clock: FakeClock) -> int:
    """The demo, and 李娜's consultation for the whole of 梧桐社区, open."""
    made = await demo_consultation(
        uows,
        clock,
        title=TITLE,
        background="Four trees where the bicycles stand now.",
        statements=["Trees give shade in summer."],
    )
    return made.consultation_id


@pytest.fixture
def session(
    uows: UnitOfWorkFactory, conversation: Conversation, localizers: Localizers, tmp_path: Path
) -> ConsoleSession:
    """The console as `linli run` runs it: each line's messages to other people are delivered before the next."""
    return DeliveringSession(uows, conversation, (WORKER, SUN), localizers.get("en"), files_dir=tmp_path / "files")


async def test_after_forget_no_path_from_her_id_reaches_her_name_or_address(
    session: ConsoleSession, uows: UnitOfWorkFactory, consultation_id: int, zh: Localizer
) -> None:
    # She asks to join 梧桐社区, living alone at her address, and shares her phone.
    out = await script(session, "/as sun", "/start", "2")
    if WUTONG in buttons(out):
        out = await tap(session, out, WUTONG)
    await script(session, NAME, ADDRESS, f"/contact {PHONE}")
    out = await session.feed("1")  # Send the request
    assert has(out, "has been sent")

    # The worker (who reads Chinese) approves her.
    out = await session.feed("/as worker")
    assert has(out, NAME) and has(out, ADDRESS)
    out = await session.feed(press(out, zh.label("✅ Approve")))
    assert has(out, f"→ a message was sent to {NAME}")

    # She takes part: a vote and a statement of her own.
    out = await script(session, "/as sun", "/consult")
    out = await tap(session, out, TITLE, "👍 Agree")
    out = await tap(session, out, "✍️ Add a statement")
    out = await session.feed("More shade for the benches, please.")
    assert has(out, "waits for a moderator")

    async with uows() as uow:
        person_id = (await uow.session.exec(select(Person.id).where(Person.display_name == NAME))).one()
        assert person_id is not None
        seen, mentioning = await reachable(uow, person_id)
        head = (await audit.head(uow)).head
    # Before: her id leads to all three, through her own rows and through the log.
    assert any(NAME in line for line in seen) and any(ADDRESS in line for line in seen)
    assert any(PHONE in line for line in seen)
    assert {"membership.added", "join_request.submitted", "join_request.approved"} <= {e.action for e in mentioning}

    out = await script(session, "/forget")
    out = await session.feed(press(out, "Erase my data"))
    assert has(out, "has been erased")

    async with uows() as uow:
        seen, mentioning = await reachable(uow, person_id)
        report = await audit.verify(uow, expected=head)
    assert_leads_nowhere(seen, NAME, ADDRESS, PHONE)
    assert "person.forgotten" in {entry.action for entry in mentioning}  # the log still says what happened
    assert report.ok, report
    # Nor does any message kept in the outbox: the request the worker got about her went straight to the
    # worker's chat, and the outbox rows are only ever linked to their recipient, whom forget blanks.
    async with uows() as uow:
        kept = [repr(row) for row in (await uow.session.exec(select(OutboxMessage))).all()]
    assert_leads_nowhere(kept, NAME, ADDRESS, PHONE)


# ---- a log written before this version, and invitations for the address ----------------------------------------


async def test_an_emptied_household_loses_its_address_even_where_an_older_entry_names_it(
    uows: UnitOfWorkFactory,
) -> None:
    """An entry as versions before this one wrote it ("household_id" in membership.added) still names her
    household; the household, left without members, no longer has an address. A code for the address that no
    one has used yet still brings its holder there."""
    async with uows() as uow:
        community = await add_community(uow, name="康乐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        sun = await identify(uow, channel="console", external_id="sun", chat_id="sun", display_name=NAME)
        used = await create_invitation(
            uow, actor_id=None, community_id=community.id, role=Role.HOUSEHOLD_REPRESENTATIVE, household_label=ADDRESS
        )
        spare = await create_invitation(uow, actor_id=None, community_id=community.id, household_label=ADDRESS)
        joined = await redeem_invitation(uow, identity=sun, code=used.code)
        assert joined.joined is not None
        home = await household(uow, community.id, ADDRESS)
        await audit.record(
            uow,
            action="membership.added",
            subject_type="person",
            subject_id=sun.person_id,
            community_id=community.id,
            data={"household_id": home.id, "roles": ["resident"], "reason": "older version"},
        )
        neighbour = await identify(uow, channel="console", external_id="li", chat_id="li", display_name="李四")
        shared = await household(uow, community.id, "9号楼 1单元 901")
        await add_member(
            uow,
            person_id=neighbour.person_id,
            community_id=community.id,
            roles={Role.RESIDENT},
            household_id=shared.id,
            reason="test",
        )
        await uow.commit()

    async with uows() as uow:
        await forget(uow, sun.person_id)
        await uow.commit()

    async with uows() as uow:
        seen, mentioning = await reachable(uow, sun.person_id)
        assert "older version" in " ".join(entry.data for entry in mentioning)
        assert_leads_nowhere(seen, NAME, ADDRESS)
        assert (await audit.verify(uow)).ok
        # The spare code now points at a household of its own with the address; the neighbour's is untouched.
        spare_row = await uow.session.get(Invitation, spare.invitation.id)
        assert spare_row is not None and spare_row.household_id not in (None, home.id)
        moved = await uow.session.get(Household, spare_row.household_id)
        assert moved is not None and moved.label == ADDRESS
        kept = await uow.session.get(Household, shared.id)
        assert kept is not None and kept.label == "9号楼 1单元 901"

        newcomer = await identify(uow, channel="console", external_id="new", chat_id="new", display_name="新人")
        arrival = await redeem_invitation(uow, identity=newcomer, code=spare.code)
        assert arrival.joined is not None and arrival.joined.household is not None
        assert arrival.joined.household.label == ADDRESS
