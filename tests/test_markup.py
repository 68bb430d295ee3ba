"""Files that other people may have written stay text on the page: with Streamlit's AppTest on the real
app.py, markup planted in every field of a run folder (its config's data source, its name and note, a
fine-tuning report, the folder's own name, a damaged file's error), in the sweep queue and in the
drawings folder is rendered in every view, with each planted run picked and with none, and no element
that Streamlit renders as Markdown (or Plotly as HTML) carries it as markup.

What counts as escaped was checked in Chromium against Streamlit 1.67's renderer (see
`mlpdash.ui.plain`): a backslash defeats links, images, emphasis, HTML, LaTeX and colour directives,
but not GFM's bare autolinks (http://, www., name@host) nor `:material/...:` icons, which are made
from the text after its escapes are read; those take an invisible word joiner.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from apptest import new_page
from PIL import Image
from streamlit.testing.v1 import AppTest

from mlpdash.config import TrainConfig
from mlpdash.finetune import FinetuneReport, FinetuneSettings, Scores, read_report
from mlpdash.runs import NOTES_FILE, RunWriter, list_runs
from mlpdash.ui import WORD_JOINER, plain
from mlpdash.ui.choices import RUN_KEY, VIEW_TAB_KEY
from mlpdash.ui.tabs import VIEWS

CONFIG = TrainConfig(hidden=(16,), epochs=2)
ROWS = [{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "seconds": 1.0}]

# Every construct a file could smuggle in, each pointing at evil.example or saying "evil"; a field with
# a length or character limit gets what fits.
IMAGE = "![x](http://evil.example/x.png)"
LINK = "[log in again](http://evil.example)"
LINE = (f"{IMAGE} {LINK} http://evil.example/a www.evil.example x@evil.example "
        "<img src=http://evil.example/y.png> <b>evil</b> **evil** __evil__ ~~evil~~ :red[evil] $\\alpha$ "
        ":smile: :material/face: &copy; `evil`")
PAYLOAD = f"{LINE}\n# evil heading\n- evil list"  # where a file may hold more than one line
NAME = f"{IMAGE} :red[evil] www.evil.example $\\alpha$"  # a run's name: 80 characters at most
# A folder's name cannot hold "/": its link has no "//", and its markup no icon.
FOLDER = ("20260101-000000-abc ![x](http:evil.example\\x.png) [log in](http:evil.example) www.evil.example "
          "x@evil.example <img src=x> **evil** :red[evil] $\\alpha$ :smile: &copy;")
SHORT = IMAGE  # quoted into an error message, which cuts what it quotes at 40 characters

# What a planted construct looks like while Markdown would still render it: (what, pattern, where).
# "source" patterns are matched on the Markdown as sent, where a backslash before the construct's
# first character defeats it; "text" patterns on the text after Markdown has read its escapes, as
# Streamlit's autolinks see it (only a word joiner breaks those).
LEAKS = [
    ("link or image", r"(?<!\\)\]\(", "source"),
    ("HTML", r"(?<!\\)<(?:img|a|b)\b", "source"),
    ("emphasis", r"(?<!\\)(?:\*\*|__|~~)evil", "source"),
    ("code", r"(?<!\\)`evil", "source"),
    ("colour directive", r"(?<!\\):red\[", "source"),
    ("LaTeX", r"(?<!\\)\$\\\\?alpha", "source"),
    ("emoji", r"(?<!\\):smile:", "source"),
    ("entity", r"(?<!\\)&copy;", "source"),
    ("heading or list", r"(?m)^ {0,3}(?:#|-) evil", "source"),
    ("material icon", r":material/", "source"),  # replaced in the source, backslash or not
    ("autolink", r"(?i)https?://|\bwww\.|\w@\w", "text"),
]


def markup_leaks(markdown: str) -> list[str]:
    """The planted constructs that `markdown` would still render as markup; [] when each is escaped."""
    text = re.sub(r"\\(.)", r"\1", markdown)
    return [what for what, pattern, where in LEAKS if re.search(pattern, markdown if where == "source" else text)]


def plotly_leaks(spec: dict) -> list[str]:
    """Planted markup that a Plotly figure would read as its HTML, or that went into a template."""
    found = []
    for key, value in _strings(spec):
        if re.search(r"(?i)<(?:a|b|img)\b[^>]*>[^<]*evil|<a\s+href|<img\b", value):
            found.append(f"HTML in {key}")
        if key.endswith("template") and "evil" in value:
            found.append(f"a name in {key}")
    return found


def _strings(value, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


# The fields Streamlit renders as Markdown: bodies (markdown, caption, alerts, toasts, exceptions),
# st.image captions, labels and help of widgets, metrics, expanders, popovers and tabs, and
# segmented-control options.
# Selectbox and multiselect options are plain text there (checked in Chromium) and are not walked.
MARKDOWN_FIELDS = {"body", "label", "help", "content", "message", "text", "caption"}


def rendered_markdown(at: AppTest) -> Iterator[tuple[str, str]]:
    """(where, Markdown text) for every Markdown-rendered string of the page, st.table cells included
    (Streamlit renders them as Markdown too); Plotly specs as ("plotly_chart", JSON)."""
    for node in at._tree:
        proto = getattr(node, "proto", None)
        kind = getattr(node, "type", type(node).__name__)
        if kind == "table":
            for cell in node.value.astype(str).to_numpy().ravel():
                yield "table", cell
            for column in node.value.columns:
                yield "table", str(column)
        elif kind == "plotly_chart":
            yield kind, proto.spec
        elif proto is not None and hasattr(proto, "ListFields"):
            for field, text in _proto_strings(proto):
                if field in MARKDOWN_FIELDS:
                    yield f"{kind}.{field}", text


def _proto_strings(message) -> Iterator[tuple[str, str]]:
    for field, value in message.ListFields():
        if isinstance(value, str):
            yield field.name, value
        elif hasattr(value, "ListFields"):
            yield from _proto_strings(value)
        elif not isinstance(value, bytes | int | float | bool):
            for item in value:
                if isinstance(item, str):
                    yield field.name, item
                elif hasattr(item, "ListFields"):
                    yield from _proto_strings(item)


def leaks_in(at: AppTest) -> list[str]:
    found = []
    for where, text in rendered_markdown(at):
        problems = plotly_leaks(json.loads(text)) if where == "plotly_chart" else markup_leaks(text)
        found += [f"{where}: {problem} in {text[:160]!r}" for problem in problems]
    return found


# --- the checker itself -----------------------------------------------------------------------------


@pytest.mark.parametrize("planted", [PAYLOAD, LINE, NAME, FOLDER, IMAGE, LINK, "see www.evil.example", "x@evil.example",
                                     ":material/face:", "__evil__.png", "- evil list"])
def test_the_checker_flags_planted_markup_and_passes_it_escaped(planted):
    assert markup_leaks(planted), planted
    assert markup_leaks(f"Saved run {planted} · test split") or planted.startswith("- ")
    assert markup_leaks(plain(planted)) == []
    assert markup_leaks(f"**Showing saved run {plain(planted)}**: the views are this run's") == []


def test_the_checker_knows_which_escapes_markdown_ignores():
    # A backslash alone leaves bare autolinks and icons working, and the old escaping left &copy; bare.
    backslashed = re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~:$])", r"\\\1", PAYLOAD)
    assert set(markup_leaks(backslashed)) == {"autolink", "material icon", "entity"}
    assert "autolink" in markup_leaks("www\\.evil\\.example") and markup_leaks(f"www{WORD_JOINER}.evil") == []
    assert markup_leaks(f"http:{WORD_JOINER}//evil.example x@{WORD_JOINER}evil") == []
    # Plotly: a name as HTML, or a name inside a template, is flagged; escaped and referenced is not.
    assert plotly_leaks({"data": [{"name": "<a href='http://evil.example'>x</a>"}]})
    assert plotly_leaks({"data": [{"hovertemplate": "evil %{x}"}]})
    assert plotly_leaks({"data": [{"name": "&lt;a href='x'&gt;evil", "hovertemplate": "%{fullData.name}"}]}) == []


def test_plain_keeps_the_text_as_it_reads():
    for text in (PAYLOAD, NAME, FOLDER, "20261203-080223-abc123", "1. first", "2026.01.01 run"):
        shown = re.sub(r"\\(.)", r"\1", plain(text)).replace(WORD_JOINER, "")
        assert shown == " ".join(text.split())
    assert plain("20261203-080223-abc123") == "20261203-080223-abc123"  # an ordinary run id unchanged


# --- planted files ------------------------------------------------------------------------------------


def _run(root: Path, test_size: int) -> Path:
    """A finished run written as training writes one (no training): weights, snapshots, metrics, test
    answers for every test digit of the sample, summary."""
    rng = np.random.default_rng(0)
    writer = RunWriter(root, CONFIG, "sample")
    writer.write_epoch(ROWS, [rng.normal(0, 0.1, (784, 16)), np.zeros(16), rng.normal(0, 0.1, (16, 10)), np.zeros(10)])
    for epoch in (0, 1):
        writer.write_snapshot(rng.normal(0, 0.1, (784, 16)).astype(np.float32), epoch)
    labels = np.arange(test_size) % 10
    writer.write_test_results(
        {"labels": labels.astype(np.uint8), "predictions": ((labels + (labels % 3 == 0)) % 10).astype(np.uint8),
         "confidences": np.full(test_size, 0.7, np.float32)},
        {"index": [0], "label": [0], "prediction": [1], "confidence": [0.7]})
    writer.write_summary({"test_accuracy": 0.6, "test_loss": 1.0, "stopped_early": False, "epochs_completed": 1,
                          "per_class_accuracy": [0.6] * 10})
    writer.close()
    time.sleep(0.01)  # distinct creation times: the listing's order is the planting order, reversed
    return writer.path


def _drawings(root: Path, files: list[str]) -> None:
    root.mkdir(parents=True)
    ink = np.zeros((280, 280), np.uint8)
    ink[60:220, 130:150] = 255
    for file in files:
        Image.fromarray(ink).save(root / file)
    rows = "".join(f"{file},{n % 10},{1.7e9 + n}\n" for n, file in enumerate(files))
    (root / "labels.csv").write_text("file,label,created\n" + rows)


@pytest.fixture
def planted(app_env, tmp_path, sample_data) -> dict[str, Path]:
    """A runs folder, a sweep queue and a drawings folder holding markup wherever a file can, where the
    page's environment (conftest) has them."""
    runs = app_env
    size = len(sample_data.y_test)
    damaged = _run(runs, size)  # its summary quotes markup in its error
    (damaged / "summary.json").write_text(json.dumps({"test_accuracy": SHORT}))
    sourced = _run(runs, size)  # its data source is markup
    config = json.loads((sourced / "config.json").read_text())
    (sourced / "config.json").write_text(json.dumps({**config, "data_source": PAYLOAD}))
    (sourced / NOTES_FILE).write_text(json.dumps({"name": NAME, "note": PAYLOAD}))
    named = _run(runs, size).rename(runs / FOLDER)  # the newest: what the views show with none picked
    (named / NOTES_FILE).write_text(json.dumps({"name": NAME, "note": PAYLOAD}))
    report = FinetuneReport(LINE, named, FinetuneSettings(), Scores(0.5, 0.5, 0.9), Scores(0.75, 0.8, 0.89),
                            drawings=8, trained_on=6, held_out=2, replayed=300, seconds=1.5)
    (named / "finetune.json").write_text(json.dumps(report.to_dict()))
    assert read_report(named)["base_run"] == LINE  # a report the page shows
    item = {"sweep": "s1", "sweep_name": PAYLOAD, "config": CONFIG.to_dict(), "data": PAYLOAD,
            "swept": ["learning_rate"], "state": "finished", "run": sourced.name, "error": PAYLOAD,
            "queued_at": time.time()}
    (runs / "queue.json").write_text(json.dumps({"items": [{**item, "item": "s1-0"}, {**item, "item": "s1-1"}]}))
    _drawings(tmp_path / "drawings", ["__evil__.png", "www.png"])
    assert [run.path for run in list_runs(runs)] == [named, sourced, damaged]
    assert list_runs(runs)[2].status == "damaged" and "evil" in list_runs(runs)[2].error
    return {"named": named, "sourced": sourced, "damaged": damaged}


def _show(at: AppTest, view: str, run: Path | None, **state) -> list[str]:
    at.session_state[VIEW_TAB_KEY] = view
    at.session_state[RUN_KEY] = str(run) if run else None
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # A panel that failed would hide what it shows: every one must have drawn.
    assert not [e.value for e in at.error if "ran into a problem" in e.value]
    return leaks_in(at)


def _witnessed(at: AppTest, words: str) -> bool:
    """Whether some Markdown of the page shows `words` (escaped as plain() escapes them)."""
    return any(plain(words) in text for where, text in rendered_markdown(at) if where != "plotly_chart")


def test_every_view_shows_planted_markup_as_text(planted):
    """Each view, with each planted run picked and with none (the newest, the folder named in markup)."""
    at = new_page(timeout=90).run()
    assert not at.exception
    leaks = []
    for run in (None, *planted.values()):
        for view in VIEWS:
            found = _show(at, view.name, run)
            leaks += [f"{view.name}, {run.name if run else 'none'} picked: {leak}" for leak in found]
    assert not leaks, "\n".join(leaks)


def test_the_places_that_quote_files_show_them_as_text(planted):
    """Each place that quotes a planted file, opened as a person would, shows it escaped (and so the
    test above is not vacuous)."""
    at = new_page(timeout=90).run()
    named, sourced, damaged = planted["named"], planted["sourced"], planted["damaged"]
    # The folder's name: the banner, the result, and the titles of the views.
    assert _show(at, "Mistakes", named) == []
    assert _witnessed(at, named.name) and _witnessed(at, f"Saved run {named.name}")
    # A data source: every view that loads the run's data says it cannot, quoting it.
    assert _show(at, "Units", sourced) == []
    assert any("evil" in e.value and "cannot be loaded" in e.value for e in at.error)
    # A damaged file's error: picked in the table, and picked for the views (the charts say why not).
    table = f"runs_table_{named.name}_3"
    assert _show(at, "Runs & comparison", None, **{table: {"selection": {"rows": [2], "columns": []}}}) == []
    assert any(damaged.name in w.value and "evil" in w.value for w in at.warning)
    assert _show(at, "Inside a prediction", damaged) == []
    assert any("evil" in e.value for e in at.error)
    # Names in the comparison's legends and the delete confirmation.
    assert _show(at, "Runs & comparison", named, compare_runs=[named.name, sourced.name]) == []
    assert any(m.value.startswith(f"Move **{plain(NAME)}**") for m in at.markdown)
    legends = [trace.get("name", "") for c in at.get("plotly_chart") for trace in json.loads(c.proto.spec)["data"]]
    assert NAME in legends  # as written: Plotly reads no Markdown, and the name holds no HTML
    # The fine-tuning report and a drawing's file name, in Your drawings.
    assert _show(at, "Your drawings", named, drawings_selected="__evil__.png") == []
    assert any("fine-tuned from" in s.value and "evil" in s.value for s in at.success)
    assert [m.value for m in at.markdown if m.value.startswith("**\\_\\_evil\\_\\_.png**")]
    # A saved drawing followed in Inside a prediction.
    assert _show(at, "Inside a prediction", named, explain_source="A saved drawing",
                 explain_saved_drawing="www.png") == []
    assert any(f"www{WORD_JOINER}.png" in c.value for c in at.caption)


def test_a_broken_queue_and_drawings_folder_are_reported_as_text(app_env, tmp_path, sample_data):
    runs, drawings = app_env, tmp_path / "drawings"
    _run(runs, len(sample_data.y_test))  # a model, for Inside a prediction to ask about a drawing
    item = {"item": "s1-0", "sweep": "s1", "sweep_name": "x", "config": CONFIG.to_dict(), "data": "sample",
            "swept": ["learning_rate"], "run": SHORT}  # not a folder's name: the queue is refused, quoting it
    (runs / "queue.json").write_text(json.dumps({"items": [item]}))
    drawings.mkdir()
    (drawings / "labels.csv").write_text(f"file,label,created\n{SHORT}.png,3,1.7e9\n")
    at = new_page(timeout=90).run()
    assert _show(at, "Runs & comparison", None) == []
    assert any("could not be read" in w.value and "evil" in w.value for w in at.warning)
    assert _show(at, "Your drawings", None) == []
    assert any("cannot be read" in e.value and "evil" in e.value for e in at.error)
    assert _show(at, "Inside a prediction", None, explain_source="A saved drawing") == []
    assert any("saved drawings cannot be read" in e.value and "evil" in e.value for e in at.error)
