"""The append-only, hash-chained audit log of membership, role and process changes.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON, so changing,
removing or reordering any entry breaks every hash after it, which `linli audit verify` reports."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from community.models import AuditEntry
from community.unit_of_work import UnitOfWork
from i18n import N_

GENESIS = "0" * 64
# Any constant works; PostgreSQL serialises writers on it so two processes never fork the chain.
_PG_CHAIN_LOCK = 7_349_001


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


def _digest(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


@functools.cache
def _head_statement() -> SelectOfScalar[str]:
    """Built once: every audited change reads the chain's head."""
    return select(AuditEntry.hash).order_by(col(AuditEntry.id).desc()).limit(1)


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
    """Append one entry in the caller's transaction: it lands with the change it describes, or not at all."""
    session = uow.session
    prev_hash = uow.audit_head
    if prev_hash is None:
        bind = session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            await session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_PG_CHAIN_LOCK))  # type: ignore[call-overload]
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
        hash=_digest(prev_hash, canonical),
    )
    session.add(entry)
    await session.flush()
    uow.audit_head = entry.hash
    return entry


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    first_broken_id: int | None = None
    problem: str | None = None  # an English message id, translated by whoever shows the report

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


async def verify(uow: UnitOfWork, batch: int = 1000) -> ChainReport:
    """Walk the whole chain in id order, in batches so a long log is checked in constant memory."""
    prev_hash = GENESIS
    count = 0
    last_id = 0
    while True:
        rows = (
            await uow.session.exec(
                select(AuditEntry).where(col(AuditEntry.id) > last_id).order_by(col(AuditEntry.id)).limit(batch)
            )
        ).all()
        if not rows:
            return ChainReport(entries=count)
        for entry in rows:
            count += 1
            if entry.prev_hash != prev_hash:
                return ChainReport(
                    count, entry.id, N_("the previous hash does not match: an entry was removed or reordered")
                )
            canonical = _canonical(
                entry.at,
                entry.community_id,
                entry.actor_id,
                entry.action,
                entry.subject_type,
                entry.subject_id,
                entry.data,
            )
            if _digest(prev_hash, canonical) != entry.hash:
                return ChainReport(count, entry.id, N_("the content does not match its hash: the entry was changed"))
            prev_hash = entry.hash
            last_id = entry.id or last_id
        uow.session.expunge_all()
