"""Typed callback data shared by the consultation handlers, the invitations the jobs send and the exports, so
that a button made in one module is understood by another. Buttons carry ids, never labels."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from bot.callbacks import CallbackData


class ExportFormat(StrEnum):
    XLSX = "xlsx"
    CSV = "csv"
    PDF = "pdf"
    JSON = "json"

    @property
    def per_vote(self) -> bool:
        """A row per pseudonym's vote (consultation.outcome.require_export holds it back while fewer than k voted)."""
        return self is ExportFormat.CSV


@dataclass(frozen=True)
class OpenConsultation(CallbackData):
    """Open a consultation to take part: under an invitation, and in /consult's list."""

    prefix: ClassVar[str] = "ko"
    consultation_id: int


@dataclass(frozen=True)
class ExportConsultation(CallbackData):
    """A committee member asks for the outcome as a file."""

    prefix: ClassVar[str] = "kx"
    consultation_id: int
    format: ExportFormat
