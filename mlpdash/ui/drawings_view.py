"""Your drawings: the drawings kept with Save as… under the canvas, as a labelled dataset — a gallery
by digit (relabel, delete), the model in focus evaluated on them, a fine-tuned model as a new run,
and the folder exported or imported as a zip.

The store is `mlpdash.drawings` (with the drawings prepared for the model once, kept in the folder),
evaluation `drawings.evaluate` on the model's arrays, fine-tuning `mlpdash.finetune`; this module lays
them out. A folder holds up to 10,000 drawings: the gallery shows a page of them at a time, the
misread ones the first few hundred, and the prepared drawings and the model's answers are read once
per change of the folder, so that every rerun stays well under a second (`bench --drawings`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import streamlit as st

from mlpdash import figures
from mlpdash.drawings import (
    MAX_DRAWINGS,
    Drawing,
    DrawingsError,
    Identity,
    Prepared,
    answer,
    delete,
    drawings_root,
    export_zip,
    identities,
    import_zip,
    listing,
    load,
    prepared,
    relabel,
    score,
)
from mlpdash.files import UnsafeFileError
from mlpdash.finetune import REPLAY_CHOICES, FinetuneSettings, read_report, report_text
from mlpdash.jobs import JobManager, ModelInFocus
from mlpdash.runs import RunError
from mlpdash.ui import focus, plain
from mlpdash.ui.access import may_control
from mlpdash.ui.panels import CHART_CONFIG

SELECTED_KEY = "drawings_selected"
PAGE_KEY = "drawings_page"
REPORT_KEY = "drawings_finetune_report"
ALL = "all digits"
GALLERY_COLUMNS = 10  # tiles of one size, whether 3 drawings are kept or 300
# Drawings a gallery page shows: a grid of all 10,000 took 2.5 s to build and 31 MB to send.
GALLERY_PAGE = 200
MISREAD_SHOWN = 200
FORGET_AFTER = 1000  # drawings gone from the folder that the server's memory of it may keep


def drawings_ui(manager: JobManager) -> None:
    root = drawings_root()
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
        counts = np.bincount([d.label for d in kept], minlength=10)
        st.caption(f"{len(kept)} drawings in {plain(root)} — " + ", ".join(f"{n} × {d}" for d, n in enumerate(counts) if n))
        if len(kept) > MAX_DRAWINGS:
            st.warning(f"This folder holds {len(kept):,} drawings, more than the {MAX_DRAWINGS:,} a folder keeps: "
                       "Save as… and imports are refused until some are deleted (export them first to keep "
                       "them, and start a new folder).", icon=":material/warning:")
        gallery_col, selected_col = st.columns([3, 2], gap="large")
        with gallery_col:
            _gallery(kept, ready)
        with selected_col:
            _selected(root, kept)
        _evaluate(manager, kept, ready)
        _finetune(manager, root, kept)
        _import_export(root, kept)


# One copy for every session: what a folder's drawings become does not depend on who looks. Keyed
# by what each drawing was made from (a relabel changes nothing of it; a save, delete or import does).
@st.cache_resource(max_entries=2, show_spinner="Preparing the drawings for the model…")
def _prepared(root: str, key: int, _kept: list[Drawing], _made_of: tuple[Identity, ...]) -> Prepared:
    return _prepare(Path(root), _kept, _made_of)


def _prepare(root: Path, kept: list[Drawing], made_of: tuple[Identity, ...] | None = None) -> Prepared:
    """`drawings.prepared` with the server's memory of the folder: a drawing saved costs its own
    preparation, not a read of them all. One session at a time changes that memory."""
    known, lock = _known(str(root))
    with lock:
        if len(known) > len(kept) + FORGET_AFTER:  # drawings deleted since: forget them
            alive = set(made_of or identities(root, kept))
            for identity in [identity for identity in known if identity not in alive]:
                del known[identity]
        return prepared(root, kept, known, made_of)


@st.cache_resource(max_entries=4, show_spinner=False)
def _known(root: str) -> tuple[dict, threading.Lock]:
    """The server's memory of a folder's prepared drawings (identity -> (digit, inked)), kept across
    changes of the folder, with the lock of its changes."""
    return {}, threading.Lock()


def _gallery(kept: list[Drawing], ready: Prepared) -> None:
    shown_digit = st.segmented_control("Show", [ALL, *map(str, range(10))], default=ALL, key="drawings_filter")
    position = {d.file: i for i, d in enumerate(kept)}
    shown = sorted((d for d in kept if shown_digit in (None, ALL) or d.label == int(shown_digit)),
                   key=lambda d: (d.label, d.created))
    if not shown:
        st.caption(f"No {shown_digit} kept yet.")
        return
    page = _page(len(shown))
    on_page = shown[(page - 1) * GALLERY_PAGE: page * GALLERY_PAGE]
    ids = [position[d.file] for d in on_page]
    title = f"{len(shown)} drawings, by digit" + (f" (page {page}: {len(on_page)} of them)" if len(shown) > len(on_page) else "")
    fig = figures.digits_grid_figure((ready.digits[ids] * 255).astype(np.uint8), ids,
                                     [f"a {d.label} · {d.file}" for d in on_page], title,
                                     short=[str(d.label) for d in on_page], columns=GALLERY_COLUMNS,
                                     hint="click: select it")
    st.plotly_chart(fig, key="drawings_gallery", theme=None, on_select=lambda: _select(kept),
                    selection_mode=("points",), config=CHART_CONFIG)
    st.caption("Each drawing as the model sees it (28×28, prepared as the canvas's are), with the digit it "
               "was saved as. Click one to relabel, delete or explain it.")


def _page(count: int) -> int:
    """The gallery page chosen (from 1), with a page picker when one page cannot show them all."""
    pages = -(-count // GALLERY_PAGE)
    if pages == 1:
        return 1
    if not 1 <= st.session_state.get(PAGE_KEY, 1) <= pages:  # fewer drawings than when it was picked
        st.session_state[PAGE_KEY] = 1
    return int(st.number_input(f"Page (of {pages}, {GALLERY_PAGE} drawings each)", 1, pages, key=PAGE_KEY))


def _select(kept: list[Drawing]) -> None:
    picked = focus.clicked("drawings_gallery")
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
                  on_click=focus.explain_saved_drawing, args=(drawing.file,))
        with st.popover("Delete…", icon=":material/delete:", disabled=not allowed):
            st.markdown("Delete this drawing for good? (Export the folder first to keep a copy.)")
            if st.button("Delete", key="drawings_delete", type="primary"):
                _change(lambda: delete(root, drawing.file), f"{plain(drawing.file)} deleted")
    focus.follow_tab_change()


def _change(action, done: str) -> None:
    try:
        action()
    except (DrawingsError, OSError) as err:
        st.error(f"Not changed: {plain(err)}", icon=":material/warning:")
        return
    st.toast(done, icon=":material/check:")
    st.rerun()


# --- evaluating the model on them -------------------------------------------------------------------


def _evaluate(manager: JobManager, kept: list[Drawing], ready: Prepared) -> None:
    st.markdown("#### How the model reads them")
    model = focus.model(manager, "That run's model cannot be evaluated",
                        "Train a model first: the drawings are read by the current model or the run picked "
                        "under Runs & comparison.")
    if model is None:
        return
    if not ready.inked.any():
        st.info("None of the drawings has ink.", icon=":material/info:")
        return
    if manager.active() and focus.picked_run() is None:  # a live model changes with every batch
        answers = answer(ready.digits, ready.inked, model.network.logits)
    else:
        answers = _answers(model, ready)
    result = score(kept, ready.inked, answers)
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
        position = {d.file: i for i, d in enumerate(kept)}
        misread = result.misread[:MISREAD_SHOWN]
        ids = [position[file] for file, _, _ in misread]
        shown = f"The {len(result.misread)} misread" + (f" (the first {len(misread)})" if len(misread) < len(result.misread) else "")
        fig = figures.digits_grid_figure(
            (ready.digits[ids] * 255).astype(np.uint8), ids,
            [f"a {label} read as {answer} · {file}" for file, label, answer in misread],
            shown, short=[f"{label}→{answer}" for _, label, answer in misread])
        st.plotly_chart(fig, key="drawings_misread", theme=None, on_select=lambda: _explain_clicked(kept),
                        selection_mode=("points",), config=CHART_CONFIG)
        st.caption("Over each: the digit it was saved as → the model's answer. Click one to see why, in "
                   "Inside a prediction.")
        focus.follow_tab_change()


def _answers(model: ModelInFocus, ready: Prepared) -> np.ndarray:
    """The model's answer to each drawing (-1: no ink). A saved model's answers are remembered by
    drawing, for every session: a rerun answers only the drawings new since (none for a page of the
    gallery, a selection or a relabel; one for a drawing saved)."""
    known = _answered(model.state)
    # Only drawings with ink are answered, and so remembered: one unreadable now may read later.
    new = [i for i, identity in enumerate(ready.identities) if ready.inked[i] and identity not in known]
    if new:
        found = answer(ready.digits[new], ready.inked[new], model.network.logits)
        known.update((ready.identities[i], int(a)) for i, a in zip(new, found))
    return np.array([known[identity] if ink else -1 for identity, ink in zip(ready.identities, ready.inked)],
                    np.int64)


@st.cache_resource(max_entries=4, show_spinner=False)
def _answered(state: tuple) -> dict:
    """A model's answers by drawing key; `state` changes with the model (another run, a new epoch)."""
    return {}


def _explain_clicked(kept: list[Drawing]) -> None:
    picked = focus.clicked("drawings_misread")
    if picked and 0 <= picked[0] < len(kept):
        focus.explain_saved_drawing(kept[picked[0]].file)


# --- fine-tuning ------------------------------------------------------------------------------------


def _finetune(manager: JobManager, root, kept: list[Drawing]) -> None:
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
        _run_finetune(manager, root, len(kept), FinetuneSettings(epochs=int(epochs), replay=int(replay)))
    picked = focus.picked_run()
    report = st.session_state.get(REPORT_KEY)
    if picked is not None and (report is None or Path(report["run_dir"]) != picked):
        report = read_report(picked)  # a fine-tuned run in focus: its own report, as saved
    if report is not None:
        _report(report)


def _run_finetune(manager: JobManager, root, count: int, settings: FinetuneSettings) -> None:
    if manager.active() or manager.queue_running():
        st.warning("A run is training or a sweep is queued: fine-tune when they have ended (one job at a time).",
                   icon=":material/hourglass:")
        return
    try:
        base = manager.run_in_focus(focus.picked_run())
        if base is None or not base.can_answer:
            st.warning("No saved model to fine-tune yet: train one first.", icon=":material/info:")
            return
        data = manager.load_data(base.data_source)
        from mlpdash.finetune import finetune  # TensorFlow

        with st.spinner(f"Fine-tuning {plain(base.title)} on {count} drawings…"):
            report = finetune(base.path, root, data, settings, manager.runs_dir)
    except (DrawingsError, RunError, ValueError, OSError) as err:
        st.error(f"Not fine-tuned: {plain(err)}", icon=":material/warning:")
        return
    st.session_state[REPORT_KEY] = report.to_dict()
    focus.pick_run(report.run_dir)
    st.rerun(scope="app")  # every panel now shows the new run


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
            st.toast(f"{added} drawings imported", icon=":material/check:")
            st.rerun()
