"""Setup: the data source and the model and training settings (in the sidebar), and the Start/Pause/Stop
controls (in the page's control bar, where a phone reaches them without opening the sidebar)."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from mlpdash.budgets import long_run_warning
from mlpdash.config import (
    ACTIVATIONS,
    HIGH_LEARNING_RATE,
    LR_SCHEDULES,
    OPTIMIZERS,
    TrainConfig,
    config_from_form,
    parse_hidden,
)
from mlpdash.data import ENV_VAR, DataError, resolve_source
from mlpdash.jobs import JobBusyError, JobManager
from mlpdash.lessons import PRESETS, preset_named
from mlpdash.pace import FULL_SPEED, PACES, pace_label
from mlpdash.progress import Status
from mlpdash.runs import read_info
from mlpdash.server import Server
from mlpdash.ui import choices, guarded, guide_ui, job_active, late, plain, refresh_every, rerun_if_changed
from mlpdash.ui.access import may_control
from mlpdash.ui.cache import derived
from mlpdash.ui.panels import status_panel

DATA_KINDS = {
    "auto": "Automatic",
    "sample": "Bundled sample (offline)",
    "idx": "IDX files in a folder",
    "tfds": "TensorFlow Datasets",
    "keras": "Keras cache",
}
DEFAULTS = TrainConfig()
IDLE_CHECK_SECONDS = 5.0
STOP_WAIT_SECONDS = 1.0  # the most a Stop click waits for the stopped model's test result
SAMPLE_NOTE = ("The sample is 10,000 real MNIST digits, 6,000 of them to train on: expect about 0.95 "
               "test accuracy here, against 0.98 with full MNIST's 50,000. For full MNIST choose "
               "TensorFlow Datasets (downloads it, online) or IDX files in a folder.")
# Where this project's machines keep full MNIST (beside the repository); suggested only if present.
DEFAULT_IDX_FOLDER = "../shared/data/mnist"
# Training digits per source, for the time estimate before a run (the data is loaded only at Start).
SAMPLE_TRAIN_SIZE = 6_000
FULL_TRAIN_SIZE = 50_000


def _default_data(job_spec: str | None = None) -> tuple[str, str]:
    """(kind, idx folder) of the job the page shows, else from $MLPDASH_DATA, so that a reload or a
    second tab shows the source the job trains on, and a new page starts where the CLI would."""
    spec = (job_spec or os.environ.get(ENV_VAR, "")).strip()
    kind, _, folder = spec.partition(":")
    if kind.lower() == "idx":
        return "idx", folder
    return (spec.lower() if spec.lower() in DATA_KINDS else "auto"), ""


def _suggested_idx_folder() -> str:
    """The usual folder of the full MNIST files when it is there; never a path that does not exist."""
    return DEFAULT_IDX_FOLDER if Path(DEFAULT_IDX_FOLDER).is_dir() else ""


@derived(max_entries=32, ttl=60)
def _resolve(spec: str) -> tuple[str | None, str]:
    """(source, reason) or (None, error); cached because `auto` may probe the network for 2 s."""
    try:
        return resolve_source(spec)
    except DataError as err:
        return None, str(err)


def data_ui(locked: bool = False, job_spec: str | None = None) -> tuple[str | None, str | None]:
    """The data source spec and, when it cannot be used, why. `job_spec` is the current job's
    source: a new session's widgets start from it."""
    kind_default, folder_default = _default_data(job_spec)
    kind = st.selectbox("Data", list(DATA_KINDS), index=list(DATA_KINDS).index(kind_default),
                        format_func=DATA_KINDS.get, key="data_kind", disabled=locked)
    spec = kind
    if kind == "idx":
        folder = st.text_input("IDX folder", value=folder_default or _suggested_idx_folder(),
                               key="idx_folder", placeholder="folder with the four MNIST IDX files",
                               help="train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                                    "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, gzipped or not",
                               disabled=locked)
        if not folder.strip():
            st.info("Name the folder that holds the four MNIST IDX files.", icon=":material/folder:")
            return None, "no IDX folder named"
        spec = f"idx:{folder}"
    source, reason = _resolve(spec)
    if source is None:
        st.error(plain(reason), icon=":material/warning:")  # it quotes the folder, which a queued run names
        return spec, reason
    st.caption(f"Uses: {plain(reason)}")
    if source == "sample":
        st.caption(SAMPLE_NOTE)
    return spec, None


def lessons_ui(locked: bool = False) -> None:
    """One-click presets for a lesson: they fill the settings below; Start stays a person's click."""
    st.selectbox("Lesson preset", [preset.name for preset in PRESETS], index=None, key="lesson",
                 placeholder="Set up a classic experiment…", on_change=_apply_lesson, disabled=locked,
                 help="Fills the settings for a classic experiment; you press Start.")
    chosen = st.session_state.get("lesson")
    if chosen:
        st.caption(f"**Watch:** {preset_named(chosen).watch}")


def _apply_lesson() -> None:
    chosen = st.session_state.get("lesson")
    if chosen and may_control() and _users("lesson"):
        choices.apply_preset(preset_named(chosen))


def run_in_focus_ui(picked: Path | None, locked: bool = False) -> None:
    """With a saved run in focus, the settings below are still the next run's: say so beside the run's
    own (a linear run shown above 700,500 / relu read as a contradiction), and offer them."""
    info = read_info(picked) if picked is not None and picked.is_dir() else None
    if info is None or info.config is None:
        return
    st.caption(f"These settings are for the next run. The saved run shown, **{plain(info.title)}**, was "
               f"trained as {info.config.recipe}.")
    st.button("Use its settings", key="use_run_settings", icon=":material/content_copy:", disabled=locked,
              on_click=_use_settings, args=(info.config,),
              help="Fill the settings below with the run's, for the next Start")


def _use_settings(config: TrainConfig) -> None:
    if may_control():
        st.session_state.update(choices.settings_widgets(config))


def settings_ui(defaults: TrainConfig = DEFAULTS,
                locked: bool = False) -> tuple[TrainConfig | None, dict[str, str]]:
    """The model and training settings, each problem shown under its widget.

    `defaults` fill a new session's widgets: the page passes the running job's config, so that a
    refresh or a second tab shows the settings of the run it is watching.
    """
    values: dict[str, object] = {}
    errors: dict[str, st.delta_generator.DeltaGenerator] = {}

    def field(name: str, widget, paired: bool = False) -> None:
        values[name] = widget
        if not paired:
            errors[name] = st.empty()

    def pair_errors(*names: str) -> None:
        # Under the pair, full width: in a half-width column a message wrapped a word to a line.
        for name in names:
            errors[name] = st.empty()

    lock = {"disabled": locked}
    # A new session's values, set through the widgets' keys rather than as their defaults: a preset or
    # a guided step sets the same keys, and Streamlit warns about a widget given a value both ways.
    for key, value in choices.settings_widgets(defaults).items():
        st.session_state.setdefault(key, value)

    field("hidden", st.text_input("Hidden layers", key="hidden", **lock,
                                  help="Units per hidden layer, e.g. 700,500; 0 for the linear classifier"))
    if _linear(str(values["hidden"])):
        # The linear classifier has no hidden unit to apply an activation to: no setting to show.
        values["activation"] = defaults.activation
    else:
        field("activation", st.selectbox("Activation", ACTIVATIONS, key="activation", **lock,
                                         help="The function each hidden unit applies to its input"))
    field("optimizer", st.selectbox("Optimizer", OPTIMIZERS, key="optimizer", **lock,
                                    help="adam, or sgd with momentum 0.9"))
    # %g shows the rate that will be used (0.001, 5e-05), never a rounded 0.0000.
    field("learning_rate", st.number_input("Learning rate", step=1e-4,
                                           format="%g", key="learning_rate", **lock,
                                           help="How far each step moves the weights. Adam's default is "
                                                "0.001; above 0.1 training usually diverges, which is "
                                                "worth seeing once."))
    field("lr_schedule", st.selectbox("Learning-rate schedule", LR_SCHEDULES, key="lr_schedule", **lock,
                                      help="cosine decays the rate to 0 over the run; constant is the tutorial"))
    left, right = st.columns(2)
    with left:
        field("batch_size", st.number_input("Batch size", step=1, key="batch_size",
                                            help="Digits per training step (one batch)", **lock), paired=True)
    with right:
        field("epochs", st.number_input("Epochs", step=1, key="epochs",
                                        help="Passes over the training digits", **lock), paired=True)
    pair_errors("batch_size", "epochs")
    left, right = st.columns(2)
    with left:
        field("dropout", st.number_input("Dropout", step=0.05, format="%.2f",
                                         key="dropout", help="Share of hidden units switched off at random "
                                         "in each training step (0: none); it fights overfitting", **lock),
              paired=True)
    with right:
        field("seed", st.number_input("Seed", step=1, key="seed",
                                      help="Fixes the random start and order: the same seed, the same run",
                                      **lock), paired=True)
    pair_errors("dropout", "seed")
    field("train_digits", st.number_input("Training digits (0: all)", step=100,
                                          key="train_digits", **lock,
                                          help="Train on only the first N training digits: a small set "
                                               "with no dropout shows overfitting"))
    config, problems = config_from_form(values)
    for name, message in problems.items():
        errors[name].error(message, icon=":material/warning:")
    if config is not None and config.learning_rate > HIGH_LEARNING_RATE:
        errors["learning_rate"].warning(f"A learning rate above {HIGH_LEARNING_RATE:g} usually makes "
                                        "the loss blow up: the run will likely diverge.",
                                        icon=":material/warning:")
    return config, problems


def _linear(hidden: str) -> bool:
    """Whether the hidden layers typed name the linear classifier (as `config.parse_hidden` reads them)."""
    try:
        return parse_hidden(hidden) == ()
    except ValueError:  # not sizes at all: the form says so under the field
        return False


def estimate_ui(spec: str | None, config: TrainConfig | None) -> None:
    """Before a run that would take an hour or more here: say so (it is never refused)."""
    if spec is None or config is None:
        return
    source, _ = _resolve(spec)
    size = SAMPLE_TRAIN_SIZE if source == "sample" else FULL_TRAIN_SIZE
    warning = long_run_warning(config, size)
    if warning:
        st.warning(warning, icon=":material/schedule:")


def control_bar_ui(server: Server, spec: str | None, config: TrainConfig | None) -> None:
    """The control bar: the status line beside Start, Pause/Resume, Stop and the Speed, in one
    fragment on one timer (every second while a job runs). One rerun a second for the whole bar, not
    one for the status and one for the buttons: each rerun costs every open browser a render, and on a
    machine that trains that time is training's."""
    was_active = job_active(server.jobs)
    drawn_job = server.jobs.current()[1]
    in_lesson = server.guide.place.lesson is not None

    # While idle this fragment still looks every few seconds (it only reads the status), so that a
    # run started from another tab shows here without a click; in a lesson, every second, so that
    # every page follows the teacher's Next at once.
    @st.fragment(run_every=refresh_every(was_active or in_lesson) or IDLE_CHECK_SECONDS)
    def control_bar() -> None:
        rerun_if_changed(server.jobs, was_active)
        # A new job replaced the one the page was drawn for while both were active (a lesson's step
        # starts its run as soon as the one before is saved): every view shows the new one.
        if guide_ui.moved(server) or server.jobs.current()[1] != drawn_job:
            st.rerun(scope="app")  # the page opens the step's view, or shows the new job
        status_col, controls_col = st.columns([3, 2], vertical_alignment="top")
        with status_col, st.container(key="status_column"), guarded("training"):
            status_panel(server)
        with controls_col, st.container(key="controls_column"), guarded("controls"):
            _controls(server.jobs, spec, config)
        with guarded("lesson"):
            guide_ui.step_ui(server)

    control_bar()


def _controls(jobs: JobManager, spec: str | None, config: TrainConfig | None) -> None:
    """Start, Pause/Resume and Stop, and the Speed, as the job's state allows."""
    job = jobs.job
    status = job.status if job else Status.IDLE
    allowed = may_control()
    start_col, pause_col, stop_col, speed_col = st.columns([1, 1, 1, 1.8], gap="small")
    start = start_col.button("Start", key="start_training", type="primary", width="stretch",
                             icon=":material/play_arrow:",
                             disabled=config is None or spec is None or status.active or not allowed)
    paused = status == Status.PAUSED
    # Callbacks run before the fragment redraws, so the buttons show the state they caused.
    with pause_col:
        st.button("Resume" if paused else "Pause", key="pause_training", width="stretch",
                  icon=":material/play_arrow:" if paused else ":material/pause:",
                  disabled=status not in (Status.TRAINING, Status.PAUSED) or not allowed
                  or (job is not None and job.finishing),
                  on_click=pause_or_resume, args=(jobs, "resume" if paused else "pause"))
    with stop_col:
        st.button("Stop", key="stop_training", width="stretch", icon=":material/stop:",
                  disabled=status not in (Status.LOADING_DATA, Status.TRAINING, Status.PAUSED)
                  or not allowed,
                  on_click=_stop, args=(jobs,))
    if start:
        _start(jobs, spec, config)
    # While a job runs, the box shows its speed, whichever tab set it; idle, it keeps this tab's
    # choice for the next Start.
    if job is not None and status.active:
        label = pace_label(job.pace)
        if label in PACES:  # a pace set outside the page (a bench's digits a second) is left unnamed
            late.set_by_page("pace", label)
    st.session_state.setdefault("pace", FULL_SPEED)
    speed_col.selectbox("Speed", list(PACES), key="pace", on_change=_set_pace, args=(jobs,),
                        disabled=not allowed, label_visibility="collapsed",
                        format_func=lambda label: label[0].upper() + label[1:],  # "A batch a second"
                        help="Slow motion, so that a class can watch the curves form: an epoch's "
                             "point on the accuracy chart, or a batch's on the loss chart, at a pace "
                             "the eye can follow. It changes no result, only how long the run takes; "
                             "it applies at once, mid-run too.")
    if status.active:
        st.caption("A run is in progress: one trains at a time. Stop it to start another.")
    elif config is None:
        st.caption("Fix the settings marked in the sidebar to start.")
    elif spec is None:
        st.caption("Choose a data source that can be used (in the sidebar) to start.")


def _set_pace(jobs: JobManager) -> None:
    job = jobs.job
    if job is not None and may_control() and _users("pace"):
        job.set_pace(PACES[st.session_state["pace"]])


def _users(key: str) -> bool:
    """Whether widget `key`'s new value is the user's, not a late request's (`mlpdash.ui.late`): the
    Speed the page showed before it followed the job's pace would set the class's run back to it."""
    sent = st.session_state.get(key)
    return late.users_choice(key) == sent


def pause_or_resume(jobs: JobManager, action: str) -> None:
    """The Pause/Resume button's callback: do what the button said when it was clicked. Not a toggle:
    in a CI run one Resume click resumed and paused again within a batch, as if its callback had run
    twice (the bar's timer reruns the fragment every second); a second "resume" is harmless where a
    second toggle undoes the first."""
    # The job at click time, which another tab may have replaced since this one was drawn. The
    # permission is checked here too: a disabled button is only a hint to an honest browser.
    job = jobs.job
    if job is None or not may_control():
        return
    if action == "resume":
        job.resume()
    else:
        job.pause()


def _stop(jobs: JobManager) -> None:
    if jobs.job is not None and may_control() and jobs.job.stop():
        # A stop takes effect within a batch and the test within a moment: waiting for them here lets
        # the redraw that follows the click say "Stopped" with the result, not a second later.
        jobs.job.wait_until_tested(STOP_WAIT_SECONDS)


def _start(jobs: JobManager, spec: str | None, config: TrainConfig | None) -> None:
    if config is None or spec is None or not may_control():
        return
    try:
        jobs.start(config, spec, pace=PACES[st.session_state.get("pace", FULL_SPEED)])
    except JobBusyError as err:
        st.warning(str(err), icon=":material/hourglass_top:")
        return
    choices.pick_run(None)  # show the new run, not an old one picked before
    st.rerun(scope="app")
