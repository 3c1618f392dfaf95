"""Telegram-style HTML helpers: splitting a long message into parts Telegram accepts, and plain text for channels
that show no formatting.

Telegram limits a message to 4096 characters *after entity parsing*, counted in UTF-16 code units: tags do not
count, ``&amp;`` counts as one, an emoji outside the Basic Multilingual Plane counts as two. ``split_html`` counts
the same way and keeps every part valid HTML on its own: formatting that spans a split is closed at the end of
one part and opened again, with the same attributes, at the start of the next.

Nothing here interprets the text beyond tags and character references; right-to-left marks, zero-width joiners
and every other character are kept exactly as given."""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

TELEGRAM_TEXT_LIMIT: Final = 4096
TELEGRAM_CAPTION_LIMIT: Final = 1024

_SPECIAL = re.compile(r"[<&]")
_TAG = re.compile(
    r"""<(?P<close>/)?(?P<name>[A-Za-z][A-Za-z0-9-]*)"""
    r"""(?P<attrs>(?:\s+[^\s=/>"']+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*(?P<void>/)?>"""
)
# Telegram decodes every numeric character reference but only these named ones; others stay literal text.
_ENTITY = re.compile(r"&(?:(?P<named>lt|gt|amp|quot)|#(?P<dec>[0-9]{1,7})|#[xX](?P<hex>[0-9a-fA-F]{1,6}));")
_NAMED: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HREF = re.compile(r"""\bhref\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"'>]+))""", re.IGNORECASE)
_EMPTY_ELEMENT = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)(?:\s[^<>]*)?></\1\s*>", re.IGNORECASE)

# Whitespace a line may be broken at and that is dropped at the break. Deliberately narrow: no-break spaces,
# zero-width spaces, bidi marks and the like are content and are never dropped.
_BREAK_SPACE: Final = " \t\n\r"
_LAST_PARAGRAPH_BREAK = re.compile(r"(?s:.*)(\n[ \t\r]*\n)")
# Where a paragraph without spaces (Chinese prose) may end, keeping the character in the part: after the end of
# a sentence, else after a clause. ASCII "." "," ":" are left out: in Latin text they sit in URLs and numbers,
# and a space follows them where they end something.
_LAST_SENTENCE_END = re.compile(r"(?s:.*)[。！？；…!?;]")
_LAST_CLAUSE_END = re.compile(r"(?s:.*)[，、：\u200b\u3000]")

TagKind = Literal["open", "close", "void"]


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class _Tag:
    start: int  # in the source
    end: int
    kind: TagKind
    name: str  # lower case
    raw: str


Stack = tuple[_Tag, ...]


def _decode_entity(match: re.Match[str]) -> str | None:
    named, dec, hexa = match.group("named", "dec", "hex")
    if named:
        return _NAMED[named]
    code = int(dec) if dec else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None  # not a character: Telegram refuses it, and we leave it as it stands
    return chr(code)


class _Parsed:
    """The source split into tags and visible text, with the maps between source and visible positions."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tags: list[_Tag] = []
        self.items: list[_Tag | str] = []  # tags and visible text, in source order (for html_to_plain)
        # Visible text is made of segments: plain runs map one to one onto the source, a character reference
        # is one visible character standing for the whole reference.
        self.seg_visible: list[int] = []
        self.seg_source: list[int] = []
        self.seg_atomic: list[bool] = []
        pieces: list[str] = []
        visible_len = 0
        pos = 0

        def flush(until: int) -> None:
            nonlocal visible_len
            if until > pos:
                self._segment(visible_len, pos, atomic=False)
                piece = source[pos:until]
                pieces.append(piece)
                self.items.append(piece)
                visible_len += len(piece)

        for special in _SPECIAL.finditer(source):
            i = special.start()
            if i < pos:
                continue  # inside a tag already taken
            if source[i] == "<":
                tag = _TAG.match(source, i)
                if tag is None:
                    continue  # a stray "<" is text
                flush(i)
                kind: TagKind = "close" if tag.group("close") else "void" if tag.group("void") else "open"
                parsed = _Tag(i, tag.end(), kind, tag.group("name").lower(), tag.group(0))
                self.tags.append(parsed)
                self.items.append(parsed)
                pos = tag.end()
            else:
                entity = _ENTITY.match(source, i)
                char = _decode_entity(entity) if entity is not None else None
                if entity is None or char is None:
                    continue  # a stray "&" is text
                flush(i)
                self._segment(visible_len, i, atomic=True)
                pieces.append(char)
                self.items.append(char)
                visible_len += len(char)
                pos = entity.end()
        flush(len(source))
        self.visible = "".join(pieces)
        # The tags open after each tag, outermost first; a stray closing tag changes nothing.
        self.tag_ends = [element.end for element in self.tags]
        self.stacks: list[Stack] = [()]
        stack: Stack = ()
        for element in self.tags:
            if element.kind == "open":
                stack = (*stack, element)
            elif element.kind == "close":
                for depth in range(len(stack) - 1, -1, -1):
                    if stack[depth].name == element.name:
                        stack = stack[:depth]
                        break
            self.stacks.append(stack)

    def _segment(self, visible_start: int, source_start: int, *, atomic: bool) -> None:
        self.seg_visible.append(visible_start)
        self.seg_source.append(source_start)
        self.seg_atomic.append(atomic)

    def source_of(self, j: int) -> int:
        """Where visible character ``j`` starts in the source (after any tags before it)."""
        if j >= len(self.visible):
            return len(self.source)
        k = bisect.bisect_right(self.seg_visible, j) - 1
        start = self.seg_source[k]
        return start if self.seg_atomic[k] else start + (j - self.seg_visible[k])

    def stack_at(self, source_pos: int) -> Stack:
        return self.stacks[bisect.bisect_right(self.tag_ends, source_pos)]

    def render(self, source_start: int, source_end: int) -> str:
        opened = self.stack_at(source_start)
        still_open = self.stack_at(source_end)
        text = (
            "".join(tag.raw for tag in opened)
            + self.source[source_start:source_end]
            + "".join(f"</{tag.name}>" for tag in reversed(still_open))
        )
        # Drop elements the split left empty (<b></b>), however deeply nested.
        while True:
            collapsed = _EMPTY_ELEMENT.sub("", text)
            if collapsed == text:
                return text
            text = collapsed


def _is_extending(c: str) -> bool:
    """Characters that belong to the grapheme before them: a cut must not fall just before one."""
    code = ord(c)
    return (
        c == "\u200d"  # zero-width joiner
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences (flags of regions)
        or 0xE0100 <= code <= 0xE01EF
        or unicodedata.category(c) in ("Mn", "Me", "Mc")
    )


def _is_regional_indicator(c: str) -> bool:
    return 0x1F1E6 <= ord(c) <= 0x1F1FF


def _joins(visible: str, cut: int) -> bool:
    """Whether the characters on either side of ``cut`` belong to one grapheme (roughly: emoji sequences,
    combining marks, flags)."""
    before, after = visible[cut - 1], visible[cut]
    if _is_extending(after) or before == "\u200d":
        return True
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        count, i = 0, cut - 1
        while i >= 0 and _is_regional_indicator(visible[i]):
            count += 1
            i -= 1
        return count % 2 == 1  # ``before`` opens a pair
    return False


class _Splitter:
    def __init__(self, parsed: _Parsed, limit: int) -> None:
        self.p = parsed
        self.v = parsed.visible
        self.limit = limit

    def _fits_until(self, start: int) -> int:
        """The largest end such that visible[start:end] fits the limit."""
        v, limit = self.v, self.limit
        hi = min(len(v), start + limit)
        if utf16_len(v[start:hi]) <= limit:
            return hi
        lo = start + limit // 2  # every character takes at most two units: this much always fits
        while lo < hi:  # invariant: visible[start:lo] fits, visible[start:hi] does not
            mid = (lo + hi + 1) // 2
            if utf16_len(v[start:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _run_around(self, start: int, index: int) -> tuple[int, int] | None:
        """The whitespace run holding ``index``, if some content of this part comes before it."""
        v = self.v
        left = index
        while left > start and v[left - 1] in _BREAK_SPACE:
            left -= 1
        if left <= start:
            return None
        right = index
        while right < len(v) and v[right] in _BREAK_SPACE:
            right += 1
        return left, right

    def _break(self, start: int, end: int) -> tuple[int, int]:
        """Where the part from ``start`` (which cannot go past ``end``) ends, and where the next one starts."""
        v = self.v
        # A break may start anywhere up to ``end`` itself: the whitespace is dropped, not counted.
        paragraph = _LAST_PARAGRAPH_BREAK.match(v, start, end + 1)
        candidates = [
            paragraph.start(1) if paragraph else -1,
            v.rfind("\n", start, end + 1),
            max(v.rfind(" ", start, end + 1), v.rfind("\t", start, end + 1), v.rfind("\r", start, end + 1)),
        ]
        for index in candidates:
            if index > start:
                run = self._run_around(start, index)
                if run is not None:
                    return run
        for pattern in (_LAST_SENTENCE_END, _LAST_CLAUSE_END):
            soft = pattern.match(v, start, end)
            if soft is not None and soft.end() > start:
                return soft.end(), soft.end()
        cut = end
        while cut > start + 1 and end - cut < 32 and _joins(v, cut):
            cut -= 1
        if _joins(v, cut):
            cut = end  # one grapheme longer than the limit: cut it, there is no other way
        return cut, cut

    def split(self) -> list[str]:
        p, v = self.p, self.v
        parts: list[str] = []
        start = 0
        source_start = 0
        while start < len(v):
            end = self._fits_until(start)
            if end >= len(v):
                parts.append(p.render(source_start, len(p.source)))
                break
            cut, resume = self._break(start, end)
            parts.append(p.render(source_start, p.source_of(cut)))
            start, source_start = resume, p.source_of(resume)
        return parts


def split_html(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split Telegram HTML into parts of at most ``limit`` characters as Telegram counts them.

    Breaks at the last paragraph break that fits, else the last line break, else the last space (the break's
    whitespace is dropped), else after the end of a sentence or clause (Chinese punctuation, a zero-width
    space; kept), else between two characters (never inside a tag, a character reference or an emoji
    sequence). Formatting open across a break is closed and re-opened.

    A text that fits is returned unchanged as the only part; a text with nothing but whitespace to show gives
    no parts (Telegram refuses to send it)."""
    if limit < 2:
        raise ValueError("limit must be at least 2: one character can take two UTF-16 code units")
    if utf16_len(text) <= limit:
        # Tags and character references only ever make the source longer than what Telegram counts, so a
        # source that fits needs no parsing unless it might show nothing at all.
        if _TAG.sub("", text).strip(_BREAK_SPACE) and "&" not in text:
            return [text]
        if "<" not in text and "&" not in text:
            return []
    parsed = _Parsed(text)
    if not parsed.visible.strip(_BREAK_SPACE):
        return []
    if utf16_len(parsed.visible) <= limit:
        return [text]
    return _Splitter(parsed, limit).split()


def _href(tag: _Tag) -> str | None:
    m = _HREF.search(tag.raw)
    if m is None:
        return None
    value = m.group("dq") or m.group("sq") or m.group("bare") or ""
    return _ENTITY.sub(lambda e: _decode_entity(e) or e.group(0), value)


def html_to_plain(text: str) -> str:
    """Telegram HTML as plain text: tags removed, character references decoded, links as ``label (url)``."""
    if "<" not in text and "&" not in text:
        return text
    out: list[str] = []
    links: list[tuple[str | None, int]] = []  # href, and where the label starts in ``out``
    for item in _Parsed(text).items:
        if isinstance(item, str):
            out.append(item)
        elif item.name == "a" and item.kind == "open":
            links.append((_href(item), len(out)))
        elif item.name == "a" and item.kind == "close" and links:
            href, label_start = links.pop()
            label = "".join(out[label_start:])
            if href and href != label:
                out.append(f" ({href})" if label else href)
    return "".join(out)
