"""Compact typed callback data for buttons. Telegram allows 64 bytes; we pack 'prefix:field:field'.

A button never carries its label's meaning: handlers match on the typed data, never on translated text."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any, ClassVar, Self, get_type_hints

MAX_CALLBACK_BYTES = 64
# Every integer a button carries is an id, a page or a count: 0 to the largest id the database holds (PostgreSQL's
# integer column; SQLite's is wider). A number outside is no button Linli made, and unpacks as stale data, before
# a query could overflow a column or a driver.
MAX_CALLBACK_INT = 2**31 - 1
_SEPARATOR = ":"


class CallbackDataError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class CallbackData:
    """Subclass as a frozen dataclass with a class-level ``prefix`` and int / str / StrEnum / bool fields."""

    prefix: ClassVar[str]
    # Set on each subclass the first time it is unpacked (read through __dict__, so never inherited).
    _resolved_fields: ClassVar[tuple[tuple[str, Any], ...] | None] = None

    def pack(self) -> str:
        parts = [self.prefix]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, int) and not 0 <= value <= MAX_CALLBACK_INT:
                raise CallbackDataError(f"{type(self).__name__}.{f.name} out of range: {value}")
            elif isinstance(value, StrEnum):
                text = value.value
            else:
                text = str(value)
            if _SEPARATOR in text:
                raise CallbackDataError(f"{type(self).__name__}.{f.name} may not contain {_SEPARATOR!r}")
            parts.append(text)
        packed = _SEPARATOR.join(parts)
        if len(packed.encode()) > MAX_CALLBACK_BYTES:
            raise CallbackDataError(f"callback data over {MAX_CALLBACK_BYTES} bytes: {packed!r}")
        return packed

    @classmethod
    def unpack(cls, data: str) -> Self:
        prefix, *values = data.split(_SEPARATOR)
        fields = cls._field_types()
        if prefix != cls.prefix or len(values) != len(fields):
            raise CallbackDataError(f"not a {cls.__name__}: {data!r}")
        kwargs: dict[str, Any] = {}
        for (name, kind), raw in zip(fields, values, strict=True):
            try:
                if kind is bool:
                    kwargs[name] = raw == "1"
                elif kind is int:
                    kwargs[name] = _bounded_int(raw)
                elif isinstance(kind, type) and issubclass(kind, StrEnum):
                    kwargs[name] = kind(raw)
                else:
                    kwargs[name] = raw
            except ValueError as exc:
                raise CallbackDataError(f"bad {cls.__name__}.{name}: {raw!r}") from exc
        return cls(**kwargs)

    @classmethod
    def _field_types(cls) -> tuple[tuple[str, Any], ...]:
        """Each field's name and type, resolved once per class and kept on it: resolving string annotations
        is slow, and every button press unpacks one."""
        resolved: tuple[tuple[str, Any], ...] | None = cls.__dict__.get("_resolved_fields")
        if resolved is None:
            hints = get_type_hints(cls)
            resolved = tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))
            cls._resolved_fields = resolved
        return resolved

    @staticmethod
    def prefix_of(data: str) -> str:
        return data.split(_SEPARATOR, 1)[0]


def _bounded_int(raw: str) -> int:
    """A number as pack() writes it: ASCII digits (int() would take "+1", " 1", "1_0" and other scripts' digits),
    from 0 to MAX_CALLBACK_INT."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_CALLBACK_INT)):
        raise ValueError(raw)
    value = int(raw)
    if value > MAX_CALLBACK_INT:
        raise ValueError(raw)
    return value
