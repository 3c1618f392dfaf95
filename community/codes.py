"""Invitation codes and the throttle that keeps them from being guessed.

A code is random, short enough to read out or type, made of characters nobody confuses (no 0/O, 1/l/I), and
valid as a Telegram deep-link start parameter, so the same code works typed or as a link. Only its SHA-256
hash is stored; the code itself is shown once, to the worker who created it."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from community.models import CodeThrottle
from community.unit_of_work import UnitOfWork

# One case only, so a code typed in lower case still matches: 32 symbols, 10 of them, 50 bits.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10

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


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def looks_like_code(typed: str) -> bool:
    normalized = normalize_code(typed)
    return len(normalized) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in normalized)


@dataclass(frozen=True, slots=True)
class ThrottleState:
    locked_until: datetime | None


async def throttle_of(uow: UnitOfWork, account_id: int) -> CodeThrottle | None:
    """The account's record of wrong codes, if it has one."""
    return await uow.session.get(CodeThrottle, account_id)


def locked_until(row: CodeThrottle | None, now: datetime) -> datetime | None:
    """When the account may try codes again, if it is locked now."""
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until


async def record_wrong_code(uow: UnitOfWork, account_id: int) -> ThrottleState:
    """Count one wrong code; the MAX_WRONG_CODES-th within the window locks the account for LOCKOUT."""
    now = uow.clock.now()
    row = await uow.session.get(CodeThrottle, account_id)
    if row is None:
        row = CodeThrottle(account_id=account_id)
    if row.first_failure_at is None or now - row.first_failure_at >= WRONG_CODE_WINDOW:
        row.failures, row.first_failure_at = 1, now
    else:
        row.failures += 1
    if row.failures >= MAX_WRONG_CODES:
        # The lock starts a fresh count: after it, the person gets the full number of tries again.
        row.locked_until, row.failures, row.first_failure_at = now + LOCKOUT, 0, None
    uow.session.add(row)
    await uow.session.flush()
    return ThrottleState(locked_until=row.locked_until if row.locked_until and row.locked_until > now else None)


async def reset_throttle(uow: UnitOfWork, row: CodeThrottle | None) -> None:
    """Forget the wrong codes (after a right one). Takes the row throttle_of gave, so it is not read twice."""
    if row is not None:
        await uow.session.delete(row)
        await uow.session.flush()
