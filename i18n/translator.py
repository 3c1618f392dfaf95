"""Loads the compiled catalogs once and hands out a Translator per language.

Formatting of dates and numbers goes through Babel so a Chinese reader sees 2026年3月1日 and an English one
Mar 1, 2026, always in the community's time zone."""

from __future__ import annotations

import gettext
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime as _babel_datetime
from babel.numbers import format_decimal

LANGUAGES: tuple[str, ...] = ("zh_Hans", "en")
DEFAULT_LANGUAGE = "zh_Hans"
DOMAIN = "linli"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_TIMEZONE = "Asia/Shanghai"


def N_(message: str) -> str:
    """Marks a message id for extraction where it is translated later, at the reader's end."""
    return message


def normalize_language(code: str | None) -> str | None:
    """Map a client's language tag (Telegram's language_code: 'zh-hans', 'zh-CN', 'en-US') to ours."""
    if not code:
        return None
    tag = code.replace("-", "_").lower()
    if tag.startswith("zh"):
        return "zh_Hans"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate_language(own_choice: str | None, client_language: str | None, community_default: str | None) -> str:
    """The reader's own choice, else their client's language, else the community's default."""
    for candidate in (own_choice, normalize_language(client_language), community_default):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


class Translator:
    """gettext, plurals and Babel formatting for one language."""

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        self.language = language
        self.locale = Locale.parse(language)
        self.translations = translations

    def gettext(self, message: str, **params: Any) -> str:
        text = self.translations.gettext(message)
        return text % params if params else text

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        text = self.translations.ngettext(singular, plural, n)
        return text % {"num": n, **params}

    def format_datetime(self, moment: datetime, timezone: str = DEFAULT_TIMEZONE, fmt: str = "medium") -> str:
        return str(_babel_datetime(moment, format=fmt, tzinfo=ZoneInfo(timezone), locale=self.locale))

    def format_number(self, number: float | int) -> str:
        return str(format_decimal(number, locale=self.locale))


class Catalogs:
    """The compiled catalogs of every supported language, loaded once at start."""

    def __init__(self, locales_dir: Path = LOCALES_DIR, languages: Iterable[str] = LANGUAGES) -> None:
        self._translators: dict[str, Translator] = {}
        for language in languages:
            try:
                translations: gettext.NullTranslations = gettext.translation(
                    DOMAIN, localedir=str(locales_dir), languages=[language]
                )
            except FileNotFoundError:
                if language != "en":
                    raise
                translations = gettext.NullTranslations()  # English message ids are the English text
            self._translators[language] = Translator(language, translations)

    def get(self, language: str) -> Translator:
        return self._translators.get(language) or self._translators[DEFAULT_LANGUAGE]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._translators)
