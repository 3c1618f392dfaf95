"""Translation helpers. Message ids are English; catalogs live in i18n/locales/<lang>/LC_MESSAGES/linli.po."""

from __future__ import annotations

from i18n.translator import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    N_,
    Catalogs,
    Translator,
    negotiate_language,
    normalize_language,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "N_",
    "Catalogs",
    "Translator",
    "negotiate_language",
    "normalize_language",
]
