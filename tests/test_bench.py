"""The bench's own bookkeeping, without TensorFlow, a server or a browser; the bench's modes print
their figures; and the layering: the UI never imports the bench, the bench never imports the UI."""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import mlpdash
from mlpdash import bench
from mlpdash.bench import controls, run_loading
from mlpdash.bench.streamlit_server import rate, server_drawing_seconds
from mlpdash.bench.throughput import cpu_seconds
from mlpdash.cli import main

PACKAGE = Path(mlpdash.__file__).parent


def _cli_module_with(name: str):
    """The module of the CLI that defines `name` (mlpdash.cli, or one of its modules once it is a package)."""
    import mlpdash.cli as cli

    modules = [cli] + [importlib.import_module(info.name)
                       for info in pkgutil.walk_packages(getattr(cli, "__path__", []), "mlpdash.cli.")]
    return next(module for module in modules if name in vars(module))


def _imported_modules(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every module a source file under `root` imports, at any depth (functions included), relative
    imports resolved against the file's package; `from X import Y` counts as X and X.Y (Y may be a
    module), and importlib.import_module("X") as X."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value))
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_nothing_in_the_ui_imports_the_bench():
    # The page must not depend on the measuring code: the bench may start the page, never the reverse.
    offenders = {str(path.relative_to(PACKAGE.parent)): sorted(m for m in _imported_modules(path)
                                                               if _within(m, "mlpdash.bench"))
                 for path in sorted((PACKAGE / "ui").rglob("*.py"))}
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_bench_imports_neither_streamlit_nor_the_ui():
    offenders = {str(path.relative_to(PACKAGE.parent)): sorted(m for m in _imported_modules(path)
                                                               if _within(m, "streamlit") or _within(m, "mlpdash.ui"))
                 for path in sorted((PACKAGE / "bench").rglob("*.py"))}
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_import_check_sees_every_way_of_importing(tmp_path):
    ui = tmp_path / "mlpdash" / "ui"
    ui.mkdir(parents=True)
    source = ui / "page.py"
    source.write_text("import os\n"
                      "def late():\n    from .. import bench\n"
                      "def later():\n    import mlpdash.bench.tabs\n"
                      "def latest():\n    importlib.import_module('mlpdash.bench')\n"
                      "from ..bench.common import CANVAS\n")
    found = _imported_modules(source, tmp_path)
    assert {"mlpdash.bench", "mlpdash.bench.tabs", "mlpdash.bench.common"} <= found and "os" in found


def test_tab_counts_parse_and_reject():
    _tab_counts = _cli_module_with("_tab_counts")._tab_counts
    assert _tab_counts("0,1,5") == [0, 1, 5]
    assert _tab_counts("") == []
    with pytest.raises(argparse.ArgumentTypeError):
        _tab_counts("one")
    with pytest.raises(argparse.ArgumentTypeError):
        _tab_counts("-1")


def test_bad_bench_flags_are_one_line_errors(capsys):
    assert main(["bench", "--memory-runs", "-1"]) == 2
    assert main(["bench", "--browser-nice", "20"]) == 2
    assert capsys.readouterr().err.count("\n") == 2


def test_rss_is_read_from_proc():
    assert 1 < bench.rss_mb() < 100_000


def test_server_drawing_pairs_preprocessing_with_the_prediction_of_the_same_thread(tmp_path):
    log = tmp_path / "timings.txt"
    log.write_text("1 preprocess 10.0 10.1\n"
                   "2 preprocess 10.05 10.2\n"
                   "1 predict 10.1 10.3\n"
                   "1 live 10.4 10.5\n"
                   "2 predict 10.2 10.25\n"
                   "3 predict 11.0 11.1\n")  # no preprocessing seen: not a drawing of ours
    assert server_drawing_seconds(log) == pytest.approx([0.3, 0.2])


def test_rate_counts_calls_inside_the_window(tmp_path):
    log = tmp_path / "timings.txt"
    log.write_text("".join(f"1 live {t} {t + 0.01}\n" for t in (99.0, 100.5, 101.0, 102.0, 103.0)))
    window = bench.Throughput(samples_per_s=1.0, epochs=1, window_s=2.0, pace=None, server_cpu_s=None,
                              browser_cpu_s=None, ended=102.0)
    assert rate(log, "live", window) == pytest.approx(1.5)


def test_cpu_seconds_of_this_process_grow():
    import os

    before = cpu_seconds([os.getpid()])
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds([os.getpid(), 999_999_999]) > before


def test_bench_explain_prints_the_explanation_map_and_attack_figures(trained_run, capsys, monkeypatch):
    monkeypatch.setattr(_cli_module_with("EXPLAIN_DIGITS"), "EXPLAIN_DIGITS", 5)
    monkeypatch.setattr(_cli_module_with("EXPLAIN_ATTACKS"), "EXPLAIN_ATTACKS", 5)
    assert main(["bench", "--skip-training", "--latency-calls", "1", "--explain", "--explain-model",
                 str(trained_run.run_dir), "--data", "sample"]) == 0
    out = capsys.readouterr().out
    assert "the map's basis" in out and "one input explained" in out and "5 canvas drawings" in out
    assert "targeted attack on 5 test digits" in out and "median epsilon" in out and "random sign noise" in out


def test_bench_over_time_prints_the_scrub_step_and_the_once_a_run_work(capsys):
    bench.print_over_time(epochs=2, steps=3)
    out = capsys.readouterr().out
    assert "weights over time (3 records of the default model, 700 first-layer units)" in out
    assert re.search(r"once a run: .* \d+ ms", out)
    assert re.search(r"one scrub step .*3 steps\): p50 [\d.]+ ms, p95 [\d.]+ ms \(goal <= 300 ms", out)


def test_bench_units_prints_the_lab_change_the_dream_and_the_ranking(capsys):
    bench.print_units("sample", changes=2)
    out = capsys.readouterr().out
    assert "test split of sample: 2,000 digits" in out
    assert re.search(r"one lab change .*: p50 [\d.]+ ms, max \d+ ms \(goal <= 1 s\)", out)
    assert re.search(r"wants to see \(gradient ascent\): \d+ ms \(goal <= 2 s\); the first layer's importance", out)


def test_bench_drawings_times_every_step_of_the_tab_on_the_real_page(capsys):
    from mlpdash.ui.bench_drawings import print_drawings

    print_drawings(450)  # three gallery pages
    out = capsys.readouterr().out
    assert "your drawings, 450 in the folder" in out
    assert re.search(r"import: [\d.]+ s; preparing them all for the model, once .*: [\d.]+ s", out)
    for step in ("open the tab (a new session)", "a rerun", "show one digit", "another gallery page",
                 "select a drawing", "choose another label", "relabel it", "a drawing on the canvas, the tab open",
                 "Save as… (the new drawing prepared and answered)"):
        assert re.search(rf"  {re.escape(step)}.*: median \d+ ms, max \d+ ms \(\d+ times\)", out), step
    assert re.search(r"slowest step \d+ ms \(goal: each rerun <= 1000 ms server side\)", out)


def test_bench_drawings_count_is_checked_first(capsys):
    assert main(["bench", "--drawings", "10001"]) == 2
    assert "--drawings is 0 to 10,000" in capsys.readouterr().err


def test_bench_controls_prints_the_pace_the_release_the_stop_and_the_uncounted_hold(capsys, monkeypatch):
    # The speed of the controls, which the unit tests no longer time (tests/test_training.py).
    monkeypatch.setattr(controls, "TRAIN_DIGITS", 500)
    monkeypatch.setattr(controls, "RATE_WINDOW_S", 0.5)
    bench.print_controls()
    out = capsys.readouterr().out
    assert re.search(r"slow motion at 500 digits/s, batches of 50: [\d.]+ batches/s \(goal 10\); full speed set "
                     r"mid-run: [\d,]+ batches/s", out), out
    assert re.search(r"a faster pace ends a 50 s hold: the next batch \d+ ms after set_pace", out), out
    assert re.search(r"a stop during a 50 s hold: the job ended \(evaluated and saved\) in [\d.]+ s \(goal < 10 s\), "
                     r"[01] batch\(es\) after the stop", out), out
    assert re.search(r"2 epochs at 1,000 digits/s \(each held about 0.5 s\) took [\d.]+ s .*; the epochs record "
                     r"[\d.]+, [\d.]+ s", out), out


def test_bench_run_loading_prints_the_refusal_and_the_lent_weights(capsys):
    run_loading.run_loading_child()
    out = capsys.readouterr().out
    assert re.search(r"model.weights.npz declaring a 94 MB first layer in \d+ KB: refused in \d+ ms, peak "
                     r"(\+[\d.]+ MB|not measurable here)", out), out
    assert re.search(r"legacy model.keras declaring a 300,000-unit layer \(941 MB to build\): loaded as the run's "
                     r"16-unit layer in \d+ ms", out), out
    assert re.search(r"a default-size run's weights for the views that explain it .*: \d+ ms read with NumPy, "
                     r"\d+ ms through a Keras model built to hold them", out), out


def test_page_bench_medians_ratios_and_the_goal_table():
    from mlpdash.bench.page_probes import GOALS, PageTimes, goal_table, per_repeat_ratio

    times = PageTimes(first={"Units": [2.0, 1.2, 1.4], "Weights over time": [0.9, 0.5, 0.7],
                             "Mistakes": [0.5, 0.7, 0.4]},
                      inside=[0.5, 0.4, 0.44], prediction=[0.31, 0.35, 0.29], opened=[],
                      ratios={1: [0.96, 0.90, 0.99], 5: [0.86, 0.72, 0.90]})
    measures = times.measures()
    assert measures["Units first"] == pytest.approx(1.4)
    assert measures["inside"] == pytest.approx(0.44) and measures["opened"] is None
    assert measures["1 of headless"] == pytest.approx(0.96)
    # 5 pages over 1 page within each repeat (both against the same headless run), then the median.
    assert per_repeat_ratio([0.86, 0.72, 0.90], [0.96, 0.90, 0.99]) == pytest.approx([0.86 / 0.96, 0.8, 0.90 / 0.99])
    assert measures["5 of 1"] == pytest.approx(0.86 / 0.96)
    lines = goal_table(measures)
    assert len(lines) == 1 + len(GOALS)
    rows = {line.split("  ")[2].strip(): line for line in lines[1:]}
    assert re.search(r"1\.40 s\s+<= 1\.5 s\s+yes$", rows["Units, first visit"])
    assert re.search(r"0\.31 s\s+<= 0\.3 s\s+NO$", rows["stroke -> prediction under the canvas"])
    assert re.search(r"not measured\s+<= 3 s\s+—$", rows["page opened while a job trains"])
    assert re.search(r"0\.896\s+>= 0\.85\s+yes$", rows["samples/s, 5 pages / 1 page"])
    assert re.search(r"0\.960\s+>= 0\.95\s+yes$", rows["samples/s, 1 page / headless"])


def test_page_bench_views_table_gives_medians_and_round_one_alone():
    from mlpdash.bench.page_probes import views_table

    lines = views_table({"Units": [6.0, 1.0, 1.2], "Data": [0.3]}, {"Units": [1.5, 0.8, 0.9]})
    assert re.search(r"Units\s+1\.20 s\s+0\.90 s\s+6\.00 s / 1\.50 s$", lines[1])
    assert re.search(r"Data\s+0\.30 s\s+—\s+0\.30 s / —$", lines[2])


def test_bench_page_flags_are_checked_first(capsys):
    assert main(["bench", "--page", "--page-repeats", "0"]) == 2
    assert "--page-repeats must be at least 1" in capsys.readouterr().err
