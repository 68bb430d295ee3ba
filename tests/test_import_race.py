"""Figures built while another thread is still importing pandas (a cold server with several tabs).

Plotly looks pandas up in sys.modules without importing it; a fragment of one session building a
figure while another session's script thread was half-way through importing pandas failed with
"partially initialized module 'pandas' has no attribute 'Series'". Reproduced on a cold interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RACE = r"""
import sys, threading, traceback
import numpy as np

errors, built = [], [0]
importing = threading.Event()
imported = threading.Event()

def fragment():
    from mlpdash import figures  # what every panel module does first
    importing.wait(30)
    while not imported.is_set() or built[0] < 20:
        try:
            figures.loss_figure([], np.linspace(2, 0.1, 50, dtype=np.float32), batches_per_epoch=10)
            figures.accuracy_figure([{"epoch": 1, "accuracy": 0.9, "val_accuracy": 0.91}])
            built[0] += 1
        except Exception:
            errors.append(traceback.format_exc(limit=2))
            return

def script_thread():
    importing.set()
    import pandas  # the first import, as a session's script run makes it (through Streamlit)
    imported.set()

threads = [threading.Thread(target=fragment) for _ in range(4)]
for t in threads:
    t.start()
# A moment for the fragments to be waiting, as sessions are when another one starts.
import time; time.sleep(0.2)
script = threading.Thread(target=script_thread)
script.start()
for t in threads:
    t.join(60)
script.join(60)
print("built", built[0], "errors", len(errors))
if errors:
    print(errors[0])
    sys.exit(1)
"""


def test_figures_never_see_a_half_imported_pandas():
    # The race needs a cold interpreter (pandas not yet imported): a subprocess.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(3):  # a race: try it a few times
        result = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120,
                                cwd=REPO, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "errors 0" in result.stdout
