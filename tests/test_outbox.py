"""The outbox's storage semantics (community/outbox.py), on both databases: bulk enqueue, claims with leases, the
outcomes a sender records, cancelling, and the counts the notice figures and `linli notices status` show."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from community import outbox
from community.clock import FakeClock
from community.models import ChannelAccount
from community.notice_models import DeliveryStatus, MessageKind, OutboxMessage
from community.outbox import OutboxButton, Outcomes, Outgoing
from community.people import identify
from community.unit_of_work import UnitOfWorkFactory
from tests.support.outbox import make_notice
from tests.support.outbox import outbox_rows as rows

LEASE = timedelta(seconds=30)


async def make_account(uows: UnitOfWorkFactory, external_id: str) -> ChannelAccount:
    async with uows() as uow:
        identity = await identify(
            uow, channel="telegram", external_id=external_id, chat_id=external_id, display_name=f"居民{external_id}"
        )
        await uow.commit()
    return identity.account


async def enqueue(uows: UnitOfWorkFactory, messages: list[Outgoing], *, delay: timedelta = timedelta(0)) -> int:
    async with uows() as uow:
        count = await outbox.enqueue(uow, messages, not_before=uow.clock.now() + delay)
        await uow.commit()
    return count


async def claim(
    uows: UnitOfWorkFactory, owner: str, limit: int, *, channels: tuple[str, ...] = ("telegram",)
) -> list[OutboxMessage]:
    async with uows() as uow:
        now = uow.clock.now()
        claimed = await outbox.claim(uow, owner, now, limit, now + LEASE, channels)
        await uow.commit()
    return claimed


async def record(uows: UnitOfWorkFactory, owner: str, outcomes: Outcomes) -> None:
    async with uows() as uow:
        await outbox.record(uow, owner, outcomes, uow.clock.now())
        await uow.commit()


def texts(n: int, *, notice_id: int | None = None, start: int = 0) -> list[Outgoing]:
    return [
        Outgoing("telegram", str(1000 + i), f"<b>通知</b> {i}", notice_id=notice_id) for i in range(start, start + n)
    ]


async def test_enqueue_adds_one_queued_row_per_message_in_bulk(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    notice_id = await make_notice(uows)
    buttons = ((OutboxButton("确认收到", data="ack:1"),), (OutboxButton("详情", url="https://example.org/a?b=1&c"),))
    messages = [
        *texts(2400, notice_id=notice_id),
        Outgoing(
            "telegram",
            "77",
            "照片说明",
            kind=MessageKind.PHOTO,
            file_ref="AgAD-photo",
            buttons=buttons,
            notice_id=notice_id,
        ),
        Outgoing("telegram", "78", "摘要", hold=True, notice_id=notice_id),
    ]
    assert await enqueue(uows, messages, delay=timedelta(minutes=5)) == 2402

    stored = await rows(uows)
    assert len(stored) == 2402
    assert {row.status for row in stored[:2401]} == {DeliveryStatus.QUEUED}
    assert stored[-1].status is DeliveryStatus.HELD
    photo = stored[2400]
    assert photo.kind is MessageKind.PHOTO and photo.file_ref == "AgAD-photo"
    assert outbox.buttons_from_json(photo.buttons) == buttons
    assert stored[0].text == "<b>通知</b> 0" and stored[0].chat_id == "1000" and stored[0].attempts == 0
    assert stored[0].not_before == clock.now() + timedelta(minutes=5)
    assert stored[0].created_at == clock.now()


async def test_enqueue_of_nothing_adds_nothing(uows: UnitOfWorkFactory) -> None:
    assert await enqueue(uows, []) == 0
    assert await rows(uows) == []


async def test_a_claim_takes_due_rows_oldest_first_and_leases_them(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    await enqueue(uows, texts(3, start=0))
    await enqueue(uows, texts(2, start=10), delay=timedelta(seconds=10))  # not yet due
    await enqueue(uows, [Outgoing("console", "wang", "你好")])  # a channel this sender does not serve

    first = await claim(uows, "sender-a", 2)
    assert [m.text for m in first] == ["<b>通知</b> 0", "<b>通知</b> 1"]
    assert all(m.status is DeliveryStatus.SENDING and m.attempts == 1 for m in first)
    assert all(m.lease_owner == "sender-a" and m.lease_until == clock.now() + LEASE for m in first)
    second = await claim(uows, "sender-b", 10)
    assert [m.text for m in second] == ["<b>通知</b> 2"]  # never a row already claimed, never one not due
    assert await claim(uows, "sender-b", 10) == []

    clock.advance(timedelta(seconds=10))  # due now; the leases of the first claims still hold
    later = await claim(uows, "sender-b", 10)
    assert [m.text for m in later] == ["<b>通知</b> 10", "<b>通知</b> 11"]
    console = await claim(uows, "sender-c", 10, channels=("console",))
    assert [m.chat_id for m in console] == ["wang"]


async def test_a_row_whose_lease_ran_out_is_claimed_again_first(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    await enqueue(uows, texts(2))
    (dead,) = await claim(uows, "died", 1)
    clock.advance(LEASE - timedelta(seconds=1))
    assert [m.id for m in await claim(uows, "alive", 5)] == [(dead.id or 0) + 1]  # the lease still holds
    clock.advance(timedelta(seconds=2))
    (again,) = await claim(uows, "alive", 5)
    assert again.id == dead.id and again.lease_owner == "alive" and again.attempts == 2


async def test_renewing_extends_only_the_owners_leases(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    await enqueue(uows, texts(3))
    await claim(uows, "a", 2)
    await claim(uows, "b", 1)
    async with uows() as uow:
        assert await outbox.renew(uow, "a", clock.now() + timedelta(minutes=10)) == 2
        await uow.commit()
    clock.advance(LEASE + timedelta(seconds=1))
    reclaimed = await claim(uows, "c", 10)
    assert [m.lease_owner for m in reclaimed] == ["c"]  # only b's row ran out


async def test_outcomes_are_recorded_by_their_owner_only(uows: UnitOfWorkFactory, clock: FakeClock) -> None:
    await enqueue(uows, texts(5))
    claimed = await claim(uows, "a", 5)
    ids = [m.id for m in claimed]
    assert all(isinstance(i, int) for i in ids)
    a, b, c, d, e = (int(i or 0) for i in ids)
    now = clock.now()
    await record(uows, "intruder", Outcomes(sent=[(a, "99", now)]))  # not its row: nothing changes
    assert (await rows(uows))[0].status is DeliveryStatus.SENDING

    later = now + timedelta(seconds=4)
    await record(
        uows,
        "a",
        Outcomes(
            sent=[(a, "501", now)],
            retry=[(b, later, "Internal Server Error")],
            released=[(c, later)],
            failed=[(d, "Bad Request: can't parse entities")],
        ),
    )
    stored = {row.id: row for row in await rows(uows)}
    assert stored[a].status is DeliveryStatus.SENT and stored[a].external_id == "501" and stored[a].sent_at == now
    assert stored[a].lease_owner is None and stored[a].lease_until is None
    assert stored[b].status is DeliveryStatus.QUEUED and stored[b].not_before == later
    assert stored[b].attempts == 1 and stored[b].error == "Internal Server Error"
    assert stored[c].status is DeliveryStatus.QUEUED and stored[c].attempts == 0  # a release is no attempt
    assert stored[d].status is DeliveryStatus.FAILED and stored[d].error == "Bad Request: can't parse entities"
    assert stored[e].status is DeliveryStatus.SENDING  # nothing said about it yet

    assert await claim(uows, "a", 5) == []  # b and c wait for not_before
    clock.advance(timedelta(seconds=4))
    assert sorted(m.id or 0 for m in await claim(uows, "a", 5)) == [b, c]


async def test_a_blocked_account_is_marked_and_its_queued_rows_skipped(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    blocked = await make_account(uows, "501")
    other = await make_account(uows, "502")
    await enqueue(
        uows,
        [
            Outgoing("telegram", "501", "一", account_id=blocked.id),
            Outgoing("telegram", "501", "二", account_id=blocked.id),
            Outgoing("telegram", "502", "三", account_id=other.id),
            Outgoing("telegram", "-100777", "群一", is_group=True),
            Outgoing("telegram", "-100777", "群二", is_group=True),
        ],
    )
    first, _, _, group, _ = await claim(uows, "a", 5)
    await enqueue(uows, [Outgoing("telegram", "501", "四", account_id=blocked.id)])
    await record(
        uows,
        "a",
        Outcomes(
            unreachable=[
                (int(first.id or 0), "Forbidden: bot was blocked by the user", blocked.id, "telegram", "501"),
                (int(group.id or 0), "Bad Request: chat not found", None, "telegram", "-100777"),
            ]
        ),
    )
    stored = await rows(uows)
    assert [row.status for row in stored] == [
        DeliveryStatus.UNREACHABLE,
        DeliveryStatus.SENDING,  # claimed with the first: its sender records it
        DeliveryStatus.SENDING,
        DeliveryStatus.UNREACHABLE,
        DeliveryStatus.SENDING,
        DeliveryStatus.UNREACHABLE,  # queued later for the blocked account
    ]
    assert stored[0].error == "Forbidden: bot was blocked by the user"
    async with uows() as uow:
        accounts = {a.id: a for a in (await uow.session.exec(select(ChannelAccount))).all()}
    assert accounts[blocked.id].unreachable_since == clock.now()
    assert accounts[other.id].unreachable_since is None


async def test_a_claim_marks_rather_than_returns_rows_for_accounts_known_unreachable(
    uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    gone = await make_account(uows, "601")
    here = await make_account(uows, "602")
    async with uows() as uow:
        account = await uow.session.get(ChannelAccount, gone.id)
        assert account is not None
        account.unreachable_since = clock.now()
        uow.session.add(account)
        await uow.commit()
    await enqueue(uows, [Outgoing("telegram", "601", "一", account_id=gone.id) for _ in range(12)])
    await enqueue(uows, [Outgoing("telegram", "602", "二", account_id=here.id)])

    claimed = await claim(uows, "a", 5)  # the first rounds find only the unreachable account's rows
    assert [m.chat_id for m in claimed] == ["602"]
    assert [row.status for row in await rows(uows)] == [DeliveryStatus.UNREACHABLE] * 12 + [DeliveryStatus.SENDING]


async def test_cancel_status_counts_and_settling(uows: UnitOfWorkFactory) -> None:
    notice_id = await make_notice(uows)
    await enqueue(
        uows, [*texts(4, notice_id=notice_id), Outgoing("telegram", "9", "摘要", notice_id=notice_id, hold=True)]
    )
    await enqueue(uows, texts(2, start=50))  # another notice's (none): never counted
    sending = await claim(uows, "a", 2)
    await record(uows, "a", Outcomes(sent=[(int(sending[0].id or 0), "1", sending[0].not_before)]))
    async with uows() as uow:
        counts = await outbox.status_counts(uow, notice_id)
        assert not await outbox.is_settled(uow, notice_id)
    assert counts[DeliveryStatus.SENT] == 1 and counts[DeliveryStatus.SENDING] == 1
    assert counts[DeliveryStatus.QUEUED] == 2 and counts[DeliveryStatus.HELD] == 1
    assert counts[DeliveryStatus.FAILED] == 0 and sum(counts.values()) == 5

    async with uows() as uow:
        assert await outbox.cancel_queued(uow, notice_id) == 3  # two queued and the held one
        await uow.commit()
    async with uows() as uow:
        counts = await outbox.status_counts(uow, notice_id)
        assert not await outbox.is_settled(uow, notice_id)  # the row in flight still goes out
    assert counts[DeliveryStatus.CANCELLED] == 3 and counts[DeliveryStatus.SENDING] == 1
    await record(uows, "a", Outcomes(failed=[(int(sending[1].id or 0), "Bad Request")]))
    async with uows() as uow:
        assert await outbox.is_settled(uow, notice_id)


async def test_held_rows_count_as_settled(uows: UnitOfWorkFactory) -> None:
    notice_id = await make_notice(uows)
    await enqueue(uows, [Outgoing("telegram", "9", "摘要", notice_id=notice_id, hold=True)])
    async with uows() as uow:
        assert await outbox.is_settled(uow, notice_id)


@pytest.fixture
def postgres_only(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has a single writer")


@pytest.mark.usefixtures("postgres_only")
async def test_a_claim_skips_rows_another_uncommitted_claim_holds(uows: UnitOfWorkFactory) -> None:
    """The first claim keeps its transaction open while the second runs: the second must neither wait for it nor
    take its rows (without SKIP LOCKED it would block here and the test would time out)."""
    await enqueue(uows, texts(10))
    async with uows() as first_uow:
        now = first_uow.clock.now()
        first = await outbox.claim(first_uow, "a", now, 4, now + LEASE, ("telegram",))
        second = await asyncio.wait_for(claim(uows, "b", 4), timeout=5)
        await first_uow.commit()
    assert {m.id for m in first}.isdisjoint({m.id for m in second})
    assert len(first) == len(second) == 4


@pytest.mark.usefixtures("postgres_only")
async def test_concurrent_claimers_never_share_a_row(uows: UnitOfWorkFactory) -> None:
    await enqueue(uows, texts(600))
    taken: dict[str, list[int]] = {name: [] for name in ("a", "b", "c", "d")}

    async def claimer(name: str) -> None:
        while batch := await claim(uows, name, 25):
            taken[name].extend(int(m.id or 0) for m in batch)

    await asyncio.gather(*(claimer(name) for name in taken))
    everything = [row_id for ids in taken.values() for row_id in ids]
    assert len(everything) == len(set(everything)) == 600
    assert sum(1 for ids in taken.values() if ids) >= 2  # they did run side by side
