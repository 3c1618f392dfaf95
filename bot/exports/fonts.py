"""The CJK font Linli ships for its exports, so Chinese never shows as boxes on a machine without CJK fonts.

Noto Sans CJK SC Regular (SIL Open Font License 1.1, fonts/OFL.txt): the Simplified Chinese face of Noto Sans CJK
2.004, taken unchanged out of Debian's NotoSansCJK-Regular.ttc with fontTools (all 65,535 glyphs: residents type any
character, so it is never cut down to a list of characters). It is package data of bot.exports and is always found
there, never among the system's fonts.

A PDF embeds only the glyphs it uses. WeasyPrint would cut the 16 MB font down itself, but without the
HarfBuzz-subset library it keeps every glyph id and takes about ten seconds per document; subset_font() gives it a
font of the document's own characters instead (under a second)."""

from __future__ import annotations

import functools
import io
import string
from importlib import resources
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"
CJK_LICENSE_FILE = "OFL.txt"
# The font's own names (name table): what an embedded copy in a PDF is recognised by.
CJK_POSTSCRIPT_NAME = "NotoSansCJKsc-Regular"
CJK_FAMILY = "Noto Sans CJK SC"
# Characters every document may show beyond its own text (page numbers, list marks, punctuation of both scripts).
_ALWAYS = string.printable + "·•—–…‘’“”«»%‰±×÷°№（）［］【】《》〈〉「」『』，。、；：？！…—～￥·"


@functools.cache
def cjk_font_path() -> Path:
    """The shipped font file, from the bot.exports package (an installed package is a directory on disk)."""
    path = Path(str(resources.files("bot.exports").joinpath("fonts", CJK_FONT_FILE)))
    if not path.is_file():
        raise FileNotFoundError(f"the export font is missing from the package: {path}")
    return path


def subset_font(text: str) -> bytes:
    """The shipped font cut down to the characters of ``text`` (and common punctuation), as OpenType bytes."""
    font = TTFont(str(cjk_font_path()), lazy=True)
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]  # keep the names: the embedded font says what it is
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.desubroutinize = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text + _ALWAYS)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
