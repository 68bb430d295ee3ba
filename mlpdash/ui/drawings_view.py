"""Your drawings: the drawings kept with Save as… under the canvas, as a labelled dataset — a gallery
by digit (relabel, delete), the model in focus evaluated on them, a fine-tuned model as a new run,
and the folder exported or imported as a zip.

The store is `mlpdash.drawings` (with the drawings prepared for the model once, kept in the folder),
evaluation `drawings.evaluate` on the model's arrays, the gallery's pages `drawings.gallery_page`,
fine-tuning `mlpdash.finetune`; this module lays them out. A folder holds up to 10,000 drawings: the gallery shows a page of them at a time, the
misread ones the first few hundred, and the prepared drawings and the model's answers are read once
per change of the folder, so that every rerun stays well under a second (`bench --drawings`).

The tab follows the folder while it is open: a save in this page reruns the page (`drawing.py`), and
a change made elsewhere (another page, the CLI) is seen by a small fragment that looks at the labels
file's stamp twice a second and reruns the page only when it changed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import streamlit as st

from mlpdash import figures
from mlpdash.drawings import (
    LABELS,
    MAX_DRAWINGS,
    Drawing,
    DrawingsError,
    Grid,
    Identity,
    Prepared,
    by_digit,
    delete,
    drawings_root,
    evaluate,
    export_zip,
    forget_gone,
    gallery_page,
    identities,
    import_zip,
    listing,
    load,
    misread_grid,
    prepared,
    relabel,
    tally,
)
from mlpdash.files import UnsafeFileError
from mlpdash.finetune import REPLAY_CHOICES, FinetuneSettings, read_report, report_text
from mlpdash.focus import Focus
from mlpdash.jobs import JobBusyError
from mlpdash.server import Server
from mlpdash.runs import RunError
from mlpdash.ui import choices, plain
from mlpdash.ui.access import may_control
from mlpdash.ui.cache import derived
from mlpdash.ui.style import CHART_CONFIG
from mlpdash.run_view import page_count

SELECTED_KEY = "drawings_selected"
PAGE_KEY = "drawings_page"
ALL = "all digits"
GALLERY_COLUMNS = 10  # tiles of one size, whether 3 drawings are kept or 300
# Drawings a gallery page shows: a grid of all 10,000 took 2.5 s to build and 31 MB to send.
GALLERY_PAGE = 200
MISREAD_SHOWN = 200
FORGET_AFTER = 1000  # drawings gone from the folder that the server's memory of it may keep
# How often an open tab looks at the folder's stamp: a change made in another page shows within a
# second (this, plus one rerun of the page); a look costs a stat.
FOLLOW_SECONDS = 0.5


def drawings_ui(focus: Focus, server: Server) -> None:
    root = drawings_root()
    _follow_folder(str(root), folder_stamp(root))  # before the listing: a change in between is seen
    with st.container(key="drawings"):
        try:
            kept = listing(root)
        except (DrawingsError, UnsafeFileError) as err:
            st.error(f"The drawings folder {plain(root)} cannot be read: {plain(err)}", icon=":material/warning:")
            _import_export(root, [])
            return
        if not kept:
            st.info(f"No drawings kept yet. Draw a digit on the canvas and press the digit you meant under "
                    f"**Save as…**: they are kept in {plain(root)}, to test the model on and to teach it your "
                    "hand.", icon=":material/draw:")
            _import_export(root, kept)
            return
        made_of = identities(root, kept)
        ready = _prepared(str(root), hash(made_of), kept, made_of)
        st.caption(f"{len(kept)} drawings in {plain(root)} — " + tally(kept))
        if len(kept) > MAX_DRAWINGS:
            st.warning(f"This folder holds {len(kept):,} drawings, more than the {MAX_DRAWINGS:,} a folder keeps: "
                       "Save as… and imports are refused until some are deleted (export them first to keep "
                       "them, and start a new folder).", icon=":material/warning:")
        gallery_col, selected_col = st.columns([3, 2], gap="large")
        with gallery_col:
            _gallery(kept, ready)
        with selected_col:
            _selected(root, kept)
        _evaluate(focus, root, kept, ready)
        _finetune(focus, server, root)
        _import_export(root, kept)


def folder_stamp(root: Path) -> tuple[int, int, int] | None:
    """What changes whenever the folder's drawings do: its labels file, which every save, relabel,
    delete and import rewrites (a new file put in place: a new inode); None while there is none."""
    try:
        found = os.stat(root / LABELS)
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


@st.fragment(run_every=FOLLOW_SECONDS)
def _follow_folder(root: str, seen: tuple[int, int, int] | None) -> None:
    """Rerun the page when the folder changed since the tab was drawn (`seen`); draws nothing. It
    runs only while the tab is open (a closed tab does not call it, which stops its timer)."""
    if folder_stamp(Path(root)) != seen:
        st.rerun(scope="app")


# One copy for every session (mlpdash.ui.cache): what a folder's drawings become does not depend on who
# looks. Keyed by what each drawing was made from (a relabel changes nothing of it; a save, delete or
# import does).
@derived(max_entries=2, spinner="Preparing the drawings for the model…")
def _prepared(root: str, key: int, _kept: list[Drawing], _made_of: tuple[Identity, ...]) -> Prepared:
    return _prepare(Path(root), _kept, _made_of)


def _prepare(root: Path, kept: list[Drawing], made_of: tuple[Identity, ...] | None = None) -> Prepared:
    """`drawings.prepared` with the server's memory of the folder: a drawing saved costs its own
    preparation, not a read of them all. One session at a time changes that memory."""
    known, lock = _known(str(root))
    with lock:
        if len(known) > len(kept) + FORGET_AFTER:  # drawings deleted since: forget them
            made_of = made_of or identities(root, kept)
            forget_gone(known, made_of, FORGET_AFTER)
        return prepared(root, kept, known, made_of)


@derived(max_entries=4)
def _known(root: str) -> tuple[dict, threading.Lock]:
    """The server's memory of a folder's prepared drawings (identity -> (digit, inked)), kept across
    changes of the folder, with the lock of its changes."""
    return {}, threading.Lock()


def _grid_figure(grid: Grid, **options):
    return figures.digits_grid_figure(grid.images, grid.ids, grid.hover, grid.title, short=grid.short, **options)


def _gallery(kept: list[Drawing], ready: Prepared) -> None:
    # Onto a second line in a narrow column: in a column, Streamlit keeps a button group on one line
    # that scrolls, and the filter was cut after "6".
    shown_digit = st.pills("Show", [ALL, *map(str, range(10))], default=ALL, key="drawings_filter", wrap=True)
    shown = by_digit(kept, None if shown_digit in (None, ALL) else int(shown_digit))
    if not shown:
        st.caption(f"No {shown_digit} kept yet.")
        return
    page = _page(len(shown))
    fig = _grid_figure(gallery_page(kept, ready, shown, page, GALLERY_PAGE), columns=GALLERY_COLUMNS,
                       hint="click: select it")
    with st.container(key="drawings_gallery_box"):  # on a phone it scrolls sideways (style.py)
        st.plotly_chart(fig, key="drawings_gallery", theme=None, on_select=lambda: _select(kept),
                        selection_mode=("points",), config=CHART_CONFIG)
    st.caption("Each drawing as the model sees it (28×28, prepared as the canvas's are), with the digit it "
               "was saved as. Click one to relabel, delete or explain it.")


def _page(count: int) -> int:
    """The gallery page chosen (from 1), with a page picker when one page cannot show them all."""
    pages = page_count(count, GALLERY_PAGE)
    if pages == 1:
        return 1
    if not 1 <= st.session_state.get(PAGE_KEY, 1) <= pages:  # fewer drawings than when it was picked
        st.session_state[PAGE_KEY] = 1
    return int(st.number_input(f"Page (of {pages}, {GALLERY_PAGE} drawings each)", 1, pages, key=PAGE_KEY))


def _select(kept: list[Drawing]) -> None:
    picked = choices.clicked("drawings_gallery")
    if picked and 0 <= picked[0] < len(kept):
        st.session_state[SELECTED_KEY] = kept[picked[0]].file


def _selected(root, kept: list[Drawing]) -> None:
    by_file = {d.file: d for d in kept}
    drawing = by_file.get(st.session_state.get(SELECTED_KEY))
    if drawing is None:
        st.info("Click a drawing to relabel it, delete it or see it inside the model.", icon=":material/touch_app:")
        return
    allowed = may_control()
    st.markdown(f"**{plain(drawing.file)}**, saved as a **{drawing.label}**")
    try:
        st.image(load(root, drawing), width=140, clamp=True)
    except (DrawingsError, UnsafeFileError) as err:
        st.error(f"It cannot be read: {plain(err)}", icon=":material/warning:")
    label_col, apply_col = st.columns([2, 1], vertical_alignment="bottom")
    label = label_col.selectbox("Relabel as", range(10), index=drawing.label, key=f"drawings_label_{drawing.file}",
                                disabled=not allowed)
    if apply_col.button("Relabel", key="drawings_relabel", disabled=not allowed or label == drawing.label):
        _change(lambda: relabel(root, drawing.file, int(label)), f"{plain(drawing.file)} is now a {label}")
    with st.container(horizontal=True):
        st.button("Inside a prediction", key="drawings_explain", icon=":material/open_in_new:",
                  on_click=choices.explain_saved_drawing, args=(drawing.file,))
        with st.popover("Delete…", icon=":material/delete:", disabled=not allowed):
            st.markdown("Delete this drawing for good? (Export the folder first to keep a copy.)")
            if st.button("Delete", key="drawings_delete", type="primary"):
                _change(lambda: delete(root, drawing.file), f"{plain(drawing.file)} deleted")
    choices.follow_tab_change()


def _change(action, done: str) -> None:
    try:
        action()
    except (DrawingsError, OSError) as err:
        st.error(f"Not changed: {plain(err)}", icon=":material/warning:")
        return
    st.session_state.pop(choices.SAVED_KEY, None)
    st.toast(done, icon=":material/check:")
    st.rerun()


# --- evaluating the model on them -------------------------------------------------------------------


def _evaluate(focus: Focus, root: Path, kept: list[Drawing], ready: Prepared) -> None:
    st.markdown("#### How the model reads them")
    model = choices.model(focus, "That run's model cannot be evaluated",
                        "Train a model first: the drawings are read by the current model or the run picked "
                        "under Runs & comparison.")
    if model is None:
        return
    if not ready.inked.any():
        st.info("None of the drawings has ink.", icon=":material/info:")
        return
    # A saved model's answers are remembered by drawing, for every session: a rerun answers only the
    # drawings new since. A live model changes with every batch: it answers them all.
    live = focus.changing()
    result = evaluate(root, model.network.logits, kept, ready, None if live else _answered(model.state))
    inked = int(ready.inked.sum())
    st.caption(f"{plain(model.title)}: **{result.accuracy:.1%}** of {inked} drawings read right"
               + (f" ({len(kept) - inked} without ink left out)" if inked < len(kept) else ""))
    matrix_col, misread_col = st.columns([2, 3], gap="large")
    matrix_col.plotly_chart(figures.confusion_figure(result.confusion), key="drawings_confusion",
                            theme=None, config=CHART_CONFIG)
    with misread_col:
        if not result.misread:
            st.success("Every drawing is read right.", icon=":material/check:")
            return
        fig = _grid_figure(misread_grid(kept, ready, result, MISREAD_SHOWN))
        st.plotly_chart(fig, key="drawings_misread", theme=None, on_select=lambda: _explain_clicked(kept),
                        selection_mode=("points",), config=CHART_CONFIG)
        st.caption("Over each: the digit it was saved as → the model's answer. Click one to see why, in "
                   "Inside a prediction.")
        choices.follow_tab_change()


@derived(max_entries=4)
def _answered(state: tuple) -> dict:
    """A model's answers by drawing (`drawings.remembered_answers`), for every session; `state`
    changes with the model (another run, a new epoch)."""
    return {}


def _explain_clicked(kept: list[Drawing]) -> None:
    picked = choices.clicked("drawings_misread")
    if picked and 0 <= picked[0] < len(kept):
        choices.explain_saved_drawing(kept[picked[0]].file)


# --- fine-tuning ------------------------------------------------------------------------------------


def _finetune(focus: Focus, server: Server, root: Path) -> None:
    st.markdown("#### Teach it your hand")
    st.caption("Fine-tune the model in focus on your drawings, as a new run: a quarter of each digit's drawings "
               "is held out to measure, the rest trained on, mixed with MNIST training digits replayed so that "
               "it does not forget MNIST.")
    allowed = may_control()
    epochs_col, replay_col, button_col = st.columns([1, 2, 1], vertical_alignment="bottom")
    epochs = epochs_col.number_input("Epochs", 1, 20, FinetuneSettings.epochs, key="drawings_ft_epochs")
    replay = replay_col.select_slider(
        "MNIST digits replayed per drawing", REPLAY_CHOICES, value=FinetuneSettings.replay, key="drawings_ft_replay",
        format_func=lambda n: "no replay" if n == 0 else str(n))
    go = button_col.button("Fine-tune", key="drawings_finetune", icon=":material/model_training:", type="primary",
                           disabled=not allowed)
    if go:
        _start_finetune(focus, server, root, FinetuneSettings(epochs=int(epochs), replay=int(replay)))
    shown = focus.info()  # a fine-tuned run in focus (the one just made, once saved): its report
    report = None if shown is None else read_report(shown.path)
    if report is not None:
        _report(report)


def _start_finetune(focus: Focus, server: Server, root: Path, settings: FinetuneSettings) -> None:
    """Start the fine-tune as the server's job: it trains in the background, in the status line with
    Pause and Stop, and every view follows it, as they follow a training run."""
    if server.jobs.active() or server.sweeps.running():
        st.warning("A run is training or a sweep is queued: fine-tune when they have ended (one job at a time).",
                   icon=":material/hourglass:")
        return
    base = focus.info()
    if base is None or not base.can_answer:
        st.warning("No saved model to fine-tune yet: train one first." if focus.run is None else
                   "The run shown has no model to fine-tune (it diverged, failed or kept no weights): pick a "
                   "saved run under Runs, or train one.", icon=":material/info:")
        return
    try:
        server.jobs.start_finetune(base.path, root, settings)
    except JobBusyError:
        st.warning("A run is training: fine-tune when it has ended (one job at a time).", icon=":material/hourglass:")
        return
    except (DrawingsError, RunError, ValueError, OSError) as err:
        st.error(f"Not fine-tuned: {plain(err)}", icon=":material/warning:")
        return
    choices.pick_run(None)  # the views follow the fine-tune, live, then show the new run
    st.rerun(scope="app")


def _report(report: dict) -> None:
    before, after = report["before"], report["after"]
    st.success(f"New run **{plain(Path(report['run_dir']).name)}**, fine-tuned from {plain(report['base_run'])} on "
               f"{plain(report['trained_on'])} drawings with {report['replayed']:,} MNIST digits replayed "
               f"({report['seconds']:.1f} s); it is the run in focus now.", icon=":material/model_training:")
    rows = [{"accuracy on": what, "before": f"{before[key]:.1%}", "after": f"{after[key]:.1%}",
             "change": _points(after[key] - before[key])}
            for key, what in (("held_out", f"the {plain(report['held_out'])} held-out drawings"),
                              ("drawings", f"all {plain(report['drawings'])} drawings"),
                              ("mnist_test", "the MNIST test split"))]
    st.table(rows, hide_index=True, border="horizontal", width="content")
    st.caption("The held-out drawings were never trained on: they say whether it learned your hand, not just "
               "these drawings. A fall on the MNIST test split is forgetting; more replay holds it back. "
               + report_text(report))


def _points(change: float) -> str:
    return "no change" if abs(change) < 5e-4 else f"{100 * change:+.1f} points"


# --- export and import -----------------------------------------------------------------------------


def _import_export(root, kept: list[Drawing]) -> None:
    with st.expander("Export or import drawings", icon=":material/folder_zip:", expanded=not kept):
        if kept:
            # Built when pressed, not on every rerun (a folder of 10,000 makes a zip of tens of MB).
            st.download_button(f"Export {len(kept)} drawings (.zip)", lambda: export_zip(root),
                               file_name="mlpdash-drawings.zip", mime="application/zip", key="drawings_export",
                               icon=":material/download:", on_click="ignore")
        upload = st.file_uploader("Import a zip of drawings (PNG files and a labels.csv, as exported)", type=["zip"],
                                  key="drawings_import", disabled=not may_control())
        if upload is not None and st.button("Import", key="drawings_import_apply", icon=":material/upload:"):
            try:
                added = import_zip(root, upload.getvalue())
            except (DrawingsError, OSError) as err:
                st.error(f"Not imported: {plain(err)}", icon=":material/warning:")
                return
            with st.spinner(f"Preparing the {added} new drawings for the model (once: they are kept)…"):
                _prepare(root, listing(root))
            st.session_state.pop(choices.SAVED_KEY, None)
            st.toast(f"{added} drawings imported", icon=":material/check:")
            st.rerun()
