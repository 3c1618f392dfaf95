"""Invitation codes and the throttle that keeps them from being guessed.

A code is random, short enough to read out or type, made of characters nobody confuses (no 0/O, 1/l/I), and
valid as a Telegram deep-link start parameter, so the same code works typed or as a link. Only a keyed hash of it
is stored (HMAC-SHA256 under the site key's "invitation" subkey, community.keys): someone who reads the database
but not the key cannot test guesses against it. The code itself is shown once, to the worker who created it.

Wrong codes are counted per channel account in one conditional statement (an upsert whose update counts, starts a
fresh window or locks, and returns the outcome), so concurrent attempts are each counted and the lock cannot be
raced past."""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, literal, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from community.db_types import UTCDateTime
from community.keys import SiteKey
from community.models import CodeThrottle
from community.unit_of_work import UnitOfWork

# One case only, so a code typed in lower case still matches: 32 symbols, 10 of them, 50 bits.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10
HASH_PURPOSE = "invitation"  # the site key's subkey for invitation codes

# Wrong codes: this many within the window lock the channel account for the lockout.
MAX_WRONG_CODES = 5
WRONG_CODE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)

# What people type around a code: blanks (also zero-width ones), dashes of every kind, underscores, dots.
_NOISE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff_.\-\u2010-\u2015\u2212]+")
_LONGEST_INPUT = 200  # anything longer is not a code, whatever it contains


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(typed: str) -> str:
    """The code a person meant: full-width letters made plain, blanks and dashes dropped, upper case."""
    if len(typed) > _LONGEST_INPUT:
        return ""
    return _NOISE.sub("", unicodedata.normalize("NFKC", typed)).upper()


def hash_code(key: SiteKey, code: str) -> str:
    """The keyed hash stored for a code (64 hex digits), of the code as the person meant it."""
    return key.digest(HASH_PURPOSE, normalize_code(code))


def looks_like_code(typed: str) -> bool:
    normalized = normalize_code(typed)
    return len(normalized) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in normalized)


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """The outcome of counting a wrong code. locked_until is set while the account is locked; counted is False
    when it already was (by an attempt that raced this one), so this one was not counted."""

    locked_until: datetime | None
    counted: bool = True


async def throttle_of(uow: UnitOfWork, account_id: int) -> CodeThrottle | None:
    """The account's record of wrong codes, if it has one."""
    return await uow.session.get(CodeThrottle, account_id)


def locked_until(row: CodeThrottle | None, now: datetime) -> datetime | None:
    """When the account may try codes again, if it is locked now."""
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until


def _when(value: datetime) -> Any:
    return literal(value, UTCDateTime())


async def record_wrong_code(uow: UnitOfWork, account_id: int) -> ThrottleState:
    """Count one wrong code; the MAX_WRONG_CODES-th within the window locks the account for LOCKOUT.

    One statement reads and writes the count, so of any number of attempts at once each is counted exactly once
    and exactly one locks. While the account is locked the row is left as it is and nothing is counted. A lock
    that has ended, or a window that has passed, starts a fresh count."""
    now = uow.clock.now()
    table = CodeThrottle.__table__  # type: ignore[attr-defined]
    failures, first, locked = table.c.failures, table.c.first_failure_at, table.c.locked_until
    fresh = or_(locked.is_not(None), first.is_(None), first <= _when(now - WRONG_CODE_WINDOW))
    counted = case((fresh, 1), else_=failures + 1)
    lock = _when(now + LOCKOUT)
    bind = uow.session.bind
    insert = postgresql.insert if bind is not None and bind.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(
            account_id=account_id,
            failures=1,
            first_failure_at=now,
            locked_until=now + LOCKOUT if MAX_WRONG_CODES <= 1 else None,
        )
        .on_conflict_do_update(
            index_elements=[table.c.account_id],
            set_={
                "failures": counted,
                "first_failure_at": case((fresh, _when(now)), else_=first),
                "locked_until": case((counted >= MAX_WRONG_CODES, lock), else_=literal(None, UTCDateTime())),
            },
            # Not while locked: a locked account's attempts are not counted, and the lock is not extended.
            where=or_(locked.is_(None), locked <= _when(now)),
        )
        .returning(locked)
    )
    row = (await uow.session.exec(statement)).first()
    if row is None:
        until = (
            await uow.session.exec(select(CodeThrottle.locked_until).where(CodeThrottle.account_id == account_id))
        ).first()
        return ThrottleState(locked_until=until if until is not None and until > now else None, counted=False)
    until = row[0]
    return ThrottleState(locked_until=until if until is not None and until > now else None)


async def reset_throttle(uow: UnitOfWork, account_id: int) -> None:
    """Forget the wrong codes (after a right one)."""
    await uow.session.exec(delete(CodeThrottle).where(col(CodeThrottle.account_id) == account_id))
