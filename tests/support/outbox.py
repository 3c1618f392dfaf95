"""The outbox in tests: a notice to hang rows on, and what the delivery engine has to send, or has sent, row by row."""

from __future__ import annotations

from sqlmodel import col, select

from community.communities import add_community
from community.notice_models import Notice, OutboxMessage
from community.roles import CommunityKind
from community.unit_of_work import UnitOfWorkFactory


async def outbox_rows(uows: UnitOfWorkFactory) -> list[OutboxMessage]:
    """Every outbox row, in the order it was enqueued."""
    async with uows() as uow:
        return list((await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


async def make_notice(uows: UnitOfWorkFactory) -> int:
    """A notice of a new 梧桐社区, made directly (no recipients, no rows): its id."""
    async with uows() as uow:
        community = await add_community(uow, name="梧桐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        notice = Notice(community_id=community.id, body="停水通知", language="zh_Hans", created_at=uow.clock.now())
        uow.session.add(notice)
        await uow.session.flush()
        await uow.commit()
        assert notice.id is not None
        return notice.id
