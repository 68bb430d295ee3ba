"""`bench --lessons`: every preset trained on full MNIST (by default), each figure its sentence states
against the one measured, and whether it holds within its stated tolerance.

The presets are trained at full speed through the real engine (`TrainingJob`): a pace changes no
result, only the wall time, so the figures are those a class sees at the preset's pace. A claim
against another preset (dropout's narrower gap) reads that preset's run too.
"""

from __future__ import annotations

import tempfile
import time

from mlpdash.bench.common import default_source
from mlpdash.lessons import PRESETS, Claim, Preset
from mlpdash.lessons.measures import MEASURES, measured
from mlpdash.progress import Snapshot


def train_preset(preset: Preset, data, runs_dir: str) -> Snapshot:
    """The preset's run, trained to its end (finished or diverged); its final snapshot."""
    from mlpdash.training import TrainingJob

    job = TrainingJob(preset.config, data, runs_dir).start()
    job.join()
    return job.snapshot()


def claim_figure(preset: Preset, claim: Claim, runs: dict[str, Snapshot]) -> float:
    """What the claim's measure reads from the preset's run (against another preset's, if it says)."""
    return measured(claim.measure, runs[preset.name], runs[claim.against] if claim.against else None)


def print_lessons(data_spec: str | None) -> None:
    from mlpdash.data import load_mnist

    source = data_spec or default_source()
    data = load_mnist(source)
    print(f"lessons: every preset trained at full speed on {source} ({len(data.x_train):,} training digits); "
          "each claim its sentence states against the measured figure:", flush=True)
    runs: dict[str, Snapshot] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in PRESETS:
            began = time.perf_counter()
            runs[preset.name] = snap = train_preset(preset, data, tmp)
            print(f"  {preset.name}: {snap.status.value} in {time.perf_counter() - began:.0f} s", flush=True)
    held = 0
    claims = [(preset, claim) for preset in PRESETS for claim in preset.claims]
    for preset, claim in claims:
        measure = MEASURES[claim.measure]
        figure = claim_figure(preset, claim, runs)
        holds = claim.full.holds(figure)
        held += holds
        against = f" (against {claim.against})" if claim.against else ""
        print(f"  {preset.name}: {measure.what}{against}: claimed {claim.full.describe(measure.format)}, "
              f"measured {measure.format(figure)} ({figure:.4f}) — {'holds' if holds else 'DOES NOT HOLD'}",
              flush=True)
    print(f"  {held} of {len(claims)} claims hold", flush=True)
