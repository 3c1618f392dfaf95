"""One way to tell someone something: ``uow.notify(recipients, notification)``.

A notification is a typed value (a frozen dataclass of plain fields) that names what to say; it holds no prose.
The bot ring registers a renderer per notification type with the kernel (Renderers, held by the
UnitOfWorkFactory and filled by the composition root): given the notification, the reader's language and whether
the reader's channel can show the attachment, it returns the final text and buttons. notify() renders once per
(language, attachment shown) and writes one outbox row per recipient in the caller's transaction: the message
and the change that caused it commit together or not at all, so a crash between the commit and the send loses
nothing (the sender delivers the rows later, paced, skipping accounts that blocked the bot), and a message to a
person on another channel is sent by the process that serves that channel.

This is the only per-language fan-out loop: notices, consultation invitations and outcomes, join requests and
their decisions, moderation requests and decisions all come through here.

Copies of one message sent to several people (a moderation request to every moderator) share a ``topic``. Once
one of them acted, ``edit(topic, notification)`` changes the other copies: a copy not sent yet is rewritten in
place, a copy sent (or being sent) gets an edit row that the sender turns into an edit of the delivered message
(community.outbox resolves the message id when it claims the row)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import insert, select, update

from community.models import ChannelAccount
from community.notice_models import DeliveryStatus, MessageKind
from community.outbox import OutboxButton, Outgoing, buttons_to_json, enqueue, outbox_table
from i18n import negotiate_language

if TYPE_CHECKING:  # community.unit_of_work imports this module for UnitOfWork.notify
    from community.unit_of_work import UnitOfWork

MAX_TOPIC: Final = 64  # characters; outbox.topic

N = TypeVar("N")


@dataclass(frozen=True, slots=True)
class Recipient:
    """One message to one person through one of their channel accounts."""

    person_id: int | None
    account_id: int | None
    channel: str
    chat_id: str
    language: str  # the language to write to them in
    hold: bool = False  # True: waits for their daily digest (notices only)

    @classmethod
    def of(cls, account: ChannelAccount, own_choice: str | None, community_default: str) -> Recipient:
        """A person's channel account, written to in their own language choice, else their client's, else the
        community's default."""
        return cls(
            person_id=account.person_id,
            account_id=account.id,
            channel=account.channel,
            chat_id=account.chat_id,
            language=negotiate_language(own_choice, account.language_code, community_default),
        )


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that goes with the message where the recipient's channel holds it (a Telegram file_id is valid
    only on Telegram); elsewhere the renderer names it in the text."""

    channel: str
    kind: MessageKind  # PHOTO or DOCUMENT
    ref: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Reader:
    """What a renderer needs to know about the recipient."""

    language: str
    with_file: bool = False  # the message goes out as the caption of its attachment


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str  # final HTML (Telegram subset) in the reader's language
    buttons: tuple[tuple[OutboxButton, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message a channel delivered: the one a person tapped a button under, say."""

    channel: str
    chat_id: str
    message_id: str | None


class Renderers:
    """Which renderer turns which notification type into text. The composition root fills it once at start; the
    kernel and the domain packages only look renderers up."""

    def __init__(self) -> None:
        self._renderers: dict[type[Any], Callable[[Any, Reader], Rendered]] = {}

    def register(self, kind: type[N], renderer: Callable[[N, Reader], Rendered]) -> None:
        self._renderers[kind] = renderer

    def render(self, notification: object, reader: Reader) -> Rendered:
        renderer = self._renderers.get(type(notification))
        if renderer is None:
            raise LookupError(
                f"no renderer for {type(notification).__name__}: the composition root registers one (bot.app)"
            )
        return renderer(notification, reader)


@dataclass(slots=True)
class _Cache:
    renderers: Renderers
    notification: object
    shown: dict[Reader, Rendered] = field(default_factory=dict)

    def get(self, reader: Reader) -> Rendered:
        found = self.shown.get(reader)
        if found is None:
            found = self.shown[reader] = self.renderers.render(self.notification, reader)
        return found


def check_topic(topic: str | None) -> str | None:
    if topic is not None and not 0 < len(topic) <= MAX_TOPIC:
        raise ValueError(f"a topic has 1 to {MAX_TOPIC} characters")
    return topic


async def notify(
    uow: UnitOfWork,
    renderers: Renderers,
    recipients: Iterable[Recipient],
    notification: object,
    *,
    attachment: Attachment | None = None,
    notice_id: int | None = None,
    topic: str | None = None,
    followed_by: Callable[[Recipient], Sequence[Outgoing]] | None = None,
) -> int:
    """Write the notification for every recipient as outbox rows in uow's transaction (the caller commits);
    returns how many rows. followed_by: messages of the recipient's own (a picture made for them alone) written
    right after their row, so that the sender, which takes rows in order, delivers them right after it: enqueued
    after every recipient's row instead, they would come an hour later to the last of 20,000."""
    check_topic(topic)
    cache = _Cache(renderers, notification)
    messages: list[Outgoing] = []
    for person in recipients:
        with_file = attachment is not None and person.channel == attachment.channel
        shown = cache.get(Reader(person.language, with_file))
        messages.append(
            Outgoing(
                channel=person.channel,
                chat_id=person.chat_id,
                text=shown.text,
                person_id=person.person_id,
                account_id=person.account_id,
                notice_id=notice_id,
                kind=attachment.kind if with_file and attachment is not None else MessageKind.TEXT,
                buttons=shown.buttons,
                file_ref=attachment.ref if with_file and attachment is not None else None,
                file_name=attachment.name if with_file and attachment is not None else None,
                hold=person.hold,
                topic=topic,
                language=person.language,
            )
        )
        if followed_by is not None:
            messages.extend(followed_by(person))
    if not messages:
        return 0
    return await enqueue(uow, messages, not_before=uow.clock.now())


# Copies still waiting to go out are rewritten in place; copies sent or on the wire get an edit row.
_REWRITE: Final = (DeliveryStatus.QUEUED, DeliveryStatus.HELD)
_EDIT: Final = (DeliveryStatus.SENDING, DeliveryStatus.SENT)


async def edit(
    uow: UnitOfWork,
    renderers: Renderers,
    topic: str,
    notification: object,
    *,
    skip: Sequence[MessageRef] = (),
) -> int:
    """Change every copy of the messages about ``topic`` (text only, buttons replaced) to say ``notification``,
    each in the language it was written in; ``skip``: messages the caller changes itself (the one tapped).
    Returns how many copies change. The caller commits."""
    check_topic(topic)
    table = outbox_table()
    connection = await uow.session.connection()
    rows = (
        await connection.execute(
            select(
                table.c.id,
                table.c.status,
                table.c.person_id,
                table.c.account_id,
                table.c.channel,
                table.c.chat_id,
                table.c.is_group,
                table.c.language,
                table.c.external_id,
            )
            .where(table.c.topic == topic, table.c.edit_of.is_(None))
            .order_by(table.c.id)
        )
    ).all()
    skipped = {(ref.channel, ref.chat_id, ref.message_id) for ref in skip}
    cache = _Cache(renderers, notification)
    now = uow.clock.now()
    changed = 0
    for row_id, status, person_id, account_id, channel, chat_id, is_group, language, external_id in rows:
        if external_id is not None and (channel, chat_id, external_id) in skipped:
            continue
        shown = cache.get(Reader(language or "", False))
        if status in _REWRITE:
            await connection.execute(
                update(table)
                .where(table.c.id == row_id, table.c.status.in_(_REWRITE))
                .values(text=shown.text, buttons=buttons_to_json(shown.buttons))
            )
        elif status in _EDIT:
            await connection.execute(
                insert(table).values(
                    person_id=person_id,
                    account_id=account_id,
                    channel=channel,
                    chat_id=chat_id,
                    is_group=is_group,
                    kind=MessageKind.TEXT,
                    text=shown.text,
                    buttons=buttons_to_json(shown.buttons),
                    status=DeliveryStatus.QUEUED,
                    not_before=now,
                    attempts=0,
                    created_at=now,
                    topic=topic,
                    language=language,
                    edit_of=row_id,
                )
            )
        else:
            continue  # never delivered (blocked, failed, cancelled): there is nothing to change
        changed += 1
    return changed
