"""The opinion map as a picture in chat (bot/consultations/map_picture.py): what a participant and staff get."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from bot.consultations.map_picture import (
    DEFAULT_LAYOUT,
    INK,
    MARKER,
    BaseMap,
    MapDrawing,
    MapRegion,
    PictureLabels,
    clean_text,
    draw_base,
    map_drawing,
    picture_labels,
    with_you_are_here,
    without_position,
    wrap_text,
)
from bot.consultations.outcome_pictures import NOT_PLACED, OutcomePictures
from bot.consultations.pictures import Viewer, draw_outcome_pictures
from bot.exports.fonts import cjk_font_path
from bot.rendering import Localizers
from community.notify import Recipient
from consultation.opinion_map import OpinionMap, OpinionMapSettings, compute_opinion_map

# Measured: about 50-70 KB for a map of three to five groups with their statements (bench/bench_opinion.py
# --pictures reports the median); the bound leaves room for denser legends without letting a picture grow unnoticed.
MAX_PNG_BYTES = 150_000
TELEGRAM_MAX_SIDE = 1280
LABELS = PictureLabels(
    title="小区停车位怎么分配？ Parking",
    you_are_here="你在这里",
    group_captions=("A组（40人）", "B组（40人）", "C组（40人）"),
    agree="赞成：",
    disagree="反对：",
    withheld="这一组人数太少，不显示其观点。",
    no_groups="还没有形成意见群组。",
)


def planted_map(
    participants: int = 120, statements: int = 12, blocs: int = 3, seed: int = 1, pseudonyms: bool = False
) -> OpinionMap:
    """Blocs that each agree with their own statements and disagree with the others'; everyone votes enough.
    Participants are numbered, or named as pseudonyms are."""
    rng = np.random.default_rng(seed)
    bloc = np.arange(participants) % blocs
    stance = np.where(np.arange(statements)[None, :] % blocs == bloc[:, None], 1.0, -1.0)
    noise = rng.random((participants, statements))
    votes = np.where(noise < 0.85, stance, np.where(noise < 0.95, -stance, 0.0))
    ids: list[int | str] = [f"p{i}" if pseudonyms else i for i in range(participants)]
    return compute_opinion_map(votes, ids, list(range(statements)))


def texts(opinion_map: OpinionMap) -> dict[int | str, str]:
    return {sid: f"观点{sid}：车位应当按户轮换，每年抽签一次。" for sid in opinion_map.statement_ids}


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image


def rgb(png: bytes) -> np.ndarray:
    return np.asarray(decoded(png).convert("RGB"), dtype=np.int16)


def changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """left, top, right, bottom (exclusive) of the pixels that differ, None when none does."""
    rows, cols = np.nonzero((a != b).any(axis=2))
    if len(rows) == 0:
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


@pytest.fixture(scope="module")
def opinion_map() -> OpinionMap:
    return planted_map()


@pytest.fixture(scope="module")
def base(opinion_map: OpinionMap) -> BaseMap:
    return draw_base(map_drawing(opinion_map, texts(opinion_map), min_group_size=10), LABELS)


def test_a_participant_gets_a_small_png_that_telegram_shows_whole(opinion_map: OpinionMap, base: BaseMap) -> None:
    png = with_you_are_here(base, opinion_map.position(0))
    image = decoded(png)
    assert image.width == DEFAULT_LAYOUT.width
    assert max(image.size) <= TELEGRAM_MAX_SIDE
    assert image.mode == "P"  # a limited palette: small and quick to encode
    assert len(png) < MAX_PNG_BYTES


def test_the_groups_become_regions_with_their_first_representative_statement(opinion_map: OpinionMap) -> None:
    drawing = map_drawing(opinion_map, texts(opinion_map), min_group_size=10)
    assert len(drawing.regions) == len(opinion_map.groups) == 3
    x_min, x_max, y_min, y_max = drawing.extent
    for region, group in zip(drawing.regions, opinion_map.groups, strict=True):
        members = np.array([opinion_map.position(pid) for pid in group.participant_ids])
        assert region.size == len(group.participant_ids)
        assert region.centre == pytest.approx(tuple(members.mean(axis=0)))
        assert np.array(region.covariance) == pytest.approx(np.cov(members.T, bias=True), abs=1e-12)
        first = group.representative[0]
        assert region.statement == texts(opinion_map)[first.statement_id]
        assert region.agrees is (first.stance.value == "agree")
        # Every member, so "you are here" is inside the map for each of them.
        assert (x_min < members[:, 0]).all() and (members[:, 0] < x_max).all()
        assert (y_min < members[:, 1]).all() and (members[:, 1] < y_max).all()


def test_a_group_smaller_than_k_shows_no_statement(opinion_map: OpinionMap) -> None:
    sizes = sorted(len(group.participant_ids) for group in opinion_map.groups)
    drawing = map_drawing(opinion_map, texts(opinion_map), min_group_size=sizes[0] + 1)
    small = [region for region in drawing.regions if region.size < sizes[0] + 1]
    assert small and all(region.statement is None and region.agrees is None and region.withheld for region in small)
    assert all(
        region.statement is not None and not region.withheld for region in drawing.regions if region.size > sizes[0]
    )
    picture = decoded(without_position(draw_base(drawing, LABELS)))
    assert max(picture.size) <= TELEGRAM_MAX_SIDE


def test_the_drawing_holds_no_participant_s_position() -> None:
    """Only groups: the drawing of a map of ten times more people is no larger, so it cannot carry positions."""
    few, many = planted_map(participants=60), planted_map(participants=600)
    small = len(pickle.dumps(map_drawing(few, texts(few), 10)))
    large = len(pickle.dumps(map_drawing(many, texts(many), 10)))
    assert abs(large - small) < 100


def test_you_are_here_is_marked_at_the_reader_s_position_and_nowhere_else(
    opinion_map: OpinionMap, base: BaseMap
) -> None:
    staff = rgb(without_position(base))
    for participant in (0, 1, 2, 50):
        position = opinion_map.position(participant)
        mine = rgb(with_you_are_here(base, position))
        x, y = (round(v) for v in base.to_pixel(position))
        # The pin stands on the point: its body is just above it.
        pin = (mine[y - 30 : y, x - 6 : x + 7] != staff[y - 30 : y, x - 6 : x + 7]).any(axis=2)
        assert pin.mean() > 0.5
        assert (np.abs(mine[y - 30 : y - 5, x - 2 : x + 3] - MARKER).sum(axis=2) < 40).any()
        # Only the marker and its label changed: a small area around the point, within the map.
        left, top, right, bottom = changed_box(mine, staff) or (0, 0, 0, 0)
        assert left <= x <= right and top <= y <= bottom
        assert (right - left) * (bottom - top) < 400 * 120
        assert base.map_box[0] <= left and right <= base.map_box[2]
        assert base.map_box[1] <= top and bottom <= base.map_box[3]


def test_staff_get_the_base_exactly_with_no_marker(base: BaseMap) -> None:
    staff = decoded(without_position(base))
    assert np.array_equal(np.asarray(staff), np.asarray(base.image))
    assert staff.getpalette() == base.image.getpalette()
    # No pin anywhere on the map (its dark ink is used nowhere else there).
    inside = rgb(without_position(base))[base.map_box[1] : base.map_box[3], base.map_box[0] : base.map_box[2]]
    assert not (np.abs(inside - MARKER).sum(axis=2) < 12).any()


def _title_difference(picture: np.ndarray, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> float:
    """How far the picture's title is from the title set in ``font`` where draw_base sets it."""
    layout = DEFAULT_LAYOUT
    reference = Image.new("RGB", (picture.shape[1], picture.shape[0]), "white")
    ImageDraw.Draw(reference).text(
        (layout.padding, layout.padding), LABELS.title, font=font, fill=INK, stroke_width=1, stroke_fill=INK
    )
    box = (slice(0, layout.padding + layout.title_size * 2), slice(0, picture.shape[1]))
    return float(np.abs(picture[box] - np.asarray(reference, dtype=np.int16)[box]).mean())


def test_text_is_set_in_the_shipped_cjk_font(base: BaseMap) -> None:
    picture = rgb(without_position(base))
    shipped = _title_difference(picture, ImageFont.truetype(str(cjk_font_path()), DEFAULT_LAYOUT.title_size))
    other = _title_difference(picture, ImageFont.load_default(DEFAULT_LAYOUT.title_size))
    assert shipped < 1.0  # the same glyphs, give or take the palette's rounding
    assert other > 4 * shipped


def test_a_map_of_one_group_or_of_nobody_in_a_group_still_draws() -> None:
    one = planted_map(participants=30, blocs=1)
    # Two votes each of ten statements, and no most-active rule: nobody is placed in a group.
    few = np.full((5, 10), np.nan)
    few[:, :2] = 1.0
    nobody = compute_opinion_map(few, list(range(5)), list(range(10)), OpinionMapSettings(greedy_participants=0))
    for opinion_map in (one, nobody):
        drawing = map_drawing(opinion_map, texts(opinion_map), 10)
        base = draw_base(drawing, LABELS)
        for participant in opinion_map.participant_ids:
            picture = decoded(with_you_are_here(base, opinion_map.position(participant)))
            assert max(picture.size) <= TELEGRAM_MAX_SIDE
    assert map_drawing(nobody, texts(nobody), 10).regions == ()


HOSTILE = (
    "观点" * 5_000,  # 10,000 characters
    "Parking " * 1_250,
    "A\x00B\ud800C\udfff\u202eD\u200bE😀F\x1b[31m",
    "\x00" * 100,
    "",
)


@pytest.mark.parametrize("statement", HOSTILE)
def test_hostile_statements_are_drawn_cleaned_and_cut(statement: str) -> None:
    region = MapRegion((0.0, 0.0), ((1.0, 0.0), (0.0, 1.0)), 50, statement, True)
    base = draw_base(MapDrawing((region,), (-3.0, 3.0, -3.0, 3.0)), LABELS)
    png = with_you_are_here(base, (0.5, 0.5))
    assert max(decoded(png).size) <= TELEGRAM_MAX_SIDE and len(png) < MAX_PNG_BYTES


def test_cleaning_drops_controls_and_lone_surrogates_and_boxes_what_the_font_lacks() -> None:
    assert clean_text("A\x00B\ud800C\u202eD\u200bE\n\n F") == "ABCDE F"
    assert clean_text("笑😀") == "笑□"  # the font has no emoji: a box, as a reader would see anyway
    assert len(clean_text("观" * 10_000)) == 2_000


def test_cjk_wraps_per_character_and_latin_per_word_cut_with_an_ellipsis() -> None:
    font = ImageFont.truetype(str(cjk_font_path()), 28)
    cjk = "小区停车位应当按户轮流分配，每年重新抽签一次，保证公平。" * 3
    lines = wrap_text(cjk, font, 400, 10)
    assert "".join(lines) == cjk and len(lines) > 3
    assert all(font.getlength(line) <= 400 for line in lines)
    assert not any(line[0] in "，。" for line in lines)  # no line starts with closing punctuation
    latin = "Parking spaces should rotate between households every year, drawn by lot."
    lines = wrap_text(latin, font, 400, 10)
    assert " ".join(lines) == latin  # broken only at spaces
    assert all(font.getlength(line) <= 400 for line in lines)
    cut = wrap_text(cjk, font, 400, 3)
    assert len(cut) == 3 and cut[-1].endswith("…") and font.getlength(cut[-1]) <= 400
    long_word = wrap_text("Antidisestablishmentarianism" * 5, font, 300, 2)
    assert len(long_word) == 2 and all(font.getlength(line) <= 300 for line in long_word)


def test_labels_are_translated_for_the_reader(localizers: Localizers) -> None:
    regions = (
        MapRegion((0, 0), ((1, 0), (0, 1)), 1_004, "x", True),
        MapRegion((1, 1), ((1, 0), (0, 1)), 1, None, None),
    )
    zh = picture_labels(localizers.get("zh_Hans"), "", regions)
    assert (zh.title, zh.you_are_here, zh.agree, zh.disagree) == ("意见分布图", "你在这里", "赞成：", "反对：")
    assert zh.group_captions == ("A组（1,004人）", "B组（1人）")
    en = picture_labels(localizers.get("en"), "Parking", regions)
    assert (en.title, en.you_are_here, en.agree) == ("Parking", "You are here", "Agree:")
    assert en.group_captions == ("Group A (1,004 people)", "Group B (1 person)")


finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)
modest = st.floats(min_value=-50, max_value=50, allow_nan=False)


@st.composite
def drawings(draw: st.DrawFn) -> MapDrawing:
    """Up to six regions of any shape (a covariance is A·Aᵀ, so positive semi-definite), at any scale."""
    scale = draw(st.sampled_from([1e-6, 1.0, 1e6, 1e150]))
    regions = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        a, b, c = draw(modest), draw(modest), draw(modest)
        xy = a * c * scale * scale
        cov = ((a * a + b * b) * scale * scale, xy), (xy, c * c * scale * scale)
        centre = (draw(modest) * scale, draw(modest) * scale)
        statement = draw(st.none() | st.text(max_size=300))
        regions.append(MapRegion(centre, cov, 10, statement, None if statement is None else True))
    xs = [r.centre[0] for r in regions] or [0.0]
    ys = [r.centre[1] for r in regions] or [0.0]
    return MapDrawing(tuple(regions), (min(xs) - scale, max(xs) + scale, min(ys) - scale, max(ys) + scale))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawing=drawings(), positions=st.lists(st.tuples(finite, finite), min_size=1, max_size=3))
def test_any_map_and_any_position_give_a_picture_with_the_marker_inside_the_map(
    drawing: MapDrawing, positions: list[tuple[float, float]]
) -> None:
    labels = PictureLabels("T", "你在这里", tuple(f"G{i}" for i in range(len(drawing.regions))), "A:", "D:")
    base = draw_base(drawing, labels)
    staff = rgb(without_position(base))
    assert max(staff.shape[:2]) <= TELEGRAM_MAX_SIDE
    for position in positions:
        box = changed_box(rgb(with_you_are_here(base, position)), staff)
        assert box is not None
        assert base.map_box[0] <= box[0] and box[2] <= base.map_box[2]
        assert base.map_box[1] <= box[1] and box[3] <= base.map_box[3]


def test_a_position_that_is_not_a_number_is_refused(base: BaseMap) -> None:
    with pytest.raises(ValueError):
        with_you_are_here(base, (float("nan"), 0.0))


def test_a_reader_with_no_place_on_the_map_gets_it_without_a_marker_and_told_why(
    tmp_path: Path, localizers: Localizers
) -> None:
    opinion_map = planted_map(participants=30, blocs=2, pseudonyms=True)
    placed, unplaced = Viewer(1, "zh_Hans"), Viewer(2, "en")
    # Person 2 joined and never voted: no row in the map.
    statement_texts = {int(sid): text for sid, text in texts(opinion_map).items()}
    pseudonyms = {1: str(opinion_map.participant_ids[0])}
    pictures = draw_outcome_pictures(opinion_map, statement_texts, 5, "停车", (placed, unplaced), pseudonyms, tmp_path)

    assert [(p.person_id, p.placed) for p in pictures] == [(1, True), (2, False)]
    queued = OutcomePictures(tmp_path, localizers).queued_pictures(pictures, tmp_path)
    recipient = Recipient(channel="console", chat_id="c2", person_id=2, account_id=None, language="en")
    (message,) = queued.messages("停车", recipient)
    assert message.text == localizers.get("en").text(NOT_PLACED, title="停车")
    unmarked = decoded((tmp_path / pictures[1].file_name).read_bytes())
    marked = decoded((tmp_path / pictures[0].file_name).read_bytes())
    assert unmarked.size == marked.size and unmarked.tobytes() != marked.tobytes()
