"""Settings from the environment. The caller passes the mapping (os.environ in the CLI, a dict in tests), so
nothing is read at import time and every setting can be tested without touching the process environment.

A bad value raises ConfigError naming the setting; the CLI prints it as one translated line and exits 2."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from community.anonymity import DEFAULT_MIN_GROUP_SIZE, HIGHEST_MIN_GROUP_SIZE, LOWEST_MIN_GROUP_SIZE
from i18n import N_, normalize_language

DEFAULT_DATA_DIR = "./var"
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_BOT_USERNAME = "linli_bot"
DEFAULT_POLLING_TIMEOUT = 30
# Telegram holds a long poll open for the timeout; beyond a few minutes proxies and load balancers cut it.
MAX_POLLING_TIMEOUT = 300
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_SEND_RATE = 30  # messages a second: Telegram's limit per bot
MAX_SEND_RATE = 1000  # Telegram's limit with paid broadcasts
MIN_SECRET_KEY_BYTES = 16
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

# A bot token as BotFather issues it: the bot's numeric id, a colon, then the secret part. The secret part's
# length is not checked: emulators and self-hosted Bot API servers hand out short test tokens.
_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]+$")
# Telegram usernames: 5-32 characters, letters, digits and underscores, starting with a letter.
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")
_SQLITE_PREFIXES = ("sqlite://", "sqlite+aiosqlite://")
_POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


class ConfigError(Exception):
    """A setting with a value Linli cannot use.

    problem is an English message id with %(setting)s and any further placeholders, translated by the CLI."""

    def __init__(self, setting: str, problem: str, **params: Any) -> None:
        self.setting = setting
        self.problem = problem
        self.params: dict[str, Any] = {"setting": setting, **params}
        super().__init__(problem % self.params)


class Secret:
    """A value that must never reach a log line or a traceback: its repr and str are masked.

    Only reveal() gives the value, so every place that uses the secret is easy to find."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database_url: str = ""
    telegram_bot_token: Secret | None = field(default=None, repr=False)
    telegram_api_base: str | None = None
    log_level: str = DEFAULT_LOG_LEVEL
    bot_username: str = DEFAULT_BOT_USERNAME
    polling_timeout: int = DEFAULT_POLLING_TIMEOUT
    language: str = "en"  # of the command line's own messages
    send_rate: float = DEFAULT_SEND_RATE  # messages a second the delivery engine sends, per process
    paid_broadcast: bool = False  # Telegram's allow_paid_broadcast on every broadcast message
    # The site key (community.keys) as hex; unset, it is the file secret.key in the data directory.
    secret_key: Secret | None = field(default=None, repr=False)
    # k (community.anonymity): the smallest audience of a consultation, the fewest voters whose figures show.
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith(_SQLITE_PREFIXES)

    @property
    def database_label(self) -> str:
        """The database URL as it may be shown or logged: any password is masked."""
        return safe_url(self.database_url)


def safe_url(url: str) -> str:
    # SQLAlchemy (and community.db below) load where a URL is read, not when `linli --help` asks the language.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def cli_language(env: Mapping[str, str]) -> str:
    """The language of the command line's own messages: LINLI_LANGUAGE, else LANG; Chinese for zh*, else English.

    It never fails: an unknown value means English, so even a configuration error can be reported."""
    for name in ("LINLI_LANGUAGE", "LANG"):
        value = env.get(name, "").strip()
        if value:
            return normalize_language(value.split(".", 1)[0]) or "en"
    return "en"


def _get(env: Mapping[str, str], name: str) -> str | None:
    """A set, non-blank value; an empty variable counts as unset, the way shells and compose files use them."""
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _data_dir(env: Mapping[str, str]) -> Path:
    raw = _get(env, "LINLI_DATA_DIR") or DEFAULT_DATA_DIR
    if "\x00" in raw:
        raise ConfigError("LINLI_DATA_DIR", N_("%(setting)s must be a directory path."))
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError("LINLI_DATA_DIR", N_("%(setting)s must be a directory, got the file %(value)s"), value=raw)
    return path


def _database_url(env: Mapping[str, str], data_dir: Path) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from community.db import sqlite_url_for

    raw = _get(env, "LINLI_DATABASE_URL")
    if raw is None:
        # Absolute, so the database stays the same file whatever directory a later command runs in.
        return sqlite_url_for(data_dir.absolute())
    if raw.startswith(_SQLITE_PREFIXES + _POSTGRES_PREFIXES):
        try:
            url = make_url(raw)
            url.port  # noqa: B018 - parsed on first use: "host:abc" fails only here
        except (ArgumentError, ValueError) as exc:
            # Only the scheme is echoed: the URL may hold a password, and it could not be parsed to mask it.
            raise ConfigError(
                "LINLI_DATABASE_URL",
                N_("%(setting)s is not a valid database URL (check the host, the port and the database name)."),
            ) from exc
        if url.drivername.startswith("sqlite") and _sqlite_in_memory(url.database, url.query):
            raise ConfigError(
                "LINLI_DATABASE_URL",
                N_(
                    "%(setting)s names an in-memory SQLite database, whose data would vanish: "
                    "give a file, as in %(example)s"
                ),
                example="sqlite:////srv/linli/linli.sqlite3",
            )
        return raw
    # Only the scheme is echoed: the rest of a URL may hold a password.
    scheme = raw.split("://", 1)[0] if "://" in raw else raw[:20]
    raise ConfigError(
        "LINLI_DATABASE_URL",
        N_("%(setting)s must be a sqlite:/// or postgresql:// URL, got '%(value)s'"),
        value=scheme + "://…" if "://" in raw else scheme,
    )


def _sqlite_in_memory(database: str | None, query: Mapping[str, Any]) -> bool:
    """sqlite://, sqlite:///:memory:, and the URI forms file::memory: and ?mode=memory."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return True
    return str(query.get("mode", "")).lower() == "memory" or "mode=memory" in database


def _token(env: Mapping[str, str]) -> Secret | None:
    raw = _get(env, "TELEGRAM_BOT_TOKEN")
    if raw is None:
        return None
    if not _TOKEN.match(raw):
        # The value is not echoed: even a mistyped token is mostly secret.
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN",
            N_("%(setting)s must look like 123456789:ABC-DEF1234ghIkl-zyx57W2v1u123ew11 (as BotFather gives it)."),
        )
    return Secret(raw)


def _api_base(env: Mapping[str, str]) -> str | None:
    raw = _get(env, "TELEGRAM_API_BASE")
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError("TELEGRAM_API_BASE", N_("%(setting)s must be an http(s) URL, got '%(value)s'"), value=raw)
    return raw.rstrip("/")


def _log_level(env: Mapping[str, str]) -> str:
    raw = _get(env, "LINLI_LOG_LEVEL") or DEFAULT_LOG_LEVEL
    level = raw.upper()
    if level == "WARN":
        level = "WARNING"
    if level not in LOG_LEVELS:
        raise ConfigError(
            "LINLI_LOG_LEVEL",
            N_("%(setting)s must be one of %(choices)s, got '%(value)s'"),
            choices=", ".join(LOG_LEVELS),
            value=raw,
        )
    return level


def _bot_username(env: Mapping[str, str]) -> str:
    raw = _get(env, "LINLI_BOT_USERNAME") or DEFAULT_BOT_USERNAME
    name = raw.removeprefix("@")
    if not _USERNAME.match(name):
        raise ConfigError(
            "LINLI_BOT_USERNAME",
            N_("%(setting)s must be a Telegram username (5 to 32 letters, digits or _), got '%(value)s'"),
            value=raw,
        )
    return name


def _whole_number(env: Mapping[str, str], name: str, default: int, low: int, high: int, problem: str) -> int:
    """A whole-number setting from low to high, or the default when unset. problem: the message id, with
    %(setting)s, %(min)s, %(max)s and %(value)s."""
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ConfigError(name, problem, min=low, max=high, value=raw)
    return number


def _polling_timeout(env: Mapping[str, str]) -> int:
    return _whole_number(
        env,
        "LINLI_POLLING_TIMEOUT",
        DEFAULT_POLLING_TIMEOUT,
        1,
        MAX_POLLING_TIMEOUT,
        N_("%(setting)s must be a whole number of seconds from 1 to %(max)s, got '%(value)s'"),
    )


def _send_rate(env: Mapping[str, str]) -> float:
    raw = _get(env, "LINLI_SEND_RATE")
    if raw is None:
        return DEFAULT_SEND_RATE
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 1 <= rate <= MAX_SEND_RATE:  # NaN fails too
        raise ConfigError(
            "LINLI_SEND_RATE",
            N_("%(setting)s must be a number of messages a second from 1 to %(max)s, got '%(value)s'"),
            max=MAX_SEND_RATE,
            value=raw,
        )
    return rate


def _secret_key(env: Mapping[str, str]) -> Secret | None:
    raw = _get(env, "LINLI_SECRET_KEY")
    if raw is None:
        return None
    try:
        valid = len(bytes.fromhex(raw)) >= MIN_SECRET_KEY_BYTES
    except ValueError:
        valid = False
    if not valid:
        # Never echoed: it is the secret every keyed hash rests on.
        raise ConfigError(
            "LINLI_SECRET_KEY",
            N_("%(setting)s must be at least %(digits)s hexadecimal digits (for example from: openssl rand -hex 32)."),
            digits=MIN_SECRET_KEY_BYTES * 2,
        )
    return Secret(raw)


def _min_group_size(env: Mapping[str, str]) -> int:
    return _whole_number(
        env,
        "LINLI_MIN_GROUP_SIZE",
        DEFAULT_MIN_GROUP_SIZE,
        LOWEST_MIN_GROUP_SIZE,
        HIGHEST_MIN_GROUP_SIZE,
        N_("%(setting)s must be a whole number of people from %(min)s to %(max)s, got '%(value)s'"),
    )


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = _get(env, name)
    if raw is None or raw.lower() in _FALSE:
        return False
    if raw.lower() in _TRUE:
        return True
    raise ConfigError(name, N_("%(setting)s must be true or false (1 or 0), got '%(value)s'"), value=raw)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and check every setting; the first bad one raises ConfigError."""
    data_dir = _data_dir(env)
    return Settings(
        data_dir=data_dir,
        database_url=_database_url(env, data_dir),
        telegram_bot_token=_token(env),
        telegram_api_base=_api_base(env),
        log_level=_log_level(env),
        bot_username=_bot_username(env),
        polling_timeout=_polling_timeout(env),
        language=cli_language(env),
        send_rate=_send_rate(env),
        paid_broadcast=_flag(env, "LINLI_PAID_BROADCAST"),
        secret_key=_secret_key(env),
        min_group_size=_min_group_size(env),
    )
