"""Machine-readable documents as JSON: UTF-8, Chinese kept readable, dates and times in ISO 8601."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import IO, Any

import numpy as np


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2, default=_default, allow_nan=False).encode("utf-8") + b"\n"


def write_json(stream: IO[bytes], document: Mapping[str, Any]) -> None:
    """Write ``document`` (dicts, lists, numbers, strings; dataclasses, enums, dates and numpy scalars are
    converted) to ``stream``."""
    stream.write(to_json_bytes(document))
