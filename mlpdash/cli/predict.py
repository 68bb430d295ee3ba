"""A saved model at work: `evaluate` (on the test split), `predict` (image files), `explain` (why it
reads each image as it does, and with `--attack`, the smallest change that makes it read another digit).

`predict` and `explain` go on past an image they cannot read, say so on stderr (and, with `--json`, in
that image's line), and end with exit code 1.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlpdash.cli.common import (EXIT_FAILED, UsageError, add_data_flag, add_json_flag, add_model_flag,
                                check_source, check_writable, existing_run, import_tensorflow, json_line,
                                run_model, run_network, write_output)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `evaluate`, `predict` and `explain` and their flags on the `commands` subparsers."""
    evaluate = commands.add_parser("evaluate", parents=[common], help="evaluate a saved run on the test split")
    add_model_flag(evaluate, "a run folder (as `train` prints it), or a folder holding exactly one run")
    add_data_flag(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = commands.add_parser("predict", parents=[common], help="classify images of handwritten digits")
    add_model_flag(predict)
    add_json_flag(predict, "one JSON object per line")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="image files, or folders whose images are all read")
    predict.set_defaults(handler=cmd_predict)

    explain = commands.add_parser(
        "explain", parents=[common],
        help="why a saved model reads each image as it does: the exact local linear form of a ReLU "
             "network, the first-layer units that matter most, the nearest test digits")
    add_model_flag(explain)
    add_data_flag(explain, "the source whose test split gives the nearest digits (default: the run's own)")
    add_json_flag(explain, "one JSON object per image")
    explain.add_argument("--attack", type=int, default=None, metavar="DIGIT",
                         help="also find the smallest change (L-infinity budget) that makes it answer DIGIT")
    explain.add_argument("--out", default=None, metavar="DIR",
                         help="with --attack: write each changed 28x28 input there as a PNG")
    explain.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders of them")
    explain.set_defaults(handler=cmd_explain)


# --- evaluate ------------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    run_dir = existing_run(args.model)
    if args.data is not None:
        check_source(args.data)
    import_tensorflow(args.verbose)
    from mlpdash.data import load_mnist
    from mlpdash.evaluate import report_from_logits
    from mlpdash.model import to_model_input
    from mlpdash.predict import Predictor

    model = run_model(run_dir)
    data = load_mnist(args.data)
    report = report_from_logits(Predictor(model).logits(to_model_input(data.x_test)), data.y_test)
    summary = {"run": str(run_dir), "data_source": data.source, **report.summary()}
    print(json_line(summary))
    return 0


# --- predict -------------------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    run_dir = existing_run(args.model)
    files = _image_files(args.images)
    import_tensorflow(args.verbose)
    from mlpdash.predict import Predictor, predict_drawing, read_image

    predictor = Predictor(run_model(run_dir))
    failures = 0
    for file in files:
        result: dict[str, Any] = {"file": file, "digit": None, "probabilities": None, "error": None}
        try:
            prediction = predict_drawing(predictor, read_image(file))
            if prediction.digit is None:
                result["error"] = "no digit: the image is blank"
            else:
                result["digit"] = prediction.digit
                result["probabilities"] = [round(float(p), 6) for p in prediction.probabilities]
        except ValueError as err:
            result["error"] = str(err)
        if result["error"] is not None:
            failures += 1
            # Errors go to stderr; a JSON reader still gets one line per file, with its error field.
            print(f"mlpdash: {file}: {result['error']}", file=sys.stderr, flush=True)
            if args.json:
                print(json_line(result), flush=True)
        else:
            print(json_line(result) if args.json else _predict_line(result), flush=True)
    return EXIT_FAILED if failures else 0


def _image_files(paths: Sequence[str]) -> list[str]:
    """The files to read: each file as given, each folder's image files (by suffix, sorted)."""
    files: list[str] = []
    for path in paths:
        folder = Path(path)
        if not folder.is_dir():
            files.append(path)
            continue
        try:
            found = sorted(str(f) for f in folder.iterdir()
                           if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        except OSError as err:
            raise UsageError(f"{path}: cannot read the folder ({err.strerror or err})") from err
        if not found:
            raise UsageError(f"{path}: a folder with no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files.extend(found)
    return files


def _predict_line(result: dict[str, Any]) -> str:
    confidence = max(result["probabilities"])
    return f"{result['file']}: {result['digit']} ({confidence:.1%})"


# --- explain -------------------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    if args.attack is not None and not 0 <= args.attack <= 9:
        raise UsageError(f"--attack takes a digit 0-9, got {args.attack}")
    if args.out is not None and args.attack is None:
        raise UsageError("--out writes the attacked images: give --attack DIGIT too")
    run_dir = existing_run(args.model)
    files = _image_files(args.images)
    out = Path(args.out) if args.out else None
    if out is not None:
        check_writable(out, "--out")
    if args.data is not None:
        check_source(args.data)
    import_tensorflow(args.verbose)
    from mlpdash.data import load_mnist
    from mlpdash.explain import attack, explain, fit_map, representation
    from mlpdash.mnist import NUM_CLASSES
    from mlpdash.model import to_model_input
    from mlpdash.predict import read_image
    from mlpdash.preprocess import canvas_to_mnist

    info, network = run_network(run_dir)
    # The neighbours come from the test split of the data the run learned from, unless told otherwise.
    data = load_mnist(args.data or info.data_source)
    hidden_map = fit_map(network, to_model_input(data.x_test), data.y_test)
    failures = 0
    for number, file in enumerate(files, start=1):
        try:
            image = canvas_to_mnist(read_image(file))
            if image is None:
                raise ValueError("no digit: the image is blank")
        except ValueError as err:
            failures += 1
            print(f"mlpdash: {file}: {err}", file=sys.stderr, flush=True)
            if args.json:
                print(json_line({"file": file, "error": str(err)}), flush=True)
            continue
        e = explain(network, image)
        result: dict[str, Any] = {
            "file": file, "error": None, "digit": e.digit, "exact": e.exact,
            "logits": [round(float(v), 5) for v in e.logits],
            # Each class's contribution map summed, plus its effective bias: the logit, for ReLU.
            "contributions_plus_bias": [round(float(e.contributions(c).sum() + e.effective_bias[c]), 5)
                                        for c in range(NUM_CLASSES)],
            "top_units": [{"unit": u, "activation": round(a, 5), "contribution": round(c, 5)}
                          for u, a, c in e.top_units(e.digit)],
            "nearest": [{"index": i, "label": int(data.y_test[i]), "distance": round(d, 4)}
                        for i, d in hidden_map.nearest(representation(network, image[None])[0])],
        }
        if args.attack is not None:
            result["attack"] = _attack_result(attack(network, image, args.attack), network, number, file, out)
        print(json_line(result) if args.json else _explain_text(result), flush=True)
    return EXIT_FAILED if failures else 0


def _attack_result(found: Any, network: Any, number: int, file: str, out: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {"target": found.target, "epsilon": found.epsilon, "digit": found.digit,
                              "png": None, "png_digit": None}
    if out is not None and found.epsilon is not None:
        import numpy as np
        from PIL import Image

        from mlpdash.mnist import pixels, scale

        out.mkdir(parents=True, exist_ok=True)
        # Numbered: two inputs may share a name (a/1.png and b/1.png, 1.png and 1.jpg).
        path = out / f"{number:03d}-{Path(file).stem}-to-{found.target}.png"
        eight_bit = pixels(found.image)
        png = io.BytesIO()
        Image.fromarray(eight_bit).save(png, format="PNG")
        write_output(path, png.getvalue())
        result["png"] = str(path)
        # What the model reads in the file itself, 8-bit pixels and all.
        result["png_digit"] = int(np.argmax(network.logits(scale(eight_bit[None]))[0]))
    return result


def _explain_text(result: dict[str, Any]) -> str:
    digit = result["digit"]
    form = ("exact: each logit = its contribution map summed + its effective bias" if result["exact"]
            else "approximate (gradient x input: the activation is not ReLU)")
    lines = [f"{result['file']}: {digit} ({form})",
             "  logits:                  " + " ".join(f"{c}:{v:.3f}" for c, v in enumerate(result["logits"])),
             "  contributions + bias:    " + " ".join(f"{c}:{v:.3f}" for c, v in
                                                      enumerate(result["contributions_plus_bias"]))]
    if result["top_units"]:
        lines.append(f"  first-layer units adding most to {digit}: " + ", ".join(
            f"{u['unit']} (activation {u['activation']:.3f}, {u['contribution']:+.3f})" for u in result["top_units"]))
    lines.append("  nearest test digits: " + ", ".join(
        f"#{n['index']} ({n['label']}, distance {n['distance']:.3f})" for n in result["nearest"]))
    found = result.get("attack")
    if found is not None:
        if found["epsilon"] is None:
            lines.append(f"  attack to {found['target']}: not reached on the ladder (answers {found['digit']})")
        else:
            wrote = f"; wrote {found['png']}" if found["png"] else ""
            if found["png"] and found["png_digit"] != found["target"]:
                wrote += f" (rounded to 8-bit pixels it reads as {found['png_digit']})"
            lines.append(f"  attack to {found['target']}: reached at epsilon {found['epsilon']:g}{wrote}")
    return "\n".join(lines)
