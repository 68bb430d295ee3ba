"""The Streamlit panels of the dashboard: the only Streamlit code in the package.

Each `*_ui` function draws one panel and returns plain values; what a panel shows is computed by the
headless modules (views, figures, preprocess). Panels that follow a running job are fragments that
rerun on a timer only while a job is active, and trigger one full rerun when it ends.
"""

from __future__ import annotations

import importlib
import os
import threading

import streamlit as st

from mlpdash.jobs import JobManager
from mlpdash.runs import RUNS_ENV_VAR

REFRESH_SECONDS = 1.0


@st.cache_resource(show_spinner=False)
def _manager_for(runs_dir: str | None) -> JobManager:
    # TensorFlow takes seconds to import: load it behind the first view, not before it and not
    # after the first Start press. (The thread only imports; it touches no Streamlit API.)
    threading.Thread(target=importlib.import_module, args=("mlpdash.training",), daemon=True,
                     name="mlpdash-warm-up").start()
    return JobManager(runs_dir)


def get_manager() -> JobManager:
    """The server-wide job manager: every tab and every rerun share it."""
    return _manager_for(os.environ.get(RUNS_ENV_VAR))


def job_active(manager: JobManager) -> bool:
    job = manager.job
    return job is not None and job.snapshot().status.active


def refresh_every(active: bool, factor: float = 1) -> float | None:
    """Fragments poll only while a job is active; an idle page costs nothing."""
    return REFRESH_SECONDS * factor if active else None


def rerun_if_changed(manager: JobManager, was_active: bool) -> None:
    """Rerun the whole page when a job started or ended since it was drawn: when one ends, every
    panel shows the result and the timers stop; when one was started from another tab, this tab's
    timers start."""
    if was_active != job_active(manager):
        st.rerun(scope="app")
