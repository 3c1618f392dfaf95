"""The pacer keeps Telegram's limits, checked with a fake monotonic clock: no test here waits.

The sender tests (test_delivery.py) run the real thing against the fake Bot API at 200 messages/s to keep the
suite fast; that Telegram's own 30/s is kept is shown here, by stepping time through 20 seconds of sending."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.delivery.pacing import CHAT_INTERVAL, GROUP_INTERVAL, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send_all(pacer: Pacer, clock: Clock, count: int, *, lateness: float = 0.0) -> list[float]:
    """Send as fast as the pacer allows, the way the sender does: ask, sleep (oversleeping by up to lateness, as
    a busy event loop does), send. Returns the send times."""
    rng = random.Random(7)
    times: list[float] = []
    while len(times) < count:
        delay = pacer.delay()
        if delay > 0:
            clock.now += delay + rng.uniform(0, lateness)
            continue
        pacer.take()
        times.append(clock.now)
    return times


def most_in_any_window(times: list[float], window: float) -> int:
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize("lateness", [0.0, 0.01])
def test_thirty_a_second_spread_evenly(lateness: float) -> None:
    clock = Clock()
    pacer = Pacer(30, clock=clock)
    times = send_all(pacer, clock, 600, lateness=lateness)
    # Never more than the rate plus the small burst in any second, and never two messages much closer than the
    # even spacing allows: no clumps.
    assert most_in_any_window(times, 1.0) <= 31
    if not lateness:
        assert min(b - a for a, b in itertools.pairwise(times)) == pytest.approx(1 / 30)
    # And it does send at the rate: 600 messages in about 20 s, not much longer.
    assert times[-1] - times[0] == pytest.approx(599 / 30, rel=0.02 if not lateness else 0.05)


def test_a_late_wake_up_is_made_up_for_within_the_small_burst() -> None:
    clock = Clock()
    pacer = Pacer(3000, clock=clock)  # 50 ms of burst: 150 messages
    send_all(pacer, clock, 10)
    clock.now += 1.0  # the loop was busy for a whole second
    burst = 0
    while pacer.delay() == 0:
        pacer.take()
        burst += 1
    assert burst == 150


def test_one_message_a_chat_interval_and_groups_slower() -> None:
    clock = Clock()
    pacer = Pacer(30, clock=clock)
    assert pacer.chat_free_at("alice") <= clock.now
    pacer.note_chat("alice", group=False)
    pacer.note_chat("group", group=True)
    assert pacer.chat_free_at("alice") == pytest.approx(clock.now + CHAT_INTERVAL)
    assert pacer.chat_free_at("group") == pytest.approx(clock.now + GROUP_INTERVAL)
    assert CHAT_INTERVAL > 1.0  # Telegram: one a second per chat
    assert 60 / GROUP_INTERVAL < 20  # Telegram: twenty a minute per group
    pacer.note_chat("alice", group=False, messages=2)  # a long text in two parts
    assert pacer.chat_free_at("alice") == pytest.approx(clock.now + 2 * CHAT_INTERVAL)


def test_a_pause_stops_everything_and_ends_without_a_burst() -> None:
    clock = Clock()
    pacer = Pacer(30, clock=clock)
    send_all(pacer, clock, 5)
    pacer.pause_until(clock.now + 7)
    assert pacer.delay() == pytest.approx(7)
    pacer.pause_until(clock.now + 3)  # an earlier end does not shorten it
    assert pacer.delay() == pytest.approx(7)
    clock.now += 7
    assert pacer.delay() == 0
    pacer.take()
    assert pacer.delay() == pytest.approx(1 / 30)


def test_paid_broadcasts_go_up_to_a_thousand_a_second() -> None:
    clock = Clock()
    pacer = Pacer(1000, clock=clock)
    times = send_all(pacer, clock, 5000)
    assert most_in_any_window(times, 1.0) <= 1000 + pacer.burst
    assert times[-1] - times[0] == pytest.approx(4999 / 1000, rel=0.02)


def test_a_slow_sender_sends_a_tick_of_three_at_once_and_still_thirty_a_second() -> None:
    """What the sender does below 100 a second: wait until three may go, send the three, so the event loop wakes
    once per three messages; the per-second limit holds all the same."""
    clock = Clock()
    pacer = Pacer(30, burst=3, clock=clock)
    times: list[float] = []
    wakes = 0
    while len(times) < 600:
        delay = pacer.delay(3)
        if delay > 0:
            clock.now += delay
            wakes += 1
            continue
        for _ in range(3):
            assert pacer.delay() == 0
            pacer.take()
            times.append(clock.now)
    assert most_in_any_window(times, 1.0) <= 31
    assert wakes <= 600 // 3 + 1
    assert times[-1] - times[0] == pytest.approx(597 / 30, rel=0.02)
    # One message asked for alone still goes as soon as a token is there.
    assert pacer.delay(1) == pytest.approx(1 / 30)
