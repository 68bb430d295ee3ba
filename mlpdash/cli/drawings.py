"""`drawings evaluate | finetune | export | import`: your drawings as data.

`evaluate` reads them with a saved model; `finetune` trains that model further on them (with MNIST
digits replayed) and saves the result as a new run; `export` and `import` move the folder as a zip.
Ctrl-C or SIGTERM stops a fine-tune after the current batch: saved as stopped (exit code 0), or
nothing saved when no epoch had finished (exit code 130).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlpdash.cli.common import (EXIT_DIVERGED, EXIT_INTERRUPTED, UsageError, add_data_flag, add_json_flag,
                                add_runs_out_flag, check_source, check_writable, existing_run,
                                import_tensorflow, json_line, run_model, stop_on_signals, write_output)


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `drawings` and its flags (the fine-tune's settings among them) on `commands`."""
    from mlpdash.finetune import FinetuneSettings  # NumPy: imported inside `main`, see mlpdash.cli

    finetune_defaults = FinetuneSettings()
    drawings = commands.add_parser(
        "drawings", parents=[common],
        help="your drawings as data: evaluate a saved model on them, fine-tune it on them as a new run, "
             "export them to a zip, import one")
    drawings.add_argument("action", choices=["evaluate", "finetune", "export", "import"])
    drawings.add_argument("archive", nargs="?", metavar="ZIP", help="export: the zip to write; import: the zip to read")
    drawings.add_argument("--model", metavar="RUN_DIR", help="evaluate: the run whose model answers")
    drawings.add_argument("--folder", default=None,
                          help="the drawings folder (default: $MLPDASH_DRAWINGS, else drawings beside the runs)")
    add_json_flag(drawings, "evaluate, finetune: one JSON object")
    drawings.add_argument("--epochs", type=int, default=finetune_defaults.epochs, help="finetune: epochs")
    drawings.add_argument("--replay", type=int, default=finetune_defaults.replay, metavar="N",
                          help="finetune: MNIST training digits mixed in per drawing (0: no replay)")
    drawings.add_argument("--lr", type=float, default=finetune_defaults.learning_rate,
                          help="finetune: Adam's learning rate")
    add_data_flag(drawings, "finetune: the MNIST source replayed and tested on (default: the run's own)")
    add_runs_out_flag(drawings, "finetune: where the new run is saved (default: beside the run fine-tuned)")
    drawings.set_defaults(handler=cmd_drawings)


def cmd_drawings(args: argparse.Namespace) -> int:
    from mlpdash.drawings import MAX_ZIP_BYTES, drawings_root, export_zip, import_zip, listing, prepared

    folder = drawings_root(args.folder)
    named = f"--folder {folder}" if args.folder else f"the drawings folder {folder}"
    if args.action == "import":
        archive = _archive_to_import(args.archive, MAX_ZIP_BYTES)
        check_writable(folder, "--folder" if args.folder else "the drawings folder")
        added = import_zip(folder, archive.read_bytes())
        print(f"{added} drawings added to {folder}", flush=True)
        if added:
            began = time.monotonic()
            prepared(folder, listing(folder))  # once, kept in the folder: the page opens on them at once
            print(f"prepared for the model in {time.monotonic() - began:.1f} s")
        return 0
    target = _export_target(args.archive) if args.action == "export" else None
    # The other actions read the drawings: a folder that is not there is a mistake (a typo in
    # --folder), not an empty set of drawings.
    if not folder.is_dir():
        raise UsageError(f"{named}: no such folder" if not folder.exists() else f"{named} is not a folder")
    if target is not None:
        data = export_zip(folder)
        write_output(target, data)
        print(f"{len(listing(folder))} drawings written to {target}")
        return 0
    if not args.model:
        raise UsageError(f"drawings {args.action} needs --model RUN_DIR")
    run_dir = existing_run(args.model)
    if args.action == "finetune":
        return _finetune(args, run_dir, folder)
    return _evaluate(args, run_dir, folder)


def _evaluate(args: argparse.Namespace, run_dir: Path, folder: Path) -> int:
    import_tensorflow(args.verbose)
    from mlpdash.drawings import evaluate
    from mlpdash.predict import Predictor

    predictor = Predictor(run_model(run_dir))
    result = evaluate(folder, predictor.logits)
    summary = {"folder": str(folder), "accuracy": result.accuracy, "confusion": result.confusion.tolist(),
               "misread": [{"file": f, "label": t, "answer": a} for f, t, a in result.misread], "blank": result.blank}
    if args.json:
        print(json_line(summary))
    elif result.accuracy is None:
        print(f"no drawing with ink in {folder}")
    else:
        drawn = int(result.confusion.sum())
        print(f"{drawn} drawings in {folder}: {result.accuracy:.2%} read right")
        for file, label, answer in result.misread:
            print(f"  {file}: a {label} read as {answer}")
    return 0


def _archive_to_import(archive: str | None, limit: int) -> Path:
    if not archive:
        raise UsageError("drawings import needs the zip to read")
    path = Path(archive)
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a file" if path.exists() else "no such file"
        raise UsageError(f"drawings import needs a zip file: {archive} is {kind}")
    size = path.stat().st_size
    if size > limit:  # before it is read into memory
        raise UsageError(f"{archive} is {size:,} bytes, more than the {limit:,} a drawings archive may be")
    return path


def _export_target(archive: str | None) -> Path:
    """The zip `drawings export` writes, checked before the drawings are packed."""
    if not archive:
        raise UsageError("drawings export needs the zip to write")
    target = Path(archive)
    if target.is_dir():
        raise UsageError(f"drawings export: {archive} is a folder; name the zip file to write in it")
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"drawings export: no folder {parent} to write {target.name} in")
    check_writable(parent, "drawings export: the folder")
    return target


def _finetune(args: argparse.Namespace, run_dir: Path, folder: Path) -> int:
    from mlpdash.finetune import FinetuneSettings
    from mlpdash.runs import read_info

    settings = FinetuneSettings(epochs=args.epochs, replay=args.replay, learning_rate=args.lr)
    source = args.data or read_info(run_dir).data_source
    if source is not None:
        check_source(source)
    check_writable(Path(args.out) if args.out else run_dir.parent, "--out" if args.out else "the runs folder")
    import_tensorflow(args.verbose)
    from mlpdash.data import load_mnist
    from mlpdash.finetune import FinetuneDiverged, FinetuneStopped, finetune, report_text

    data = load_mnist(source)
    stop = threading.Event()
    # From here Ctrl-C and SIGTERM stop the fine-tune after the current batch, as they stop `train`;
    # the report is printed under the same handlers, so a late Ctrl-C cannot cut it short.
    with stop_on_signals(stop):
        try:
            report = finetune(run_dir, folder, data, settings, args.out, stop=stop)
        except FinetuneStopped as err:
            print(f"mlpdash: {err}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except FinetuneDiverged as err:
            print(f"mlpdash: {err}", file=sys.stderr)
            return EXIT_DIVERGED
        if args.json:
            print(json_line(report.to_dict()), flush=True)
        else:
            print(f"{report.drawings} drawings: trained on {report.trained_on} with {report.replayed} MNIST digits "
                  f"replayed, {report.held_out} held out; {report.seconds:.1f} s")
            print(report_text(report.to_dict()))
            print(f"run saved to {report.run_dir}", flush=True)
        if report.stopped:
            # As `train` does: a run stopped and saved is a normal end (exit code 0), said on stderr.
            print(f"mlpdash: fine-tuning stopped after {report.epochs_completed} of {settings.epochs} epochs; "
                  f"the run is saved as stopped: {report.run_dir}", file=sys.stderr)
    return 0
