"""A notice as its recipients see it, rendered once per language: the community's name, the category, the
important mark, the body (escaped: workers type plain text), a note of the attachment, the Acknowledge button."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.lists import format_list

from bot.html import TELEGRAM_CAPTION_LIMIT, html_to_plain, utf16_len
from bot.notices.buttons import AcknowledgeNotice
from bot.rendering import Localizer
from bot.replies import Button, Keyboard
from community.notice_messages import NoticeLook
from community.notice_models import AttachmentKind, NoticeCategory
from community.roles import Role
from community.scope import Scope
from i18n import N_

CATEGORY_LABELS: Mapping[NoticeCategory, str] = {
    NoticeCategory.GENERAL: N_("General"),
    NoticeCategory.EVENTS: N_("Events"),
    NoticeCategory.VOLUNTEERING: N_("Volunteering"),
    NoticeCategory.SERVICES: N_("Services"),
}
CATEGORIES: tuple[NoticeCategory, ...] = tuple(NoticeCategory)  # button indexes point into this

# The role segments a notice can be addressed to (community.notices.SEGMENT_ROLES), as a group of people.
SEGMENT_LABELS: Mapping[Role, str] = {
    Role.VOLUNTEER: N_("Volunteers"),
    Role.PARTY_MEMBER: N_("Party members"),
    Role.HOUSEHOLD_REPRESENTATIVE: N_("Household representatives"),
    Role.UNIT_CONTACT: N_("Resident unit contacts"),
}

LANGUAGE_NAMES: Mapping[str, str] = {"zh_Hans": N_("Chinese"), "en": N_("English")}

ACKNOWLEDGE = N_("✅ Acknowledge")
ACKNOWLEDGED = N_("✓ Acknowledged")


def category_label(l: Localizer, category: NoticeCategory) -> str:  # noqa: E741 - the house name for a localizer
    return l.label(CATEGORY_LABELS[category])


def moment(l: Localizer, when: datetime) -> str:  # noqa: E741
    """A date and a time to the minute in the reader's locale and time zone: "2026年3月5日 10:00", "Mar 5, 2026,
    10:00 AM" (Babel's medium date and short time, joined the locale's way)."""
    zone = ZoneInfo(l.timezone)
    locale = l.t.locale
    local = when.astimezone(zone)
    pattern = str(locale.datetime_formats["medium"])
    return pattern.replace("{1}", format_date(local, "medium", locale=locale)).replace(
        "{0}", format_time(local, "short", tzinfo=zone, locale=locale)
    )


def segment_label(l: Localizer, role: Role) -> str:  # noqa: E741
    return l.label(SEGMENT_LABELS[role])


def _any_of(l: Localizer, names: Iterable[str]) -> str:  # noqa: E741
    return str(format_list(list(names), style="or", locale=l.t.locale))


def describe_audience(l: Localizer, audience: Scope) -> str:  # noqa: E741
    """Who a notice is for, as plain text: "the whole community", or "3号楼 or 7号楼 · Volunteers" (building and
    group names say what they are: 3号楼, 第一居民小组)."""
    if audience.is_everyone():
        return l.label("the whole community")
    parts = [_any_of(l, names) for names in (audience.buildings, audience.groups) if names]
    if audience.roles:
        parts.append(_any_of(l, (segment_label(l, role) for role in audience.roles)))
    return " · ".join(parts)


def language_name(l: Localizer, language: str) -> str:  # noqa: E741
    """A notice language as the reader calls it: 中文 / 英文, Chinese / English."""
    return l.label(LANGUAGE_NAMES[language]) if language in LANGUAGE_NAMES else language


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    text: str  # Telegram HTML in the reader's language; the caption when sent with the file
    buttons: Keyboard


def attachment_label(l: Localizer, kind: AttachmentKind | None, name: str | None) -> str | None:  # noqa: E741
    if kind is None:
        return None
    if name:
        return l.label("📎 %(name)s", name=name)
    return l.label("📎 A photo") if kind is AttachmentKind.PHOTO else l.label("📎 A document")


def render_notice(l: Localizer, look: NoticeLook, body: str, *, with_file: bool) -> RenderedNotice:  # noqa: E741
    """The notice in ``l``'s language. with_file: it goes out as the caption of its photo or document;
    otherwise an attachment (one this channel cannot show) is named in the text."""
    note = None if with_file else attachment_label(l, look.attachment_kind, look.attachment_name)
    params = {
        "community": look.community,
        "category": category_label(l, look.category),
        "important": look.important,
        "body": body,
        "attachment": note,
    }
    text = l.render("notice_message.j2", ack_hint=look.ack_requested, **params)
    if with_file and utf16_len(html_to_plain(text)) > TELEGRAM_CAPTION_LIMIT:
        text = l.render("notice_message.j2", ack_hint=False, **params)  # the button says it anyway
    return RenderedNotice(text, ack_keyboard(l, look.notice_id) if look.ack_requested else ())


def ack_keyboard(l: Localizer, notice_id: int, *, done: bool = False) -> Keyboard:  # noqa: E741
    label = l.label(ACKNOWLEDGED if done else ACKNOWLEDGE)
    return ((Button(label, AcknowledgeNotice(notice_id).pack()),),)
