"""Updates per second through Linli's Telegram channel, against a bare aiogram echo bot on the same machine.

Both bots long-poll a fake Bot API (tests/support/fake_bot_api.py) over real HTTP on 127.0.0.1, in one process
and one event loop with the fake, so the fake's own cost weighs on both alike and the ratio is what Linli's
layers (the channel adapter, the Conversation, the database, templates) cost on top of aiogram itself.

The workload is N synthetic updates from many people (5 updates each by default, so 400 people for N=2000):
each sends ``/start <invitation code>`` and then presses buttons of the menu that came back, one update after
the other as a person would (the next one is pushed once the bot has answered the previous one), all people at
once. Linli runs the real router (``bot.app.build_router``) on a fresh SQLite file in a temporary directory,
migrated with ``community.migrate.upgrade``, with an invitation seeded for the workload; so the /start redeems a
code and the presses run the resident's menu. ``--router bench`` (also the fallback when the app has no /start)
uses a small router of this file's own instead. The echo bot answers a message with ``message.answer(text)`` and
a press by answering the callback and editing the message.

Each bot tells the driver when it has finished an update (Linli through a TelegramChannel subclass, the echo
bot from its handlers), so a person acts again exactly when the whole answer is out, however many messages it
took: a change in the handlers needs no change here. Before timing, one extra person walks the same script
against each bot to warm it up. The fake keeps no clock, so a subclass of it notes when it recorded each message.

Measured: wall time from the first push until the fake has recorded the last reply, and per update the latency
from its push to the first reply the fake recorded for it. Output, one JSON line:

    {"linli_updates_per_s": ..., "echo_updates_per_s": ..., "ratio": ..., "p99_ms": ..., ...}

Both bots run ``--rounds`` times (default 9), Linli then echo in each round; every figure is the median over
rounds, ``ratio`` the median of the rounds' ratios (each round's ratio is in ``ratios``). ``ratio`` is Linli's
throughput over the echo bot's; ``p99_ms`` is Linli's 99th percentile latency (``p50_ms``,
``echo_p99_ms`` alongside); ``linli_errors`` counts errors Linli logged (e.g. a database error answered with an
apology) and ``linli_unanswered`` updates it answered with nothing: both should be 0 for the numbers to mean
what they say.

To switch the workload (another seeded object, other steps), change ``script`` and ``seed_invitations``.

Run:  cd /work/main && .venv/bin/python bench/bench_updates.py [--n 2000] [--per-person 5] [--rounds 5] [--router auto]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

from aiogram import Bot, Dispatcher  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.types import CallbackQuery, Message  # noqa: E402
from markupsafe import escape  # noqa: E402

from bot.callbacks import CallbackData  # noqa: E402
from bot.channels.telegram import TelegramChannel  # noqa: E402
from bot.context import BotInfo, Context  # noqa: E402
from bot.conversation import Conversation  # noqa: E402
from bot.events import ButtonPress, Command, ContactShared, Event, TextInput  # noqa: E402
from bot.rendering import Localizers  # noqa: E402
from bot.replies import AnswerButton, Button, EditText, Reply, SendText  # noqa: E402
from bot.router import Router  # noqa: E402
from community.clock import SystemClock  # noqa: E402
from community.db import create_engine, session_factory  # noqa: E402
from community.keys import SiteKey  # noqa: E402
from community.migrate import upgrade  # noqa: E402
from community.unit_of_work import UnitOfWorkFactory  # noqa: E402
from tests.support.fake_bot_api import FakeBotApi, SentMessage  # noqa: E402
from tests.support.telegram import load_catalogs, running_bot  # noqa: E402

FIRST_USER_ID = 10_000_000
WARM_UP_USER_ID = 9_999_999
STEP_TIMEOUT = 60.0


# ---- what the fake recorded, and when; which updates the bot has finished -----------------------------------


class TimedFakeBotApi(FakeBotApi):
    """The shared fake, noting when it recorded each message (the fake itself keeps no time)."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded_at: dict[int, list[float]] = {}

    def _record(self, message: SentMessage) -> None:
        super()._record(message)
        self.recorded_at.setdefault(message.chat_id, []).append(time.perf_counter())

    def count(self, chat_id: int) -> int:
        return len(self.recorded_at.get(chat_id, ()))


class Completions:
    """Updates a bot has finished handling (every reply sent), per chat: the bot reports, the driver waits.

    So the driver knows exactly when a person has seen the whole answer and may act again, whatever the number
    of messages the answer took, even none, or an apology instead of what the script expected."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}
        self._waiters: dict[int, list[tuple[int, asyncio.Future[None]]]] = {}

    def finished(self, chat_id: int) -> None:
        count = self.done[chat_id] = self.done.get(chat_id, 0) + 1
        still: list[tuple[int, asyncio.Future[None]]] = []
        for wanted, future in self._waiters.pop(chat_id, ()):
            if count >= wanted:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((wanted, future))
        if still:
            self._waiters[chat_id] = still

    async def until(self, chat_id: int, count: int) -> None:
        if self.done.get(chat_id, 0) >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(chat_id, []).append((count, future))
        await asyncio.wait_for(future, STEP_TIMEOUT)


# ---- the workload --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    kind: Literal["message", "press"]
    text: str = ""  # message: what the person sends
    button: int = 0  # press: which of the menu's callback buttons, round robin


def script(code: str, length: int) -> list[Step]:
    """One person: /start with the invitation code, then presses on the menu that came back."""
    steps = [Step("message", f"/start {code}")]
    steps += [Step("press", button=i) for i in range(length - 1)]
    return steps[:length]


@dataclass(slots=True)
class Person:
    """One simulated person: replays a script, each update once the previous one is answered, pressing the
    buttons of the menu the /start brought (by their callback data, never their labels)."""

    user_id: int
    fake: TimedFakeBotApi
    completions: Completions
    menu: SentMessage | None = None
    updates: int = 0

    async def act(self, step: Step) -> float | None:
        """Send one update and wait for the whole answer; the latency to its first message, if any."""
        fake = self.fake
        first = fake.count(self.user_id)
        pushed = time.perf_counter()
        self._push(step)
        self.updates += 1
        await self.completions.until(self.user_id, self.updates)
        new = fake.messages_to(self.user_id)[first:]
        if step.kind == "message" and self.menu is None:
            # The menu: the first message of the answer with inline buttons, else its last message.
            with_buttons = [m for m in new if m.buttons()]
            self.menu = with_buttons[0] if with_buttons else (new[-1] if new else None)
        return fake.recorded_at[self.user_id][first] - pushed if new else None

    def _push(self, step: Step) -> None:
        if step.kind == "message":
            name = f"居民{self.user_id % 10_000}"
            self.fake.push_message(self.user_id, step.text, first_name=name, language_code="zh")
            return
        target = self.menu or self.fake.messages_to(self.user_id)[-1]
        callbacks = [b["callback_data"] for b in target.buttons() if "callback_data" in b]
        data = callbacks[step.button % len(callbacks)] if callbacks else f"press:{step.button}"
        self.fake.push_callback(self.user_id, data, target.message_id)


@dataclass(slots=True)
class Result:
    updates: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0  # updates the bot finished without sending anything

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        return ordered[index] * 1000


async def warm_up(fake: TimedFakeBotApi, completions: Completions, steps: Sequence[Step]) -> None:
    """One person walks the script untimed: connections opened, templates compiled, caches filled."""
    person = Person(WARM_UP_USER_ID, fake, completions)
    for step in steps:
        await person.act(step)


async def drive(
    fake: TimedFakeBotApi, completions: Completions, n: int, per_person: int, steps_of: Callable[[int], list[Step]]
) -> Result:
    """N updates from ceil(N / per_person) people at once, each person's updates one after the other."""
    people = math.ceil(n / per_person)
    lengths = [per_person] * people
    lengths[-1] = n - per_person * (people - 1)
    result = Result(updates=n, seconds=0.0)

    async def one(index: int) -> None:
        person = Person(FIRST_USER_ID + index, fake, completions)
        for step in steps_of(index)[: lengths[index]]:
            latency = await person.act(step)
            if latency is None:
                result.unanswered += 1
            else:
                result.latencies.append(latency)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(people)))
    result.seconds = max(stamps[-1] for chat, stamps in fake.recorded_at.items() if chat >= FIRST_USER_ID) - began
    return result


class ErrorCount(logging.Handler):
    """Errors the bot logged while the workload ran (a database error answered with an apology, a refused
    reply): throughput of apologies is no throughput."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first = ""

    def emit(self, record: logging.LogRecord) -> None:
        if not self.count:
            cause = record.exc_info[1] if record.exc_info else None
            self.first = (
                f"{record.getMessage()} ({type(cause).__name__}: {str(cause).splitlines()[0]})"
                if cause
                else record.getMessage()
            )
        self.count += 1


# ---- Linli ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item(CallbackData):
    prefix: ClassVar[str] = "bi"
    n: int


def bench_router() -> Router:
    """A stand-in for the product's handlers: /start answers with a menu, a press edits it."""
    router = Router()

    async def start(ctx: Context, command: Command) -> Sequence[Reply]:
        buttons = tuple((Button(f"Item {i}", Item(i).pack()),) for i in range(4))
        text = f"<b>欢迎</b>, {escape(ctx.event.sender.display_name)}"
        return (SendText(text, buttons=buttons),)

    async def item(ctx: Context, data: Item) -> Sequence[Reply]:
        payload = ctx.event.payload
        assert isinstance(payload, ButtonPress) and payload.message_id is not None
        text = f"<i>Item {data.n}</i> · {payload.callback_id}"
        return (AnswerButton(), EditText(payload.message_id, text, buttons=((Button("Back", Item(0).pack()),),)))

    async def other(ctx: Context, _: TextInput | ContactShared) -> Sequence[Reply]:
        return (SendText("?"),)

    router.command("start", start)
    router.button(Item, item)
    router.fallback(other)
    return router


@dataclass(slots=True)
class LinliSetup:
    router: Router
    router_name: str
    commands: dict[str, list[tuple[str, str]]] | None
    seed: Callable[[UnitOfWorkFactory, int], Awaitable[list[str]]]


async def _no_code(_: UnitOfWorkFactory, people: int) -> list[str]:
    return ["BENCH"] * people


def linli_setup(choice: str, localizers: Localizers) -> LinliSetup:
    if choice in ("auto", "app"):
        try:
            from bot.app import build_router, localized_commands
        except ImportError:
            if choice == "app":
                raise
        else:
            router = build_router()
            if router.has_command("start"):
                return LinliSetup(router, "app", localized_commands(localizers, router), seed_invitations)
            if choice == "app":
                raise SystemExit("bot.app.build_router() has no /start yet: use --router bench")
    return LinliSetup(bench_router(), "bench", None, _no_code)


async def seed_invitations(uows: UnitOfWorkFactory, people: int) -> list[str]:
    """A neighbourhood and resident invitations for everyone (an invitation takes at most MAX_USES people): the
    code for each person, in order."""
    from community.communities import add_community
    from community.roles import CommunityKind
    from community.verification import MAX_USES, create_invitation

    codes: list[str] = []
    async with uows() as uow:
        community = await add_community(uow, name="基准测试社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        remaining = people
        while remaining > 0:
            uses = min(remaining, MAX_USES)
            issued = await create_invitation(uow, actor_id=None, community_id=community.id, max_uses=uses)
            codes += [issued.code] * uses
            remaining -= uses
        await uow.commit()
    return codes


def tracked_channel(completions: Completions) -> type[TelegramChannel]:
    class TrackedChannel(TelegramChannel):
        """The real channel, telling the driver when it has finished an update."""

        async def _handle(self, event: Event) -> None:
            try:
                await super()._handle(event)
            finally:
                completions.finished(int(event.sender.chat_id))

    return TrackedChannel


async def bench_linli(n: int, per_person: int, router_choice: str) -> tuple[Result, str]:
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'linli.sqlite3'}")
        try:
            await upgrade(engine)
            uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())
            localizers = Localizers(load_catalogs())
            setup = linli_setup(router_choice, localizers)
            people = math.ceil(n / per_person)
            codes = await setup.seed(uows, people + 1)  # the warm-up person is the last one

            def steps_of(index: int) -> list[Step]:
                return script(codes[index], per_person)

            conversation = Conversation(uows, setup.router, localizers, BotInfo())
            completions = Completions()
            channel_class = tracked_channel(completions)
            async with (
                TimedFakeBotApi() as fake,
                running_bot(conversation, fake, commands=setup.commands, channel_class=channel_class),
            ):
                await warm_up(fake, completions, steps_of(people))
                return await drive(fake, completions, n, per_person, steps_of), setup.router_name
        finally:
            await engine.dispose()


# ---- the bare aiogram echo bot -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_echo_bot(fake: FakeBotApi, completions: Completions) -> AsyncIterator[None]:
    """The simplest aiogram bot: answers a message with its text, a press by answering it and editing."""
    bot = Bot(fake.token, session=AiohttpSession(api=fake.api_server()))
    dispatcher = Dispatcher()

    async def echo(message: Message) -> None:
        try:
            await message.answer(message.text or "…")
        finally:
            completions.finished(message.chat.id)

    async def press(query: CallbackQuery) -> None:
        try:
            await query.answer()
            if isinstance(query.message, Message):
                await query.message.edit_text(f"{query.data} {query.id}")
        finally:
            completions.finished(query.from_user.id)

    dispatcher.message.register(echo)
    dispatcher.callback_query.register(press)
    started = asyncio.Event()

    async def on_startup() -> None:
        started.set()

    dispatcher.startup.register(on_startup)
    polling = asyncio.create_task(dispatcher.start_polling(bot, polling_timeout=1, handle_signals=False))
    try:
        await asyncio.wait_for(started.wait(), 10)
        yield
    finally:
        await dispatcher.stop_polling()
        await polling


async def bench_echo(n: int, per_person: int) -> Result:
    steps = script("BENCH", per_person)
    completions = Completions()
    async with TimedFakeBotApi() as fake, running_echo_bot(fake, completions):
        await warm_up(fake, completions, steps)
        return await drive(fake, completions, n, per_person, lambda _: steps)


# ---- main ----------------------------------------------------------------------------------------------------


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="updates per bot (default 2000)")
    parser.add_argument("--per-person", type=int, default=5, help="updates each simulated person sends (default 5)")
    parser.add_argument(
        "--router",
        choices=("auto", "app", "bench"),
        default="auto",
        help="Linli's handlers: the app's (with seeded invitations), this file's stand-in, or auto: the app's if it "
        "has a /start",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=9,
        help="rounds of Linli then the echo bot; the figures are the medians over rounds (default 9)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.per_person < 1 or args.rounds < 1:
        parser.error("--n, --per-person and --rounds must be positive")
    logging.basicConfig(level=logging.WARNING)
    errors = ErrorCount()
    bot_log = logging.getLogger("bot")
    bot_log.addHandler(errors)
    bot_log.propagate = False  # counted, not printed: a tracebacks per failed update would drown the result
    rounds: list[tuple[Result, Result]] = []
    router_name = args.router
    try:
        # Each round times the two bots back to back, so the ratio of a round holds while the machine's speed
        # drifts; the median over rounds is the figure to quote.
        for _ in range(args.rounds):
            linli, router_name = await bench_linli(args.n, args.per_person, args.router)
            rounds.append((linli, await bench_echo(args.n, args.per_person)))
    finally:
        bot_log.removeHandler(errors)
        bot_log.propagate = True
    if errors.count:
        print(f"Linli logged {errors.count} error(s) during the run; first: {errors.first}", file=sys.stderr)
    return {
        "linli_updates_per_s": round(statistics.median(linli.per_second for linli, _ in rounds), 1),
        "echo_updates_per_s": round(statistics.median(echo.per_second for _, echo in rounds), 1),
        "ratio": round(statistics.median(linli.per_second / echo.per_second for linli, echo in rounds), 3),
        "p99_ms": round(statistics.median(linli.percentile_ms(0.99) for linli, _ in rounds), 1),
        "p50_ms": round(statistics.median(linli.percentile_ms(0.50) for linli, _ in rounds), 1),
        "echo_p99_ms": round(statistics.median(echo.percentile_ms(0.99) for _, echo in rounds), 1),
        "ratios": [round(linli.per_second / echo.per_second, 3) for linli, echo in rounds],
        "linli_errors": errors.count,
        "linli_unanswered": sum(linli.unanswered for linli, _ in rounds),
        "n": args.n,
        "people": math.ceil(args.n / args.per_person),
        "rounds": args.rounds,
        "router": router_name,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
