"""Widget values the page sets itself, told apart from the late requests that still carry the old ones.

Every request from a browser carries all its widgets' values as it last had them, and Streamlit applies
them to the session, calling a widget's callback when the value differs from the session's. So when the
page moves a widget itself (Play steps the epoch slider, the Speed follows the job's pace that another
page or a lesson's step set), a timer's request that left the browser before the answer to that move
arrived reads as the user moving it back: Play once ended on epoch 2 after showing 3, and a page
following a lesson set the class's run back to "a batch a second" a step after the teacher chose full
speed. `set_by_page` records such a move until the browser confirms it; `users_choice` reads the
widget's value as the user chose it.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

import streamlit as st

# How long after the page moved a widget a request may still carry the value from before: a timer's
# request in flight, a page busy redrawing (a Play step every 0.8 s; a full rerun under load ~1 s).
LATE_SECONDS = 2.0

Pending = tuple[tuple[Hashable, ...], Hashable, float]  # (values from before, the value set last, when)


def users_value(value: Hashable, set_by_us: Pending | None, now: float) -> tuple[Hashable, Pending | None]:
    """(the widget's value as the user chose it, what is still unconfirmed of the page's own moves).

    `set_by_us` is (the values the browser may still send from before, the value set last, when) until
    the browser sends that last value back; one of the older values meanwhile is a late request, not
    the user, and reads as the last value set; but only for LATE_SECONDS after that move (`now` on the
    same clock): later, the browser has long had the page's value, and a user who moves the widget
    back to where it was means it."""
    if set_by_us is None:
        return value, None
    older, latest, when = set_by_us
    if now - when > LATE_SECONDS:
        return value, None
    if value == latest:
        return value, None  # the browser has it: from now on its value is the user's
    if value in older:
        return latest, set_by_us
    return value, None  # a value never set by the page: the user's


def _pending_key(key: str) -> str:
    return f"{key}__set_by_page"


def users_choice(key: str) -> Hashable:
    """Widget `key`'s value as the user chose it: a late request's value from before a move of the
    page's reads as that move (and the widget is put back to it)."""
    chosen, pending = users_value(st.session_state.get(key), st.session_state.get(_pending_key(key)),
                                  time.monotonic())
    st.session_state[_pending_key(key)] = pending
    if chosen != st.session_state.get(key):
        st.session_state[key] = chosen
    return chosen


def set_by_page(key: str, value: Hashable) -> None:
    """Set widget `key` to `value` (before it is drawn in this run, or from a callback), remembering
    the value the browser shows until it confirms the move."""
    before = st.session_state.get(key)
    st.session_state[key] = value
    if value == before:
        return
    pending = st.session_state.get(_pending_key(key))
    older = (*pending[0], pending[1]) if pending else (before,)
    st.session_state[_pending_key(key)] = (tuple(v for v in older if v != value), value, time.monotonic())
