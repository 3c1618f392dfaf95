"""The composition root: the one place where Linli's parts are built and wired together."""

from __future__ import annotations

from types import ModuleType

from bot.handlers import help as help_handlers
from bot.router import Router

# Every feature's handler module; each exposes register(router). Order does not matter.
HANDLER_MODULES: tuple[ModuleType, ...] = (help_handlers,)


def build_router() -> Router:
    router = Router()
    for module in HANDLER_MODULES:
        module.register(router)
    return router
