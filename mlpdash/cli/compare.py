"""`compare`: saved runs side by side — the settings that differ, test accuracy, epochs, training time,
parameters. `sweep` ends with the same table, printed by `print_comparison`.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlpdash.cli.common import add_json_flag, existing_run, json_line


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `compare` and its flags on the `commands` subparsers."""
    compare = commands.add_parser(
        "compare", parents=[common],
        help="saved runs side by side: the settings that differ, test accuracy, epochs, training time, parameters")
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (or folders holding one run each)")
    add_json_flag(compare, "one JSON object per run")
    compare.set_defaults(handler=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from mlpdash.compare import comparison
    from mlpdash.runs import read_info

    # A run without a model (stopped before its first epoch, say) still has settings to compare.
    infos = [read_info(existing_run(path, need_model=False)) for path in args.runs]
    print_comparison(comparison(infos), args.json)
    return 0


def print_comparison(rows: list[dict[str, Any]], as_json: bool) -> None:
    """One line per run of `compare.comparison`'s rows: strict JSON, or a sentence."""
    for row in rows:
        if as_json:
            print(json_line(row))
            continue
        settings = ", ".join(f"{key} {value}" for key, value in row["settings"].items()) or "the same settings"
        accuracy = "not tested" if row["test_accuracy"] is None else f"test accuracy {row['test_accuracy']:.4f}"
        seconds = "" if row["train_seconds"] is None else f", {row['train_seconds']:.1f} s of training"
        epochs = f"{row['epochs']} epoch" + ("" if row["epochs"] == 1 else "s")
        print(f"{row['run']} ({row['state']}): {settings}; {accuracy}, {epochs}{seconds}, "
              f"{row['parameters']:,} parameters")
