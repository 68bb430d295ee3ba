"""A real Dask LocalCluster for the tests: worker processes of one thread each.

Its nannies start their workers with multiprocessing's "spawn", which runs the parent's `__main__`
again in each child. Under pytest that may be app.py (AppTest leaves the page's script as `__main__`),
which a child cannot run: the cluster is started with a bare `__main__` in its place, and, with
`bare_main`, kept so while it runs (a nanny whose worker was killed starts a new one from this
process; no page may run under AppTest meanwhile).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

import distributed


@contextmanager
def local_cluster(workers: int = 2, bare_main: bool = False) -> Iterator[distributed.LocalCluster]:
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
        if not bare_main:
            sys.modules["__main__"] = main
        with cluster:
            yield cluster
    finally:
        sys.modules["__main__"] = main
