"""`python -m mlpdash bench --drawings N`: the Your drawings tab's cost with a folder of N drawings.
It drives the page itself (Streamlit's AppTest), so it lives with the page's code; like every UI
module it imports nothing of `mlpdash.bench` (the page must not depend on the measuring code).

A folder of N drawings (test digits of the bundled sample drawn large on a 280-px canvas, as Save as…
keeps them) is made by importing a zip, as a class's drawings arrive; they are then prepared once for
the model (kept in the folder, see `drawings.prepared`). The real page (`app.py`, run by Streamlit's
AppTest as the server runs it) is opened on the tab beside a saved model of the default size, and
every step a user takes is timed server side: opening the tab in a new session, a rerun, a digit
filter, a gallery page, selecting a drawing, relabelling it, a drawing on the canvas and Save as…. The
issue's goal is each rerun at most 1 s server side with 10,000 drawings.
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
TAB = "Your drawings"
# mlpdash/ui/drawing.py's CANVAS_SIZE, restated: importing that module registers the canvas component,
# which Streamlit refuses outside a running page.
CANVAS = 280
RERUNS = 5  # times each quick step is timed


def drawings_zip(count: int) -> bytes:
    """`count` drawings as an exported zip: sample test digits, each blown up onto a canvas."""
    from PIL import Image

    from mlpdash.drawings import FIELDS, LABELS
    from mlpdash.data import load_mnist

    data = load_mnist("sample")
    buffer = io.BytesIO()
    rows = [",".join(FIELDS)]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            digit = data.x_test[i % len(data.x_test)]
            canvas = np.zeros((CANVAS, CANVAS), np.uint8)
            canvas[40:240, 40:240] = np.asarray(Image.fromarray(digit).resize((200, 200), Image.Resampling.BILINEAR))
            png = io.BytesIO()
            Image.fromarray(canvas, "L").save(png, format="PNG")
            name = f"bench-{i:05d}.png"
            archive.writestr(name, png.getvalue())
            rows.append(f"{name},{int(data.y_test[i % len(data.y_test)])},{1.7e9 + i:.3f}")
        archive.writestr(LABELS, "\n".join(rows) + "\n")
    return buffer.getvalue()


def _saved_model(runs: Path) -> None:
    """A finished run of the default architecture (random weights: the cost does not depend on them)."""
    from mlpdash.config import TrainConfig
    from mlpdash.runs import RunWriter, layer_shapes

    config, rng = TrainConfig(), np.random.default_rng(0)
    writer = RunWriter(runs, config, "sample")
    writer.write_model_weights([rng.normal(0, 0.05, shape).astype(np.float32) for shape in layer_shapes(config)])
    writer.write_summary({"test_accuracy": 0.1, "stopped_early": False, "epochs_completed": 1, "outcome": "finished"})
    writer.close()


def _canvas_state(grey: np.ndarray) -> dict[str, Any]:
    """What the canvas widget sends for a drawing (ink white on black): its RGBA image as a PNG data URL."""
    import base64

    from PIL import Image

    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    png = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(png, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    return {"drawing": {"raw": {"objects": []}, "data": url}, "backgroundFit": None}


def _timed(action: Callable[[], Any], times: int = 1) -> list[float]:
    seconds = []
    for _ in range(times):
        began = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - began)
    return seconds


def print_drawings(count: int) -> None:
    from streamlit.testing.v1 import AppTest

    from mlpdash.drawings import import_zip, listing, prepared

    with tempfile.TemporaryDirectory(prefix="mlpdash-bench-drawings-") as folder:
        root, runs = Path(folder) / "drawings", Path(folder) / "runs"
        archive = drawings_zip(count)
        [imported] = _timed(lambda: import_zip(root, archive))
        [preparing] = _timed(lambda: prepared(root, listing(root)))
        _saved_model(runs)
        print(f"your drawings, {count:,} in the folder ({len(archive) / 2**20:.1f} MB zip):", flush=True)
        print(f"  import: {imported:.1f} s; preparing them all for the model, once (kept in the folder): "
              f"{preparing:.1f} s", flush=True)
        saved = {name: os.environ.get(name) for name in ("MLPDASH_DRAWINGS", "MLPDASH_RUNS", "MLPDASH_DATA")}
        os.environ.update(MLPDASH_DRAWINGS=str(root), MLPDASH_RUNS=str(runs), MLPDASH_DATA="sample")
        try:
            _print_page_steps(AppTest, root)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _print_page_steps(app_test: Any, root: Path) -> None:
    from mlpdash.drawings import listing, load

    at = app_test.from_file(str(REPO_ROOT / "app.py"), default_timeout=600)
    at.run()  # the page as it opens, TensorFlow imported: not this tab's cost

    def run() -> None:
        at.run()
        if at.exception:
            raise RuntimeError(f"the page failed: {at.exception[0].value}")

    def opened() -> None:
        at.session_state["view_tab"] = TAB
        run()

    kept = listing(root)
    steps: dict[str, list[float]] = {"open the tab (a new session)": _timed(opened)}
    steps["a rerun"] = _timed(run, RERUNS)
    filters = iter(str(d) for d in range(10))
    steps["show one digit"] = _timed(lambda: (at.session_state.__setitem__("drawings_filter", next(filters)), run()),
                                     RERUNS)
    at.session_state["drawings_filter"] = "all digits"
    pages = iter(range(2, 2 + RERUNS))
    steps["another gallery page"] = _timed(lambda: (at.session_state.__setitem__("drawings_page", next(pages)),
                                                    run()), RERUNS)
    picks = iter(kept[::max(1, len(kept) // RERUNS)])
    steps["select a drawing"] = _timed(lambda: (at.session_state.__setitem__("drawings_selected", next(picks).file),
                                                run()), RERUNS)

    def choose_label() -> None:
        drawing = next(d for d in listing(root) if d.file == at.session_state["drawings_selected"])
        at.selectbox(key=f"drawings_label_{drawing.file}").set_value((drawing.label + 1) % 10)
        run()

    def relabel() -> None:
        at.button(key="drawings_relabel").click()
        run()

    steps["choose another label"] = _timed(choose_label)
    steps["relabel it"] = _timed(relabel)
    for _ in range(2):
        steps["choose another label"] += _timed(choose_label)
        steps["relabel it"] += _timed(relabel)
    strokes, saves = [], []
    for drawing in kept[:RERUNS]:
        generation = at.session_state["canvas_generation"]
        at.session_state[f"canvas_{generation}"] = _canvas_state(load(root, drawing))
        strokes += _timed(run)
        at.button(key="save_as_3").click()
        saves += _timed(run)
    steps["a drawing on the canvas, the tab open"] = strokes
    steps["Save as… (the new drawing prepared and answered)"] = saves
    for name, seconds in steps.items():
        median = statistics.median(seconds) if len(seconds) > 1 else seconds[0]
        print(f"  {name}: median {median * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms "
              f"({len(seconds)} times)", flush=True)
    worst = max(max(seconds) for seconds in steps.values())
    print(f"  slowest step {worst * 1000:.0f} ms (goal: each rerun <= 1000 ms server side)", flush=True)
