from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.app import build_app
from bot.cli import RedactingFormatter, configure_logging, load_catalogs
from bot.config import ConfigError, Secret, Settings, cli_language, load_settings
from community.db import sqlite_url_for
from community.migrate import upgrade

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


# The commands load the compiled catalogs (the localizers fixture compiles them once per run) and configure
# the root logger, which other tests must not inherit.
pytestmark = pytest.mark.usefixtures("localizers", "restore_logging")


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings(
        data_dir=Path("var"),
        database_url=sqlite_url_for(Path("var").absolute()),
        telegram_bot_token=None,
        telegram_api_base=None,
        log_level="INFO",
        bot_username="linli_bot",
        polling_timeout=30,
        language="en",
    )
    assert settings.is_sqlite
    assert settings.log_level_number == logging.INFO


def test_values_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "LINLI_DATA_DIR": str(tmp_path),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": "http://127.0.0.1:8081/",
            "LINLI_LOG_LEVEL": "debug",
            "LINLI_BOT_USERNAME": "@wutong_bot",
            "LINLI_POLLING_TIMEOUT": "50",
            "LANG": "zh_CN.UTF-8",
        }
    )
    assert settings.data_dir == tmp_path
    assert settings.database_url == sqlite_url_for(tmp_path)
    assert settings.telegram_bot_token is not None and settings.telegram_bot_token.reveal() == TOKEN
    assert settings.telegram_api_base == "http://127.0.0.1:8081"
    assert settings.log_level == "DEBUG"
    assert settings.bot_username == "wutong_bot"
    assert settings.polling_timeout == 50
    assert settings.language == "zh_Hans"


def test_postgresql_url_is_accepted_and_its_password_never_shown() -> None:
    settings = load_settings({"LINLI_DATABASE_URL": "postgresql://linli:s3cret@db:5432/linli"})
    assert settings.database_url == "postgresql://linli:s3cret@db:5432/linli"
    assert not settings.is_sqlite
    assert "s3cret" not in settings.database_label


def test_blank_values_count_as_unset() -> None:
    settings = load_settings({"TELEGRAM_BOT_TOKEN": "", "LINLI_LOG_LEVEL": "  ", "LINLI_POLLING_TIMEOUT": ""})
    assert settings.telegram_bot_token is None
    assert settings.log_level == "INFO"
    assert settings.polling_timeout == 30


@pytest.mark.parametrize(
    ("env", "language"),
    [
        ({}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh_Hans"),
        ({"LANG": "zh_TW"}, "zh_Hans"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({"LINLI_LANGUAGE": "zh_Hans", "LANG": "en_US.UTF-8"}, "zh_Hans"),
        ({"LINLI_LANGUAGE": "en", "LANG": "zh_CN.UTF-8"}, "en"),
    ],
)
def test_command_line_language(env: dict[str, str], language: str) -> None:
    assert cli_language(env) == language


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_BOT_TOKEN", "not-a-token"),
        ("TELEGRAM_BOT_TOKEN", "123456:"),
        ("TELEGRAM_BOT_TOKEN", "abc:DEF"),
        ("TELEGRAM_API_BASE", "ftp://x"),
        ("TELEGRAM_API_BASE", "localhost:8081"),
        ("TELEGRAM_API_BASE", "http://"),
        ("LINLI_LOG_LEVEL", "LOUD"),
        ("LINLI_POLLING_TIMEOUT", "soon"),
        ("LINLI_POLLING_TIMEOUT", "0"),
        ("LINLI_POLLING_TIMEOUT", "-5"),
        ("LINLI_POLLING_TIMEOUT", "3600"),
        ("LINLI_DATABASE_URL", "mysql://root:pw@localhost/linli"),
        ("LINLI_DATABASE_URL", "linli.sqlite3"),
        ("LINLI_DATABASE_URL", "postgresql://linli@db:port/linli"),
        ("LINLI_DATABASE_URL", "sqlite://"),
        ("LINLI_DATABASE_URL", "sqlite:///:memory:"),
        ("LINLI_DATABASE_URL", "sqlite+aiosqlite:///file::memory:?cache=shared"),
        ("LINLI_DATABASE_URL", "sqlite:///file:linli?mode=memory&uri=true"),
        ("LINLI_BOT_USERNAME", "a b"),
        ("LINLI_BOT_USERNAME", "bot"),
        ("LINLI_MIN_GROUP_SIZE", "1"),
        ("LINLI_MIN_GROUP_SIZE", "0"),
        ("LINLI_MIN_GROUP_SIZE", "five"),
        ("LINLI_MIN_GROUP_SIZE", "4.5"),
        ("LINLI_MIN_GROUP_SIZE", "1001"),
    ],
)
def test_a_bad_value_names_its_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert caught.value.setting == name
    assert str(caught.value).startswith(name)


async def test_k_is_five_by_default_and_the_setting_reaches_every_unit_of_work(tmp_path: Path) -> None:
    """LINLI_MIN_GROUP_SIZE (community.anonymity): read, checked, and handed to the units of work by build_app."""
    assert load_settings({}).min_group_size == 5
    settings = load_settings({"LINLI_DATA_DIR": str(tmp_path), "LINLI_MIN_GROUP_SIZE": "7"})
    assert settings.min_group_size == 7
    async with await build_app(settings) as app:
        assert app.uows().anonymity.min_group_size == 7
    with pytest.raises(ConfigError) as caught:
        load_settings({"LINLI_MIN_GROUP_SIZE": "1"})
    assert str(caught.value) == "LINLI_MIN_GROUP_SIZE must be a whole number of people from 2 to 1000, got '1'"


def test_the_message_shows_what_was_given() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"TELEGRAM_API_BASE": "ftp://x"})
    assert str(caught.value) == "TELEGRAM_API_BASE must be an http(s) URL, got 'ftp://x'"


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError) as caught:
        load_settings({"LINLI_DATA_DIR": str(a_file)})
    assert caught.value.setting == "LINLI_DATA_DIR"


def test_a_bad_database_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LINLI_DATABASE_URL": "mysql://root:pw-123@localhost/linli"})
    assert "pw-123" not in str(caught.value)
    assert "mysql" in str(caught.value)


def test_a_database_url_with_a_bad_port_is_one_line_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LINLI_DATABASE_URL": "postgresql://linli:pw-123@db:five/linli"})
    assert str(caught.value) == (
        "LINLI_DATABASE_URL is not a valid database URL (check the host, the port and the database name)."
    )
    assert "pw-123" not in repr(caught.value.params)


def test_a_malformed_token_is_not_echoed() -> None:
    almost = "12345 6789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    with pytest.raises(ConfigError) as caught:
        load_settings({"TELEGRAM_BOT_TOKEN": almost})
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in str(caught.value)
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in repr(caught.value.params)


def test_the_token_is_not_in_repr_or_str() -> None:
    settings = load_settings({"TELEGRAM_BOT_TOKEN": TOKEN})
    secret = settings.telegram_bot_token
    assert secret is not None
    for shown in (repr(settings), str(settings), repr(secret), str(secret), f"{secret}", f"{settings!r}"):
        assert TOKEN not in shown
        assert "AAHdq" not in shown
    assert secret == Secret(TOKEN)
    assert secret.reveal() == TOKEN


async def test_the_token_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env = {"LINLI_DATA_DIR": str(tmp_path), "TELEGRAM_BOT_TOKEN": TOKEN, "LINLI_LOG_LEVEL": "DEBUG"}
    settings = load_settings(env)
    configure_logging(settings)
    catalogs, _ = load_catalogs()
    async with await build_app(settings, catalogs=catalogs) as app:
        await upgrade(app.engine)
        logging.getLogger("tests").debug("settings: %s %r", settings, app.settings)
        logging.getLogger("tests").debug("token: %s", settings.telegram_bot_token)
    assert caplog.records, "nothing was logged, so nothing was checked"
    assert TOKEN not in caplog.text
    assert TOKEN.split(":", 1)[1] not in caplog.text


def test_the_log_formatter_masks_the_token_should_a_library_log_it() -> None:
    formatter = RedactingFormatter("%(message)s", [TOKEN])
    record = logging.LogRecord(
        "aiogram", logging.ERROR, __file__, 1, "GET https://x/bot%s/getMe failed", (TOKEN,), None
    )
    assert TOKEN not in formatter.format(record)
