"""Which model and which input the page is about: one place for every panel and view.

The model is the saved run picked under Runs, else the current job's live model (else, for drawings,
the newest saved run). The input is the current drawing as the model sees it (28x28); a view that
lets a person pick a test digit sets it here too. Panels read both through these functions, never
through the session keys, so that a new view finds them where the others do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

RUN_KEY = "view_run"
INPUT_KEY = "focus_input"


@dataclass(frozen=True)
class FocusInput:
    """An input the views explain: the model's 28x28 float image and where it came from."""

    image: np.ndarray
    origin: str  # "your drawing", "test digit 123", ...


def picked_run() -> Path | None:
    """The saved run the panels show instead of the current job, or None."""
    picked = st.session_state.get(RUN_KEY)
    return Path(picked) if picked else None


def pick_run(path: Path | None) -> None:
    """Show `path`'s run in every panel (None: back to the current job)."""
    st.session_state[RUN_KEY] = str(path) if path is not None else None


def current_input() -> FocusInput | None:
    return st.session_state.get(INPUT_KEY)


def set_input(image: np.ndarray | None, origin: str = "your drawing") -> None:
    st.session_state[INPUT_KEY] = None if image is None else FocusInput(np.asarray(image), origin)
