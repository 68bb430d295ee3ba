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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import streamlit as st

from mlpdash.focus import Focus
from mlpdash.jobs import JobManager
from mlpdash.runs import RUNS_ENV_VAR
from mlpdash.server import Server

if TYPE_CHECKING:  # for the hint only: importing the figures (Plotly, pandas) here would slow the first paint
    from mlpdash.figures import Picture

REFRESH_SECONDS = 1.0
# How often a page open on a view that follows epochs looks whether one ended (a look compares a few
# numbers; the page reruns when they changed). Four looks a second named the epoch about 0.3 s sooner,
# but each page then cost 0.1 core more in the server and 0.12 in Chromium (measured with Units open on
# a full-MNIST run): five pages on Mistakes, the view a page opens on, would cost about a core of two.
EPOCH_WATCH_SECONDS = 1.0
# The characters that start Markdown syntax anywhere in a line (checked in Chromium against Streamlit
# 1.67's renderer): links, images and footnotes ([ ]), emphasis and strikethrough (* _ ~), code (`),
# HTML and autolinks (<), entities (&), LaTeX ($), colour directives, emoji and icons (:), and the
# backslash itself. Others (. - + # ! ( ) |) mean something only where a line starts; see _BLOCK.
_MARKDOWN = re.compile(r"([\\`*_\[\]<~:$&])")
# Line breaks and runs of blanks become one space (as the page shows them anyway), so that the text
# cannot open a block of its own: a heading, a list, a quote, a table, an indented code block...
_BLANKS = re.compile(r"[ \t\r\n\f\v]+")
# ...except where it starts the Markdown: there a heading, quote, list or thematic break marker is
# escaped too.
_BLOCK = re.compile(r"^( ?)([#>+\-=|]|\d{1,9}(?=[.)]))")
# Some links and icons are made after the escapes are read, from the plain text: GFM's bare autolinks
# (http://, www., name@host), and Streamlit's `:material/...:` icons (replaced in the source, backslash
# or not). An invisible word joiner after each colon and at-sign, and between "www" and its dot,
# breaks every one of those patterns and leaves the text as it reads.
WORD_JOINER = "\u2060"
_JOINED = re.compile(r"(\\:|@|(?i:www)(?=\.))")
LOG = logging.getLogger("mlpdash")


@st.cache_resource(show_spinner=False)
def keep_keras_state_between_reruns() -> bool:
    """Stop Streamlit from calling `keras.backend.clear_session()` after every script run; app.py
    calls this first thing, and it runs once a process (a cached resource). Whether it could.

    Streamlit 1.67 does that (script_runner._clean_problem_modules) to free models that scripts
    build on each run. Here a job trains in a background thread while fragments rerun every second,
    and each clear_session throws away TensorFlow's eager kernel cache and Keras' global state
    under the running `fit` and forces a full garbage collection: with a tab open, training ran at
    about 300 samples/s instead of 9,000. Our models live in the job and the store, never in a
    script run, so there is nothing for that cleanup to do.

    It replaces a private function of Streamlit's: a version without it is told in the log (once a
    process), since training with a tab open could then be slow again.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if not hasattr(script_runner, "_clean_problem_modules"):
        LOG.warning("this Streamlit (%s) has no script_runner._clean_problem_modules to replace: if it "
                    "still clears Keras' state after every rerun, training with a tab open is slow",
                    st.__version__)
        return False
    script_runner._clean_problem_modules = _no_cleanup
    return True


def _no_cleanup() -> None:
    """Our models live in the job and the store, never in a script run: nothing to clean up."""


@st.cache_resource(show_spinner=False)
def _server_for(runs_dir: str | None, cluster: str) -> Server:
    return Server.open(runs_dir, cluster=cluster)


def load_engine_after_first_view() -> None:
    """Import TensorFlow (seconds) once the page has been sent, so that neither the first view nor
    the first Start waits for it. Called last in the script run; in the same thread on purpose: a
    warm-up thread importing alongside the script raced it on half-imported modules (pandas)."""
    importlib.import_module("mlpdash.training")


def get_server() -> Server:
    """The server-wide job manager, sweep queue and store: every tab and every rerun share them."""
    from mlpdash.cluster import CLUSTER_ENV_VAR

    return _server_for(os.environ.get(RUNS_ENV_VAR), os.environ.get(CLUSTER_ENV_VAR, ""))


def job_active(source: JobManager | Focus) -> bool:
    """Whether a job is running (either knows)."""
    return source.active()


def refresh_every(active: bool, factor: float = 1) -> float | None:
    """Fragments poll only while a job is active; an idle page costs nothing."""
    return REFRESH_SECONDS * factor if active else None


def rerun_if_changed(source: JobManager | Focus, was_active: bool) -> None:
    """Rerun the whole page when a job started or ended since it was drawn: when one ends, every
    panel shows the result and the timers stop; when one was started from another tab, this tab's
    timers start."""
    if was_active != job_active(source):
        st.rerun(scope="app")


def follow_epochs(focus: Focus) -> None:
    """Rerun the page when the job in focus ends an epoch (or ends), for the open view that shows
    what an epoch changes (Units, Mistakes by epoch, Weights over time): it names the new epoch about
    a second after its end, in every page open on the run. The watch is one small fragment that
    compares a few numbers once a second; the view itself is not redrawn between epochs, so a page
    does not spend training's CPU redrawing what did not change."""
    drawn = focus.settled_epoch()
    if drawn is None:
        return

    @st.fragment(run_every=EPOCH_WATCH_SECONDS)
    def watch_epochs() -> None:
        if focus.now().settled_epoch() != drawn:
            st.rerun(scope="app")

    watch_epochs()


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


def plain(text: object) -> str:
    """Text from a file or a user (a run's name or folder, a data source, an error quoting either)
    for Streamlit's Markdown, shown as written on one line: no link, image, styling, HTML, LaTeX,
    emoji or icon can come from it. Every such text goes through here before it reaches Markdown
    (st.markdown, captions, alerts, toasts, widget, metric, expander and popover labels, st.table
    cells); selectbox and multiselect options are plain text already and must not be escaped."""
    escaped = _MARKDOWN.sub(r"\\\1", _BLANKS.sub(" ", str(text)))
    escaped = _BLOCK.sub(_escape_block_start, escaped)
    return _JOINED.sub(lambda found: found.group(0) + WORD_JOINER, escaped)


def pictures(shown: Sequence[Picture], key: str, title: str) -> None:
    """Pictures side by side under a title, each over its caption, all at the widest picture's
    width, in a container keyed `key`; on a narrow screen they wrap onto more rows. None: nothing."""
    if not shown:
        return
    with st.container(key=key):
        st.markdown(f"**{plain(title)}**")
        # A set width: left to "content", a picture is stretched to its caption's width. PNG: Streamlit
        # would send a grey array as a JPEG, larger for blocks of flat pixels.
        st.image([p.image for p in shown], caption=[plain(p.caption) for p in shown],
                 width=max(p.image.shape[1] for p in shown), output_format="PNG")


def _escape_block_start(found: re.Match) -> str:
    space, marker = found.groups()
    # A number is an ordered list's marker only with the dot or parenthesis after it: escape that.
    return f"{space}{marker}\\" if marker[0].isdigit() else f"{space}\\{marker}"
