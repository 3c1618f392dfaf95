"""The outbox: every message to many people is a row here first, and a sender (bot/delivery) delivers the rows.

Domain code enqueues rows in bulk inside its own unit of work (a notice and its messages commit together, or
neither does). The sender claims due rows with a lease, sends them and records the outcomes in batches:

    QUEUED --claim--> SENDING --sent--> SENT
                         |----retry--> QUEUED (not_before = now + backoff), or FAILED after the last attempt
                         |----release-> QUEUED (not an attempt: a 429 pause, a stop, a chat that must wait)
                         |----refused--> FAILED
                         `----blocked--> UNREACHABLE, and so does every other queued row of that account
    HELD (daily digest) and QUEUED --cancel--> CANCELLED
    QUEUED (and SENDING with a lapsed lease) of a channel no process serves --end_other_channels--> NO_CHANNEL

An edit row (``edit_of`` set, community.notify.edit) changes the message another row delivered: its claim looks
that row up, gives the edit the delivered message's id (as its external_id), puts it back for a moment while that
message is still on its way, and cancels it when that message was never delivered.

A claim sets ``lease_owner`` and ``lease_until``; the sender renews the leases of the rows it holds. A sender
that dies leaves its rows SENDING with a lease that runs out, and the next claim takes them again, so nothing is
lost and at most the rows that were in flight at the crash are sent twice. On PostgreSQL a claim locks the rows
it picks with FOR UPDATE SKIP LOCKED, so two senders never take the same row; SQLite has a single writer, and
the claim is one UPDATE ... RETURNING, which is atomic there.

Every write the sender makes is guarded by ``lease_owner``: a sender whose lease was taken over cannot
overwrite what the new owner recorded."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import configure_mappers
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import Select

from community.db_types import UTCDateTime
from community.models import ChannelAccount
from community.notice_models import DeliveryStatus, MessageKind, OutboxMessage

if TYPE_CHECKING:  # community.unit_of_work imports community.notify, which imports this module
    from community.unit_of_work import UnitOfWork

MAX_ERROR: Final = 500  # characters of a channel's error kept on the row
_ENQUEUE_CHUNK: Final = 1000  # rows per INSERT: bounds the statement's size on either database
_CLAIM_ROUNDS: Final = 5  # a claim tries again when every row it took was for an unreachable account
_GONE: Final = "unreachable: the account refused an earlier message"
_NO_CHANNEL: Final = "not reachable on this channel: no running process serves it"
_NOTHING: Final = "nothing to edit: the message was never delivered"
# An edit whose message is still on its way waits this long before it is claimed again.
EDIT_WAIT: Final = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class OutboxButton:
    label: str
    data: str | None = None  # callback data (already packed by bot/callbacks)
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to one chat, as domain code hands it to enqueue()."""

    channel: str
    chat_id: str
    text: str  # final HTML (Telegram subset), already in the recipient's language
    person_id: int | None = None
    account_id: int | None = None
    notice_id: int | None = None
    kind: MessageKind = MessageKind.TEXT
    buttons: tuple[tuple[OutboxButton, ...], ...] = ()
    file_ref: str | None = None
    file_name: str | None = None
    is_group: bool = False
    hold: bool = False  # True: status HELD (waits for the daily digest) instead of QUEUED
    topic: str | None = None  # what it is about (community.notify): copies sent to several people share it
    language: str | None = None  # the language text is written in, for an edit in the same language


def buttons_to_json(buttons: tuple[tuple[OutboxButton, ...], ...]) -> str | None:
    """Rows of buttons as the outbox stores them: [[{"label", "data"} or {"label", "url"}, ...], ...]."""
    if not buttons:
        return None
    rows: list[list[dict[str, str]]] = []
    for row in buttons:
        out: list[dict[str, str]] = []
        for button in row:
            item = {"label": button.label}
            if button.data is not None:
                item["data"] = button.data
            elif button.url is not None:
                item["url"] = button.url
            else:
                raise ValueError("an outbox button needs callback data or a url")
            out.append(item)
        if out:
            rows.append(out)
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")) if rows else None


def buttons_from_json(raw: str | None) -> tuple[tuple[OutboxButton, ...], ...]:
    if not raw:
        return ()
    rows: list[list[dict[str, str]]] = json.loads(raw)
    return tuple(
        tuple(OutboxButton(label=item["label"], data=item.get("data"), url=item.get("url")) for item in row)
        for row in rows
    )


def outbox_table() -> Table:
    """The outbox as a Core table (community.notify edits copies through it too)."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]  # set by SQLModel's metaclass
    assert isinstance(table, Table)
    return table


def _accounts() -> Table:
    table = ChannelAccount.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


# ---- what domain code uses ---------------------------------------------------------------------------------


async def enqueue(uow: UnitOfWork, messages: Iterable[Outgoing], *, not_before: datetime) -> int:
    """Add one outbox row per message, in bulk (a few multi-row INSERTs, no ORM objects); the caller commits.
    Returns the number of rows added."""
    now = uow.clock.now()
    connection = await uow.session.connection()
    statement = _statements().insert
    count = 0
    chunk: list[dict[str, Any]] = []
    for message in messages:
        chunk.append(
            {
                "notice_id": message.notice_id,
                "person_id": message.person_id,
                "account_id": message.account_id,
                "channel": message.channel,
                "chat_id": message.chat_id,
                "is_group": message.is_group,
                "kind": message.kind,
                "text": message.text,
                "buttons": buttons_to_json(message.buttons),
                "file_ref": message.file_ref,
                "file_name": message.file_name,
                "status": DeliveryStatus.HELD if message.hold else DeliveryStatus.QUEUED,
                "not_before": not_before,
                "attempts": 0,
                "created_at": now,
                "topic": message.topic,
                "language": message.language,
                "edit_of": None,
            }
        )
        if len(chunk) >= _ENQUEUE_CHUNK:
            await connection.execute(statement, chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        await connection.execute(statement, chunk)
        count += len(chunk)
    return count


async def cancel_queued(uow: UnitOfWork, notice_id: int) -> int:
    """A notice's rows not yet sent (QUEUED or HELD) become CANCELLED; returns how many. Rows a sender holds
    right now (SENDING) go out: they may already be on the wire."""
    table = outbox_table()
    result = await (await uow.session.connection()).execute(
        update(table)
        .where(
            table.c.notice_id == notice_id,
            table.c.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.HELD]),
        )
        .values(status=DeliveryStatus.CANCELLED, lease_owner=None, lease_until=None)
    )
    return int(result.rowcount)


async def status_counts(uow: UnitOfWork, notice_id: int) -> dict[DeliveryStatus, int]:
    """How many of a notice's rows are in each status; every status is present, zero when none."""
    counts = dict.fromkeys(DeliveryStatus, 0)
    rows = await (await uow.session.connection()).execute(_statements().counts, {"notice_id": notice_id})
    for status, count in rows:
        counts[DeliveryStatus(status)] = int(count)
    return counts


async def is_settled(uow: UnitOfWork, notice_id: int) -> bool:
    """No row of the notice is QUEUED or SENDING (HELD rows wait for a digest and count as settled)."""
    row = (await (await uow.session.connection()).execute(_statements().unsettled, {"notice_id": notice_id})).first()
    return row is None


# ---- what the sender uses ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcomes:
    """What a sender learned since it last wrote, recorded in one transaction by record()."""

    # (row id, the channel's message id, when)
    sent: list[tuple[int, str, datetime]] = field(default_factory=list)
    # (row id, when to try again, why): a transient failure, an attempt used
    retry: list[tuple[int, datetime, str]] = field(default_factory=list)
    # (row id, not before): back to the queue without counting an attempt (a pause, a stop, a busy chat)
    released: list[tuple[int, datetime]] = field(default_factory=list)
    # (row id, why): given up
    failed: list[tuple[int, str]] = field(default_factory=list)
    # (row id, why, the row's account id or None, channel, chat id): the person blocked the bot
    unreachable: list[tuple[int, str, int | None, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.retry) + len(self.released) + len(self.failed) + len(self.unreachable)

    def extend(self, other: Outcomes) -> None:
        self.sent.extend(other.sent)
        self.retry.extend(other.retry)
        self.released.extend(other.released)
        self.failed.extend(other.failed)
        self.unreachable.extend(other.unreachable)


async def claim(
    uow: UnitOfWork,
    owner: str,
    now: datetime,
    limit: int,
    lease_until: datetime,
    channels: Sequence[str],
) -> list[OutboxMessage]:
    """Take up to ``limit`` due rows of these channels for ``owner`` until ``lease_until``, oldest first: rows
    whose lease ran out (their sender died) before QUEUED rows whose not_before has come. Each becomes SENDING
    with one more attempt. The caller commits (at once: the rows are locked until then on PostgreSQL)."""
    statements = _statements()
    connection = await uow.session.connection()
    params = {"owner": owner, "now": now, "until": lease_until, "channels": list(channels)}
    messages: list[OutboxMessage] = []
    for _ in range(_CLAIM_ROUNDS):
        wanted = limit - len(messages)
        if wanted <= 0 or not channels:
            break
        claimed = list((await connection.execute(statements.claim_expired, {**params, "limit": wanted})).all())
        if len(claimed) < wanted:
            claimed += (
                await connection.execute(statements.claim_due, {**params, "limit": wanted - len(claimed)})
            ).all()
        kept = await _drop_unreachable(connection, owner, [_message(row) for row in claimed])
        messages += await _resolve_edits(connection, owner, now, kept)
        if len(kept) == len(claimed):
            break
    # RETURNING gives no order: oldest first, as claimed.
    messages.sort(key=lambda message: (message.not_before, message.id or 0))
    return messages


async def end_other_channels(uow: UnitOfWork, channels: Sequence[str], now: datetime) -> set[int]:
    """Rows of any channel but these that wait (QUEUED, or SENDING whose sender died) end as NO_CHANNEL: nobody
    will send them, so they must not hold their notice open. Only the database's one channel process calls this
    (see bot/delivery/sender.py). Returns the ids of the notices whose rows it ended; the caller commits."""
    connection = await uow.session.connection()
    rows = await connection.execute(_statements().end_other_channels, {"channels": list(channels), "now": now})
    return {notice_id for (notice_id,) in rows if notice_id is not None}


async def _drop_unreachable(
    connection: AsyncConnection, owner: str, messages: list[OutboxMessage]
) -> list[OutboxMessage]:
    """Rows for accounts already marked unreachable (the person blocked the bot) are marked so, not sent."""
    accounts = sorted({m.account_id for m in messages if m.account_id is not None})
    if not accounts:
        return messages
    statements = _statements()
    gone = set((await connection.execute(statements.gone_accounts, {"ids": accounts})).scalars())
    if not gone:
        return messages
    await connection.execute(
        statements.failed,
        [
            {"b_id": m.id, "b_owner": owner, "b_status": DeliveryStatus.UNREACHABLE, "b_error": _GONE}
            for m in messages
            if m.account_id in gone
        ],
    )
    return [m for m in messages if m.account_id not in gone]


async def _resolve_edits(
    connection: AsyncConnection, owner: str, now: datetime, messages: list[OutboxMessage]
) -> list[OutboxMessage]:
    """Edit rows (community.notify.edit) change the message another row delivered: an edit row leaves the claim
    with that message's id as its external_id. One whose message is still on its way goes back to the queue for
    a moment (not an attempt); one whose message was never delivered has nothing to change and is cancelled."""
    targets = sorted({m.edit_of for m in messages if m.edit_of is not None})
    if not targets:
        return messages
    statements = _statements()
    found = {
        row_id: (DeliveryStatus(status), external_id)
        for row_id, status, external_id in await connection.execute(statements.edit_targets, {"ids": targets})
    }
    later: list[dict[str, Any]] = []
    cancelled: list[dict[str, Any]] = []
    kept: list[OutboxMessage] = []
    for message in messages:
        if message.edit_of is None:
            kept.append(message)
            continue
        status, external_id = found.get(message.edit_of, (DeliveryStatus.CANCELLED, None))
        if status is DeliveryStatus.SENT and external_id is not None:
            # A copy (model_construct instances take no attribute assignment): the sender only reads it.
            fields = {name: getattr(message, name) for name in OutboxMessage.model_fields}
            kept.append(OutboxMessage.model_construct(**{**fields, "external_id": external_id}))
        elif status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
            later.append({"b_id": message.id, "b_owner": owner, "b_not_before": now + EDIT_WAIT})
        else:
            cancelled.append(
                {"b_id": message.id, "b_owner": owner, "b_status": DeliveryStatus.CANCELLED, "b_error": _NOTHING}
            )
    if later:
        await connection.execute(statements.release, later)
    if cancelled:
        await connection.execute(statements.failed, cancelled)
    return kept


async def renew(uow: UnitOfWork, owner: str, lease_until: datetime) -> int:
    """Extend the lease of every row ``owner`` holds; returns how many it holds."""
    connection = await uow.session.connection()
    result = await connection.execute(_statements().renew, {"owner": owner, "until": lease_until})
    return int(result.rowcount)


async def record(uow: UnitOfWork, owner: str, outcomes: Outcomes, now: datetime) -> None:
    """Write a batch of outcomes (a few executemany statements); the caller commits."""
    statements = _statements()
    connection = await uow.session.connection()
    if outcomes.sent:
        await connection.execute(
            statements.sent,
            [{"b_id": i, "b_owner": owner, "b_ext": ext[:64], "b_at": at} for i, ext, at in outcomes.sent],
        )
    if outcomes.retry:
        await connection.execute(
            statements.retry,
            [
                {"b_id": i, "b_owner": owner, "b_not_before": when, "b_error": why[:MAX_ERROR]}
                for i, when, why in outcomes.retry
            ],
        )
    if outcomes.released:
        await connection.execute(
            statements.release,
            [{"b_id": i, "b_owner": owner, "b_not_before": when} for i, when in outcomes.released],
        )
    if outcomes.failed:
        await connection.execute(
            statements.failed,
            [
                {"b_id": i, "b_owner": owner, "b_status": DeliveryStatus.FAILED, "b_error": why[:MAX_ERROR]}
                for i, why in outcomes.failed
            ],
        )
    if outcomes.unreachable:
        await _record_unreachable(uow, owner, outcomes.unreachable, now)


async def _record_unreachable(
    uow: UnitOfWork, owner: str, rows: list[tuple[int, str, int | None, str, str]], now: datetime
) -> None:
    statements = _statements()
    connection = await uow.session.connection()
    await connection.execute(
        statements.failed,
        [
            {"b_id": i, "b_owner": owner, "b_status": DeliveryStatus.UNREACHABLE, "b_error": why[:MAX_ERROR]}
            for i, why, _, _, _ in rows
        ],
    )
    accounts = sorted({account for _, _, account, _, _ in rows if account is not None})
    if accounts:
        await connection.execute(statements.mark_accounts, {"ids": accounts, "now": now})
        await connection.execute(statements.skip_accounts, {"ids": accounts})
    for _, _, account, channel, chat_id in rows:
        if account is None:  # a group, or a chat without an account: its other queued rows by address
            await connection.execute(statements.skip_chat, {"b_channel": channel, "b_chat_id": chat_id})


def _message(row: Row[Any]) -> OutboxMessage:
    """A claimed row as an OutboxMessage, detached from any session: the sender only reads it. model_construct
    takes 12 µs a row where OutboxMessage(**row) takes 98 µs (it validates); it needs the mappers configured,
    which _statements() sees to."""
    return OutboxMessage.model_construct(**row._mapping)


@dataclass(frozen=True, slots=True)
class _Statements:
    insert: Insert
    counts: Select[Any]
    unsettled: Select[Any]
    claim_expired: Update
    claim_due: Update
    renew: Update
    sent: Update
    retry: Update
    release: Update
    failed: Update
    mark_accounts: Update
    gone_accounts: Select[Any]
    skip_accounts: Update
    skip_chat: Update
    end_other_channels: Update
    edit_targets: Select[Any]


@functools.cache
def _statements() -> _Statements:
    """Built once: building a statement costs about as much as the database takes to run these."""
    configure_mappers()  # for _message(): instances made by model_construct read through the mapped attributes
    t = outbox_table()
    accounts = _accounts()
    owner = bindparam("owner", type_=String())
    now = bindparam("now", type_=UTCDateTime())
    until = bindparam("until", type_=UTCDateTime())
    channels: BindParameter[str] = bindparam("channels", expanding=True)
    limit = bindparam("limit", type_=Integer())

    def claiming(*due: Any) -> Update:
        # FOR UPDATE SKIP LOCKED: on PostgreSQL a row another sender is claiming is passed over, not waited for
        # and not taken twice; SQLite's compiler leaves the clause out (it has a single writer anyway).
        picked = (
            select(t.c.id)
            .where(*due, t.c.channel.in_(channels))
            .order_by(t.c.not_before, t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (
            update(t)
            .where(t.c.id.in_(picked.scalar_subquery()))
            .values(
                status=DeliveryStatus.SENDING,
                lease_owner=owner,
                lease_until=until,
                attempts=t.c.attempts + 1,
            )
            .returning(*t.c)
        )

    mine = and_(t.c.id == bindparam("b_id"), t.c.lease_owner == bindparam("b_owner"))
    mine = and_(mine, t.c.status == DeliveryStatus.SENDING)
    let_go = {"lease_owner": None, "lease_until": None}
    return _Statements(
        insert=insert(t),
        counts=select(t.c.status, func.count()).where(t.c.notice_id == bindparam("notice_id")).group_by(t.c.status),
        unsettled=select(t.c.id)
        .where(
            t.c.notice_id == bindparam("notice_id"),
            t.c.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.SENDING]),
        )
        .limit(1),
        claim_expired=claiming(t.c.status == DeliveryStatus.SENDING, t.c.lease_until < now),
        claim_due=claiming(t.c.status == DeliveryStatus.QUEUED, t.c.not_before <= now),
        renew=update(t).where(t.c.status == DeliveryStatus.SENDING, t.c.lease_owner == owner).values(lease_until=until),
        sent=update(t)
        .where(mine)
        .values(
            status=DeliveryStatus.SENT,
            external_id=bindparam("b_ext"),
            sent_at=bindparam("b_at"),
            error=None,
            **let_go,
        ),
        retry=update(t)
        .where(mine)
        .values(
            status=DeliveryStatus.QUEUED,
            not_before=bindparam("b_not_before"),
            error=bindparam("b_error"),
            **let_go,
        ),
        release=update(t)
        .where(mine)
        .values(
            status=DeliveryStatus.QUEUED,
            not_before=bindparam("b_not_before"),
            attempts=case((t.c.attempts > 0, t.c.attempts - 1), else_=0),
            **let_go,
        ),
        failed=update(t).where(mine).values(status=bindparam("b_status"), error=bindparam("b_error"), **let_go),
        mark_accounts=update(accounts)
        .where(accounts.c.id.in_(bindparam("ids", expanding=True)), accounts.c.unreachable_since.is_(None))
        .values(unreachable_since=now),
        gone_accounts=select(accounts.c.id).where(
            accounts.c.id.in_(bindparam("ids", expanding=True)), accounts.c.unreachable_since.is_not(None)
        ),
        skip_accounts=update(t)
        .where(t.c.account_id.in_(bindparam("ids", expanding=True)), t.c.status == DeliveryStatus.QUEUED)
        .values(status=DeliveryStatus.UNREACHABLE, error=_GONE),
        skip_chat=update(t)
        .where(
            t.c.channel == bindparam("b_channel"),
            t.c.chat_id == bindparam("b_chat_id"),
            t.c.status == DeliveryStatus.QUEUED,
            t.c.account_id.is_(None),
        )
        .values(status=DeliveryStatus.UNREACHABLE, error=_GONE),
        end_other_channels=update(t)
        .where(
            t.c.channel.not_in(channels),
            (t.c.status == DeliveryStatus.QUEUED) | and_(t.c.status == DeliveryStatus.SENDING, t.c.lease_until < now),
        )
        .values(status=DeliveryStatus.NO_CHANNEL, error=_NO_CHANNEL, **let_go)
        .returning(t.c.notice_id),
        edit_targets=select(t.c.id, t.c.status, t.c.external_id).where(t.c.id.in_(bindparam("ids", expanding=True))),
    )
