"""A sweep queued from the real page trains on a Dask cluster (MLPDASH_CLUSTER): a LocalCluster of two
single-thread worker processes, a server of this module's own pointed at it. The page says where the
runs train, and both runs' curves grow in Runs & comparison while they train, side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from dask_cluster import local_cluster
from playwright.sync_api import Page, expect
from streamlit_page import start_server, stop_server, streamlit_warnings
from test_page import open_tab, set_input, settle
from test_runs_compared_page import SWEEP_TIMEOUT_MS, queue_sweep

OWN_SERVER = True  # a server started with MLPDASH_CLUSTER set, below


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as local:
        yield local


@pytest.fixture(scope="module")
def app_url(cluster, server_dir: Path, server_log: Path):
    """This module's server, its sweeps sent to the cluster (overrides conftest's)."""
    runs = server_dir / "runs"
    runs.mkdir()
    proc, url = start_server(runs, server_log, MLPDASH_CLUSTER=cluster.scheduler_address)
    try:
        yield url
    finally:
        stop_server(proc)
    assert not streamlit_warnings(server_log), streamlit_warnings(server_log)


def test_a_sweep_on_the_cluster_shows_both_runs_curves_live(page: Page, cluster, screenshot):
    set_input(page, "hidden", "16")
    set_input(page, "epochs", "30")
    open_tab(page, "Runs & comparison")
    settle(page)
    sweep = page.locator(".st-key-sweep")
    # plain() puts a word joiner after each colon (":x:" would read as an emoji).
    where = f"on the Dask cluster at {cluster.scheduler_address}: 2 workers, 2 threads".replace(":", ":\u2060")
    expect(sweep).to_contain_text(where, timeout=30_000)
    queue = queue_sweep(page, "learning rate", "0.003, 0.03")
    # Both runs train at once, one a worker, and their curves grow in the comparison as epochs come home.
    page.wait_for_function("""() => {
        const queue = [...document.querySelectorAll('.st-key-sweep_queue')].pop();
        const plot = [...document.querySelectorAll('.st-key-compare_accuracy .js-plotly-plot')].pop();
        return queue && /\\b2 running\\b/.test(queue.innerText) && plot && (plot._fullData || []).length === 2
            && plot._fullData.every(trace => trace.x && trace.x.length >= 2);
    }""", timeout=SWEEP_TIMEOUT_MS)
    screenshot(page, "40-sweep-on-a-cluster-live")
    expect(queue).to_contain_text("2 finished", timeout=SWEEP_TIMEOUT_MS)
    # Every epoch of both, once home (Plotly may be between two drawings of the chart: wait for it).
    page.wait_for_function("""() => {
        const plot = [...document.querySelectorAll('.st-key-compare_accuracy .js-plotly-plot')].pop();
        return plot && (plot._fullData || []).length === 2 && plot._fullData.every(trace => trace.x.length === 30);
    }""", timeout=30_000)
    expect(page.get_by_test_id("stException")).to_have_count(0)
