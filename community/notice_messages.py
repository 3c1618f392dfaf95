"""A notice as a notification (community.notify): what its message says, in plain fields, and its fan-out to
everyone it reaches now, through uow.notify like every other message to other people."""

from __future__ import annotations

from dataclasses import dataclass

from community import notices
from community.communities import get_community
from community.notice_models import AttachmentKind, MessageKind, Notice, NoticeCategory, NoticeStatus
from community.notices import NoticeDraft
from community.notify import Attachment, Recipient
from community.people import Identity
from community.unit_of_work import UnitOfWork

_KINDS = {AttachmentKind.PHOTO: MessageKind.PHOTO, AttachmentKind.DOCUMENT: MessageKind.DOCUMENT}


@dataclass(frozen=True, slots=True)
class NoticeLook:
    """Everything about a notice's message except its body, which depends on the reader's language."""

    notice_id: int  # buttons.PREVIEW_NOTICE_ID for a preview
    community: str
    category: NoticeCategory = NoticeCategory.GENERAL
    important: bool = False
    ack_requested: bool = False
    attachment_kind: AttachmentKind | None = None
    attachment_name: str | None = None

    @classmethod
    def of(cls, notice: Notice, community: str) -> NoticeLook:
        assert notice.id is not None
        return cls(
            notice_id=notice.id,
            community=community,
            category=notice.category,
            important=notice.important,
            ack_requested=notice.ack_requested,
            attachment_kind=notice.attachment_kind,
            attachment_name=notice.attachment_name,
        )


@dataclass(frozen=True, slots=True)
class NoticeMessage:
    look: NoticeLook
    timezone: str  # the community's, for the dates in the message
    language: str  # the language body is written in
    body: str
    translations: tuple[tuple[str, str], ...] = ()  # (language, the worker's own version)

    def body_for(self, language: str) -> str:
        """The worker's version in the reader's language where they wrote one, else the original."""
        return dict(self.translations).get(language) or self.body


def attachment_of(
    kind: AttachmentKind | None, channel: str | None, ref: str | None, name: str | None
) -> Attachment | None:
    """A notice's or a consultation's file as the outbox sends it (only on the channel that holds it)."""
    if kind is None or channel is None or ref is None:
        return None
    return Attachment(channel=channel, kind=_KINDS[kind], ref=ref, name=name)


async def fan_out(uow: UnitOfWork, notice: Notice) -> int:
    """Enqueue the notice for every recipient now and record how many; the caller commits. Run once per
    notice: begin_sending / publish hand over a notice that has not been fanned out yet."""
    assert notice.id is not None
    community = await get_community(uow, notice.community_id)
    versions = await notices.language_versions(uow, notice)
    message = NoticeMessage(
        look=NoticeLook.of(notice, community.name),
        timezone=community.timezone,
        language=notice.language,
        body=notice.body,
        translations=tuple((language, body) for language, body in versions.items() if language != notice.language),
    )
    recipients = [
        # A notice that asks for an acknowledgement needs its own message with the button.
        Recipient(p.person_id, p.account_id, p.channel, p.chat_id, p.language, hold=p.held and not notice.ack_requested)
        for p in await notices.recipients(uow, notice)
    ]
    attachment = attachment_of(
        notice.attachment_kind, notice.attachment_channel, notice.attachment_ref, notice.attachment_name
    )
    count = await uow.notify(recipients, message, attachment=attachment, notice_id=notice.id)
    await notices.mark_fanned_out(uow, notice.id, count)
    return count


@dataclass(frozen=True, slots=True)
class Published:
    notice: Notice
    reached: int  # the messages queued now, or, for a scheduled notice, how many it reaches today


async def publish_or_schedule(
    uow: UnitOfWork, identity: Identity, draft: NoticeDraft, progress_to: tuple[str, str] | None = None
) -> Published:
    """The workflow of a worker confirming a notice, from a chat: notices.publish() sends it now (then it is fanned
    out into the outbox in this unit of work) or schedules it (its job recorded as a row). ``progress_to``: the
    channel and chat the worker confirmed from, where the notice's progress message goes."""
    notice = await notices.publish(uow, identity, draft)
    assert notice.id is not None
    if progress_to is not None:
        await notices.set_progress_target(uow, notice.id, *progress_to)
    if notice.status is NoticeStatus.SENDING:
        return Published(notice, await fan_out(uow, notice))
    return Published(notice, notice.recipients)
