"""`ablate`: switch hidden units of a saved model off and print the test accuracy, overall and per digit,
intact and ablated (the units lab of the page, on the command line).
"""

from __future__ import annotations

import argparse
from typing import Any

from mlpdash.cli.common import (UsageError, add_data_flag, add_json_flag, add_model_flag, check_source,
                                existing_run, import_tensorflow, json_line, run_network)


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `ablate` and its flags on the `commands` subparsers."""
    ablate = commands.add_parser(
        "ablate", parents=[common],
        help="switch hidden units of a saved model off and print the test accuracy, overall and per digit, "
             "intact and ablated")
    add_model_flag(ablate)
    ablate.add_argument("--layer", type=int, required=True, metavar="N", help="the hidden layer, from 1")
    ablate.add_argument("--units", required=True, metavar="SPEC",
                        help="3,17,200 | top:50 (most important first) | bottom:50 | random:10%% | random:50 | all")
    add_data_flag(ablate, "the source whose test split is used (default: the run's own)")
    add_json_flag(ablate, "one JSON object")
    ablate.set_defaults(handler=cmd_ablate)


def cmd_ablate(args: argparse.Namespace) -> int:
    run_dir = existing_run(args.model)
    if args.data is not None:
        check_source(args.data)
    import_tensorflow(args.verbose)
    import numpy as np

    from mlpdash.data import load_mnist
    from mlpdash.mnist import NUM_CLASSES
    from mlpdash.model import to_model_input
    from mlpdash.units import ablated, accuracy, check_layer, importance, parse_units

    info, network = run_network(run_dir)
    try:
        count = check_layer(network, args.layer)
    except ValueError as err:
        raise UsageError(f"--layer: {err}") from None
    spec = args.units.strip()
    try:  # the spec's own mistakes first, before the data and the ranking are worked out
        parse_units(spec, count, np.zeros(count))
    except ValueError as err:
        raise UsageError(f"--units: {err}") from None
    data = load_mnist(args.data or info.data_source)
    images = to_model_input(data.x_test)
    ranked = spec.split(":")[0] in ("top", "bottom")
    units = parse_units(spec, count, importance(network, images, data.y_test, args.layer) if ranked else None)
    intact = accuracy(network, images, data.y_test)
    broken = accuracy(ablated(network, args.layer, units), images, data.y_test)
    result = {"run": str(run_dir), "layer": args.layer, "units_in_layer": count, "switched_off": units,
              "test_digits": len(images),
              "intact": {"accuracy": round(intact.overall, 5), "per_class": _rounded(intact.per_class)},
              "ablated": {"accuracy": round(broken.overall, 5), "per_class": _rounded(broken.per_class)}}
    if args.json:
        print(json_line(result))
        return 0
    print(f"layer {args.layer}: {len(units)} of {count} units switched off ({spec}); "
          f"test split of {data.source}, {len(images):,} digits")
    print(f"accuracy: intact {intact.overall:.4f}, ablated {broken.overall:.4f} "
          f"({broken.overall - intact.overall:+.4f})")
    for digit in range(NUM_CLASSES):
        before, after = intact.per_class[digit], broken.per_class[digit]
        # None: no test digit of that class to score.
        if before is not None and after is not None:
            print(f"  digit {digit}: {before:.4f} -> {after:.4f} ({after - before:+.4f})")
    return 0


def _rounded(values: Any) -> list[float | None]:
    return [None if v is None else round(v, 5) for v in values]
