"""Driving the console channel in tests as a person at the terminal would: type lines, press buttons by the
number the transcript shows next to their label ("  [3] label"), read what came back; and the delivery engine's
real Sender delivering the outbox through the console transport, as `linli run` attaches it.

    out = await script(session, "/as worker", "/notice")
    out = await tap(session, out, "Buildings ›", "3号楼")
    assert "Next ›" in buttons(out)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.app import build_router
from bot.channels.console import ConsoleSession, ConsoleUser
from bot.channels.console_delivery import ConsoleTransport
from bot.context import BotInfo
from bot.conversation import Conversation
from bot.delivery.sender import Sender, SenderOptions
from bot.delivery.transport import Transport
from bot.notices.progress_editor import ProgressEditor
from bot.rendering import Localizer, Localizers
from community.unit_of_work import UnitOfWorkFactory

# How the console prints a button under a message (bot.channels.console): two spaces, then "[number] label".
BUTTON_PREFIX = "  ["


def scheduled_session(
    uows: UnitOfWorkFactory, localizers: Localizers, people: Sequence[ConsoleUser], files_dir: Path
) -> ConsoleSession:
    """A console session (the chrome in English) on a conversation as `linli run` builds it: what it schedules
    goes into schedule rows, which a FakeScheduler built on the same ``uows`` hands over and runs."""
    conversation = Conversation(uows, build_router(), localizers, BotInfo("linli_test_bot"))
    return ConsoleSession(conversation, people, localizers.get("en"), files_dir=files_dir)


async def script(session: ConsoleSession, *lines: str) -> list[str]:
    """Feed lines in order; the output of the last one."""
    out: list[str] = []
    for line in lines:
        out = await session.feed(line)
    return out


def has(out: Sequence[str], fragment: str) -> bool:
    return any(fragment in line for line in out)


def press(out: Sequence[str], label: str) -> str:
    """The number of the button whose label is exactly ``label`` (the transcript shows "  [3] label")."""
    for line in out:
        number, _, shown = line.strip().partition("] ")
        if number.startswith("[") and shown == label:
            return number[1:]
    raise AssertionError(f"no button {label!r} in {out!r}")


async def tap(session: ConsoleSession, out: Sequence[str], *labels: str) -> list[str]:
    """Press buttons by their labels, each on the screen the previous press showed."""
    for label in labels:
        out = await session.feed(press(out, label))
    return list(out)


def buttons(out: Sequence[str]) -> list[str]:
    """The labels of the buttons under the messages, in the order they are numbered."""
    return [line.strip().partition("] ")[2] for line in out if line.startswith(BUTTON_PREFIX)]


class ConsoleDelivery:
    """The delivery engine's console transport attached to a session, as `linli run` attaches it, and the real
    Sender run until the outbox has nothing due. ``printed`` is what the terminal showed of the engine's messages
    while the test was the person they were for (messages for anyone else wait in their inbox, shown by /as).

    progress: the localizers for the author's progress editor (a notice's "is going out" message, edited as
    deliveries go out); None runs the Sender without one. files_dir: where the files Linli made are (exports)."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        session: ConsoleSession,
        *,
        progress: Localizers | None = None,
        files_dir: Path | None = None,
    ) -> None:
        self.uows = uows
        self.progress = progress
        self.printed: list[str] = []
        self.transport = ConsoleTransport(files_dir=files_dir)
        self.transport.attach(session, self.printed.extend)

    async def __call__(self) -> list[str]:
        """Deliver what is due; what the terminal printed meanwhile."""
        self.printed.clear()
        transports: dict[str, Transport] = {"console": self.transport}
        options = SenderOptions(rate=1000.0, flush_interval=0.01)
        if self.progress is None:
            await Sender(self.uows, transports, options).run(until_idle=True)
            return list(self.printed)
        editor = ProgressEditor(self.uows, self.progress, transports, every=0.0)
        try:
            await Sender(self.uows, transports, options, on_progress=editor).run(until_idle=True)
        finally:
            await editor.aclose()
        return list(self.printed)


class DeliveringSession(ConsoleSession):
    """A console session that delivers the outbox after each line, before the next one is read, as `linli run` on
    the console does (run_console's after_each): messages to other people (a join request to the workers, a
    decision to the requester) go through the outbox and show up as "→ a message was sent to ..." after the
    line's answer, and in the other person's inbox."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        conversation: Conversation,
        users: Sequence[ConsoleUser],
        chrome: Localizer,
        *,
        files_dir: Path | None = None,
    ) -> None:
        super().__init__(conversation, users, chrome, files_dir=files_dir)
        self.delivery = ConsoleDelivery(uows, self)

    async def feed(self, line: str) -> list[str]:
        out = await super().feed(line)
        return [*out, *await self.delivery()]
