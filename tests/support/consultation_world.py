"""A small consultation with two opposed blocs, made through the services, for the export tests.

梧桐社区 (Asia/Shanghai) has a committee member, a community worker and thirteen residents. The worker opens
"小区停车位改造" and seeds eight statements; resident 1 writes a ninth (approved by the worker) and resident 2 a tenth
(rejected, so it counts nowhere). Bloc A (residents 1-6) agrees with statements 1-4 and disagrees with 5-8 on the
first day; bloc B (residents 7-12) votes the opposite on the second day; everyone agrees with the common-ground
statement; resident 1's statement is agreed by bloc A and passed by bloc B. Resident 13 votes twice only, too few to
be placed in a group. Then the consultation closes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from community.clock import FakeClock
from community.communities import add_community, add_member, household
from community.people import identify
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import (
    ConsultationDraft,
    VoteValue,
    add_statement,
    close_consultation,
    create,
    moderate,
    open_consultation,
    submit_statement,
    vote,
)
from consultation.models import StatementRejection

TITLE = "小区停车位改造"
COMMUNITY = "梧桐社区"
BLOC_A_AGREES = (
    "东门空地应改建为停车位。",
    "晚上车位不够，应优先满足有车的住户。",
    "停车位可以按月收费，收入用于小区维护。",
    "外来车辆应禁止入内。",
)
BLOC_B_AGREES = (
    "东门空地应改建为口袋公园。",
    "小区需要更多绿地和儿童游乐设施。",
    "老人需要一个可以休息和下棋的地方。",
    "停车问题应通过周边的公共停车场解决。",
)
COMMON_GROUND = "无论怎样改造，都应先征求全体居民意见。"
RESIDENT_STATEMENT = "施工期间应减少噪音，晚上不施工。"
REJECTED_STATEMENT = "三号楼的张某总是乱停车，应该罚款。"
BLOC_SIZE = 6
RESIDENT_NAMES = tuple(f"居民{n:02d}" for n in range(1, 14))


@dataclass(frozen=True)
class World:
    community_id: int
    consultation_id: int
    committee: int
    worker: int
    residents: tuple[int, ...]  # 13: bloc A, bloc B, then the sparse voter
    bloc_a: tuple[int, ...]  # statement ids bloc A agrees with
    bloc_b: tuple[int, ...]
    common: int
    written: int  # the resident's approved statement
    rejected: int

    @property
    def statements(self) -> tuple[int, ...]:
        """The approved statements, by id."""
        return tuple(sorted((*self.bloc_a, *self.bloc_b, self.common, self.written)))

    def person_ids(self) -> tuple[int, ...]:
        return (self.committee, self.worker, *self.residents)


async def build_world(
    uows: UnitOfWorkFactory, clock: FakeClock, *, channel: str = "telegram", close: bool = True
) -> World:
    """The consultation, closed (or still open: close False), with its votes. People are accounts on ``channel``
    keyed committee, worker, r1..r13."""
    async with uows() as uow:
        wutong = await add_community(uow, name=COMMUNITY, kind=CommunityKind.NEIGHBOURHOOD)
        assert wutong.id is not None
        ids: dict[str, int] = {}
        keys = ["committee", "worker", *(f"r{n}" for n in range(1, 14))]
        names = ["张伟", "李娜", *RESIDENT_NAMES]
        for key, name in zip(keys, names, strict=True):
            me = await identify(uow, channel=channel, external_id=key, chat_id=key, display_name=name)
            ids[key] = me.person_id
        roles: dict[str, set[Role]] = {
            "committee": {Role.COMMITTEE_MEMBER, Role.RESIDENT},
            "worker": {Role.COMMUNITY_WORKER},
        }
        for n, key in enumerate(keys):
            home = await household(uow, wutong.id, f"{n % 4 + 1}号楼 {n + 1}01")
            await add_member(
                uow,
                person_id=ids[key],
                community_id=wutong.id,
                roles=roles.get(key, {Role.RESIDENT}),
                household_id=home.id,
                reason="test",
            )
        await uow.commit()

    worker = ids["worker"]
    now = clock.now()
    async with uows() as uow:
        consultation = await create(
            uow,
            worker,
            ConsultationDraft(
                community_id=wutong.id,
                title=TITLE,
                background="东门空地改建为停车位还是口袋公园？请大家发表意见。\n改造资金由街道承担。",
                language="zh_Hans",
                opens_at=now + timedelta(hours=1),
                closes_at=now + timedelta(days=7),
            ),
        )
        assert consultation.id is not None
        cid = consultation.id
        assert await open_consultation(uow, cid, worker)
        bloc_a = [(await add_statement(uow, worker, cid, text)).id for text in BLOC_A_AGREES]
        bloc_b = [(await add_statement(uow, worker, cid, text)).id for text in BLOC_B_AGREES]
        common = (await add_statement(uow, worker, cid, COMMON_GROUND)).id
        await uow.commit()
    async with uows() as uow:
        written = (await submit_statement(uow, ids["r1"], cid, RESIDENT_STATEMENT)).id
        rejected = (await submit_statement(uow, ids["r2"], cid, REJECTED_STATEMENT)).id
        assert written is not None and rejected is not None
        await moderate(uow, worker, written, approve=True)
        await moderate(uow, worker, rejected, approve=False, reason=StatementRejection.PERSONAL_DATA)
        await uow.commit()
    assert all(s is not None for s in (*bloc_a, *bloc_b, common))

    residents = [ids[f"r{n}"] for n in range(1, 14)]

    async def cast(person: int, statement: int | None, value: VoteValue) -> None:
        assert statement is not None
        async with uows() as uow:
            await vote(uow, person, statement, value)
            await uow.commit()

    for bloc, (agreed, refused), on_written in (
        (residents[:BLOC_SIZE], (bloc_a, bloc_b), VoteValue.AGREE),
        (residents[BLOC_SIZE : 2 * BLOC_SIZE], (bloc_b, bloc_a), VoteValue.PASS),
    ):
        for person in bloc:
            for statement in agreed:
                await cast(person, statement, VoteValue.AGREE)
            for statement in refused:
                await cast(person, statement, VoteValue.DISAGREE)
            await cast(person, common, VoteValue.AGREE)
            await cast(person, written, on_written)
        clock.advance(timedelta(days=1))
    sparse = residents[-1]
    await cast(sparse, common, VoteValue.AGREE)
    await cast(sparse, written, VoteValue.DISAGREE)
    if close:
        async with uows() as uow:
            assert await close_consultation(uow, cid, worker)
            await uow.commit()
    return World(
        community_id=wutong.id,
        consultation_id=cid,
        committee=ids["committee"],
        worker=worker,
        residents=tuple(residents),
        bloc_a=tuple(s for s in bloc_a if s is not None),
        bloc_b=tuple(s for s in bloc_b if s is not None),
        common=int(common) if common is not None else 0,
        written=written,
        rejected=rejected,
    )
