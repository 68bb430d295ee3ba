"""How the page caches what it derives: one style, `derived`, for every value computed from a model,
a run, the data or the drawings (a layer's summary, a figure, a map's raster, an attack, the drawings
as the model sees them).

The rule:
- `derived` is `st.cache_resource`: one copy on the server, shared by every session and every rerun,
  and handed out as it is, never pickled or copied (`st.cache_data` copies a value on every hit: a
  layer's inputs for the test split are 28 MB). So a cached value is read-only: whoever needs to
  change one copies it first. The one exception is a memory that fills as the page goes (the
  drawings prepared, a model's answers by drawing): the cache holds the dict, which only grows, and
  its lock where sessions could race.
- The key says what the value is derived from, in hashable arguments: a model's or a run's `state`,
  an epoch, a mode, a file's identity. The big inputs themselves (a network, images, a timeline) are
  passed with a leading underscore, which Streamlit does not hash.
- Every cache is bounded (`max_entries`); one that asks the outside world (a data source's probe)
  expires too (`ttl`).
- Session state holds a session's choices (a picked run, a widget's value), never a derived value;
  the data, models and runs loaded for the server are in its store (`mlpdash.store`), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

F = TypeVar("F", bound=Callable[..., Any])


def derived(max_entries: int, spinner: bool | str = False, ttl: float | None = None) -> Callable[[F], F]:
    """Decorate a function whose result is a derived value (see the module's rule)."""
    return st.cache_resource(max_entries=max_entries, show_spinner=spinner, ttl=ttl)
