"""bot.html: splitting Telegram HTML the way Telegram counts, and plain text for the console.

Every part is checked with the fake Bot API's parser, which follows Telegram's own (TDLib) HTML rules."""

from __future__ import annotations

import random
import re

import pytest

from bot.html import html_to_plain, split_html, utf16_len
from tests.support.fake_bot_api import parse_telegram_html

BREAK_SPACE = re.compile(r"[ \t\r\n]+")


def visible(part: str) -> str:
    plain, _ = parse_telegram_html(part)  # raises on invalid HTML
    return plain


def check_parts(text: str, parts: list[str], limit: int) -> list[str]:
    """The invariants every split keeps; returns the parts' plain texts."""
    plains = [visible(part) for part in parts]
    for plain in plains:
        assert utf16_len(plain) <= limit
        assert plain.strip(" \t\r\n"), "no part may be empty or only whitespace"
    # Nothing but the whitespace at the breaks is lost, and everything keeps its order.
    assert BREAK_SPACE.sub("", "".join(plains)) == BREAK_SPACE.sub("", visible(text))
    return plains


def test_a_text_that_fits_comes_back_unchanged() -> None:
    text = "<b>你好</b> &amp; 👋\n\n<i>hi</i>"
    assert split_html(text) == [text]
    assert split_html("x" * 4096) == ["x" * 4096]


def test_a_text_with_nothing_to_show_has_no_parts() -> None:
    assert split_html("") == []
    assert split_html("<b></b>") == []
    assert split_html(" \n\n ") == []
    assert split_html("<i> </i>\n") == []


def test_leading_whitespace_of_the_first_part_is_kept() -> None:
    text = "  " + "word " * 30
    parts = split_html(text, 50)
    assert parts[0].startswith("  word")
    check_parts(text, parts, 50)


def test_limit_must_leave_room_for_one_character() -> None:
    with pytest.raises(ValueError):
        split_html("abc", 1)


def test_tags_do_not_count_and_entities_count_once() -> None:
    text = "<b>" + "&amp;" * 10 + "</b>"
    assert split_html(text, 10) == [text]
    assert len(split_html(text, 9)) == 2


def test_paragraph_breaks_win_over_line_breaks_and_spaces() -> None:
    text = "aaaaaaaaaa\n\nbbb ccc\nddd eee"
    assert split_html(text, 20) == ["aaaaaaaaaa", "bbb ccc\nddd eee"]


def test_line_breaks_win_over_spaces() -> None:
    text = "aaa bbb\nccc ddd eee"
    assert split_html(text, 12) == ["aaa bbb", "ccc ddd eee"]


def test_spaces_when_there_is_no_line_break() -> None:
    words = " ".join(f"word{i:03d}" for i in range(1000))  # 7 chars + a space each
    parts = split_html(words, 100)
    plains = check_parts(words, parts, 100)
    assert all(re.fullmatch(r"word\d{3}( word\d{3})*", plain) for plain in plains)
    assert " ".join(plains) == words


def test_the_last_break_that_fits_is_taken() -> None:
    text = "\n\n".join(["x" * 30] * 10)
    parts = split_html(text, 100)
    assert parts[0] == "\n\n".join(["x" * 30] * 3)  # 94 characters; a fourth paragraph would not fit
    check_parts(text, parts, 100)


def test_long_unbroken_text_is_cut_at_the_limit() -> None:
    text = "x" * 10_000
    parts = split_html(text)
    assert [len(p) for p in parts] == [4096, 4096, 1808]
    assert "".join(parts) == text


def test_emoji_count_two_and_are_never_cut_in_half() -> None:
    text = "😀" * 3000  # 6000 UTF-16 code units
    parts = split_html(text)
    assert parts == ["😀" * 2048, "😀" * 952]
    check_parts(text, parts, 4096)


def test_emoji_sequences_stay_whole() -> None:
    family = "👨\u200d👩\u200d👧\u200d👦"  # one grapheme of 7 code points, 11 UTF-16 units
    thumbs = "👍🏽"  # skin tone modifier
    flag = "🇨🇳"  # two regional indicators
    for unit in (family, thumbs, flag, "e\u0301", "❤\ufe0f"):
        text = unit * 50
        for limit in (23, 24, 25, 64):
            parts = split_html(text, limit)
            check_parts(text, parts, limit)
            assert "".join(parts) == text
            for part in parts:
                assert part == unit * (len(part) // len(unit)), (unit, limit, part)


def test_flags_stay_paired_even_after_an_odd_start() -> None:
    text = "x" + "🇨🇳🇫🇷" * 20
    parts = split_html(text, 9)
    assert "".join(parts) == text
    for part in parts[1:]:
        assert len(part) % 2 == 0  # whole pairs of regional indicators


def test_chinese_prose_breaks_after_sentence_punctuation() -> None:
    sentence = "今天下午三点在社区活动室开会，请各位居民准时参加。"  # 24 characters
    text = sentence * 400
    parts = split_html(text)
    check_parts(text, parts, 4096)
    assert all(part.endswith("。") for part in parts)
    assert "".join(parts) == text


def test_chinese_without_punctuation_is_cut_at_the_limit() -> None:
    text = "邻里" * 3000
    parts = split_html(text)
    assert [len(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == text


def test_formatting_spanning_a_split_is_closed_and_reopened() -> None:
    text = "<b>" + "bold words " * 1000 + "</b> tail"
    parts = split_html(text)
    check_parts(text, parts, 4096)
    assert len(parts) == 3
    assert all(part.startswith("<b>") for part in parts)
    assert parts[0].endswith("</b>") and parts[1].endswith("</b>")
    assert parts[-1].endswith("</b> tail")


def test_nested_tags_reopen_with_their_attributes_in_order() -> None:
    href = "https://example.org/?a=1&amp;b=&quot;2&quot;"
    link_text = "链接 " * 30
    code = "x = 1\n" * 30
    text = f'<a href="{href}"><i>{link_text}</i></a><pre><code class="language-python">{code}</code></pre>'
    parts = split_html(text, 50)
    check_parts(text, parts, 50)
    for part in parts:
        if "链接" in part:
            assert part.startswith(f'<a href="{href}"><i>')
            assert part.endswith("</i></a>") or "</i></a><pre>" in part
        if "x = 1" in part:
            assert part.endswith("</code></pre>")
    middle = [part for part in parts if part.startswith('<pre><code class="language-python">')]
    assert len(middle) >= 3
    for part in parts:
        _, entities = parse_telegram_html(part)
        for entity in entities:
            if entity["type"] == "text_link":
                assert entity["url"] == 'https://example.org/?a=1&b="2"'
            if entity["type"] == "pre":
                assert entity["language"] == "python"


def test_no_part_carries_empty_formatting() -> None:
    text = "<b>" + "a" * 10 + "</b>\n\n<i>" + "b" * 10 + "</i>"
    assert split_html(text, 15) == ["<b>" + "a" * 10 + "</b>", "<i>" + "b" * 10 + "</i>"]
    text = "a" * 10 + "<b>\n\n" + "b" * 10 + "</b>"
    assert split_html(text, 15) == ["a" * 10, "<b>" + "b" * 10 + "</b>"]


def test_entities_at_the_boundary_are_never_cut() -> None:
    text = "&amp;" * 5000
    parts = split_html(text)
    assert parts == ["&amp;" * 4096, "&amp;" * 904]
    for shift in range(1, 6):
        text = "a" * (4096 - shift) + "&lt;&gt;&quot;&#128512;&#x1F600;" * 3 + "b" * 10
        parts = split_html(text)
        plains = check_parts(text, parts, 4096)
        assert "".join(plains) == visible(text)
        assert all(re.fullmatch(r"(?:[ab]|&lt;|&gt;|&quot;|&#128512;|&#x1F600;)+", part) for part in parts)


def test_escaped_user_text_full_of_markup_characters() -> None:
    from markupsafe import escape

    user_text = str(escape('<script>alert("x & y")</script> ' * 400))
    text = f"<b>Message from 王芳:</b>\n\n{user_text}"
    parts = split_html(text)
    plains = check_parts(text, parts, 4096)
    assert plains[0] == "Message from 王芳:"
    assert all('<script>alert("x & y")</script>' in plain for plain in plains[1:])


def test_rtl_and_zero_width_characters_are_kept_exactly() -> None:
    specials = "\u200f\u200e\u202b\u202c\u2066\u2069\u200b\u200c\u200d\u2060\ufeff\u00a0"
    word = f"שלום{specials}مرحبا"
    text = " ".join([word] * 400)
    parts = split_html(text, 500)
    plains = check_parts(text, parts, 500)
    assert " ".join(plains) == text
    for plain in plains:
        assert plain.count("\u200f") == plain.count("שלום")
        assert plain.count("\u00a0") == plain.count("שלום")  # a no-break space is never a break


def test_zero_width_space_is_a_break_opportunity_and_is_kept() -> None:
    text = "长文本\u200b" * 100  # no spaces, no punctuation
    parts = split_html(text, 50)
    assert "".join(parts) == text
    assert all(part.endswith("\u200b") for part in parts)


def test_random_documents_keep_every_invariant() -> None:
    rng = random.Random(20260301)
    words = ["word", "邻里", "😀", "👨\u200d👩\u200d👧", "&amp;", "&lt;b&gt;", "é", "\u200f", "שלום", "。", "&#128512;"]
    separators = [" ", " ", " ", "\n", "\n\n", ""]
    tags = [("<b>", "</b>"), ("<i>", "</i>"), ('<a href="https://x.org/?q=1&amp;r=2">', "</a>"), ("<code>", "</code>")]
    for _ in range(200):
        chunks: list[str] = []
        for _ in range(rng.randint(1, 40)):
            run = "".join(rng.choice(words) + rng.choice(separators) for _ in range(rng.randint(1, 30)))
            if rng.random() < 0.4:
                opening, closing = rng.choice(tags)
                run = f"{opening}{run.strip() or 'x'}{closing}"
            chunks.append(run)
        text = rng.choice(["", "\n\n", " "]).join(chunks)
        if not visible(text).strip():
            continue
        limit = rng.choice([2, 3, 7, 16, 50, 200, 4096])
        parts = split_html(text, limit)
        check_parts(text, parts, limit)


def test_plain_text_strips_tags_and_decodes_entities() -> None:
    text = "<b>投票</b> &lt;结果&gt; &amp; &quot;总结&quot; &#128512; <i><u>x</u></i>"
    assert html_to_plain(text) == '投票 <结果> & "总结" 😀 x'


def test_plain_text_shows_links_as_label_and_url() -> None:
    assert html_to_plain('<a href="https://x.org/?a=1&amp;b=2">the <b>site</b></a>.') == (
        "the site (https://x.org/?a=1&b=2)."
    )
    assert html_to_plain('<a href="https://t.me/linli_bot">https://t.me/linli_bot</a>') == "https://t.me/linli_bot"
    assert html_to_plain("<a href='tg://user?id=42'>王芳</a>") == "王芳 (tg://user?id=42)"
    assert html_to_plain('<a href="https://x.org"></a>') == "https://x.org"


def test_plain_text_leaves_what_is_not_a_reference_or_tag_alone() -> None:
    assert html_to_plain("a < b && c &#0; &nbsp; &#x110000;") == "a < b && c &#0; &nbsp; &#x110000;"


def test_a_megabyte_splits_quickly() -> None:
    import time

    text = "<b>" + "hello world 邻里 😀 &amp; " * 50_000 + "</b>"
    began = time.perf_counter()
    parts = split_html(text)
    assert time.perf_counter() - began < 5
    assert all(utf16_len(visible(part)) <= 4096 for part in parts)


def test_plain_text_keeps_every_character_of_the_content() -> None:
    text = "\u200fשלום\u200b  邻里\n\n👨\u200d👩\u200d👧 a\u00a0b <code>&lt;tag&gt;</code>"
    assert html_to_plain(text) == "\u200fשלום\u200b  邻里\n\n👨\u200d👩\u200d👧 a\u00a0b <tag>"
