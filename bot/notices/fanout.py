"""How a notice reads as a message (the renderer of community.notice_messages.NoticeMessage, which
community.notify calls once per language, and once more where the recipient's channel cannot show the
attachment). Also the digest itself: one message per recipient gathering their held notices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from bot.delivery.transport import outbox_buttons
from bot.html import TELEGRAM_TEXT_LIMIT, html_to_plain, utf16_len
from bot.notices.render import (
    attachment_label,
    category_label,
    moment,
    render_notice,
)
from bot.rendering import Localizer, Localizers
from community import notices, outbox
from community.communities import get_community
from community.models import Community
from community.notice_messages import NoticeMessage
from community.notice_models import Notice
from community.notify import Reader, Rendered, Renderers
from community.outbox import Outgoing
from community.unit_of_work import UnitOfWork

# A digest message stays well under Telegram's limit, so a few more notices go into the next message instead.
DIGEST_BUDGET = TELEGRAM_TEXT_LIMIT - 400


def body_for(versions: dict[str, str], notice: Notice, language: str) -> str:
    """The worker's version in the reader's language where they wrote one, else the original."""
    return versions.get(language) or versions.get(notice.language) or notice.body


def register_renderers(renderers: Renderers, localizers: Localizers) -> None:
    """How a notice's message reads (community.notice_messages.NoticeMessage), for the composition root."""

    def render(message: NoticeMessage, reader: Reader) -> Rendered:
        local = localizers.get(reader.language, message.timezone)
        shown = render_notice(local, message.look, message.body_for(reader.language), with_file=reader.with_file)
        return Rendered(shown.text, outbox_buttons(shown.buttons))

    renderers.register(NoticeMessage, render)


@dataclass(frozen=True, slots=True)
class DigestItem:
    community: str
    category: str
    at: datetime
    body: str
    attachment: str | None


async def send_digests(uow: UnitOfWork, localizers: Localizers) -> int:
    """One digest message (more where it would be too long) per recipient with held notices of the communities
    whose digest time has come (community.notices.due_digests); the caller commits. Returns how many messages
    were enqueued."""
    communities: dict[int, Community] = {}
    versions: dict[int, dict[str, str]] = {}
    messages: list[Outgoing] = []
    for batch in await notices.digest_batches(uow, await notices.due_digests(uow)):
        if not batch.notices:
            continue
        first = batch.notices[0]
        for notice in batch.notices:
            assert notice.id is not None
            if notice.community_id not in communities:
                communities[notice.community_id] = await get_community(uow, notice.community_id)
            if notice.id not in versions:
                versions[notice.id] = await notices.language_versions(uow, notice)
        reader = localizers.get(batch.language, communities[first.community_id].timezone)
        items = [
            DigestItem(
                community=communities[n.community_id].name,
                category=category_label(reader, n.category),
                at=n.queued_at or n.created_at,
                body=body_for(versions[n.id or 0], n, batch.language),
                attachment=attachment_label(reader, n.attachment_kind, n.attachment_name),
            )
            for n in batch.notices
        ]
        for text in digest_texts(reader, items):
            messages.append(
                Outgoing(
                    channel=batch.channel,
                    chat_id=batch.chat_id,
                    text=text,
                    person_id=batch.person_id,
                    account_id=batch.account_id,
                )
            )
        await notices.mark_digested(uow, batch.row_ids)
    if messages:
        await outbox.enqueue(uow, messages, not_before=uow.clock.now())
    return len(messages)


def digest_texts(l: Localizer, items: Sequence[DigestItem]) -> list[str]:  # noqa: E741
    """The digest as few messages as fit Telegram's limit, each notice whole in one of them."""
    texts: list[str] = []
    chunk: list[DigestItem] = []
    for item in items:
        candidate = [*chunk, item]
        if chunk and _length(l, candidate, len(items)) > DIGEST_BUDGET:
            texts.append(_digest(l, chunk, len(items)))
            candidate = [item]
        chunk = candidate
    if chunk:
        texts.append(_digest(l, chunk, len(items)))
    return texts


def _digest(l: Localizer, items: Sequence[DigestItem], total: int) -> str:  # noqa: E741
    return l.render("notice_digest.j2", items=items, total=total, at=partial(moment, l))


def _length(l: Localizer, items: Sequence[DigestItem], total: int) -> int:  # noqa: E741
    return utf16_len(html_to_plain(_digest(l, items, total)))
