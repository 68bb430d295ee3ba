"""The page bench's parts that need no browser: the scripts it runs in the page (timing on the page's
own clock, performance.now()), the issue's goals, and the medians and tables it prints
(`python -m mlpdash bench --page`, driven by mlpdash/bench/page.py)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# "Drawn": the script run over, nothing under stMain stale, every picture loaded, and the DOM quiet
# this long; the time reported is that of the last mutation or picture load before the quiet, not the
# quiet's end.
QUIET_MS = 300
# A click or stroke that starts no script run (a view drawn in the browser alone) counts as drawn
# once quiet, after this long without a run.
NO_RUN_MS = 2_000

# In the page, once: a MutationObserver keeps the time of the last mutation, and a picture's load
# counts as one (an <img> loads after the mutation that adds it); `arm(kind)` makes the
# next event of that kind the start of a measure, on the page's clock: 'mousedown' for a click on a tab
# (the tab bar switches on the press, before the click event), 'mouseup' for a stroke.
VIEW_PROBE = """() => {
    if (window.__pageBench) return;
    const probe = window.__pageBench = {armed: null, t0: null, last: performance.now(), sawRunning: false};
    probe.arm = (kind) => { probe.armed = kind; probe.t0 = null; probe.sawRunning = false; };
    for (const kind of ['mousedown', 'mouseup']) {
        document.addEventListener(kind, () => {
            if (probe.armed === kind) { probe.t0 = performance.now(); probe.armed = null; }
        }, true);
    }
    new MutationObserver(() => {
        probe.last = performance.now();
        if (probe.t0 !== null && document.querySelector("[data-test-script-state='running']")) {
            probe.sawRunning = true;
        }
    }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
    document.addEventListener('load', (event) => {
        if (event.target.tagName === 'IMG') probe.last = performance.now();
    }, true);
}"""
# In the page: {ms: milliseconds from the armed event to the last mutation before the page settled},
# or null while it has not (an object, as wait_for_function would take a 0 for "not yet").
DRAWN = f"""() => {{
    const probe = window.__pageBench;
    if (probe.t0 === null) return null;
    const now = performance.now();
    if (!probe.sawRunning && now - probe.t0 < {NO_RUN_MS}) return null;
    if (!document.querySelector("[data-test-script-state='notRunning']")) return null;
    const main = document.querySelector("[data-testid='stMain']");
    if (main && main.querySelector("[data-stale='true']")) return null;
    if (main && [...main.querySelectorAll("img")].some(image => !image.complete)) return null;
    if (now - probe.last < {QUIET_MS}) return null;
    return {{ms: Math.max(0, probe.last - probe.t0)}};
}}"""
# Added to a new page before its document loads: the time (from navigation start) at which the status
# line first shows "Training" with the script run over.
OPENED_PROBE = """(() => {
    const probe = window.__openBench = {at: null};
    const check = () => {
        if (probe.at !== null) return;
        const status = document.querySelector(".st-key-status:not([data-stale='true'])");
        if (status && /Training/.test(status.textContent)
                && document.querySelector("[data-test-script-state='notRunning']")) {
            probe.at = performance.now();
        }
    };
    new MutationObserver(check).observe(document, {subtree: true, childList: true, characterData: true,
                                                   attributes: true});
})();"""


@dataclass(frozen=True)
class Goal:
    """One of the issue's goals: a measure in seconds (or a ratio) at most or at least `limit`."""

    label: str
    limit: float
    at_most: bool = True
    ratio: bool = False

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.limit if self.at_most else value >= self.limit

    def show(self, value: float | None) -> str:
        if value is None:
            return "not measured"
        return f"{value:.3f}" if self.ratio else f"{value:.2f} s"

    def goal_text(self) -> str:
        bound = f"{self.limit:g}" if self.ratio else f"{self.limit:g} s"
        return f"{'<=' if self.at_most else '>='} {bound}"


# The goals, keyed as PageTimes.measures() names its figures. The view names restate
# mlpdash/ui/tabs.py VIEWS (the bench does not import the UI).
GOALS: dict[str, Goal] = {
    "Units first": Goal("Units, first visit", 1.5),
    "Weights over time first": Goal("Weights over time, first visit", 1.0),
    "Mistakes first": Goal("Mistakes, first visit", 0.6),
    "inside": Goal("stroke -> Inside a prediction drawn", 0.45),
    "prediction": Goal("stroke -> prediction under the canvas", 0.3),
    "opened": Goal("page opened while a job trains", 3.0),
    "5 of 1": Goal("samples/s, 5 pages / 1 page", 0.85, at_most=False, ratio=True),
    "1 of headless": Goal("samples/s, 1 page / headless", 0.95, at_most=False, ratio=True),
}


@dataclass
class PageTimes:
    """Every measure of the page bench, in seconds (ratios for samples/s), one value a repeat."""

    first: dict[str, list[float]] = field(default_factory=dict)  # view -> first visit, per round
    second: dict[str, list[float]] = field(default_factory=dict)
    prediction: list[float] = field(default_factory=list)  # mouse-up -> "Prediction: N", default tab open
    prediction_inside: list[float] = field(default_factory=list)  # the same with Inside a prediction open
    inside: list[float] = field(default_factory=list)  # mouse-up -> Inside a prediction drawn
    opened: list[float] = field(default_factory=list)  # goto -> "Training" shown, script over
    ratios: dict[int, list[float]] = field(default_factory=dict)  # pages open -> ratio to headless

    def measures(self) -> dict[str, float | None]:
        """The medians the goal table reads, keyed as GOALS is."""
        found: dict[str, float | None] = {f"{view} first": median(times) for view, times in self.first.items()}
        found.update(inside=median(self.inside), prediction=median(self.prediction), opened=median(self.opened))
        found["1 of headless"] = median(self.ratios.get(1, []))
        found["5 of 1"] = median(per_repeat_ratio(self.ratios.get(5, []), self.ratios.get(1, [])))
        return found


def median(values: Sequence[float]) -> float | None:
    """The median, or None when nothing was measured."""
    return statistics.median(values) if values else None


def per_repeat_ratio(top: Sequence[float], bottom: Sequence[float]) -> list[float]:
    """top[i] / bottom[i] for each repeat both were measured in (each against the same headless run)."""
    return [a / b for a, b in zip(top, bottom) if b]


def views_table(first: Mapping[str, Sequence[float]], second: Mapping[str, Sequence[float]]) -> list[str]:
    """One line a view: medians of its first and second visits, and round 1 alone ('cold': after it,
    the server's caches are warm for every later round)."""

    def show(values: Sequence[float]) -> str:
        value = median(values)
        return "—" if value is None else f"{value:.2f} s"

    width = max([len(view) for view in first] + [4])
    lines = [f"    {'view':<{width}}  first  second  cold (round 1: first / second)"]
    for view, times in first.items():
        again = second.get(view, [])
        cold = f"{show(times[:1])} / {show(again[:1])}"
        lines.append(f"    {view:<{width}}  {show(times):>6} {show(again):>7}  {cold}")
    return lines


def goal_table(measures: Mapping[str, float | None]) -> list[str]:
    """The issue's goals beside their measures (medians), and whether each is met."""
    width = max(len(goal.label) for goal in GOALS.values())
    lines = [f"    {'measure':<{width}}  {'median':>12}  {'goal':>9}  met"]
    for key, goal in GOALS.items():
        value = measures.get(key)
        verdict = {True: "yes", False: "NO", None: "—"}[goal.met(value)]
        lines.append(f"    {goal.label:<{width}}  {goal.show(value):>12}  {goal.goal_text():>9}  {verdict}")
    return lines
