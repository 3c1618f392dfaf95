"""The outcome's pictures of the opinion map in the jobs' process: where the worker writes them, how each becomes
an outbox PHOTO right after its person's outcome message, and how long the files stay.

Why a photo of its own, not the outcome's attachment: the outcome text (the consensus statements, the divisive
one) often runs past Telegram's 1,024-character caption limit, and a caption split from its photo would put the
picture above the text it illustrates. So the outcome goes as text, and the picture right after it with a short
caption (community.notify's followed_by writes the two rows one after the other, and the sender takes a chat's
rows in order).

The files are written by the worker under the exports folder (bot.exports.files, which the transports read), in
maps/CONSULTATION/RUN/: a run's own folder, so that two runs at once (a close by a person, and the job) never
write over each other; the run that does not queue the outcome removes its folder. They are kept as an export's
file is (bot.exports.jobs.FILES_KEPT) after the outcome was queued, long enough for a delivery held back, and
swept every SWEEP_EVERY after that."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bot.exports.files import local_ref
from bot.exports.jobs import FILES_KEPT
from bot.rendering import Localizers
from community.notice_models import MessageKind
from community.notify import Recipient
from community.outbox import Outgoing
from community.unit_of_work import UnitOfWorkFactory
from consultation import reach
from i18n import N_

if TYPE_CHECKING:
    from bot.consultations.pictures import PersonPicture

MAPS_FOLDER: Final = "maps"  # under the exports folder
SWEEP_PICTURES_JOB: Final = "consultation.sweep_pictures"
PICTURE_NAME: Final = "opinion-map.png"  # the name a chat shows
PLACED = N_("📍 Where you stand among the groups of “%(title)s”.")
NOT_PLACED = N_("The groups of “%(title)s”. You voted on too few statements to be placed among them.")


@dataclass(slots=True)
class QueuedPictures:
    """The pictures of one run, as followed_by (community.notify) asks for them: each recipient's own right after
    their outcome message, on each of their accounts, the caption in the account's language."""

    localizers: Localizers
    refs: dict[tuple[int, str], tuple[str, bool]]  # (person, language) -> (file_ref, placed)
    any_of: dict[int, tuple[str, bool]]  # person -> one of theirs: their language changed since the drawing
    queued: int = 0  # PHOTO rows made so far
    _captions: dict[tuple[str, bool, str], str] = field(default_factory=dict)

    @property
    def by_person(self) -> bool:
        return bool(self.any_of)

    def messages(self, title: str, recipient: Recipient) -> Sequence[Outgoing]:
        if recipient.person_id is None:
            return ()
        own = self.refs.get((recipient.person_id, recipient.language)) or self.any_of.get(recipient.person_id)
        if own is None:
            return ()  # joined the reach after the drawing: no picture of theirs (there are no others)
        ref, placed = own
        self.queued += 1
        return (
            Outgoing(
                channel=recipient.channel,
                chat_id=recipient.chat_id,
                text=self._caption(recipient.language, placed, title),
                person_id=recipient.person_id,
                account_id=recipient.account_id,
                kind=MessageKind.PHOTO,
                file_ref=ref,
                file_name=PICTURE_NAME,
                language=recipient.language,
            ),
        )

    def _caption(self, language: str, placed: bool, title: str) -> str:
        key = (language, placed, title)
        caption = self._captions.get(key)
        if caption is None:
            caption = self._captions[key] = self.localizers.get(language).text(
                PLACED if placed else NOT_PLACED, title=title
            )
        return caption


@dataclass(frozen=True, slots=True)
class OutcomePictures:
    """Where the outcome's pictures go (files_dir: the exports folder the transports read) and the captions'
    words."""

    files_dir: Path
    localizers: Localizers

    def folder_for(self, consultation_id: int) -> Path:
        return self.files_dir / MAPS_FOLDER / str(consultation_id) / secrets.token_hex(8)

    def queued_pictures(self, pictures: Sequence[PersonPicture], folder: Path) -> QueuedPictures:
        relative = folder.relative_to(self.files_dir).as_posix()
        refs = {(p.person_id, p.language): (local_ref(f"{relative}/{p.file_name}"), p.placed) for p in pictures}
        any_of: dict[int, tuple[str, bool]] = {}
        for (person_id, _), ref in refs.items():
            any_of.setdefault(person_id, ref)
        return QueuedPictures(self.localizers, refs, any_of)

    async def sweep(self, uows: UnitOfWorkFactory) -> int:
        """Remove the pictures of consultations whose outcome was queued more than FILES_KEPT ago; returns how many
        consultations' folders went. A folder whose outcome is not queued yet stays: a run may be drawing it."""
        folders = await asyncio.to_thread(_consultation_folders, self.files_dir / MAPS_FOLDER)
        if not folders:
            return 0
        async with uows() as uow:
            sent = await reach.outcome_sent_at(uow, list(folders))
            before = uow.clock.now() - FILES_KEPT
        gone = [folder for consultation_id, folder in folders.items() if sent.get(consultation_id, before) < before]
        for folder in gone:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return len(gone)


def _consultation_folders(maps_dir: Path) -> dict[int, Path]:
    if not maps_dir.is_dir():
        return {}
    return {int(path.name): path for path in maps_dir.iterdir() if path.is_dir() and path.name.isdigit()}
