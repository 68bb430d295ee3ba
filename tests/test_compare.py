"""Comparing runs: only the settings that differ, and what each run reached."""

from __future__ import annotations

import json

from mlpdash.cli import main
from mlpdash.compare import comparison, differing_settings
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
