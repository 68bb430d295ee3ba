"""Comparing runs: only the settings that differ, and what each run reached."""

from __future__ import annotations

import json

import pytest

from mlpdash import figures
from mlpdash.cli import main
from mlpdash.compare import (
    comparison,
    comparison_table,
    differing_settings,
    run_label,
    runs_table_row,
    shown_value,
    state_counts,
    sweep_label,
    sweep_rows,
    sweep_table,
)
from mlpdash.config import TrainConfig
from mlpdash.runs import RunWriter, read_info


def _run(root, config: TrainConfig, accuracy: float | None, source: str = "sample"):
    writer = RunWriter(root, config, source)
    if accuracy is not None:
        writer.write_summary({"test_accuracy": accuracy, "stopped_early": False, "epochs_completed": config.epochs,
                              "train_seconds": 12.5})
    writer.close()
    return writer.path


def test_only_the_settings_that_differ_are_compared(tmp_path):
    a = _run(tmp_path / "a", TrainConfig(hidden=(64,), learning_rate=0.001, epochs=2), 0.91)
    b = _run(tmp_path / "b", TrainConfig(hidden=(64,), learning_rate=0.01, epochs=2), 0.88)
    c = _run(tmp_path / "c", TrainConfig(hidden=(), learning_rate=0.001, epochs=2), None, source="keras")
    infos = [read_info(p) for p in (a, b, c)]
    assert differing_settings(infos) == ["hidden", "learning_rate", "data"]
    assert differing_settings(infos[:1]) == []
    rows = comparison(infos)
    assert rows[0]["settings"] == {"hidden": [64], "learning_rate": 0.001, "data": "sample"}
    assert rows[1]["test_accuracy"] == 0.88 and rows[1]["train_seconds"] == 12.5
    assert rows[2]["test_accuracy"] is None and rows[2]["parameters"] == 785 * 10
    assert rows[0]["parameters"] == TrainConfig(hidden=(64,)).parameters


def test_the_compare_command(tmp_path, capsys):
    a = _run(tmp_path / "a", TrainConfig(hidden=(64,), epochs=1), 0.91)
    b = _run(tmp_path / "b", TrainConfig(hidden=(32,), epochs=1), 0.89)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{a.name} (finished): hidden [64]; test accuracy 0.9100, 1 epoch, 12.5 s of training, " \
                     f"{TrainConfig(hidden=(64,)).parameters:,} parameters"
    assert main(["compare", "--json", str(a), str(b)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["settings"] for r in rows] == [{"hidden": [64]}, {"hidden": [32]}]
    assert main(["compare", str(a), str(tmp_path / "nowhere")]) == 2
    assert "no run folder at" in capsys.readouterr().err


def test_a_sweeps_rows_follow_its_queue_and_its_run_folders(tmp_path):
    from mlpdash.sweep import RunQueue, grid

    queue = RunQueue()
    sweep = queue.add(grid(TrainConfig(epochs=1), {"learning_rate": [0.001, 0.01], "hidden": [(8,)]}), "sample",
                      "lr", ["learning_rate"])
    first, second = sweep.items
    done = _run(tmp_path, first.config, 0.9)
    queue.update(first.item, state="finished", run=done.name)
    queue.update(second.item, state="interrupted", run="20260101-000000-gone00")  # deleted since
    rows = sweep_rows(queue.sweeps()[0], {info.run_id: info for info in [read_info(done)]})
    assert [(r["learning_rate"], r["state"], r["test_accuracy"]) for r in rows] == [
        (0.001, "finished", 0.9), (0.01, "deleted", None)]
    assert "hidden" not in rows[0] and rows[0]["run"] == done.name and rows[0]["epochs"] == 1


# --- the comparison's figures -------------------------------------------------------------------


def _metrics(epochs: int, start: float) -> list[dict[str, float]]:
    return [{"epoch": e, "loss": start / e, "accuracy": 1 - start / (e + 2), "val_loss": start / e + 0.1,
             "val_accuracy": 1 - start / (e + 1), "seconds": 1.0} for e in range(1, epochs + 1)]


def test_a_run_keeps_its_colour_whatever_else_is_ticked():
    colours = figures.run_colours(["a", "b", "c"])
    assert len(set(colours.values())) == 3
    assert figures.run_colours(["a", "b", "c", "d"])["b"] == colours["b"]  # a newer run changes nothing


def test_the_curves_overlay_one_solid_validation_curve_a_run_and_dashed_training_on_demand():
    runs = [("one", "#111111", _metrics(3, 0.2)), ("two", "#222222", _metrics(2, 0.1))]
    fig = figures.compare_curves_figure(runs, "accuracy")
    assert [t.name for t in fig.data] == ["one", "two"] and {t.line.dash for t in fig.data} == {"solid"}
    assert list(fig.data[1].y) == pytest.approx([1 - 0.1 / 2, 1 - 0.1 / 3])
    both = figures.compare_curves_figure(runs, "loss", show_training=True)
    assert [(t.line.color, t.line.dash, t.showlegend) for t in both.data] == [
        ("#111111", "solid", True), ("#111111", "dash", False), ("#222222", "solid", True), ("#222222", "dash", False)]
    assert both.layout.yaxis.type == "log"
    with pytest.raises(ValueError):
        figures.compare_curves_figure(runs, "speed")
    assert figures.compare_curves_figure([], "loss").layout.annotations[0].text == "tick runs to compare them"


def test_the_error_rates_per_digit_stand_side_by_side_and_an_untested_run_is_named():
    per = [0.99, 0.98, 0.9, 0.95, 0.97, 0.96, 0.99, 0.94, 0.93, 0.92]
    fig = figures.per_class_compare_figure([("one", "#111111", per), ("two", "#222222", None)])
    assert len(fig.data) == 1 and fig.layout.barmode == "group"
    assert list(fig.data[0].y) == pytest.approx([1 - v for v in per])
    assert "two: not tested" in fig.layout.title.text


def test_the_error_rates_per_digit_with_no_tested_run_span_0_to_100_percent_over_the_ten_digits():
    fig = figures.per_class_compare_figure([("two", "#222222", None)])
    assert not fig.data and fig.layout.annotations[0].text == "no tested run ticked"
    assert tuple(fig.layout.yaxis.range) == (0, 1)  # not Plotly's 0-400 % for no data
    assert list(fig.layout.xaxis.categoryarray) == [str(d) for d in range(10)]


def test_the_sweep_chart_has_an_axis_a_setting_and_one_for_accuracy():
    rows = [{"learning_rate": lr, "hidden": hidden, "test_accuracy": acc, "name": f"run {n}"}
            for n, (lr, hidden, acc) in enumerate([(0.001, [16], 0.9), (0.01, [16], 0.8), (0.001, [], 0.85),
                                                   (0.01, [], None)])]
    fig = figures.sweep_figure(rows, ["learning_rate", "hidden"])
    assert list(fig.layout.xaxis.ticktext) == ["learning_rate (log)", "hidden", "test accuracy"]
    lines = [trace for trace in fig.data if trace.mode == "lines+markers"]
    assert [t.name for t in lines] == ["run 0", "run 1", "run 2"]  # the untested run has no line
    # Heights on each axis: learning rate 0.001 low and 0.01 high (log), hidden in the order met,
    # accuracy from the lowest (0.8) to the highest (0.9).
    assert [list(t.y) for t in lines] == [pytest.approx(y) for y in ([0, 0, 1], [1, 0, 0], [0, 1, 0.5])]
    assert list(lines[2].customdata) == ["learning_rate 0.001", "hidden linear", "test accuracy 85%"]
    ticks = [(a.x, a.text) for a in fig.layout.annotations]
    assert (0, "0.001") in ticks and (0, "0.01") in ticks and (1, "16") in ticks and (1, "linear") in ticks
    assert figures.sweep_figure(rows[3:], ["learning_rate"]).layout.annotations[-1].text == \
        "no run of this sweep has been tested yet"


def test_a_two_run_sweep_draws_two_thick_lines_in_colours_told_apart_with_accuracies_that_read_apart():
    """Issue 21: the chart of a 2-run sweep looked empty and its colour bar read 97 %, 97 %, 96 %."""
    rows = [{"learning_rate": 0.003, "test_accuracy": 0.9712, "name": "a"},
            {"learning_rate": 0.03, "test_accuracy": 0.9689, "name": "b"}]
    fig = figures.sweep_figure(rows, ["learning_rate"])
    lines = [trace for trace in fig.data if trace.mode == "lines+markers"]
    assert len(lines) == 2 and all(t.line.width >= 3 and t.marker.size >= 8 for t in lines)
    assert lines[0].line.color != lines[1].line.color
    for trace in lines:  # no colour near the page's white
        red, green, blue = (int(v) for v in trace.line.color[4:-1].split(","))
        assert 0.299 * red + 0.587 * green + 0.114 * blue < 200, trace.line.color
    assert all(0 <= y <= 1 for t in lines for y in t.y)
    [scale] = [trace for trace in fig.data if trace.marker.showscale]
    labels = list(scale.marker.colorbar.ticktext)
    assert labels == ["96.9%", "97.1%"] and list(scale.marker.colorbar.tickvals) == [0.9689, 0.9712]
    accuracy_ticks = [a.text for a in fig.layout.annotations if a.x == 1]
    assert accuracy_ticks == ["96.9%", "97.1%"]


def test_a_setting_every_run_shares_sits_mid_axis_and_close_accuracies_get_more_decimals():
    rows = [{"dropout": 0.2, "seed": seed, "test_accuracy": acc, "name": str(seed)}
            for seed, acc in [(1, 0.97121), (2, 0.97124), (3, 0.97124)]]
    fig = figures.sweep_figure(rows, ["dropout", "seed"])
    lines = [trace for trace in fig.data if trace.mode == "lines+markers"]
    assert [t.y[0] for t in lines] == [0.5, 0.5, 0.5]  # one dropout for all: the middle, not an end
    [scale] = [trace for trace in fig.data if trace.marker.showscale]
    assert list(scale.marker.colorbar.ticktext) == ["97.121%", "97.124%"]
    same = figures.sweep_figure([{**rows[0], "test_accuracy": 0.95}, {**rows[1], "test_accuracy": 0.95}],
                                ["seed"])
    [scale] = [trace for trace in same.data if trace.marker.showscale]
    assert scale.marker.cmin < 0.95 < scale.marker.cmax
    assert [t.y[-1] for t in same.data if t.mode == "lines+markers"] == [0.5, 0.5]


def test_the_percent_labels_use_the_fewest_decimals_that_tell_values_apart():
    from mlpdash.figures.compare import _percent_texts

    assert _percent_texts([0.97, 0.96]) == ["97%", "96%"]
    assert _percent_texts([0.9712, 0.9689, 0.9712]) == ["97.1%", "96.9%", "97.1%"]
    assert _percent_texts([0.97121, 0.97124]) == ["97.121%", "97.124%"]


def test_a_runs_name_is_shown_as_written_never_as_markup_or_a_template():
    fig = figures.compare_curves_figure([("<b>x</b> %{y}", "#111111", _metrics(1, 0.1))], "accuracy")
    assert fig.data[0].name == "&lt;b&gt;x&lt;/b&gt; %{y}" and "<b>" not in fig.data[0].hovertemplate


# --- what the page shows, computed headless


def test_the_comparison_table_shows_every_cell_as_text():
    assert [shown_value(v) for v in ([700, 500], [], 0.0003, 128, "relu", None)] == [
        "700,500", "none (linear)", "0.0003", "128", "relu", "None"]


def test_runs_ticked_are_compared_in_a_table_of_text(tmp_path):
    a = _run(tmp_path / "a", TrainConfig(hidden=(64,), learning_rate=0.001, epochs=2), 0.91)
    c = _run(tmp_path / "c", TrainConfig(hidden=(), learning_rate=0.001, epochs=2), None, source="keras")
    first, untested = (read_info(p) for p in (a, c))
    rows = comparison_table([first, untested])
    assert rows[0] == {"run": first.title, "state": "finished", "hidden": "64", "data": "sample",
                       "test accuracy": "91.00%", "epochs": 2, "training time": "12 s",
                       "parameters": f"{TrainConfig(hidden=(64,)).parameters:,}"}
    assert (rows[1]["hidden"], rows[1]["test accuracy"], rows[1]["training time"]) == ("none (linear)", "—", "—")
    assert run_label(first) == f"{first.title} · 784-64-10 · 91.00%"
    assert run_label(untested) == f"{untested.title} · 784-10 linear · {untested.label}"


def test_a_saved_run_is_a_row_of_the_runs_table(tmp_path):
    info = read_info(_run(tmp_path, TrainConfig(hidden=(64,), epochs=2), 0.91234))
    assert runs_table_row(info) == {"run": info.run_id, "name": info.name, "status": "finished",
                                    "model": "784-64-10", "epochs": f"{info.epochs_completed}/2",
                                    "test accuracy": "0.9123", "data": "sample", "note": info.note}
    # A phone shows the grid's first columns: what tells runs apart comes first.
    assert list(runs_table_row(info))[:3] == ["run", "name", "test accuracy"]


def test_a_sweep_is_listed_counted_and_tabled_as_the_page_shows_it(tmp_path):
    from mlpdash.sweep import RunQueue, grid

    queue = RunQueue()
    queue.add(grid(TrainConfig(epochs=1), {"learning_rate": [0.001, 0.01, 0.1], "hidden": [(8,), ()]}), "sample",
              "lr and size", ["learning_rate", "hidden"])
    items = queue.items()
    done = _run(tmp_path, items[0].config, 0.9)
    queue.update(items[0].item, state="finished", run=done.name)
    queue.update(items[1].item, state="running")
    sweep = queue.sweeps()[0]
    assert sweep_label(sweep) == "lr and size · 6 runs"
    assert state_counts(sweep) == {"finished": 1, "running": 1, "queued": 4}
    table = sweep_table(sweep_rows(sweep, {done.name: read_info(done)}), sweep.swept)
    assert table[0] == {"learning rate": "0.001", "hidden": "8", "state": "finished", "test accuracy": 90.0,
                        "epochs": 1, "training time (s)": 12.5, "run": done.name}
    assert table[1]["hidden"] == "none (linear)" and table[1]["test accuracy"] is None and table[1]["run"] == "—"
    for item in items[1:]:
        queue.update(item.item, state="cancelled")
    # The picker's label does not change as the sweep goes on (a changed label left the browser showing
    # a stale one, issue 21); how far it got is counted beside it.
    assert sweep_label(queue.sweeps()[0]) == "lr and size · 6 runs"
    assert state_counts(queue.sweeps()[0]) == {"finished": 1, "cancelled": 5}

