"""The opinion map as pictures in chat, drawn in the jobs' worker (bot.worker), never in a conversation: each
participant's own at the close ("you are here" on their position), and the staff's current map of an open
consultation (no one's position). Drawing is bot.consultations.map_picture's; this module decides who gets what.

For the close of a consultation of 20,000 participants the map is computed once (with the outcome's findings,
bot.consultations.jobs), its base drawn once per reader language, and each person's picture only adds their marker
to it. People whose pins fall in the same SPOT_PIXELS square of the picture (the same votes give the same position)
share one file, pinned where the first of them stands: a few pixels off for the others, under the pin's own size,
and the files are at most as many as the squares the participants stand in, not one per person (a picture is about
60 KB: 20,000 of them would be over a gigabyte, kept for days). Someone with too few votes to be placed (not in a
group of the map) gets the base map without a marker, one file per language. The files are written here; what
goes back to the jobs' process is only which file is whose (person id, language, file name, placed or not): no
position and no pseudonym ever leaves this process.

While fewer than k voted (community.anonymity) there is no picture at all: the outcome withholds the map's
findings then, and the staff's map is refused (MapWithheld)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bot.exports.worker import ExportTask, Produced, Refused
from bot.worker import reading
from consultation import consultations, reach
from consultation.errors import MapWithheld

if TYPE_CHECKING:
    from bot.consultations.map_picture import BaseMap, MapDrawing, PictureLabels
    from consultation.opinion_map import OpinionMap, StatementId

SPOT_PIXELS: Final = 4  # the side of a spot that shares one picture; the pin is about 40 pixels tall
MAP_FILE: Final = "opinion-map-{consultation_id}.png"  # the staff's current map, as the chat shows its name


@dataclass(frozen=True, slots=True)
class PersonPicture:
    """Which file is a person's own picture in one language: all the jobs' process learns of it."""

    person_id: int
    language: str
    file_name: str  # in the folder the worker was given
    placed: bool  # False: too few votes to be placed, the map shows no marker


@dataclass(frozen=True, slots=True)
class Viewer:
    """A person the outcome reaches, and the language of one of their accounts."""

    person_id: int
    language: str


Labels = Callable[[str, str, "MapDrawing"], "PictureLabels"]


def labels_in(language: str, title: str, drawing: MapDrawing) -> PictureLabels:
    """The picture's words in a reader's language (the worker has no Localizers of the app: it builds its own)."""
    from bot.consultations.map_picture import picture_labels
    from bot.rendering import Localizers
    from i18n import Catalogs

    return picture_labels(Localizers(Catalogs()).get(language), title, drawing.regions)


def draw_outcome_pictures(
    found: OpinionMap,
    texts: Mapping[int, str],
    min_group_size: int,
    title: str,
    viewers: Sequence[Viewer],
    pseudonyms: Mapping[int, str],
    folder: Path,
    labels: Labels = labels_in,
) -> tuple[PersonPicture, ...]:
    """Every viewer's own picture, written to folder: the base per language once, a marker per spot."""
    from bot.consultations.map_picture import draw_base, map_drawing, with_you_are_here, without_position
    from consultation.opinion_map import NOT_CLUSTERED

    drawing = map_drawing(found, _by_statement(texts), min_group_size)
    folder.mkdir(parents=True, exist_ok=True)
    row_of = {participant: row for row, participant in enumerate(found.participant_ids)}
    bases: dict[str, BaseMap] = {}
    files: dict[tuple[str, tuple[int, int] | None], str] = {}
    pictures: list[PersonPicture] = []

    def write(content: bytes) -> str:
        name = f"map-{len(files) + 1}.png"  # names tell nothing of whose or where
        (folder / name).write_bytes(content)
        return name

    for viewer in viewers:
        pseudonym = pseudonyms.get(viewer.person_id)
        row = row_of.get(pseudonym) if pseudonym is not None else None
        position = None
        if row is not None and int(found.group_of[row]) != NOT_CLUSTERED:
            # By row, not OpinionMap.position(), which looks the pseudonym up in a tuple: 20,000 times over 20,000.
            x, y = float(found.coordinates[row, 0]), float(found.coordinates[row, 1])
            position = (x, y) if math.isfinite(x) and math.isfinite(y) else None
        base = bases.get(viewer.language)
        if base is None:
            base = bases[viewer.language] = draw_base(drawing, labels(viewer.language, title, drawing))
        pixel = base.to_pixel(position) if position is not None else None
        spot = (int(pixel[0] // SPOT_PIXELS), int(pixel[1] // SPOT_PIXELS)) if pixel is not None else None
        key = (viewer.language, spot)
        name = files.get(key)
        if name is None:
            content = with_you_are_here(base, position) if position is not None else without_position(base)
            name = files[key] = write(content)
        placed = position is not None
        pictures.append(PersonPicture(viewer.person_id, viewer.language, name, placed))
    return tuple(pictures)


def _by_statement(texts: Mapping[int, str]) -> dict[StatementId, str]:
    return {statement_id: text for statement_id, text in texts.items()}


# --- the staff's current map -------------------------------------------------------------------------------------


def current_map(task: ExportTask) -> Produced | Refused:
    """In the worker (bot.exports.worker.produce): the map of an open consultation's votes so far, in the
    requester's language, with no one's position; refused while fewer than k voted."""
    return asyncio.run(_current_map(task))


async def _current_map(task: ExportTask) -> Produced | Refused:
    async with reading(task.reading) as uow:
        consultation = await consultations.get_consultation(uow, task.subject_id)
        matrix = await consultations.vote_matrix(uow, task.subject_id)
        counted = await consultations.figures(uow, task.subject_id, consultations.matrix_tally(matrix))
        texts = await reach.statement_texts(uow, matrix.statement_ids)
        # The groups the last refresh found, as residents' cards are ordered by: not a map of its own.
        remembered = await consultations.map_memory(uow, task.subject_id)
    if counted.withheld or not matrix.participants or not matrix.statement_ids:
        refusal = MapWithheld(voters=counted.voters, k=counted.min_group_size)
        return Refused(refusal.message, tuple(sorted(refusal.params.items())))
    from bot.consultations.map_picture import draw_base, map_drawing, without_position

    found = matrix.opinion_map(previous=remembered, advance=False)
    drawing = map_drawing(found, _by_statement(texts), counted.min_group_size)
    content = without_position(draw_base(drawing, labels_in(task.language, consultation.title, drawing)))
    folder = Path(task.folder)
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - the worker's own loop: nobody waits on it
    name = MAP_FILE.format(consultation_id=task.subject_id)
    partial = folder / ".map.part"
    partial.write_bytes(content)
    partial.replace(folder / name)  # under its name only once whole
    return Produced(name, len(content))
