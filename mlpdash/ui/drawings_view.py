"""Your drawings: the drawings kept with Save as… under the canvas, as a labelled dataset — a gallery
by digit (relabel, delete), the model in focus evaluated on them, a fine-tuned model as a new run,
and the folder exported or imported as a zip.

The store is `mlpdash.drawings`, evaluation `drawings.evaluate`'s computation on the model's arrays,
fine-tuning `mlpdash.finetune`; this module lays them out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from mlpdash import figures
from mlpdash.drawings import (
    Drawing,
    DrawingsError,
    delete,
    drawings_root,
    export_zip,
    import_zip,
    listing,
    load,
    relabel,
)
from mlpdash.files import UnsafeFileError
from mlpdash.finetune import REPLAY_CHOICES, FinetuneSettings, read_report, report_text
from mlpdash.jobs import JobManager
from mlpdash.preprocess import canvas_to_mnist
from mlpdash.runs import RunError
from mlpdash.ui import focus, plain
from mlpdash.ui.access import may_control
from mlpdash.ui.panels import CHART_CONFIG

PREPARED_KEY = "drawings_prepared"  # (file, created) -> the 28x28 digit (None: no ink), once a session
SELECTED_KEY = "drawings_selected"
REPORT_KEY = "drawings_finetune_report"
ALL = "all digits"
GALLERY_COLUMNS = 10  # tiles of one size, whether 3 drawings are kept or 300


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
                    f"**Save as…**: they are kept in `{root}`, to test the model on and to teach it your "
                    "hand.", icon=":material/draw:")
            _import_export(root, kept)
            return
        digits = _prepared(root, kept)
        counts = np.bincount([d.label for d in kept], minlength=10)
        st.caption(f"{len(kept)} drawings in `{root}` — " + ", ".join(f"{n} × {d}" for d, n in enumerate(counts) if n))
        gallery_col, selected_col = st.columns([3, 2], gap="large")
        with gallery_col:
            _gallery(kept, digits)
        with selected_col:
            _selected(root, kept)
        _evaluate(manager, kept, digits)
        _finetune(manager, root, kept)
        _import_export(root, kept)


def _prepared(root, kept: list[Drawing]) -> dict[str, np.ndarray | None]:
    """Each drawing as the model sees it, prepared once a session (a stroke-by-stroke preparation costs
    a few milliseconds a drawing)."""
    # Keyed by name and time saved: a drawing deleted and another imported under its name is new.
    cache = st.session_state.setdefault(PREPARED_KEY, {})
    for drawing in kept:
        if (drawing.file, drawing.created) not in cache:
            try:
                cache[drawing.file, drawing.created] = canvas_to_mnist(load(root, drawing))
            except (DrawingsError, UnsafeFileError, ValueError):
                cache[drawing.file, drawing.created] = None
    return {drawing.file: cache[drawing.file, drawing.created] for drawing in kept}


def _gallery(kept: list[Drawing], digits: dict[str, np.ndarray | None]) -> None:
    shown_digit = st.segmented_control("Show", [ALL, *map(str, range(10))], default=ALL, key="drawings_filter")
    shown = sorted((d for d in kept if shown_digit in (None, ALL) or d.label == int(shown_digit)),
                   key=lambda d: (d.label, d.created))
    if not shown:
        st.caption(f"No {shown_digit} kept yet.")
        return
    blank = np.zeros((28, 28), np.float32)
    images = np.stack([(digits.get(d.file) if digits.get(d.file) is not None else blank) for d in shown])
    fig = figures.digits_grid_figure((images * 255).astype(np.uint8), [kept.index(d) for d in shown],
                                     [f"a {d.label} · {d.file}" for d in shown],
                                     f"{len(shown)} drawings, by digit", short=[str(d.label) for d in shown],
                                     columns=GALLERY_COLUMNS, hint="click: select it")
    st.plotly_chart(fig, key="drawings_gallery", theme=None, on_select=lambda: _select(kept),
                    selection_mode=("points",), config=CHART_CONFIG)
    st.caption("Each drawing as the model sees it (28×28, prepared as the canvas's are), with the digit it "
               "was saved as. Click one to relabel, delete or explain it.")


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
    st.session_state.pop("drawings_evaluation", None)  # answers to an older set
    st.toast(done, icon=":material/check:")
    st.rerun()


# --- evaluating the model on them -------------------------------------------------------------------


def _evaluate(manager: JobManager, kept: list[Drawing], digits: dict[str, np.ndarray | None]) -> None:
    st.markdown("#### How the model reads them")
    model = focus.model(manager, "That run's model cannot be evaluated",
                        "Train a model first: the drawings are read by the current model or the run picked "
                        "under Runs & comparison.")
    if model is None:
        return
    inked = [d for d in kept if digits.get(d.file) is not None]
    if not inked:
        st.info("None of the drawings has ink.", icon=":material/info:")
        return
    labels = np.array([d.label for d in inked])
    answers = model.network.logits(np.stack([digits[d.file] for d in inked])).argmax(axis=1)
    right = float(np.mean(answers == labels))
    st.caption(f"{plain(model.title)}: **{right:.1%}** of {len(inked)} drawings read right"
               + (f" ({len(kept) - len(inked)} without ink left out)" if len(inked) < len(kept) else ""))
    from mlpdash.evaluate import confusion_matrix

    matrix_col, misread_col = st.columns([2, 3], gap="large")
    matrix_col.plotly_chart(figures.confusion_figure(confusion_matrix(labels, answers)), key="drawings_confusion",
                            theme=None, config=CHART_CONFIG)
    wrong = [i for i in range(len(inked)) if answers[i] != labels[i]]
    with misread_col:
        if not wrong:
            st.success("Every drawing is read right.", icon=":material/check:")
            return
        fig = figures.digits_grid_figure(
            (np.stack([digits[inked[i].file] for i in wrong]) * 255).astype(np.uint8),
            [kept.index(inked[i]) for i in wrong],
            [f"a {labels[i]} read as {answers[i]} · {inked[i].file}" for i in wrong],
            f"The {len(wrong)} misread", short=[f"{labels[i]}→{answers[i]}" for i in wrong])
        st.plotly_chart(fig, key="drawings_misread", theme=None, on_select=lambda: _explain_clicked(kept),
                        selection_mode=("points",), config=CHART_CONFIG)
        st.caption("Over each: the digit it was saved as → the model's answer. Click one to see why, in "
                   "Inside a prediction.")
        focus.follow_tab_change()


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
            try:
                archive = export_zip(root)
            except (DrawingsError, OSError) as err:
                st.error(f"Cannot export: {plain(err)}", icon=":material/warning:")
            else:
                st.download_button(f"Export {len(kept)} drawings (.zip)", archive, file_name="mlpdash-drawings.zip",
                                   mime="application/zip", key="drawings_export", icon=":material/download:")
        upload = st.file_uploader("Import a zip of drawings (PNG files and a labels.csv, as exported)", type=["zip"],
                                  key="drawings_import", disabled=not may_control())
        if upload is not None and st.button("Import", key="drawings_import_apply", icon=":material/upload:"):
            try:
                added = import_zip(root, upload.getvalue())
            except (DrawingsError, OSError) as err:
                st.error(f"Not imported: {plain(err)}", icon=":material/warning:")
                return
            st.toast(f"{added} drawings imported", icon=":material/check:")
            st.rerun()
