"""Persisted conversation state: the step of a multi-step form a person is in, and what they typed so far."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from community.models import ConversationState
from community.unit_of_work import UnitOfWork


@dataclass(slots=True)
class DialogueState:
    name: str
    data: dict[str, Any] = field(default_factory=dict)


async def load_state(uow: UnitOfWork, key: str) -> DialogueState | None:
    row = await uow.session.get(ConversationState, key)
    if row is None:
        return None
    return DialogueState(name=row.name, data=json.loads(row.data))


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
