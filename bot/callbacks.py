"""Compact typed callback data for buttons. Telegram allows 64 bytes; we pack 'prefix:field:field'.

A button never carries its label's meaning: handlers match on the typed data, never on translated text."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any, ClassVar, Self, get_type_hints

MAX_CALLBACK_BYTES = 64
_SEPARATOR = ":"


class CallbackDataError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class CallbackData:
    """Subclass as a frozen dataclass with a class-level ``prefix`` and int / str / StrEnum / bool fields."""

    prefix: ClassVar[str]

    def pack(self) -> str:
        parts = [self.prefix]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                text = "1" if value else "0"
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
        fields = dataclasses.fields(cls)
        if prefix != cls.prefix or len(values) != len(fields):
            raise CallbackDataError(f"not a {cls.__name__}: {data!r}")
        hints = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f, raw in zip(fields, values, strict=True):
            kind = hints[f.name]
            try:
                if kind is bool:
                    kwargs[f.name] = raw == "1"
                elif kind is int:
                    kwargs[f.name] = int(raw)
                elif isinstance(kind, type) and issubclass(kind, StrEnum):
                    kwargs[f.name] = kind(raw)
                else:
                    kwargs[f.name] = raw
            except ValueError as exc:
                raise CallbackDataError(f"bad {cls.__name__}.{f.name}: {raw!r}") from exc
        return cls(**kwargs)

    @staticmethod
    def prefix_of(data: str) -> str:
        return data.split(_SEPARATOR, 1)[0]
