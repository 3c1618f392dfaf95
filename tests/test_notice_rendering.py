"""Pure rendering of notices: the digest split into messages Telegram accepts, the progress figures and time
left, the send-time parser. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.html import TELEGRAM_TEXT_LIMIT, html_to_plain, utf16_len
from bot.notices.fanout import DigestItem, digest_texts
from bot.notices.form import parse_send_time
from bot.notices.progress import Progress, progress_bar
from bot.rendering import Localizers
from community.errors import ValidationFailed
from community.notices import NoticeFigures

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _item(body: str) -> DigestItem:
    return DigestItem(community="梧桐社区", category="活动", at=AT, body=body, attachment=None)


def test_a_digest_too_long_for_one_message_is_split_between_notices(localizers: Localizers) -> None:
    zh = localizers.get("zh_Hans")
    items = [_item(f"第{n}条：" + "通知内容" * 300) for n in range(1, 6)]  # 1,200+ characters each
    texts = digest_texts(zh, items)
    assert len(texts) > 1
    assert all(utf16_len(html_to_plain(text)) <= TELEGRAM_TEXT_LIMIT for text in texts)
    # Every notice is in exactly one message, whole, in order.
    joined = "\n".join(html_to_plain(text) for text in texts)
    assert [joined.count(f"第{n}条：") for n in range(1, 6)] == [1] * 5
    assert joined.index("第1条") < joined.index("第5条")


def test_a_short_digest_is_one_message_with_the_notices_escaped(localizers: Localizers) -> None:
    en = localizers.get("en")
    (text,) = digest_texts(en, [_item("Bring <your> own cup & plate."), _item("Library opens at 9.")])
    plain = html_to_plain(text).splitlines()
    assert plain[0] == "🗞 Today's 2 notices"
    assert "Bring <your> own cup & plate." in plain
    assert "&lt;your&gt;" in text


def _figures(total: int, sent: int, queued: int, held: int = 0) -> NoticeFigures:
    return NoticeFigures(
        total=total,
        queued=queued,
        sent=sent,
        failed=0,
        unreachable=0,
        held=held,
        cancelled=0,
        acknowledged=0,
        by_building=(),
    )


def test_time_left_follows_the_pace_so_far() -> None:
    progress = Progress.of(_figures(total=1000, sent=250, queued=740, held=10), AT, AT + timedelta(seconds=10))
    assert (progress.done, progress.to_go) == (250, 740)
    assert progress.time_left == timedelta(seconds=740 / 25)
    assert progress.fraction == pytest.approx(250 / 990)
    assert progress_bar(progress.fraction) == "▓▓▓░░░░░░░"
    # Nothing sent yet: no guess.
    assert Progress.of(_figures(total=10, sent=0, queued=10), AT, AT + timedelta(seconds=5)).time_left is None
    # Done: nothing left.
    done = Progress.of(_figures(total=10, sent=10, queued=0), AT, AT + timedelta(seconds=5))
    assert done.time_left is None and progress_bar(done.fraction) == "▓" * 10


def test_send_times_are_read_in_the_communitys_zone() -> None:
    assert parse_send_time("2026-03-02 09:00", "Asia/Shanghai") == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert parse_send_time(" 2026-3-2   9:05 ", "Asia/Shanghai") == datetime(2026, 3, 2, 1, 5, tzinfo=UTC)
    assert parse_send_time("2026/03/02 09：00", "Asia/Shanghai") == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    for bad in ("tomorrow", "09:00", "2026-03-02", "2026-13-01 09:00", "2026-03-02 24:00"):
        with pytest.raises(ValidationFailed):
            parse_send_time(bad, "Asia/Shanghai")
