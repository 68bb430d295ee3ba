"""A widget the page moves itself (the weights-over-time slider, the Speed) tells the user's moves from
late echoes of the page's own moves (mlpdash.ui.late)."""

from __future__ import annotations

from mlpdash.ui.late import LATE_SECONDS, users_value

NOW = 100.0


def test_a_late_request_with_the_value_from_before_our_move_reads_as_our_move():
    # Play moved the slider 2 -> 3; a timer's request sent before that arrived still says 2.
    assert users_value(2, ((2,), 3, NOW), NOW + 0.5) == (3, ((2,), 3, NOW))


def test_the_browser_sending_our_value_back_confirms_it():
    assert users_value(3, ((2,), 3, NOW), NOW + 0.5) == (3, None)


def test_any_other_value_is_the_users_and_ends_the_guard():
    assert users_value(1, ((2,), 3, NOW), NOW + 0.5) == (1, None)


def test_every_value_from_before_a_run_of_moves_is_late():
    # Play stepped 0 -> 1 -> 2 -> 3 before the browser confirmed any of them.
    pending = ((0, 1, 2), 3, NOW)
    for late in (0, 1, 2):
        assert users_value(late, pending, NOW + 0.1) == (3, pending)


def test_long_after_our_move_the_old_value_is_the_users_choice():
    # A live run's new epoch moved the slider 4 -> 5; seconds later the user drags it back to 4.
    assert users_value(4, ((4,), 5, NOW), NOW + LATE_SECONDS + 0.1) == (4, None)


def test_without_a_move_of_ours_the_value_is_the_users():
    assert users_value(5, None, NOW) == (5, None)
    assert users_value(None, None, NOW) == (None, None)
