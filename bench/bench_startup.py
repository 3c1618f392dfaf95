"""Start-up time and idle footprint of the `linli` command (issue 10, "Start-up and footprint").

Measured, each in a fresh process, as an operator starts it (the `linli` script next to this Python, else
``python -m bot.cli``), with the project first on PYTHONPATH so this checkout is what runs:

- ``help_seconds``: wall time of `linli --help`, the median of ``--runs`` runs (default 7), after one unmeasured
  run that warms the file cache. Target: under 0.5 s.
- ``idle_run_rss_mb``: resident memory (VmRSS in /proc/PID/status) of `linli run` on the console channel, with a
  fresh SQLite database in a temporary directory, once it has printed that it is running and then sat idle for
  ``--settle`` seconds (default 3) reading its (open, empty) standard input: migrated, the demo seeded, the
  scheduler and the delivery engine started, no export or opinion map made. Target: under 150 MB.
- ``idle_run_hwm_mb``: the same process's peak (VmHWM): start-up itself may go higher than where it settles.
- ``telegram_idle_rss_mb`` / ``telegram_idle_hwm_mb``: the same for `linli run` in Telegram mode, against the fake
  Bot API (tests/support/fake_bot_api.py) in a process of its own on 127.0.0.1, after it printed that it is
  polling. Left out with ``--no-telegram``.

One JSON line on stdout. Run:  make bench-startup  (or .venv/bin/python bench/bench_startup.py [--runs 7])
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 120.0  # seconds a `linli run` may take to say it is running (migrations on a cold disk)
CONSOLE_READY = "Linli is running in the console channel"
TELEGRAM_READY = "Linli is running on Telegram"
FAKE_TOKEN = "123456:TEST"


def linli_command() -> list[str]:
    """The installed `linli` script beside this interpreter, as an operator runs it; else the module."""
    script = Path(sys.executable).with_name("linli")
    if script.is_file():
        return [str(script)]
    found = shutil.which("linli")
    return [found] if found else [sys.executable, "-m", "bot.cli"]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["LINLI_LANGUAGE"] = "en"
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("LINLI_DATABASE_URL", None)
    env.update(extra)
    return env


def help_seconds(runs: int) -> float:
    command = [*linli_command(), "--help"]
    env = child_env({})
    subprocess.run(command, env=env, check=True, capture_output=True)  # warms the file cache, not counted
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def wait_for_line(process: subprocess.Popen[str], marker: str) -> None:
    """Read the process's stdout until a line holds marker; its stderr goes to a file, so it never blocks."""
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if marker in line:
            return
        if not line and process.poll() is not None:
            raise RuntimeError(f"`linli run` ended (exit {process.returncode}) before saying {marker!r}")
    raise RuntimeError(f"`linli run` did not say {marker!r} within {READY_TIMEOUT} s")


@contextlib.contextmanager
def running(command: Sequence[str], env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=log.parent
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()  # Telegram mode stops on SIGTERM; the console on the end of its input as well
                assert process.stdin is not None
                with contextlib.suppress(OSError):
                    process.stdin.close()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def idle_memory(extra_env: Mapping[str, str], marker: str, settle: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="linli-bench-startup-") as tmp:
        env = child_env({"LINLI_DATA_DIR": str(Path(tmp) / "data"), **extra_env})
        with running([*linli_command(), "run"], env, Path(tmp) / "stderr.log") as process:
            try:
                wait_for_line(process, marker)
            except RuntimeError as err:
                raise RuntimeError(f"{err}\n{(Path(tmp) / 'stderr.log').read_text()}") from err
            time.sleep(settle)
            return memory_mb(process.pid)


@contextlib.contextmanager
def fake_bot_api() -> Iterator[str]:
    """The fake Bot API in a process of its own; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_bot_api", "--port", "0", "--token", FAKE_TOKEN],
        cwd=ROOT,
        env=child_env({}),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs of `linli --help` to take the median of (7)")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before reading memory (3)")
    parser.add_argument("--no-telegram", action="store_true", help="skip the Telegram mode's footprint")
    args = parser.parse_args(argv)

    result: dict[str, float] = {"help_seconds": round(help_seconds(args.runs), 3)}
    rss, hwm = idle_memory({}, CONSOLE_READY, args.settle)
    result["idle_run_rss_mb"] = round(rss, 1)
    result["idle_run_hwm_mb"] = round(hwm, 1)
    if not args.no_telegram:
        with fake_bot_api() as base_url:
            telegram = {
                "TELEGRAM_BOT_TOKEN": FAKE_TOKEN,
                "TELEGRAM_API_BASE": base_url,
                "LINLI_POLLING_TIMEOUT": "1",
            }
            rss, hwm = idle_memory(telegram, TELEGRAM_READY, args.settle)
        result["telegram_idle_rss_mb"] = round(rss, 1)
        result["telegram_idle_hwm_mb"] = round(hwm, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
