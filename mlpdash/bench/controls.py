"""How promptly the training engine obeys its controls, in seconds (part of the training bench).

The unit tests check what the controls do, counted in batches (a pace holds the thread, a faster pace
releases a hold, a stop ends a held batch); how fast they do it depends on the machine, so it is
printed here instead: slow motion's batches a second against the pace asked, full speed set mid-run,
the time a faster pace takes to end a 50 s hold, the time a stop takes to end one (the run evaluated
and saved), and a slow-motion run's wall time against the epoch seconds it records (the hold is not
training time). On the bundled sample's first 2,000 training digits and a 16-unit model: the figures
are the controls' latency, not the training's speed.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from typing import Any

TRAIN_DIGITS = 2000
SLOW_PACE = 500  # digits a second: batches of 50 at 10 a second
SLOW_BATCH = 50
RATE_WINDOW_S = 1.5
HOLD_PACE = 1  # one digit a second: a batch of 50 would be held 50 s
UNCOUNTED_PACE = 1000  # 2,000 digits at 1,000 a second: each epoch held about 2 s
UNCOUNTED_BATCH = 100


def print_controls() -> None:
    from mlpdash.config import TrainConfig
    from mlpdash.training import TrainingJob

    data = _slice()
    print(f"controls (slow motion, stop), a {TRAIN_DIGITS:,}-digit slice of the bundled sample, hidden 16:",
          flush=True)
    config = TrainConfig(hidden=(16,), epochs=50, batch_size=SLOW_BATCH)
    with tempfile.TemporaryDirectory() as tmp:
        job = TrainingJob(config, data, tmp, pace=SLOW_PACE).start()
        try:
            _wait(job, lambda s: s.batches_done >= 3)
            slow = _batch_rate(job, RATE_WINDOW_S)
            job.set_pace(None)  # full speed, at once
            fast = _batch_rate(job, 1.0)
            print(f"  slow motion at {SLOW_PACE} digits/s, batches of {SLOW_BATCH}: {slow:.1f} batches/s "
                  f"(goal {SLOW_PACE / SLOW_BATCH:g}); full speed set mid-run: {fast:,.0f} batches/s "
                  f"({fast / slow if slow else float('inf'):.0f} x; goal > 3 x)", flush=True)
            released = _release_latency(job)
            print(f"  a faster pace ends a {SLOW_BATCH / HOLD_PACE:g} s hold: the next batch {released * 1000:.0f} ms "
                  "after set_pace (goal: at once, not after the hold)", flush=True)
            job.set_pace(HOLD_PACE)
            time.sleep(0.3)  # into the next batch's hold
            at_stop = job.snapshot().batches_done
            began = time.monotonic()
            job.stop()
            ended = job.join(60)
            stopped = time.monotonic() - began
            after = job.snapshot().batches_done - at_stop
            print(f"  a stop during a {SLOW_BATCH / HOLD_PACE:g} s hold: the job "
                  f"{'ended (evaluated and saved)' if ended else 'had NOT ended'} in {stopped:.2f} s (goal < 10 s), "
                  f"{after} batch(es) after the stop (goal <= 1)", flush=True)
        finally:
            job.stop()
            job.join(60)
    _print_uncounted(data)


def _print_uncounted(data: Any) -> None:
    """A two-epoch run held to UNCOUNTED_PACE: its wall time, and what it records as training time."""
    from mlpdash.config import TrainConfig
    from mlpdash.training import TrainingJob

    config = TrainConfig(hidden=(16,), epochs=2, batch_size=UNCOUNTED_BATCH)
    held = TRAIN_DIGITS / UNCOUNTED_PACE
    with tempfile.TemporaryDirectory() as tmp:
        began = time.monotonic()
        job = TrainingJob(config, data, tmp, pace=UNCOUNTED_PACE).start()
        job.join(120)
        wall = time.monotonic() - began
        rows = [json.loads(line) for line in (job.snapshot().run_dir / "metrics.jsonl").read_text().splitlines()]
    seconds = ", ".join(f"{row['seconds']:.2f}" for row in rows)
    print(f"  slow motion is not training time: 2 epochs at {UNCOUNTED_PACE:,} digits/s (each held about "
          f"{held:g} s) took {wall:.1f} s (goal > {2 * held - 0.5:g} s: held); the epochs record {seconds} s "
          "(goal: the second < 1.6 s, its own work)", flush=True)


def _slice() -> Any:
    from mlpdash.data import MnistSplits, load_mnist

    sample = load_mnist("sample")
    return MnistSplits(
        x_train=sample.x_train[:TRAIN_DIGITS], y_train=sample.y_train[:TRAIN_DIGITS],
        x_val=sample.x_val[:500], y_val=sample.y_val[:500], x_test=sample.x_test[:500], y_test=sample.y_test[:500],
        source="sample", reason=f"the bundled sample's first {TRAIN_DIGITS:,} training digits",
    )


def _batch_rate(job: Any, seconds: float) -> float:
    """Batches a second trained over the next `seconds`."""
    began, batches = time.monotonic(), job.snapshot().batches_done
    time.sleep(seconds)
    return (job.snapshot().batches_done - batches) / (time.monotonic() - began)


def _release_latency(job: Any) -> float:
    """Seconds from a faster pace to the end of the batch that a HOLD_PACE hold was keeping."""
    job.set_pace(HOLD_PACE)
    time.sleep(0.3)  # the batch in flight ends, and the next one's hold begins
    held_at = job.snapshot().batches_done
    began = time.monotonic()
    job.set_pace(None)
    _wait(job, lambda s: s.batches_done > held_at, timeout=SLOW_BATCH / HOLD_PACE + 10)
    return time.monotonic() - began


def _wait(job: Any, predicate: Callable[[Any], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = job.snapshot()
        if predicate(snap):
            return
        if snap.status.ended:
            raise RuntimeError(f"the job ended as {snap.status} ({snap.error}) before the bench's condition held")
        time.sleep(0.005)
    raise TimeoutError(f"the bench's condition did not hold in {timeout:g} s")
