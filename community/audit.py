"""The append-only, keyed hash chain of membership, role and process changes.

Each entry's hash is an HMAC (community.keys, purpose "audit") over the previous entry's hash and the entry's
canonical JSON, so changing, removing or reordering any entry breaks every hash after it, and someone who can
write the database but does not hold the site key cannot recompute the chain after a change.

What the chain alone cannot show is an entry cut off its end (or the whole chain emptied): the entries left
still chain. So the chain has a *head*, its entry count and last hash, written ``COUNT:HASH``. `linli audit
head` prints it for publication (a notice board, the committee's minutes, a disclosure); `linli audit verify
--expect-head COUNT:HASH` checks that the entry at position COUNT still has that hash. Fewer entries than the
published count is truncation; another hash at that position is a rewrite.

Entries written before the chain was keyed hold plain SHA-256 hashes. They verify as *legacy*, never as
intact: `linli audit seal` checks that the legacy chain is whole (optionally against a legacy head published
earlier), re-hashes every entry with the key, and appends an ``audit.sealed`` entry that quotes the legacy head,
so the sealed chain still answers for what it held before.

No personal data in entries: people appear only as bare person ids (actor_id, subject_id, a ``person_id`` in
data), never with a name, phone, address or household id. That is the simplest design that lets /forget work
without touching the chain: once the person's rows are erased, an id in the log leads nowhere, and nothing in
the log needs erasing (so nothing erasable has to be woven into the hashes). A per-person key that /forget
destroys would also work, but every entry would need a second, erasable layer, for data that need not be
there. Roles stay in entries: who held which power is what the log is for, and a role names no one."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text, update
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from community.errors import Conflict
from community.models import AuditEntry
from community.unit_of_work import UnitOfWork
from i18n import N_

GENESIS = "0" * 64
KEY_PURPOSE = "audit"
SEALED = "audit.sealed"
# Any constant works; PostgreSQL serialises writers on it so two processes never fork the chain.
_PG_CHAIN_LOCK = 7_349_001
_HEAD = re.compile(r"^\s*(\d{1,18})\s*:\s*([0-9a-fA-F]{64})\s*$")

BROKEN_LINK = N_("the previous hash does not match: an entry was removed or reordered")
BROKEN_CONTENT = N_(
    "the content does not match its hash: the entry was changed, or the site key is not the one the log was "
    "written with"
)
LEGACY = N_("the entry is hashed without the site key, as before the chain was keyed: run `linli audit seal`")
TRUNCATED = N_("the log has fewer entries than the published head: entries were removed")
REWRITTEN = N_("the entry at the published head's position has another hash: the log was rewritten")


@dataclass(frozen=True, slots=True)
class Head:
    """The chain's entry count and last hash; an empty chain's is 0 and the genesis hash."""

    count: int
    hash: str

    def __str__(self) -> str:
        return f"{self.count}:{self.hash}"

    @classmethod
    def parse(cls, value: str) -> Head | None:
        """A head as `linli audit head` prints it (COUNT:HASH), or None when the value is not one."""
        found = _HEAD.match(value)
        if found is None:
            return None
        count, digest = int(found[1]), found[2].lower()
        if count == 0 and digest != GENESIS:
            return None
        return cls(count, digest)


EMPTY = Head(0, GENESIS)


def _canonical(
    at: datetime,
    community_id: int | None,
    actor_id: int | None,
    action: str,
    subject_type: str,
    subject_id: int | None,
    data: str,
) -> str:
    return json.dumps(
        [at.isoformat(), community_id, actor_id, action, subject_type, subject_id, data],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _entry_canonical(entry: AuditEntry) -> str:
    return _canonical(
        entry.at, entry.community_id, entry.actor_id, entry.action, entry.subject_type, entry.subject_id, entry.data
    )


def _digest(uow: UnitOfWork, prev_hash: str, canonical: str) -> str:
    return uow.key.digest(KEY_PURPOSE, prev_hash, canonical)


def _legacy_digest(prev_hash: str, canonical: str) -> str:
    """How entries were hashed before the chain was keyed: anyone could recompute it."""
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


@functools.cache
def _head_statement() -> SelectOfScalar[str]:
    """Built once: every audited change reads the chain's head."""
    return select(AuditEntry.hash).order_by(col(AuditEntry.id).desc()).limit(1)


async def _lock_chain(uow: UnitOfWork) -> None:
    bind = uow.session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await uow.session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_PG_CHAIN_LOCK))  # type: ignore[call-overload]


async def record(
    uow: UnitOfWork,
    *,
    action: str,
    subject_type: str,
    subject_id: int | None,
    community_id: int | None = None,
    actor_id: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction: it lands with the change it describes, or not at all.
    People go in as bare ids only (see the module's docstring)."""
    session = uow.session
    prev_hash = uow.audit_head
    if prev_hash is None:
        await _lock_chain(uow)
        last = (await session.exec(_head_statement())).first()
        prev_hash = last or GENESIS
    # Microseconds are dropped so the hashed time is the time every database gives back.
    at = uow.clock.now().replace(microsecond=0)
    payload = json.dumps(dict(data or {}), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    canonical = _canonical(at, community_id, actor_id, action, subject_type, subject_id, payload)
    entry = AuditEntry(
        at=at,
        community_id=community_id,
        actor_id=actor_id,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        data=payload,
        prev_hash=prev_hash,
        hash=_digest(uow, prev_hash, canonical),
    )
    # Not flushed here: the entry is written with the transaction's next statement or at commit, in the order
    # entries were added (the chain's order), together with whatever else is pending.
    session.add(entry)
    uow.audit_head = entry.hash
    return entry


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What a walk of the chain found. head is the chain as walked (up to the first problem, if any)."""

    entries: int
    first_broken_id: int | None = None
    problem: str | None = None  # an English message id, translated by whoever shows the report
    head: Head = EMPTY
    expected: Head | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def legacy(self) -> bool:
        """The chain is whole but (partly) hashed the old way: `seal` would key it."""
        return self.problem == LEGACY


async def _entries(uow: UnitOfWork, batch: int) -> AsyncIterator[AuditEntry]:
    """Every entry in id order, in batches so a long log is walked in constant memory."""
    last_id = 0
    while True:
        rows = (
            await uow.session.exec(
                select(AuditEntry).where(col(AuditEntry.id) > last_id).order_by(col(AuditEntry.id)).limit(batch)
            )
        ).all()
        if not rows:
            return
        for entry in rows:
            yield entry
            last_id = entry.id or last_id
        uow.session.expunge_all()


async def verify(uow: UnitOfWork, batch: int = 1000, expected: Head | None = None) -> ChainReport:
    """Walk the whole chain in id order. With expected (a head published earlier), also check that the entry at
    its position still has its hash: that is what shows entries cut off the end, or a rewritten chain."""
    prev_hash = GENESIS
    count = 0
    at_expected: str | None = GENESIS if expected is not None and expected.count == 0 else None
    async for entry in _entries(uow, batch):
        canonical = _entry_canonical(entry)
        problem = None
        if entry.prev_hash != prev_hash:
            problem = BROKEN_LINK
        elif _digest(uow, prev_hash, canonical) != entry.hash:
            legacy = _legacy_digest(prev_hash, canonical) == entry.hash
            problem = LEGACY if legacy else BROKEN_CONTENT
        if problem is not None:
            return ChainReport(count + 1, entry.id, problem, Head(count, prev_hash), expected)
        count += 1
        prev_hash = entry.hash
        if expected is not None and count == expected.count:
            at_expected = entry.hash
    head = Head(count, prev_hash)
    if expected is not None:
        if count < expected.count:
            return ChainReport(count, None, TRUNCATED, head, expected)
        if at_expected != expected.hash:
            return ChainReport(count, None, REWRITTEN, head, expected)
    return ChainReport(count, head=head, expected=expected)


async def entry(uow: UnitOfWork, entry_id: int) -> AuditEntry | None:
    """One entry of the log (the one a ChainReport names as broken, say)."""
    return await uow.session.get(AuditEntry, entry_id)


async def head(uow: UnitOfWork) -> ChainReport:
    """The chain's head, for publication: only from a chain that verifies (see ChainReport.ok)."""
    return await verify(uow)


async def needs_seal(uow: UnitOfWork) -> bool:
    """Whether the chain starts with an entry hashed the old, unkeyed way (read without the key)."""
    first = (await uow.session.exec(select(AuditEntry).order_by(col(AuditEntry.id)).limit(1))).first()
    return first is not None and _legacy_digest(GENESIS, _entry_canonical(first)) == first.hash


@dataclass(frozen=True, slots=True)
class Sealing:
    legacy: Head  # the chain as it was, with its unkeyed hashes
    head: Head  # the keyed chain after sealing, the seal's own entry included


class NothingToSeal(Conflict):
    def __init__(self) -> None:
        super().__init__(N_("The audit log is already keyed: there is nothing to seal."))


class CannotSeal(Conflict):
    def __init__(self, entry_id: int | None, problem: str) -> None:
        super().__init__(
            N_("The audit log cannot be sealed: entry %(id)s is not intact (%(problem)s)."),
            id=entry_id if entry_id is not None else "-",
            problem=problem,
        )
        self.problem = problem


async def seal(uow: UnitOfWork, *, actor_id: int | None = None, expected: Head | None = None) -> Sealing:
    """Key a chain written before the chain was keyed: walk it, accepting each entry only if it is intact under
    the old SHA-256 hashing (or already keyed, for entries a new version wrote before the seal, which may only
    follow the old ones), and, with expected, only if the old chain matches a head published earlier. Then
    re-hash every entry with the site key and append an ``audit.sealed`` entry quoting the old head.
    Refuses a chain that is keyed already, or broken: a seal must never bless a tampered log."""
    await _lock_chain(uow)
    prev_hash = GENESIS
    count = 0
    legacy_entries = 0
    keyed_seen = False
    at_expected: str | None = GENESIS if expected is not None and expected.count == 0 else None
    async for entry in _entries(uow, 1000):
        canonical = _entry_canonical(entry)
        if entry.prev_hash != prev_hash:
            raise CannotSeal(entry.id, BROKEN_LINK)
        if not keyed_seen and _legacy_digest(prev_hash, canonical) == entry.hash:
            legacy_entries += 1
        elif _digest(uow, prev_hash, canonical) == entry.hash:
            keyed_seen = True
        else:
            raise CannotSeal(entry.id, BROKEN_CONTENT)
        count += 1
        prev_hash = entry.hash
        if expected is not None and count == expected.count:
            at_expected = entry.hash
    if legacy_entries == 0:
        raise NothingToSeal()
    legacy = Head(count, prev_hash)
    if expected is not None and count < expected.count:
        raise CannotSeal(None, TRUNCATED)
    if expected is not None and at_expected != expected.hash:
        raise CannotSeal(None, REWRITTEN)

    prev_hash = GENESIS
    async for entry in _entries(uow, 1000):
        new_hash = _digest(uow, prev_hash, _entry_canonical(entry))
        await uow.session.exec(
            update(AuditEntry)
            .where(col(AuditEntry.id) == entry.id)
            .values(prev_hash=prev_hash, hash=new_hash)
            .execution_options(synchronize_session=False)
        )
        prev_hash = new_hash
    uow.session.expunge_all()
    uow.audit_head = prev_hash
    sealed = await record(
        uow,
        action=SEALED,
        subject_type="audit",
        subject_id=None,
        actor_id=actor_id,
        data={"legacy_entries": legacy.count, "legacy_head": str(legacy)},
    )
    return Sealing(legacy=legacy, head=Head(count + 1, sealed.hash))
