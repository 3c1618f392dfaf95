"""Pol.is's k-smoother (consultation/group_count.py): a live map's number of groups changes only after the new
number has been the best for several refreshes in a row."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultation.group_count import POLIS_GROUP_K_BUFFER, GroupCountState, smooth_group_count

ALL = (2, 3, 4, 5)


def shown_over(best_ks: list[int], possible: tuple[int, ...] = ALL, buffer: int = POLIS_GROUP_K_BUFFER) -> list[int]:
    state: GroupCountState | None = None
    shown = []
    for best in best_ks:
        state = smooth_group_count(state, best, possible, buffer)
        shown.append(state.shown_k)
    return shown


def test_a_new_number_of_groups_shows_on_its_fourth_refresh_in_a_row() -> None:
    assert shown_over([2, 3, 3, 3, 3, 3]) == [2, 2, 2, 2, 3, 3]


def test_a_flicker_between_two_counts_never_changes_the_map() -> None:
    assert shown_over([2, 3, 2, 3, 2, 3, 3, 2]) == [2] * 8


def test_the_first_map_shows_its_best_count() -> None:
    assert shown_over([4]) == [4]


def test_a_count_no_longer_possible_gives_way_at_once() -> None:
    state = smooth_group_count(None, 5, ALL)
    after = smooth_group_count(state, 2, (2, 3))  # fewer distinct positions now: five groups cannot be drawn
    assert after.shown_k == 2


def test_a_buffer_of_one_follows_the_best_count() -> None:
    assert shown_over([2, 3, 2, 5], buffer=1) == [2, 3, 2, 5]


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError):
        smooth_group_count(None, 6, ALL)
    with pytest.raises(ValueError):
        smooth_group_count(None, 2, ALL, buffer=0)
    with pytest.raises(ValueError):
        GroupCountState(last_k=2, last_k_count=0, shown_k=2)


@given(st.lists(st.sampled_from(ALL), min_size=1, max_size=40), st.integers(min_value=1, max_value=6))
def test_the_shown_count_changes_only_after_a_run_of_buffer_bests(best_ks: list[int], buffer: int) -> None:
    shown = shown_over(best_ks, buffer=buffer)
    assert shown[0] == best_ks[0]
    for i in range(1, len(best_ks)):
        if shown[i] != shown[i - 1]:
            run = best_ks[max(0, i - buffer + 1) : i + 1]
            assert shown[i] == best_ks[i] and len(run) == buffer and set(run) == {best_ks[i]}
