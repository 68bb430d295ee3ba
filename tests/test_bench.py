"""The bench's own bookkeeping, without TensorFlow, a server or a browser."""

from __future__ import annotations

import argparse
import re

import pytest

from mlpdash import bench
from mlpdash.cli import _tab_counts, main


def test_tab_counts_parse_and_reject():
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
    assert bench._server_drawing_seconds(log) == pytest.approx([0.3, 0.2])


def test_rate_counts_calls_inside_the_window(tmp_path):
    log = tmp_path / "timings.txt"
    log.write_text("".join(f"1 live {t} {t + 0.01}\n" for t in (99.0, 100.5, 101.0, 102.0, 103.0)))
    window = bench.Throughput(samples_per_s=1.0, epochs=1, window_s=2.0, pace=None, server_cpu_s=None,
                              browser_cpu_s=None, ended=102.0)
    assert bench._rate(log, "live", window) == pytest.approx(1.5)


def test_cpu_seconds_of_this_process_grow():
    import os

    before = bench._cpu_seconds([os.getpid()])
    sum(i * i for i in range(2_000_000))
    assert bench._cpu_seconds([os.getpid(), 999_999_999]) > before


def test_bench_explain_prints_the_explanation_map_and_attack_figures(tiny_data, tmp_path, capsys, monkeypatch):
    from mlpdash import cli
    from mlpdash.config import TrainConfig
    from mlpdash.training import TrainingJob

    job = TrainingJob(TrainConfig(hidden=(32,), epochs=2, batch_size=64), tiny_data, tmp_path).start()
    assert job.join(120)
    monkeypatch.setattr(cli, "EXPLAIN_DIGITS", 5)
    monkeypatch.setattr(cli, "EXPLAIN_ATTACKS", 5)
    assert main(["bench", "--skip-training", "--latency-calls", "1", "--explain", "--explain-model",
                 str(job.snapshot().run_dir), "--data", "sample"]) == 0
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
