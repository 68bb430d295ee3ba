"""Figures built while another thread is still importing pandas (a cold server with several tabs).

Plotly looks pandas up in sys.modules without importing it; a fragment of one session building a
figure while another session's script thread was half-way through importing pandas failed with
"partially initialized module 'pandas' has no attribute 'Series'". The fix: mlpdash.figures imports
pandas itself, so a thread that can build a figure has waited until pandas is whole.

No race to win: the importing thread is held half-way through pandas' import (at the first import
statement of pandas' __init__, `pandas` in sys.modules with none of its names yet) while the other thread
builds its figures, so the tests give the same answer every time. A control shows that the hold reproduces the
failure: a plain Plotly figure built at that moment fails. Without the fix the first test fails on every
run (checked with the import removed); the race it replaces passed without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HELD_IMPORT = r"""
import builtins, sys, threading, time, traceback

BUILDER = sys.argv[1]  # "figures": mlpdash's builders; "plotly": a plain Plotly figure (the control)
imported, build, release, held = (threading.Event() for _ in range(4))
errors = []


real_import = builtins.__import__


def holding_import(name, globals=None, locals=None, fromlist=(), level=0):
    # Stops the script thread at the first import statement inside pandas' own __init__: `pandas` is
    # then in sys.modules, half initialised, until `release`. (An import hook's find_spec would hold
    # Python's global import lock meanwhile and stop every other thread's imports too.)
    if (threading.current_thread().name == "script" and not held.is_set()
            and (globals or {}).get("__name__") == "pandas"):
        held.set()
        release.wait(60)
    return real_import(name, globals, locals, fromlist, level)


builtins.__import__ = holding_import


def fragment():
    import numpy as np

    if BUILDER == "figures":
        from mlpdash import figures  # what every panel module does first
    else:
        import plotly.graph_objects as go
    imported.set()
    build.wait(60)
    try:
        if BUILDER == "figures":
            figures.loss_figure([], np.linspace(2, 0.1, 50, dtype=np.float32), batches_per_epoch=10)
            figures.accuracy_figure([{"epoch": 1, "accuracy": 0.9, "val_accuracy": 0.91}])
        else:
            go.Figure(go.Scatter(x=[1, 2], y=[0.5, 0.25]))
    except Exception:
        errors.append(traceback.format_exc(limit=3))


def script():
    import pandas  # the first import, as a session's script run makes it (through Streamlit)


building = threading.Thread(target=fragment, name="fragment")
building.start()
assert imported.wait(60)
importing = threading.Thread(target=script, name="script")
importing.start()
deadline = time.monotonic() + 60
while not held.is_set() and importing.is_alive():  # held half-way, or nothing left to import
    assert time.monotonic() < deadline
    time.sleep(0.005)
print("held half-way:", held.is_set(), "| pandas.Series there:", hasattr(sys.modules.get("pandas"), "Series"))
build.set()
building.join(60)
release.set()
importing.join(60)
print("errors", len(errors))
if errors:
    print(errors[0])
    sys.exit(1)
"""


def held_import(builder: str) -> subprocess.CompletedProcess:
    # A cold interpreter: pandas not imported yet.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", HELD_IMPORT, builder], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)


def test_figures_never_see_a_half_imported_pandas():
    result = held_import("figures")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "errors 0" in result.stdout
    # Importing mlpdash.figures imported pandas whole: the other thread had nothing left to import.
    assert "held half-way: False | pandas.Series there: True" in result.stdout, result.stdout


def test_the_hold_reproduces_the_failure_with_a_plain_plotly_figure():
    """The control: were Plotly to stop reading pandas from sys.modules, this would fail, and the fix in
    mlpdash.figures (and the test above) could go."""
    result = held_import("plotly")
    assert "held half-way: True | pandas.Series there: False" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 1 and "errors 1" in result.stdout, result.stdout + result.stderr
    assert "partially initialized module 'pandas' has no attribute" in result.stdout, result.stdout
