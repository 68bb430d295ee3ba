"""The Streamlit panels of the dashboard: the only Streamlit code in the package.

Each `*_ui` function draws one panel and returns plain values; what a panel shows is computed by the
headless modules (views, figures, preprocess). Panels that follow a running job are fragments that
rerun on a timer only while a job is active, and trigger one full rerun when it ends.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from mlpdash.jobs import JobManager
from mlpdash.runs import RUNS_ENV_VAR

REFRESH_SECONDS = 1.0
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$])")
LOG = logging.getLogger("mlpdash")


def _keep_keras_state_between_reruns() -> None:
    """Stop Streamlit from calling `keras.backend.clear_session()` after every script run.

    Streamlit 1.67 does that (script_runner._clean_problem_modules) to free models that scripts
    build on each run. Here a job trains in a background thread while fragments rerun every second,
    and each clear_session throws away TensorFlow's eager kernel cache and Keras' global state
    under the running `fit` and forces a full garbage collection: with a tab open, training ran at
    about 300 samples/s instead of 9,000. Our models live in the job and the run caches, never in a
    script run, so there is nothing for that cleanup to do.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = lambda: None


_keep_keras_state_between_reruns()


@st.cache_resource(show_spinner=False)
def _manager_for(runs_dir: str | None) -> JobManager:
    return JobManager(runs_dir)


def load_engine_after_first_view() -> None:
    """Import TensorFlow (seconds) once the page has been sent, so that neither the first view nor
    the first Start waits for it. Called last in the script run; in the same thread on purpose: a
    warm-up thread importing alongside the script raced it on half-imported modules (pandas)."""
    importlib.import_module("mlpdash.training")


def get_manager() -> JobManager:
    """The server-wide job manager: every tab and every rerun share it."""
    return _manager_for(os.environ.get(RUNS_ENV_VAR))


def job_active(manager: JobManager) -> bool:
    return manager.active()


def refresh_every(active: bool, factor: float = 1) -> float | None:
    """Fragments poll only while a job is active; an idle page costs nothing."""
    return REFRESH_SECONDS * factor if active else None


def rerun_if_changed(manager: JobManager, was_active: bool) -> None:
    """Rerun the whole page when a job started or ended since it was drawn: when one ends, every
    panel shows the result and the timers stop; when one was started from another tab, this tab's
    timers start."""
    if was_active != job_active(manager):
        st.rerun(scope="app")


@contextmanager
def guarded(panel: str) -> Iterator[None]:
    """Run a panel so that its failure stays in it: a short message with an id in the page, the
    traceback only in the server log under that id. Streamlit's own rerun and stop requests are
    BaseExceptions and pass through."""
    try:
        yield
    except Exception:
        error_id = secrets.token_hex(4)
        LOG.exception("the %s panel failed (error id %s)", panel, error_id)
        st.error(f"The {panel} panel ran into a problem and was skipped; the rest of the page works. "
                 f"Error id `{error_id}` (the details are in the server's log).", icon=":material/error:")


def plain(text: str) -> str:
    """A user's own text (a run's name, a sweep's) shown in Markdown as written: no link, image or
    styling can come from it."""
    return _MARKDOWN.sub(r"\\\1", text)
