"""The one private Streamlit hook we replace: installed by app.py, and a warning when it is gone."""

from __future__ import annotations

import logging

from streamlit.runtime.scriptrunner import script_runner

from mlpdash import ui


def test_the_page_replaces_streamlits_cleanup_after_each_run(monkeypatch):
    monkeypatch.setattr(script_runner, "_clean_problem_modules", lambda: "cleared", raising=False)
    ui.keep_keras_state_between_reruns.clear()
    assert ui.keep_keras_state_between_reruns() is True
    assert script_runner._clean_problem_modules() is None  # ours: clears nothing


def test_a_streamlit_without_the_hook_is_told_in_the_log_not_silently_ignored(monkeypatch, caplog):
    monkeypatch.delattr(script_runner, "_clean_problem_modules", raising=False)
    ui.keep_keras_state_between_reruns.clear()
    with caplog.at_level(logging.WARNING, logger="mlpdash"):
        assert ui.keep_keras_state_between_reruns() is False
    assert "_clean_problem_modules" in caplog.text
    ui.keep_keras_state_between_reruns.clear()  # the next caller installs it again


def test_app_py_installs_it_before_anything_else_runs():
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[1] / "app.py").read_text())
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    first = main.body[0]
    assert isinstance(first, ast.Expr) and ast.unparse(first.value) == "keep_keras_state_between_reruns()"
