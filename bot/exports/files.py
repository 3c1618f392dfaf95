"""Where the files Linli makes for people (exports asked for in a chat) are kept until the delivery sends them, and
how an outbox row names one: its file_ref is LOCAL_FILE followed by the file's path under the exports folder of
the data directory. The delivery's transports read the file from there (bot/channels/*_delivery.py); every other
file_ref is a channel's own reference to a file it already holds (a Telegram file_id)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

from bot.delivery.transport import Refused

LOCAL_FILE: Final = "local:"
EXPORTS_FOLDER: Final = "exports"  # under the data directory


def exports_dir(data_dir: Path) -> Path:
    return data_dir.absolute() / EXPORTS_FOLDER


def local_ref(relative: str) -> str:
    return f"{LOCAL_FILE}{relative}"


def is_local(file_ref: str | None) -> bool:
    return file_ref is not None and file_ref.startswith(LOCAL_FILE)


def local_file(files_dir: Path, file_ref: str) -> Path | None:
    """The stored file a LOCAL_FILE reference names, if it lies inside files_dir; None for any other reference
    (one that would climb out of the folder included)."""
    if not is_local(file_ref):
        return None
    root = files_dir.resolve()
    path = (root / file_ref.removeprefix(LOCAL_FILE)).resolve()
    return path if path.is_relative_to(root) and path != root else None


async def read_local(files_dir: Path | None, file_ref: str | None) -> tuple[Path, bytes] | Refused:
    """What a transport uploads for a LOCAL_FILE reference: the file and its bytes, or why it cannot (a reference
    outside files_dir, a process without one, a file gone or unreadable)."""
    path = local_file(files_dir, file_ref or "") if files_dir is not None else None
    if path is None:
        return Refused("not a file this process can read")
    try:
        return path, await asyncio.to_thread(path.read_bytes)
    except OSError as err:
        return Refused(f"the file could not be read: {type(err).__name__}")
