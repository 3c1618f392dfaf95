"""The site key: kept outside the database, made once, and the root of every keyed hash."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.app import site_key
from bot.config import ConfigError, load_settings
from community.keys import KEY_FILE_NAME, SiteKey, SiteKeyError


def test_the_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / KEY_FILE_NAME
    first = SiteKey.in_file(path).digest("audit", "x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SiteKey.in_file(path).digest("audit", "x") == first  # the same key on the next start


def test_nothing_is_read_until_a_hash_is_needed(tmp_path: Path) -> None:
    SiteKey.in_file(tmp_path / "missing" / KEY_FILE_NAME)
    assert not (tmp_path / "missing").exists()


def test_purposes_and_keys_give_different_digests() -> None:
    key = SiteKey.generate()
    assert key.digest("audit", 1, "a") != key.digest("voter", 1, "a")
    assert key.digest("audit", "1", "a") == key.digest("audit", 1, "a")
    assert key.digest("audit", "1a") != key.digest("audit", "1", "a")
    assert SiteKey.generate().digest("audit", 1) != key.digest("audit", 1)
    assert "**" in repr(key)


def test_a_damaged_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_text("not hex\n")
    with pytest.raises(SiteKeyError):
        SiteKey.in_file(path).digest("audit")
    assert path.read_text() == "not hex\n"


def test_the_setting_wins_over_the_file_and_is_checked(tmp_path: Path) -> None:
    env = {"LINLI_DATA_DIR": str(tmp_path), "LINLI_SECRET_KEY": "ab" * 32}
    from_setting = site_key(load_settings(env))
    assert from_setting.digest("audit", 1) == SiteKey.of(bytes.fromhex("ab" * 32)).digest("audit", 1)
    assert not (tmp_path / KEY_FILE_NAME).exists()
    with pytest.raises(ConfigError) as refused:
        load_settings({**env, "LINLI_SECRET_KEY": "abc"})
    assert "abc" not in str(refused.value)
