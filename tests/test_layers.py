"""The house's floors: every import of the package points down a floor (or along one), never up, and
no modules import each other in a circle. Read from the source with `ast`, imports inside functions
included, so that a lazy import cannot hide a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first. A module not named here takes its package's floor.
FLOORS = {
    0: ["config", "data", "preprocess", "files", "mnist", "budgets", "pace"],  # the ground floor
    1: ["model", "predict", "evaluate", "explain", "units", "timeline", "mistakes", "compare", "digits",
        "drawings", "lessons", "progress", "runs", "figures", "run_view", "sweep"],  # the network and the analysis
    2: ["plan", "recorder", "training", "finetune"],  # the one training engine
    3: ["jobs", "queue", "cluster", "store", "focus", "guide", "server"],  # the server's job, queue, store and focus
    4: ["ui", "bench"],  # the page's panels, the benchmarks
    5: ["cli", "__main__"],  # the commands
}
FLOOR = {name: floor for floor, names in FLOORS.items() for name in names}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "mlpdash").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def _resolve(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(path: Path) -> set[str]:
    """The package's modules that `path` imports, wherever in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {_resolve(alias.name) for alias in node.names if alias.name.startswith("mlpdash")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("mlpdash"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else _resolve(node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: a relative import; the floors are checked on absolute ones")
    return found - {""}


def floor(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "mlpdash" and len(parts) > 1, module
    assert parts[1] in FLOOR, f"{module} is on no floor: add it to FLOORS"
    return FLOOR[parts[1]]


def test_every_module_is_on_a_floor():
    for module in MODULES:
        if module != "mlpdash":
            floor(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "mlpdash"))
def test_no_import_runs_up_a_floor(module):
    up = [other for other in imports(MODULES[module]) if other != "mlpdash" and floor(other) > floor(module)]
    assert not up, f"{module} (floor {floor(module)}) imports {up} from above"


def test_no_modules_import_each_other_in_a_circle():
    graph = {module: imports(path) - {module} for module, path in MODULES.items()}
    # A package's __init__ gathers its modules: an edge from a module to its own package is the only
    # way back, and it is a circle too, so it is kept.
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("a circle: " + " -> ".join([*path[path.index(module):], module]))
        if module in done:
            return
        for other in sorted(graph.get(module, ())):
            visit(other, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_layers_check_would_see_an_import_from_above(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def late():\n    from mlpdash.jobs import JobManager\n")
    assert "mlpdash.jobs" in imports(bad) and floor("mlpdash.jobs") > floor("mlpdash.runs.reader")


def test_no_module_is_longer_than_600_lines():
    long = {module: n for module, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 600}
    assert not long
