"""The opinion map of a consultation as a PNG picture for chat, with "you are here" marked for one reader.

Groups are shown as translucent shaded regions (the 2-sigma ellipse of their members' positions), never as
individual points: a reader sees where the groups lie and where they themselves stand, nobody else's position.

Drawn with Pillow, not matplotlib: one picture per participant at a consultation's close, so the map is drawn once
per language (``draw_base``) and each reader's picture is a copy of it with a marker pasted in and encoded
(``with_you_are_here``). The base is kept in palette ("P") mode with a limited palette: a copy is a memcpy, and
the PNG is small and quick to compress. The marker and its label are drawn once too, as sprites; per picture only
the small patch under them is blended in RGB and mapped back onto the base's palette, so their edges stay smooth.

Every piece of text is set in the CJK font shipped with Linli (bot.exports.fonts), never a system font. Statements
are residents' text: control characters, lone surrogates and characters the font has no glyph for are removed or
replaced before they are measured, and each is wrapped (CJK per character, Latin per word) and cut with "…".
The axes of the map have no meaning (a PCA's), so there are none; the map may be turned a quarter so that its
longer side lies across the picture, distances kept.
"""

from __future__ import annotations

import functools
import io
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bot.exports.colours import group_colour
from bot.exports.consultation import group_name  # the groups' names as in the committee's report
from bot.exports.fonts import cjk_font_path
from bot.rendering import Localizer
from consultation.opinion_map import NOT_CLUSTERED, OpinionMap, Stance, StatementId

Colour = tuple[int, int, int]
Box = tuple[int, int, int, int]


# --- what is drawn: plain values, computed in the worker -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapRegion:
    """One group, as a shaded region: never individual points."""

    centre: tuple[float, float]
    # Of the members' positions (2 × 2).
    covariance: tuple[tuple[float, float], tuple[float, float]]
    size: int
    # The group's most representative statement; None when withheld (a group smaller than k) or there is none.
    statement: str | None
    # Whether the group mostly agrees (True) or disagrees (False) with it; None with no statement.
    agrees: bool | None
    # The group is smaller than k: the legend says why its statement is not shown.
    withheld: bool = False


@dataclass(frozen=True, slots=True)
class MapDrawing:
    """Plain values only: it is computed in a worker process and pickled back."""

    regions: tuple[MapRegion, ...]
    # x_min, x_max, y_min, y_max of the area to show.
    extent: tuple[float, float, float, float]


def map_drawing(opinion_map: OpinionMap, statement_texts: Mapping[StatementId, str], min_group_size: int) -> MapDrawing:
    """Each group's centre, covariance and size, and the text of its first representative statement when it has
    at least ``min_group_size`` (k) members; the extent covers every clustered participant and every region."""
    coordinates = np.asarray(opinion_map.coordinates, dtype=np.float64)
    group_of = np.asarray(opinion_map.group_of)
    finite = np.isfinite(coordinates).all(axis=1) if coordinates.size else np.zeros(0, dtype=bool)
    regions: list[MapRegion] = []
    for index, group in enumerate(opinion_map.groups):
        members = coordinates[(group_of == index) & finite]
        centre, covariance = _spread(members)
        statement: str | None = None
        agrees: bool | None = None
        if group.representative and len(group.participant_ids) >= min_group_size:
            first = group.representative[0]
            statement = statement_texts.get(first.statement_id)
            agrees = None if statement is None else first.stance is Stance.AGREE
        withheld = len(group.participant_ids) < min_group_size
        regions.append(MapRegion(centre, covariance, len(group.participant_ids), statement, agrees, withheld))
    clustered = coordinates[(group_of != NOT_CLUSTERED) & finite]
    return MapDrawing(tuple(regions), _extent(clustered, regions))


def _spread(points: np.ndarray) -> tuple[tuple[float, float], tuple[tuple[float, float], tuple[float, float]]]:
    """Mean and (population) covariance, computed on points scaled to about 1 so that huge coordinates neither
    overflow nor lose the covariance; each figure is then capped at the largest finite float."""
    if len(points) == 0:
        return (0.0, 0.0), ((0.0, 0.0), (0.0, 0.0))
    scale = float(np.max(np.abs(points))) or 1.0
    scaled = points / scale
    mean = scaled.mean(axis=0)
    centred = scaled - mean
    cov = centred.T @ centred / len(points)
    big = np.finfo(np.float64).max
    with np.errstate(over="ignore"):
        cov = np.clip(cov * scale * scale, -big, big)
    centre = mean * scale
    return (float(centre[0]), float(centre[1])), (
        (float(cov[0, 0]), float(cov[0, 1])),
        (float(cov[1, 0]), float(cov[1, 1])),
    )


def _extent(points: np.ndarray, regions: Sequence[MapRegion]) -> tuple[float, float, float, float]:
    """Every clustered participant and each region's 2-sigma box, with a margin of a tenth on every side."""
    xs: list[float] = []
    ys: list[float] = []
    if len(points):
        xs += [float(points[:, 0].min()), float(points[:, 0].max())]
        ys += [float(points[:, 1].min()), float(points[:, 1].max())]
    for region in regions:
        (cx, cy), ((vx, _), (_, vy)) = region.centre, region.covariance
        dx, dy = 2 * math.sqrt(max(vx, 0.0)), 2 * math.sqrt(max(vy, 0.0))
        xs += [cx - dx, cx + dx]
        ys += [cy - dy, cy + dy]
    if not xs:
        return (-1.0, 1.0, -1.0, 1.0)
    return (*_widen(min(xs), max(xs)), *_widen(min(ys), max(ys)))


def _widen(low: float, high: float) -> tuple[float, float]:
    big = np.finfo(np.float64).max
    half = high / 2 - low / 2  # never overflows, unlike high - low
    margin = half / 5 if half > 0 else max(abs(low), abs(high), 1.0) / 2
    return max(low - margin, -big), min(high + margin, big)


# --- labels, in the reader's language --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PictureLabels:
    """The picture's text, already translated for its reader."""

    title: str
    you_are_here: str
    # One per region, in order ("Group A (120 people)" / "A组（120人）").
    group_captions: tuple[str, ...]
    agree: str
    disagree: str
    # Under a group whose statement is withheld (smaller than k), and in the map when there is no group at all.
    withheld: str = ""
    no_groups: str = ""


def picture_labels(l: Localizer, title: str, groups: Iterable[MapRegion]) -> PictureLabels:  # noqa: E741
    """The labels of a map picture for this reader; an empty title becomes "Opinion map"."""
    captions = tuple(
        l.plural(
            "%(group)s (%(num)s person)",
            "%(group)s (%(num)s people)",
            region.size,
            group=group_name(l, index),
            num=region.size,  # formatted for the reader (1,004)
        )
        for index, region in enumerate(groups)
    )
    return PictureLabels(
        title=title or l.label("Opinion map"),
        # TRANSLATORS: beside the marker of the reader's own position on the opinion map picture.
        you_are_here=l.label("You are here"),
        group_captions=captions,
        # TRANSLATORS: before the statement a group mostly agrees with, in the map picture's legend.
        agree=l.label("Agree:"),
        # TRANSLATORS: before the statement a group mostly disagrees with, in the map picture's legend.
        disagree=l.label("Disagree:"),
        withheld=l.label("Too few people in this group to show what it said."),
        no_groups=l.label("No opinion groups yet."),
    )


# --- layout: tunable, not buried in the drawing -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PictureLayout:
    """Sizes in pixels. About 1080 wide: a phone's screen; Telegram shows a photo at most 1280 on a side."""

    width: int = 1080
    max_height: int = 1280
    padding: int = 36
    title_size: int = 40
    caption_size: int = 32
    text_size: int = 28
    letter_size: int = 34
    marker_size: int = 32
    title_lines: int = 2
    # Lines of a group's statement in the legend, fewer as more groups must fit.
    statement_lines: tuple[int, ...] = (3, 2, 1, 0)
    min_map_height: int = 420
    max_map_height: int = 760
    # Semi-axis of the smallest region drawn, so a tiny group is still seen.
    min_radius: int = 44
    fill_alpha: int = 80  # of 255
    outline_width: int = 3
    # Drawn this many times larger, then reduced, for smooth edges (the base only: drawn once per language).
    supersample: int = 3
    palette_colours: int = 96
    png_compress_level: int = 3


DEFAULT_LAYOUT = PictureLayout()
INK: Colour = (26, 26, 26)
MUTED: Colour = (102, 102, 102)
BACKGROUND: Colour = (255, 255, 255)
MAP_BACKGROUND: Colour = (244, 245, 247)
MARKER: Colour = (17, 17, 17)
# Darker than the palette's agree and disagree so that text in them reads on white (contrast above 4.5).
AGREE_TEXT: Colour = (0, 112, 82)
DISAGREE_TEXT: Colour = (176, 60, 0)
ELLIPSIS = "…"


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(cjk_font_path()), size)


@functools.cache
def _font_codepoints() -> frozenset[int]:
    """The characters the shipped font has a glyph for (read from its cmap once)."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(cjk_font_path()), lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


def _rgb(hex_colour: str) -> Colour:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


# --- text: cleaned, wrapped by measure ------------------------------------------------------------------------

_REMOVED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})  # controls (NUL), format, lone surrogates, private, unassigned
_SPACES = frozenset({"Zs", "Zl", "Zp"})
_NO_GLYPH = "□"
# No line starts with closing punctuation or ends with opening punctuation (CJK line breaking, kinsoku).
_CLOSING = frozenset("，。、；：？！）」』》〉】〕…—～·,.;:?!)]}%’”")
_OPENING = frozenset("（「『《〈【〔([{‘“")


def clean_text(text: str, limit: int = 2_000) -> str:
    """Text a resident wrote, made safe to draw: controls, format characters and lone surrogates removed, any
    space or line break as one space, characters the shipped font lacks as a box, at most ``limit`` characters."""
    has_glyph = _font_codepoints()
    out: list[str] = []
    for char in text[: limit * 2]:
        category = unicodedata.category(char)
        if category in _SPACES or char in "\t\n\r\x0b\x0c":
            if out and out[-1] != " ":
                out.append(" ")
        elif category in _REMOVED:
            continue
        else:
            out.append(char if ord(char) in has_glyph else _NO_GLYPH)
    return "".join(out).strip()[:limit]


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _tokens(text: str) -> list[str]:
    """Pieces between which a line may break: around spaces, and between CJK characters (per character)."""
    tokens: list[str] = []
    previous = ""
    for char in text:
        if tokens and not (
            char == " "
            or previous == " "
            or ((_wide(char) or _wide(previous)) and char not in _CLOSING and previous not in _OPENING)
        ):
            tokens[-1] += char
        else:
            tokens.append(char)
        previous = char
    return tokens


def wrap_text(text: str, font: ImageFont.FreeTypeFont, width: float, max_lines: int, indent: float = 0) -> list[str]:
    """``text`` in at most ``max_lines`` lines no wider than ``width`` pixels (the first ``indent`` narrower), the
    last cut with "…" when the text goes on. Latin wraps per word, CJK per character; a word too long for a line
    is cut per character."""
    if max_lines <= 0 or not text:
        return []
    lines: list[str] = []
    line = ""
    tokens = _tokens(text)
    index = 0
    while index < len(tokens):
        room = width - (indent if not lines else 0)
        token = tokens[index]
        if not line and token == " ":
            index += 1
            continue
        if font.getlength((line + token).rstrip()) <= room:
            line += token
            index += 1
            continue
        if len(lines) == max_lines - 1:  # the text goes on past the last line
            return [*lines, _last_line(line, line + "".join(tokens[index:]), font, room)]
        if not line:  # a word wider than the line: as many of its characters as fit
            cut = _fitting(token, font, room)
            line, tokens[index] = token[:cut], token[cut:]
        lines.append(line.rstrip())
        line = ""
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _fitting(text: str, font: ImageFont.FreeTypeFont, room: float) -> int:
    """How many of ``text``'s first characters fit in ``room`` pixels (at least one, so wrapping moves on)."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def _last_line(line: str, rest: str, font: ImageFont.FreeTypeFont, room: float) -> str:
    """The last line of a text that goes on, ending in "…": at a word's end when the line is well filled so,
    else cut per character (a long word, or CJK text)."""
    if line.strip() and font.getlength(line.rstrip() + ELLIPSIS) <= room and font.getlength(line) >= 0.7 * room:
        return line.rstrip() + ELLIPSIS
    cut = _fitting(rest.lstrip(), font, room - font.getlength(ELLIPSIS))
    return rest.lstrip()[:cut].rstrip() + ELLIPSIS


# --- the base map, drawn once per language ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Transform:
    """Map coordinates to the picture's pixels: a uniform scale (distances kept), the y axis up, and the axes
    swapped when the map is taller than wide so its longer side lies across the picture."""

    swap: bool
    x_low: float
    y_low: float
    scale: float  # pixels per half unit: coordinates are halved first so that no difference overflows
    left: float
    bottom: float

    def pixel(self, position: tuple[float, float]) -> tuple[float, float]:
        x, y = (position[1], position[0]) if self.swap else position
        return (
            self.left + (x / 2 - self.x_low / 2) * self.scale,
            self.bottom - (y / 2 - self.y_low / 2) * self.scale,
        )

    def covariance(self, cov: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
        """The covariance in pixels² (y flipped, axes swapped as the positions are)."""
        matrix = np.array(cov, dtype=np.float64)
        if self.swap:
            matrix = matrix[::-1, ::-1]
        flip = np.array([[1.0, 0.0], [0.0, -1.0]])
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = flip @ (matrix * (self.scale / 2) * (self.scale / 2)) @ flip
        return np.asarray(np.nan_to_num(scaled, nan=0.0, posinf=1e12, neginf=-1e12), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Sprite:
    image: Image.Image  # RGBA
    # Where the marked point is within the sprite.
    anchor: tuple[int, int]


@dataclass(frozen=True, slots=True, eq=False)
class BaseMap:
    """The map drawn once for one language: the picture in palette mode (what is copied per reader), the same in
    RGB (what the marker is blended over), where map coordinates fall in it, and the marker drawn once."""

    image: Image.Image  # "P"
    rgb: Image.Image
    transform: _Transform
    map_box: Box
    pin: _Sprite
    label: _Sprite
    layout: PictureLayout = field(default=DEFAULT_LAYOUT)

    def to_pixel(self, position: tuple[float, float]) -> tuple[float, float]:
        """Where a map position falls in the picture (it may lie outside the map's box)."""
        return self.transform.pixel(position)


def draw_base(drawing: MapDrawing, labels: PictureLabels, layout: PictureLayout = DEFAULT_LAYOUT) -> BaseMap:
    """The picture without anyone's position: title, groups as shaded regions with their letters, and the legend."""
    width, pad = layout.width, layout.padding
    inner = width - 2 * pad
    title_font = _font(layout.title_size)
    title_lines = wrap_text(clean_text(labels.title, 500), title_font, inner, layout.title_lines)
    title_height = len(title_lines) * _line_height(title_font) + (pad // 2 if title_lines else 0)

    legend = _Legend(drawing, labels, layout)
    lines = layout.statement_lines[-1]
    for lines in layout.statement_lines:
        if title_height + legend.height(lines) + layout.min_map_height + 3 * pad <= layout.max_height:
            break
    legend_height = legend.height(lines)
    room = layout.max_height - title_height - legend_height - 3 * pad
    map_height = max(min(layout.max_map_height, room), min(layout.min_map_height, room), 200)
    height = min(layout.max_height, title_height + map_height + legend_height + 3 * pad)

    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = pad
    for line in title_lines:
        draw.text((pad, y), line, font=title_font, fill=INK, stroke_width=1, stroke_fill=INK)
        y += _line_height(title_font)
    y = pad + title_height
    map_box: Box = (pad, y, width - pad, y + map_height)
    transform = _fit(drawing.extent, map_box, layout)
    _draw_map(canvas, drawing, labels, map_box, transform, layout)
    legend.draw(canvas, (pad, map_box[3] + pad), lines)

    pin, label = _pin_sprite(layout), _label_sprite(labels.you_are_here, layout)
    image = _to_palette(canvas, (pin.image, label.image), layout.palette_colours)
    return BaseMap(image, canvas, transform, map_box, pin, label, layout)


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    return round(font.size * 1.35)


def _fit(extent: tuple[float, float, float, float], box: Box, layout: PictureLayout) -> _Transform:
    x_min, x_max, y_min, y_max = (v if math.isfinite(v) else 0.0 for v in extent)
    if x_max < x_min:
        x_min, x_max = x_max, x_min
    if y_max < y_min:
        y_min, y_max = y_max, y_min
    half_x, half_y = x_max / 2 - x_min / 2, y_max / 2 - y_min / 2
    swap = half_y > half_x
    if swap:
        x_min, x_max, y_min, y_max = y_min, y_max, x_min, x_max
        half_x, half_y = half_y, half_x
    margin = layout.min_radius
    box_w, box_h = box[2] - box[0] - 2 * margin, box[3] - box[1] - 2 * margin
    scale = min(box_w / half_x if half_x > 0 else math.inf, box_h / half_y if half_y > 0 else math.inf)
    if not math.isfinite(scale):
        scale = 1.0
    # Centred in the box.
    left = box[0] + margin + (box_w - half_x * scale) / 2
    bottom = box[3] - margin - (box_h - half_y * scale) / 2
    return _Transform(swap, x_min, y_min, scale, left, bottom)


def _ellipse(
    centre: tuple[float, float], cov: np.ndarray, min_radius: float, limit: float
) -> list[tuple[float, float]]:
    """The 2-sigma ellipse of ``cov`` around ``centre``, as a polygon, no semi-axis under ``min_radius``."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    radii = [min(max(2 * math.sqrt(max(float(v), 0.0)), min_radius), limit) for v in values]
    angles = np.linspace(0, 2 * math.pi, 120, endpoint=False)
    unit = np.stack([radii[0] * np.cos(angles), radii[1] * np.sin(angles)])
    points = vectors @ unit
    return [(centre[0] + float(px), centre[1] + float(py)) for px, py in points.T]


def _clamp(value: float, low: float, high: float) -> float:
    return (low + high) / 2 if math.isnan(value) else min(max(value, low), high)


def _draw_map(
    canvas: Image.Image,
    drawing: MapDrawing,
    labels: PictureLabels,
    box: Box,
    transform: _Transform,
    layout: PictureLayout,
) -> None:
    ss = layout.supersample
    size = ((box[2] - box[0]) * ss, (box[3] - box[1]) * ss)
    layer = Image.new("RGB", size, MAP_BACKGROUND)
    outlines = ImageDraw.Draw(layer)
    limit = 4.0 * max(size)
    shapes: list[tuple[Colour, list[tuple[float, float]]]] = []
    centres: list[tuple[float, float]] = []
    for index, region in enumerate(drawing.regions):
        cx, cy = transform.pixel(region.centre)
        cx, cy = _clamp(cx, box[0], box[2]), _clamp(cy, box[1], box[3])
        centres.append((cx, cy))
        local = ((cx - box[0]) * ss, (cy - box[1]) * ss)
        polygon = _ellipse(local, transform.covariance(region.covariance) * ss * ss, layout.min_radius * ss, limit)
        shapes.append((_rgb(group_colour(index)), polygon))
    # The largest first, so a small group lying over a large one stays visible; outlines over every fill.
    for colour, polygon in sorted(shapes, key=lambda shape: -_area(shape[1])):
        # The mask only over the region's own box within the layer: a whole layer per region costs ten times more.
        x0, y0 = (max(0, math.floor(min(p[i] for p in polygon))) for i in (0, 1))
        x1, y1 = (min(size[i], math.ceil(max(p[i] for p in polygon)) + 1) for i in (0, 1))
        if x1 <= x0 or y1 <= y0:
            continue
        mask = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in polygon], fill=layout.fill_alpha)
        layer.paste(colour, (x0, y0, x1, y1), mask)
    for colour, polygon in shapes:
        outlines.line([*polygon, polygon[0]], fill=colour, width=layout.outline_width * ss, joint="curve")
    layer = layer.reduce(ss)  # the mean of each ss × ss block: smooth edges
    rounded = Image.new("L", layer.size, 0)
    ImageDraw.Draw(rounded).rounded_rectangle((0, 0, layer.width - 1, layer.height - 1), radius=24, fill=255)
    canvas.paste(layer, box[:2], rounded)

    draw = ImageDraw.Draw(canvas)
    if not drawing.regions and labels.no_groups:
        font = _font(layout.caption_size)
        text = wrap_text(clean_text(labels.no_groups, 300), font, box[2] - box[0] - 2 * layout.padding, 2)
        # At the top of the map: its centre is where a reader's pin falls when nobody is placed in a group yet.
        for number, line in enumerate(text):
            draw.text(
                ((box[0] + box[2]) / 2, box[1] + layout.padding + number * _line_height(font)),
                line,
                font=font,
                fill=MUTED,
                anchor="mt",
            )
    letter_font = _font(layout.letter_size)
    radius = round(layout.letter_size * 0.85)
    for index, (cx, cy) in enumerate(centres):
        colour = _rgb(group_colour(index))
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour, outline=BACKGROUND, width=3)
        draw.text((cx, cy), _letter(index), font=letter_font, fill=_on(colour), anchor="mm")


def _area(polygon: Sequence[tuple[float, float]]) -> float:
    following = [*polygon[1:], polygon[0]]
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(polygon, following, strict=True))) / 2


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def _on(colour: Colour) -> Colour:
    """White or ink, whichever reads better on ``colour`` (relative luminance)."""
    r, g, b = (c / 255 for c in colour)
    return INK if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.55 else BACKGROUND


class _Legend:
    """Below the map: per group its letter, caption and statement (or why it is not shown)."""

    def __init__(self, drawing: MapDrawing, labels: PictureLabels, layout: PictureLayout) -> None:
        self.drawing, self.labels, self.layout = drawing, labels, layout
        self.caption_font, self.text_font = _font(layout.caption_size), _font(layout.text_size)
        self.swatch = round(layout.caption_size * 1.3)
        self.text_left = self.swatch + 18
        self.text_width = layout.width - 2 * layout.padding - self.text_left
        self.gap = round(layout.text_size * 0.6)

    def _caption(self, index: int) -> list[str]:
        captions = self.labels.group_captions
        caption = captions[index] if index < len(captions) else _letter(index)
        return wrap_text(clean_text(caption, 200), self.caption_font, self.text_width, 1)

    def _statement(self, region: MapRegion, lines: int) -> tuple[str, list[str], Colour]:
        """The stance's marker, the statement's lines (the first after the marker) and the marker's colour."""
        if region.withheld:
            withheld = clean_text(self.labels.withheld, 300)
            return "", wrap_text(withheld, self.text_font, self.text_width, min(lines, 2)), MUTED
        if region.statement is None or region.agrees is None:  # none representative, or its text is gone
            return "", [], MUTED
        marker = clean_text(self.labels.agree if region.agrees else self.labels.disagree, 40)
        indent = self._indent(marker)
        text = wrap_text(clean_text(region.statement), self.text_font, self.text_width, lines, indent)
        return marker, text, AGREE_TEXT if region.agrees else DISAGREE_TEXT

    def _indent(self, marker: str) -> float:
        """Where the statement starts after its marker: a space after "Agree:", none after a full-width "赞成："."""
        if not marker:
            return 0.0
        return self.text_font.getlength(marker if _wide(marker[-1]) else marker + " ")

    def height(self, lines: int) -> int:
        total = 0
        for index, region in enumerate(self.drawing.regions):
            total += len(self._caption(index)) * _line_height(self.caption_font)
            total += len(self._statement(region, lines)[1]) * _line_height(self.text_font) + self.gap
        return total

    def draw(self, canvas: Image.Image, origin: tuple[int, int], lines: int) -> None:
        draw = ImageDraw.Draw(canvas)
        x, y = origin
        for index, region in enumerate(self.drawing.regions):
            colour = _rgb(group_colour(index))
            caption_height = _line_height(self.caption_font)
            top = y + (caption_height - self.swatch) // 2
            draw.rounded_rectangle((x, top, x + self.swatch, top + self.swatch), radius=8, fill=colour)
            draw.text(
                (x + self.swatch / 2, top + self.swatch / 2),
                _letter(index),
                font=self.caption_font,
                fill=_on(colour),
                anchor="mm",
            )
            for line in self._caption(index):
                draw.text((x + self.text_left, y), line, font=self.caption_font, fill=INK)
                y += caption_height
            marker, text, marker_colour = self._statement(region, lines)
            for number, line in enumerate(text):
                left = x + self.text_left
                if number == 0 and marker:
                    draw.text((left, y), marker, font=self.text_font, fill=marker_colour)
                    left += round(self._indent(marker))
                draw.text((left, y), line, font=self.text_font, fill=INK if marker else MUTED)
                y += _line_height(self.text_font)
            y += self.gap


def _pin_sprite(layout: PictureLayout) -> _Sprite:
    """A map pin whose tip is the marked point: a dark head with a white dot, a white rim to stand out anywhere."""
    ss = 4
    head = round(layout.marker_size * 0.62)
    rim = 4
    width = 2 * (head + rim)
    height = round(head * 3.0) + 2 * rim
    image = Image.new("RGBA", (width * ss, height * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    cx, cy = width / 2 * ss, (head + rim) * ss
    tip = (cx, (height - rim / 2) * ss)

    def shape(grow: float, fill: tuple[int, int, int, int]) -> None:
        r = (head + grow) * ss
        # The head, and a triangle from its sides down to the tip.
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        side = r * 0.8
        draw.polygon([(cx - side, cy + r * 0.6), (cx + side, cy + r * 0.6), (tip[0], tip[1] + grow * ss)], fill=fill)

    shape(rim, (*BACKGROUND, 255))
    shape(0, (*MARKER, 255))
    dot = head * 0.42 * ss
    draw.ellipse((cx - dot, cy - dot, cx + dot, cy + dot), fill=(*BACKGROUND, 255))
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    return _Sprite(image, (width // 2, height - 1))


def _label_sprite(text: str, layout: PictureLayout) -> _Sprite:
    """The "you are here" label: light text on a dark rounded box with a white rim; its anchor is its left middle."""
    font = _font(layout.marker_size)
    line = wrap_text(clean_text(text, 100), font, layout.width / 2, 1)
    words = line[0] if line else ""
    pad_x, pad_y, rim = 16, 10, 3
    left, top, right, bottom = font.getbbox(words) if words else (0, 0, 0, 0)
    box_w = math.ceil(right - left) + 2 * pad_x
    box_h = max(math.ceil(bottom - top), layout.marker_size) + 2 * pad_y
    width, height = box_w + 2 * rim, box_h + 2 * rim
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=14, fill=(*BACKGROUND, 255))
    draw.rounded_rectangle((rim, rim, width - 1 - rim, height - 1 - rim), radius=12, fill=(*MARKER, 255))
    draw.text((width / 2, height / 2), words, font=font, fill=(*BACKGROUND, 255), anchor="mm")
    return _Sprite(image, (0, height // 2))


def _to_palette(canvas: Image.Image, sprites: Sequence[Image.Image], colours: int) -> Image.Image:
    """The canvas in palette mode, the palette chosen over the canvas and the marker's sprites (over white and
    over the map's background) together, so that the marker's colours are in it."""
    extra = sum(sprite.height for sprite in sprites) * 2
    sheet = Image.new("RGB", (canvas.width, canvas.height + extra), BACKGROUND)
    sheet.paste(canvas, (0, 0))
    y = canvas.height
    for background in (BACKGROUND, MAP_BACKGROUND):
        for sprite in sprites:
            patch = Image.new("RGBA", sprite.size, (*background, 255))
            patch.alpha_composite(sprite)
            sheet.paste(patch.convert("RGB"), (0, y))
            y += sprite.height
    quantized = sheet.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return quantized.crop((0, 0, canvas.width, canvas.height))


# --- one picture per reader ------------------------------------------------------------------------------------


def with_you_are_here(base: BaseMap, position: tuple[float, float]) -> bytes:
    """The base with a pin at ``position`` and "you are here" beside it, as PNG bytes. A position outside the map
    (a participant with too few votes to be placed in a group may lie far out) is pinned at the map's edge."""
    if not all(math.isfinite(v) for v in position):
        raise ValueError("a position on the map must be finite")
    pin, label = base.pin, base.label
    left, top, right, bottom = base.map_box
    x, y = base.to_pixel(position)
    tip_x = round(_clamp(x, left + pin.image.width, right - pin.image.width))
    tip_y = round(_clamp(y, top + pin.image.height, bottom - 4))
    pin_at = (tip_x - pin.anchor[0], tip_y - pin.anchor[1])
    head_y = pin_at[1] + pin.image.width // 2
    # The label right of the pin, or left of it where it would leave the map; never above or below the map.
    label_x = pin_at[0] + pin.image.width + 4
    if label_x + label.image.width > right - 4:
        label_x = pin_at[0] - 4 - label.image.width
    label_x = max(4, label_x)
    label_y = round(_clamp(head_y - label.anchor[1], top + 4, bottom - 4 - label.image.height))
    patch_box = (
        min(pin_at[0], label_x),
        min(pin_at[1], label_y),
        max(pin_at[0] + pin.image.width, label_x + label.image.width),
        max(pin_at[1] + pin.image.height, label_y + label.image.height),
    )
    size = (patch_box[2] - patch_box[0], patch_box[3] - patch_box[1])
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    overlay.alpha_composite(pin.image, (pin_at[0] - patch_box[0], pin_at[1] - patch_box[1]))
    overlay.alpha_composite(label.image, (label_x - patch_box[0], label_y - patch_box[1]))
    patch = base.rgb.crop(patch_box).convert("RGBA")
    patch.alpha_composite(overlay)
    mapped = patch.convert("RGB").quantize(palette=base.image, dither=Image.Dither.NONE)
    picture = base.image.copy()
    # Only the marker's own pixels: the base's other pixels keep their palette entries (a nearest-colour mapping
    # of them could differ from the quantizer's choice and show the patch as a faint rectangle).
    picture.paste(mapped, patch_box[:2], overlay.getchannel("A").point(_covered, "1"))
    return _png(picture, base.layout)


def _covered(alpha: int) -> int:
    return 255 if alpha else 0


def without_position(base: BaseMap) -> bytes:
    """The base alone, as PNG bytes: the map staff see, with no one's position."""
    return _png(base.image, base.layout)


def _png(image: Image.Image, layout: PictureLayout) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=layout.png_compress_level)
    return out.getvalue()
