"""The demo (community.demo) with 李娜's consultation for 梧桐社区, made through the services: the set-up of the
transcripts and service tests that are about something a consultation does, not about making one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import select

from community.clock import FakeClock
from community.demo import WUTONG, seed_demo
from community.models import Community
from community.notices import Attachment
from community.scope import Scope
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import ConsultationDraft, add_statement, create, open_consultation
from consultation.models import Eligibility


@dataclass(frozen=True, slots=True)
class DemoConsultation:
    community_id: int
    worker_id: int  # 李娜, who made it
    consultation_id: int
    statement_ids: tuple[int, ...]  # of the statements given, in order


async def demo_consultation(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    *,
    title: str,
    background: str,
    statements: Sequence[str],
    opens_in: timedelta = timedelta(0),
    opened: bool = True,
    audience: Scope | None = None,
    eligibility: Eligibility = Eligibility.RESIDENTS,
    moderated: bool = True,
    attachment: Attachment | None = None,
) -> DemoConsultation:
    """Seed the demo, then 李娜's consultation in English, open for a week from ``opens_in`` from now, with these
    statements of hers; opened at once unless ``opened`` is False (or it opens later)."""
    async with uows() as uow:
        demo = await seed_demo(uow)
        worker = demo.by_key("worker").person_id
        community_id = (await uow.session.exec(select(Community.id).where(Community.name == WUTONG))).one()
        assert community_id is not None
        opens_at = clock.now() + opens_in
        consultation = await create(
            uow,
            worker,
            ConsultationDraft(
                community_id=community_id,
                title=title,
                background=background,
                language="en",
                opens_at=opens_at,
                closes_at=opens_at + timedelta(days=7),
                audience=audience or Scope(),
                eligibility=eligibility,
                moderated=moderated,
                attachment=attachment,
            ),
        )
        assert consultation.id is not None
        statement_ids = []
        for text in statements:
            statement = await add_statement(uow, worker, consultation.id, text)
            assert statement.id is not None
            statement_ids.append(statement.id)
        if opened and not opens_in:
            assert await open_consultation(uow, consultation.id)
        await uow.commit()
    return DemoConsultation(community_id, worker, consultation.id, tuple(statement_ids))
