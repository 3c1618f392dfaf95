"""A delivery sender in a process of its own, for the crash tests (tests/test_delivery_crash.py):

    python -m tests.support.sender_process DATABASE_URL API_BASE TOKEN [--rate 100] [--lease 2]

It is what `linli deliver` runs, with a short lease so a test that kills it (SIGKILL) need not wait the usual
half minute before another sender takes its rows over. Prints "ready" once it runs; SIGTERM stops it cleanly."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from bot.channels.telegram_delivery import CHANNEL, TelegramTransport
from bot.delivery.sender import Sender, SenderOptions
from community.clock import SystemClock
from community.db import create_engine, session_factory
from community.keys import SiteKey
from community.unit_of_work import UnitOfWorkFactory


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("api_base")
    parser.add_argument("token")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--lease", type=float, default=2.0)
    args = parser.parse_args(argv)
    engine = create_engine(args.database_url)
    uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())
    transport = TelegramTransport(args.token, api_base=args.api_base)
    sender = Sender(uows, {CHANNEL: transport}, SenderOptions(rate=args.rate, lease=args.lease))
    stopping: list[asyncio.Task[None]] = []
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: stopping.append(asyncio.ensure_future(sender.stop()))
    )
    running = asyncio.ensure_future(sender.run())
    print("ready", flush=True)
    try:
        await running
        if stopping:
            await asyncio.gather(*stopping)
    finally:
        await transport.aclose()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
