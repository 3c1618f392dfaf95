"""Turning message ids and templates into text for one reader: their language, the community's time zone,
and every piece of user-provided text escaped for Telegram's HTML parse mode."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from i18n import Catalogs, Translator
from i18n.translator import DEFAULT_TIMEZONE

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class Localizer:
    """Everything needed to speak to one reader."""

    def __init__(self, translator: Translator, env: Environment, timezone: str = DEFAULT_TIMEZONE) -> None:
        self.t = translator
        self.env = env
        self.timezone = timezone

    @property
    def language(self) -> str:
        return self.t.language

    def _param(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return escape(self.datetime(value))
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return self.t.format_number(value)
        return escape(str(value))

    def text(self, message: str, **params: Any) -> str:
        """A translated one-liner with its parameters escaped and formatted for the reader."""
        return self.t.gettext(message, **{k: self._param(v) for k, v in params.items()})

    def plural(self, singular: str, plural: str, n: int, **params: Any) -> str:
        return self.t.ngettext(singular, plural, n, **{k: self._param(v) for k, v in params.items()})

    def label(self, message: str, **params: Any) -> str:
        """A button label: plain text, no HTML (Telegram shows labels verbatim)."""
        return self.t.gettext(message, **{k: str(v) for k, v in params.items()})

    def datetime(self, moment: datetime, fmt: str = "medium") -> str:
        return self.t.format_datetime(moment, self.timezone, fmt)

    def render(self, template: str, **context: Any) -> str:
        """Render a template; it reaches this localizer as ``l`` for dates (``l.datetime(x)``) and numbers."""
        return self.env.get_template(template).render(l=self, **context).strip()

    def with_timezone(self, timezone: str) -> Localizer:
        return Localizer(self.t, self.env, timezone)


class Localizers:
    """One Jinja2 environment per language, built once by the composition root."""

    def __init__(self, catalogs: Catalogs, templates_dir: Path = TEMPLATES_DIR) -> None:
        self._catalogs = catalogs
        self._envs: dict[str, Environment] = {}
        for language in catalogs.languages:
            env = Environment(
                loader=FileSystemLoader(str(templates_dir)),
                autoescape=select_autoescape(default=True, default_for_string=True),
                extensions=["jinja2.ext.i18n"],
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                # Templates ship with the code: no stat() of the file on every message to see if it changed.
                auto_reload=False,
            )
            translator = catalogs.get(language)
            env.install_gettext_translations(translator.translations, newstyle=True)  # type: ignore[attr-defined]
            env.filters["number"] = translator.format_number
            self._envs[language] = env

    def get(self, language: str, timezone: str = DEFAULT_TIMEZONE) -> Localizer:
        translator = self._catalogs.get(language)
        return Localizer(translator, self._envs[translator.language], timezone)
