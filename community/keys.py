"""The site key: one secret kept outside the database, from which every keyed hash in Linli is derived.

Someone who can read or write the database but not the key cannot recompute the audit chain, cannot link a
pseudonym back to a channel account, and cannot test guesses of invitation codes against their stored hashes.
The key comes from the setting LINLI_SECRET_KEY (every process of a PostgreSQL deployment must share it) or,
by default, from the file ``secret.key`` in the data directory, made on first use with mode 0600.

Each use derives a subkey of its own by purpose (``"audit"``, ``"invitation"``, ``"voter"``…), so a value
hashed for one purpose never matches a value hashed for another. Lose the key and the audit chain can no longer
be verified and invitation codes stop working: back it up with the database, but never inside it."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

KEY_BYTES = 32
KEY_FILE_NAME = "secret.key"


class SiteKeyError(Exception):
    """The key file exists but does not hold a key (for example it was truncated). Never carries the key."""


class SiteKey:
    """The site's secret, loaded at its first use (so commands that never hash never touch the key file)."""

    __slots__ = ("_load", "_secret", "_subkeys")

    def __init__(self, load: Callable[[], bytes]) -> None:
        self._load = load
        self._secret: bytes | None = None
        self._subkeys: dict[str, bytes] = {}

    @classmethod
    def of(cls, secret: bytes) -> SiteKey:
        """A key with this value, e.g. from LINLI_SECRET_KEY."""
        if len(secret) < 16:
            raise ValueError("a site key needs at least 16 bytes")
        return cls(lambda: secret)

    @classmethod
    def generate(cls) -> SiteKey:
        """A fresh random key: for tests and benchmarks, whose databases live as long as the process."""
        return cls.of(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def in_file(cls, path: Path) -> SiteKey:
        return cls(lambda: read_or_create_key_file(path))

    def __repr__(self) -> str:
        return "SiteKey('**********')"

    def subkey(self, purpose: str) -> bytes:
        subkey = self._subkeys.get(purpose)
        if subkey is None:
            if self._secret is None:
                self._secret = self._load()
            subkey = hmac.new(self._secret, b"linli subkey\x00" + purpose.encode(), hashlib.sha256).digest()
            self._subkeys[purpose] = subkey
        return subkey

    def digest(self, purpose: str, *parts: str | int | None) -> str:
        """HMAC-SHA256 of the parts (unambiguously joined) under the purpose's subkey, as 64 hex digits."""
        message = "\x1f".join("" if part is None else str(part) for part in parts).encode("utf-8", "surrogatepass")
        return hmac.new(self.subkey(purpose), message, hashlib.sha256).hexdigest()


def read_or_create_key_file(path: Path) -> bytes:
    """The key in the file, made (hex, mode 0600, never overwritten) when there is none yet."""
    try:
        raw = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_bytes(KEY_BYTES).hex()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            raw = path.read_text(encoding="ascii").strip()
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(fresh + "\n")
            raw = fresh
    except (UnicodeDecodeError, OSError) as exc:
        raise SiteKeyError(f"cannot read the site key file {path}") from exc
    try:
        key = bytes.fromhex(raw)
    except ValueError as exc:
        raise SiteKeyError(f"the site key file {path} does not hold a hex key") from exc
    if len(key) < 16:
        raise SiteKeyError(f"the site key file {path} holds too short a key")
    return key
