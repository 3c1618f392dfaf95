"""Persisted conversation state: the step of a multi-step form a person is in, and what they typed so far."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from community.models import ConversationState
from community.unit_of_work import UnitOfWork


@dataclass(slots=True)
class DialogueState:
    name: str
    data: dict[str, Any] = field(default_factory=dict)


@functools.cache
def _load_statement() -> Select[str, str]:
    """Built once: this runs for every event, and building the ORM's get() query cost more than running it."""
    return select(ConversationState.name, ConversationState.data).where(col(ConversationState.key) == bindparam("key"))


async def load_state(uow: UnitOfWork, key: str) -> DialogueState | None:
    row = (await uow.session.exec(_load_statement(), params={"key": key})).first()
    if row is None:
        return None
    name, data = row
    return dialogue_state(name, data)


def dialogue_state(name: str, data: str) -> DialogueState:
    """The state as a row of conversation_state stores it (its data as JSON)."""
    return DialogueState(name=name, data=json.loads(data))


async def save_state(uow: UnitOfWork, key: str, state: DialogueState) -> None:
    row = await uow.session.get(ConversationState, key)
    payload = json.dumps(state.data, ensure_ascii=False, sort_keys=True)
    if row is None:
        row = ConversationState(key=key, name=state.name, data=payload, updated_at=uow.clock.now())
    else:
        row.name, row.data, row.updated_at = state.name, payload, uow.clock.now()
    uow.session.add(row)


async def clear_state(uow: UnitOfWork, key: str) -> None:
    row = await uow.session.get(ConversationState, key)
    if row is not None:
        await uow.session.delete(row)
