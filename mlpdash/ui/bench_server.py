"""The bench's Streamlit server: `streamlit run` with the page's drawing path timed inside it.

Started by `python -m mlpdash bench --tabs` (mlpdash/bench/streamlit_server.py) in a process of its
own, which names the timings file in the code it runs; it lives here, in the UI layer, because it
starts Streamlit. It imports nothing of the bench: the bench reads the file it writes. Nothing of the
page changes but three functions that log when they run.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def serve_timed(timings: str) -> None:
    """`streamlit run ...` (the arguments after -c) with the page's drawing path (preprocessing and
    prediction) and its loss chart logging their calls to the file `timings` (one line a call:
    thread, name, start and end on time.monotonic): the server's work for a drawing timed inside the
    server, and the tabs' polls counted. Patched before the page first imports them; nothing else
    changes."""
    import mlpdash.figures as figures
    import mlpdash.predict as predict
    import mlpdash.preprocess as preprocess

    log = Path(timings)
    preprocess.prepare = _logged(preprocess.prepare, log, "preprocess")
    predict.predict_image = _logged(predict.predict_image, log, "predict")
    # The live panel builds one loss chart each time a tab polls: counting them counts the polls.
    figures.loss_figure = _logged(figures.loss_figure, log, "live")
    from streamlit.web.cli import main

    sys.argv = ["streamlit", *sys.argv[1:]]
    main(prog_name="streamlit")


def _logged(function: Callable[..., Any], log: Path, name: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        # time.monotonic is system-wide on Linux: the bench compares it with its own windows.
        began = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            ended = time.monotonic()
            with open(log, "a") as out:
                out.write(f"{threading.get_ident()} {name} {began:.6f} {ended:.6f}\n")

    return timed
