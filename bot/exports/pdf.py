"""PDF documents from HTML (a Jinja2 template rendered for the reader) through WeasyPrint, set in the shipped CJK
font whatever fonts the machine has.

The template's stylesheet names the font family FONT_FAMILY; this module supplies it with an @font-face rule whose
source is the shipped font cut down to the document's own characters (bot.exports.fonts.subset_font), so Pango never
looks for it among the system's fonts and the PDF embeds only what it shows."""

from __future__ import annotations

import base64
import logging
import warnings
from typing import IO

# Without the HarfBuzz-subset library WeasyPrint warns at import that it will need it one day; fonts.subset_font
# does the heavy cut meanwhile, so the warning says nothing to an operator.
warnings.filterwarnings("ignore", message="HarfBuzz-Subset will be required", category=DeprecationWarning)

from weasyprint import CSS, HTML  # noqa: E402
from weasyprint.text.fonts import FontConfiguration  # noqa: E402
from weasyprint.urls import URLFetcher  # noqa: E402

from bot.exports.fonts import subset_font  # noqa: E402

FONT_FAMILY = "Linli CJK"

# WeasyPrint reports each CSS property it does not support and each font subset step at INFO/WARNING; a report
# reads the same either way.
for _name in ("weasyprint", "weasyprint.progress"):
    logging.getLogger(_name).setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.ERROR)


def font_face_css(text: str) -> str:
    font = base64.b64encode(subset_font(text)).decode("ascii")
    return (
        f'@font-face {{ font-family: "{FONT_FAMILY}"; font-weight: normal; font-style: normal; '
        f'src: url("data:font/otf;base64,{font}") format("opentype"); }}'
    )


def write_pdf(stream: IO[bytes], html: str) -> None:
    """Lay out ``html`` and write it as PDF to ``stream``. Nothing is fetched from the network or the disk but
    what the HTML itself holds: charts are inlined SVG, the font a data: URL, and any other URL is refused."""
    fonts = FontConfiguration()
    fetcher = URLFetcher(allowed_protocols={"data"})
    stylesheet = CSS(string=font_face_css(html), font_config=fonts, url_fetcher=fetcher)
    document = HTML(string=html, base_url=None, url_fetcher=fetcher)
    document.write_pdf(stream, stylesheets=[stylesheet], font_config=fonts)
