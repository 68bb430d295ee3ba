"""`python -m mlpdash ...`: see mlpdash.cli."""

from mlpdash.cli import run

if __name__ == "__main__":
    run()
