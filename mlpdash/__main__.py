"""`python -m mlpdash ...`: see mlpdash.cli."""

import os
import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    # A Ctrl-C while the command line itself imports (before `cli.main` handles it): one line, as later.
    sys.stderr.write("mlpdash: interrupted\n")
    os._exit(130)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    from mlpdash.cli import run

    signal.signal(signal.SIGINT, signal.default_int_handler)  # main's own handling from here
    run()
