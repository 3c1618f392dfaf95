"""The keyed audit chain and its head, on both databases: what someone with only database access can do to the
log (cut entries off its end, empty it, rewrite it with recomputed hashes) and how `verify` with a head
published earlier shows it; the seal that keys a chain written before the key; the entries' content."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select

from community import audit
from community.clock import FakeClock
from community.demo import seed_demo
from community.errors import LinliError
from community.keys import SiteKey
from community.models import AuditEntry
from community.unit_of_work import UnitOfWorkFactory
from tests.support.demo_consultation import demo_consultation

Rehash = Callable[[str, str], str]


async def _published(uows: UnitOfWorkFactory) -> audit.Head:
    """The demo's log, and its head as an operator would publish it (`linli audit head`)."""
    async with uows() as uow:
        await seed_demo(uow)
        await uow.commit()
    async with uows() as uow:
        report = await audit.head(uow)
    assert report.ok and report.head.count > 10
    return report.head


async def _verify(uows: UnitOfWorkFactory, expected: audit.Head | None = None) -> audit.ChainReport:
    async with uows() as uow:
        return await audit.verify(uow, expected=expected)


async def _cut_last(uows: UnitOfWorkFactory, n: int | None) -> None:
    """Delete the last n entries (all of them for None), as someone with write access to the database."""
    async with uows() as uow:
        ids = (await uow.session.exec(select(AuditEntry.id).order_by(col(AuditEntry.id).desc()))).all()
        doomed = ids if n is None else ids[:n]
        await uow.session.exec(delete(AuditEntry).where(col(AuditEntry.id).in_(doomed)))
        await uow.commit()


def _canonical(entry: AuditEntry) -> str:
    """An entry's content as the chain hashes it: the code is public, so an attacker has this too."""
    return json.dumps(
        [
            entry.at.isoformat(),
            entry.community_id,
            entry.actor_id,
            entry.action,
            entry.subject_type,
            entry.subject_id,
            entry.data,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _sha256(prev_hash: str, canonical: str) -> str:
    """How the chain was hashed before it was keyed."""
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _other_key() -> Rehash:
    key = SiteKey.generate()
    return lambda prev_hash, canonical: key.digest("audit", prev_hash, canonical)


async def _rewrite(uows: UnitOfWorkFactory, rehash: Rehash, change: Callable[[AuditEntry], None] | None = None) -> None:
    """Rewrite every entry's hashes (after changing entries, if asked), as a forger with the database only."""
    async with uows() as uow:
        entries = (await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
        prev_hash = audit.GENESIS
        for entry in entries:
            if change is not None:
                change(entry)
            entry.prev_hash = prev_hash
            entry.hash = prev_hash = rehash(prev_hash, _canonical(entry))
            uow.session.add(entry)
        await uow.commit()


async def test_an_untouched_log_verifies_against_its_published_head_and_may_grow(
    uows: UnitOfWorkFactory,
) -> None:
    head = await _published(uows)
    assert (await _verify(uows, head)).ok
    async with uows() as uow:
        await audit.record(uow, action="test.later", subject_type="test", subject_id=1)
        await uow.commit()
    grown = await _verify(uows, head)
    assert grown.ok and grown.head.count == head.count + 1
    assert audit.Head.parse(str(head)) == head


async def test_the_last_entry_cut_off_is_found_only_with_the_published_head(uows: UnitOfWorkFactory) -> None:
    head = await _published(uows)
    await _cut_last(uows, 1)
    # What the chain alone says (and all `verify` could say before): whole.
    assert (await _verify(uows)).ok
    report = await _verify(uows, head)
    assert not report.ok and report.problem == audit.TRUNCATED
    assert report.head.count == head.count - 1


async def test_the_last_five_cut_off_are_found(uows: UnitOfWorkFactory) -> None:
    head = await _published(uows)
    await _cut_last(uows, 5)
    report = await _verify(uows, head)
    assert report.problem == audit.TRUNCATED and report.head.count == head.count - 5


async def test_an_emptied_log_is_truncated_not_intact(uows: UnitOfWorkFactory) -> None:
    head = await _published(uows)
    await _cut_last(uows, None)
    report = await _verify(uows, head)
    assert report.problem == audit.TRUNCATED and report.head == audit.EMPTY


async def test_cut_then_refilled_to_the_same_length_is_a_rewrite(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    """Entries cut off and as many written again by Linli itself: the count matches, the hash does not."""
    head = await _published(uows)
    await _cut_last(uows, 2)
    clock.advance(timedelta(minutes=1))
    async with uows() as uow:
        for n in range(2):
            await audit.record(uow, action="test.refill", subject_type="test", subject_id=n)
        await uow.commit()
    assert (await _verify(uows)).ok
    report = await _verify(uows, head)
    assert report.problem == audit.REWRITTEN


async def test_a_log_rewritten_with_plain_sha256_is_found_even_without_a_head(uows: UnitOfWorkFactory) -> None:
    head = await _published(uows)

    def forge(entry: AuditEntry) -> None:
        if entry.action == "membership.added":
            entry.data = '{"reason":"demo","roles":["street_administrator"]}'

    await _rewrite(uows, _sha256, forge)
    report = await _verify(uows)
    assert not report.ok and report.problem == audit.LEGACY and report.head == audit.EMPTY
    assert not (await _verify(uows, head)).ok


async def test_a_log_rewritten_under_another_key_is_found(uows: UnitOfWorkFactory) -> None:
    head = await _published(uows)
    await _rewrite(uows, _other_key())
    report = await _verify(uows)
    assert report.problem == audit.BROKEN_CONTENT and report.head == audit.EMPTY
    assert not (await _verify(uows, head)).ok


async def test_cut_and_rewritten_under_another_key_is_found(uows: UnitOfWorkFactory) -> None:
    head = await _published(uows)
    await _cut_last(uows, 3)
    await _rewrite(uows, _other_key())
    assert not (await _verify(uows, head)).ok


async def test_the_entries_hashes_are_keyed(uows: UnitOfWorkFactory, site_key: SiteKey) -> None:
    await _published(uows)
    async with uows() as uow:
        first = (await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).first()
    assert first is not None
    assert first.hash == site_key.digest("audit", audit.GENESIS, _canonical(first))
    assert first.hash != _sha256(audit.GENESIS, _canonical(first))


# ---- a log from before the key: the seal ---------------------------------------------------------------------


async def _legacy_log(uows: UnitOfWorkFactory) -> audit.Head:
    """The demo's log as a version before the key wrote it (plain SHA-256), and the head it had then."""
    await _published(uows)
    await _rewrite(uows, _sha256)
    async with uows() as uow:
        entries = (await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    return audit.Head(len(entries), entries[-1].hash)


async def test_a_legacy_log_is_sealed_once_and_then_verifies(uows: UnitOfWorkFactory) -> None:
    legacy = await _legacy_log(uows)
    async with uows() as uow:
        assert await audit.needs_seal(uow)
    report = await _verify(uows)
    assert report.legacy and not report.ok

    async with uows() as uow:
        sealing = await audit.seal(uow, expected=legacy)
        await uow.commit()
    assert sealing.legacy == legacy and sealing.head.count == legacy.count + 1
    report = await _verify(uows, sealing.head)
    assert report.ok and report.head == sealing.head
    async with uows() as uow:
        assert not await audit.needs_seal(uow)
        last = (await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()))).first()
        assert last is not None and last.action == audit.SEALED
        assert json.loads(last.data) == {"legacy_entries": legacy.count, "legacy_head": str(legacy)}
        # A keyed log has nothing to seal.
        try:
            await audit.seal(uow)
        except audit.NothingToSeal:
            pass
        else:
            raise AssertionError("a keyed log was sealed again")


async def test_entries_written_after_the_upgrade_but_before_the_seal_are_sealed_too(uows: UnitOfWorkFactory) -> None:
    legacy = await _legacy_log(uows)
    async with uows() as uow:
        await audit.record(uow, action="test.after_upgrade", subject_type="test", subject_id=1)
        await uow.commit()
    async with uows() as uow:
        sealing = await audit.seal(uow)
        await uow.commit()
    assert sealing.legacy.count == legacy.count + 1
    assert (await _verify(uows, sealing.head)).ok


async def _refused(uows: UnitOfWorkFactory, expected: audit.Head | None = None) -> LinliError:
    async with uows() as uow:
        try:
            await audit.seal(uow, expected=expected)
        except audit.CannotSeal as refused:
            return refused
    raise AssertionError("the seal went through")


async def test_a_tampered_legacy_log_is_not_sealed(uows: UnitOfWorkFactory) -> None:
    await _legacy_log(uows)
    async with uows() as uow:
        ids = (await uow.session.exec(select(AuditEntry.id).order_by(col(AuditEntry.id)))).all()
        changed = update(AuditEntry).where(col(AuditEntry.id) == ids[3]).values(data='{"roles":["community_worker"]}')
        await uow.session.exec(changed)
        await uow.commit()
    refused = await _refused(uows)
    assert refused.params["problem"] == audit.BROKEN_CONTENT
    assert (await _verify(uows)).legacy  # nothing was re-hashed


async def test_a_legacy_log_cut_since_its_published_head_is_not_sealed(uows: UnitOfWorkFactory) -> None:
    legacy = await _legacy_log(uows)
    await _cut_last(uows, 2)
    refused = await _refused(uows, legacy)
    assert refused.params["problem"] == audit.TRUNCATED


# ---- what entries hold -----------------------------------------------------------------------------------------


async def test_statement_added_records_the_statement_id_as_a_number(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    made = await demo_consultation(
        uows,
        clock,
        title="Trees by the east gate?",
        background="Planting four trees where the bicycles stand now.",
        statements=["Trees give shade in summer."],
        opens_in=timedelta(days=1),
    )
    async with uows() as uow:
        entry = (
            await uow.session.exec(select(AuditEntry).where(AuditEntry.action == "consultation.statement_added"))
        ).one()
    assert entry.subject_id == made.consultation_id
    assert json.loads(entry.data)["statement_id"] == made.statement_ids[0]  # a number, not "(1,)"
