"""Counting votes straight from the database, for tests about who may vote and how often: the staff figures
(consultation.consultations.figures) withhold counts below k, which is not what those tests are about."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from community.unit_of_work import UnitOfWork
from consultation.models import Statement, Vote


async def agree_votes(uow: UnitOfWork, consultation_id: int) -> int:
    agreed = (
        select(func.count())
        .select_from(Vote)
        .join(Statement, col(Statement.id) == col(Vote.statement_id))
        .where(col(Statement.consultation_id) == consultation_id, col(Vote.value) == 1)
    )
    return (await uow.session.exec(agreed)).one()
