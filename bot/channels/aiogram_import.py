"""Importing aiogram without building every Bot API type at once.

aiogram declares its ~300 Telegram types as pydantic models with ``defer_build=True`` (build on first use), but
``aiogram/types/__init__.py`` then calls ``model_rebuild`` on every one of them, so importing aiogram builds all
their validators: about 130 MB and over a second, most of a Telegram-mode process's memory, for types Linli
never receives. ``import_aiogram()`` imports it with that loop skipped and gives each types module the names
the loop would have resolved its annotations with (aiogram imports them only under TYPE_CHECKING), so pydantic
builds a type the first time it is used, as ``defer_build`` intends (upstream: aiogram issue #1513, "High memory
consumption due to importing any object from aiogram", open): an Update when the first update comes, a
Message when the first reply is sent. Nothing else of aiogram or pydantic changes. The Telegram tests and the
fake Bot API run every type Linli uses through it; make bench-startup shows the memory.

It must run before anything imports aiogram; if something did already, it does nothing (aiogram was built the
eager way, which works the same)."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

TYPES_PACKAGE = "aiogram.types"


def import_aiogram() -> None:
    if TYPES_PACKAGE in sys.modules:
        return
    eager = BaseModel.__dict__["model_rebuild"]  # the classmethod itself, to put back as it was
    namespace: dict[str, Any] = {}

    def deferred(cls: type[BaseModel], /, **options: Any) -> bool | None:
        types = options.get("_types_namespace")
        if cls.__module__.startswith(TYPES_PACKAGE + ".") and types is not None and not options.get("force"):
            namespace.update(types)  # aiogram's loop: remember what it resolves with, build nothing
            return None
        # Anything else rebuilt during the import: as usual, one frame deeper for the namespace it looks up.
        options["_parent_namespace_depth"] = options.get("_parent_namespace_depth", 2) + 1
        result: bool | None = eager.__func__(cls, **options)
        return result

    BaseModel.model_rebuild = classmethod(deferred)  # type: ignore[method-assign,assignment]
    try:
        import aiogram  # noqa: F401
    finally:
        BaseModel.model_rebuild = eager  # type: ignore[method-assign]
    for name, module in list(sys.modules.items()):
        if name.startswith(TYPES_PACKAGE + ".") and module is not None:
            for key, value in namespace.items():
                module.__dict__.setdefault(key, value)
