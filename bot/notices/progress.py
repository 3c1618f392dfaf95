"""What the author's progress message says while their notice goes out (a bar, delivered / total, what failed,
time left) and once every message is settled (a summary). bot/notices/progress_editor.py sends and edits it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.dates import format_timedelta
from babel.numbers import format_percent

from bot.notices.buttons import ViewNotice
from bot.rendering import Localizer, Localizers
from bot.replies import Button, Keyboard
from community import notices
from community.models import Community
from community.notice_models import Notice, NoticeStatus
from community.notices import NoticeFigures
from community.unit_of_work import UnitOfWork

BAR_WIDTH = 10


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a notice stands, as the author's message shows it."""

    total: int  # every recipient
    done: int  # sent, failed, unreachable or not reachable on this channel
    to_go: int  # still queued or being sent
    sent: int
    failed: int
    unreachable: int
    no_channel: int  # not reachable on this channel (no process serves it)
    held: int  # waiting for the daily digest
    cancelled: int
    acknowledged: int
    time_left: timedelta | None  # None: not known yet, or nothing left

    @classmethod
    def of(cls, figures: NoticeFigures, started: datetime | None, now: datetime) -> Progress:
        done = figures.sent + figures.failed + figures.unreachable + figures.no_channel
        to_go = max(figures.total - done - figures.held - figures.cancelled, 0)
        time_left: timedelta | None = None
        if to_go and done and started is not None and now > started:
            per_message = (now - started) / done
            time_left = per_message * to_go
        return cls(
            total=figures.total,
            done=done,
            to_go=to_go,
            sent=figures.sent,
            failed=figures.failed,
            unreachable=figures.unreachable,
            no_channel=figures.no_channel,
            held=figures.held,
            cancelled=figures.cancelled,
            acknowledged=figures.acknowledged,
            time_left=time_left,
        )

    @property
    def fraction(self) -> float:
        going = self.done + self.to_go
        return self.done / going if going else 1.0


def progress_bar(fraction: float) -> str:
    filled = round(max(0.0, min(fraction, 1.0)) * BAR_WIDTH)
    return "▓" * filled + "░" * (BAR_WIDTH - filled)


def progress_text(l: Localizer, notice: Notice, progress: Progress, *, finished: bool) -> str:  # noqa: E741
    time_left = None
    if progress.time_left is not None:
        time_left = format_timedelta(progress.time_left, locale=l.t.locale, threshold=1.1)
    return l.render(
        "notice_progress.j2",
        notice=notice,
        p=progress,
        finished=finished,
        cancelled=notice.status is NoticeStatus.CANCELLED,
        bar=progress_bar(progress.fraction),
        percent=format_percent(progress.fraction, locale=l.t.locale),
        time_left=time_left,
    )


def progress_keyboard(l: Localizer, notice_id: int) -> Keyboard:  # noqa: E741
    return ((Button(l.label("Delivery figures"), ViewNotice(notice_id).pack()),),)


async def author_reader(uow: UnitOfWork, localizers: Localizers, notice: Notice, community: Community) -> Localizer:
    """The author in their own language, at the community's time zone."""
    return localizers.get(await notices.author_language(uow, notice, community), community.timezone)
