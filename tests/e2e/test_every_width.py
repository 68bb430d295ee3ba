"""The page at every width it is used at: a wide screen (1440x900), a projector (1024x768), a phone
(420x860), measured in the browser (bounding boxes, scroll widths) and shot to
artifacts/screenshots/width-<size>-<view>.png.

What went wrong before: at 1024x768 the canvas started below the fold and the control bar scrolled
away; the tab bar was clipped at "Runs &"; the Speed box read "Speed: 100 digits/"; at 420 px the page
scrolled 44 px sideways with Start, Pause, Stop and the Speed off its right edge.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from streamlit_page import REPO_ROOT, open_app

from mlpdash.data import load_mnist
from mlpdash.drawings import listing, save
from test_page import ONE, button, draw, ensure_model, open_tab, prediction_heading, prediction_of, settle


# It trains (and saves drawings) before the page tests, which expect an idle server: a server of its own.
OWN_SERVER = True

WIDE = (1440, 900)
PROJECTOR = (1024, 768)
PHONE = (420, 860)
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
VIEWS = ("Mistakes", "Inside a prediction", "First-layer weights", "Weights over time", "Units", "Data",
         "Your drawings", "Runs & comparison")

# How far the page scrolls sideways: the document and Streamlit's own scrolling main block.
SIDEWAYS = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    return Math.max(document.scrollingElement.scrollWidth - window.innerWidth,
                    main.scrollWidth - main.clientWidth);
}"""
# Each tab label's box and whether it is inside the tab bar and the window (not clipped or scrolled away).
TABS = """() => {
    const bar = document.querySelector('[data-testid="stTabs"] [role="tablist"]').getBoundingClientRect();
    return [...document.querySelectorAll('[data-testid="stTabs"] [role="tab"]')].map(tab => {
        const r = tab.getBoundingClientRect();
        return {name: tab.textContent.trim(), inside: r.left >= bar.left - 1 && r.right <= bar.right + 1
                && r.right <= window.innerWidth && r.width > 0, top: Math.round(r.top)};
    });
}"""
# Screen px of one 28-px tile in the image grid drawn for widget key `key` (its x axis counts the grid's
# own pixels, 29 to a tile and its gap).
TILE_PX = """key => {
    const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    const axis = plot._fullLayout.xaxis;
    return 28 * axis._length / Math.abs(axis.range[1] - axis.range[0]);
}"""
# The digit filter of Your drawings: each option's label, and whether it is whole in its box and the window.
FILTER_WHOLE = """() => {
    const box = document.querySelector('.st-key-drawings_filter').getBoundingClientRect();
    return [...document.querySelectorAll('.st-key-drawings_filter button')].map(b => {
        const r = b.getBoundingClientRect();
        return {name: b.textContent.trim(), inside: r.width > 0 && r.left >= box.left - 1
                && r.right <= box.right + 1 && r.right <= window.innerWidth};
    });
}"""
# Whether the colour bar's title of chart `key` lies whole inside the chart (it was cut at both ends).
TITLE_WHOLE = """key => {
    const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    const title = plot && plot.querySelector('.cbtitle text');
    if (!title) return null;
    const t = title.getBoundingClientRect(), svg = plot.querySelector('.main-svg').getBoundingClientRect();
    return t.width > 0 && t.left >= svg.left && t.right <= svg.right;
}"""
# The map's digits image as drawn: its width over its height (the raster is 640 x 440).
MAP_ASPECT = """() => {
    const image = document.querySelector('.st-key-explain_map .js-plotly-plot image');
    return image ? image.getBBox().width / image.getBBox().height : null;
}"""


def open_at(page: Page, app_url: str, size: tuple[int, int]) -> None:
    """The app opened afresh in a window of `size` (the sidebar's start state depends on it)."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    open_app(page, app_url)


def box(page: Page, selector: str) -> dict:
    found = page.locator(selector).filter(visible=True).first.bounding_box()
    assert found is not None, selector
    return found


def in_window(found: dict, size: tuple[int, int], top: float = 0) -> bool:
    return found["y"] >= top - 1 and found["y"] + found["height"] <= size[1] + 1 \
        and found["x"] >= -1 and found["x"] + found["width"] <= size[0] + 1


def sidebar_collapsed(page: Page) -> str | None:
    return page.get_by_test_id("stSidebar").get_attribute("data-collapsed")


def assert_tabs_whole(page: Page) -> None:
    tabs = page.evaluate(TABS)
    assert len(tabs) == len(VIEWS)
    assert [tab["name"] for tab in tabs if not tab["inside"]] == [], tabs


def not_covered(page: Page, key: str) -> bool:
    """Whether the middle of the button with widget key `key` is the button itself (nothing over it)."""
    return button(page, key).evaluate("""b => {
        const r = b.getBoundingClientRect();
        const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return top !== null && b.contains(top);
    }""")


def test_a_projector_shows_controls_charts_and_canvas_on_one_screen(page: Page, app_url: str):
    ensure_model(page)
    open_at(page, app_url, PROJECTOR)
    # Below 1100 px the sidebar starts closed, and its open button brings it back.
    expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true", timeout=10_000)
    draw(page, ONE)
    assert prediction_of(page) == 1
    settle(page)
    page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
    page.wait_for_timeout(300)
    # The training and drawing columns side by side.
    training, drawing = box(page, ".st-key-training_column"), box(page, ".st-key-drawing_column")
    assert drawing["x"] >= training["x"] + training["width"] and abs(drawing["y"] - training["y"]) < 2
    # The control bar, both live charts, the canvas and its answer: all on the screen at once.
    for selector in (".st-key-control_bar", ".st-key-loss_chart .js-plotly-plot",
                     ".st-key-accuracy_chart .js-plotly-plot", ".st-key-canvas canvas.upper-canvas"):
        assert in_window(box(page, selector), PROJECTOR), (selector, box(page, selector))
    assert in_window(prediction_heading(page).bounding_box(), PROJECTOR)
    assert_tabs_whole(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "width-1024-one-screen.png"))  # the screen as a class sees it
    # Scrolled down to a view, the control bar stays on top of the page, uncovered.
    view = open_tab(page, "Weights over time")
    view.scroll_into_view_if_needed()
    page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollBy(0, 600)")
    page.wait_for_timeout(300)
    assert box(page, ".st-key-loss_chart .js-plotly-plot")["y"] < 0  # the page did scroll
    for key in ("start_training", "pause_training", "stop_training"):
        assert in_window(box(page, f".st-key-{key} button"), PROJECTOR), key
        assert not_covered(page, key), key
    page.screenshot(path=str(SCREENSHOTS / "width-1024-scrolled.png"))
    # The sidebar opens again; the tab labels still all show beside it.
    page.get_by_test_id("stExpandSidebarButton").click()
    expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "false")
    page.wait_for_timeout(500)
    assert_tabs_whole(page)
    assert page.evaluate(SIDEWAYS) <= 0


def test_a_wide_screen_keeps_its_sidebar_and_shows_the_speed_whole(page: Page, app_url: str):
    open_at(page, app_url, WIDE)
    page.wait_for_timeout(1_000)  # long enough for a closing script to have acted
    assert sidebar_collapsed(page) == "false"
    speed = page.get_by_role("combobox", name="Speed")
    for label in ("An epoch in 5 seconds", "5 batches a second", "Full speed"):
        speed.click()
        page.get_by_role("option", name=label).click()
        expect(speed).to_have_value(label)
        settle(page)
        # The box shows its whole value (the input scrolls its text when the text is wider than it).
        assert speed.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), label
    assert_tabs_whole(page)


def test_a_phone_never_scrolls_sideways(page: Page, app_url: str):
    open_at(page, app_url, PHONE)
    expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true")
    assert page.evaluate(SIDEWAYS) <= 0
    # Start, Pause and Stop on one row, the Speed under them, all inside the screen.
    boxes = {key: box(page, f".st-key-{key} button") for key in ("start_training", "pause_training",
                                                                 "stop_training")}
    boxes["pace"] = box(page, ".st-key-pace")
    for key, found in boxes.items():
        assert found["x"] >= 0 and found["x"] + found["width"] <= PHONE[0], (key, found)
    assert len({round(found["y"]) for key, found in boxes.items() if key != "pace"}) == 1, boxes
    # The tab bar wraps: every label visible.
    assert_tabs_whole(page)


def keep_drawings(folder: Path, count: int) -> None:
    """`count` drawings in the server's drawings folder (sample test digits, some saved as another
    digit, so that some are misread), unless it holds some already."""
    if listing(folder):
        return
    splits = load_mnist("sample")
    for k in range(count):
        label = int(splits.y_test[k]) if k % 3 else (int(splits.y_test[k]) + 1) % 10
        save(folder, np.asarray(splits.x_test[k], np.uint8), label)


@pytest.mark.parametrize("size", [WIDE, PROJECTOR, PHONE], ids=lambda size: f"{size[0]}")
def test_every_view_fits_every_width(page: Page, app_url: str, server_dir: Path, screenshot,
                                     size: tuple[int, int]):
    """Each view at each width: no sideways scrolling, the tab bar whole; shot for a person to look at."""
    ensure_model(page)
    keep_drawings(server_dir / "drawings", 24)
    open_at(page, app_url, size)
    draw(page, ONE)
    prediction_of(page)
    settle(page)
    screenshot(page, f"width-{size[0]}-main")
    for name in VIEWS:
        open_tab(page, name)
        settle(page)
        page.wait_for_timeout(1_000)  # Plotly lays its charts out after the script run
        assert page.evaluate(SIDEWAYS) <= 0, name
        assert_tabs_whole(page)
        if name == "Inside a prediction":
            # The map's dots stay round: its image keeps its own shape (they were vertical dashes at 1024).
            page.wait_for_function(f"({MAP_ASPECT})() !== null", timeout=30_000)
            assert page.evaluate(MAP_ASPECT) == pytest.approx(640 / 440, rel=0.04)
        if name == "Your drawings":
            # Every digit of the filter can be chosen (a segmented control was cut after "6" at 1024),
            # and the matrix's colour-bar title is whole (it read "…true digit's imag").
            expect(page.locator(".st-key-drawings_confusion .cbtitle")).to_have_count(1, timeout=30_000)
            options = page.evaluate(FILTER_WHOLE)
            assert [o["name"] for o in options] == ["all digits", *map(str, range(10))], options
            assert all(o["inside"] for o in options), options
            assert page.evaluate(TITLE_WHOLE, "drawings_confusion") is True
            # The gallery's tiles show a digit's strokes (they were 33 px on a phone).
            assert page.evaluate(TILE_PX, "drawings_gallery") >= 45
        if name == "Weights over time" and size != PHONE:
            # The grid spans the page: its 700 tiles were 8-11 px in three fifths of it.
            assert page.evaluate(TILE_PX, "weights_time_grid") >= 20
            assert page.evaluate(TILE_PX, "weights_filmstrip") >= 40
        if name == "Weights over time":
            # Its colour bar's title whole (it read "ange since step 0").
            expect(page.locator(".st-key-weights_time_grid .cbtitle")).to_have_count(1, timeout=30_000)
            assert page.evaluate(TITLE_WHOLE, "weights_time_grid") is True
        screenshot(page, f"width-{size[0]}-{re.sub(r'[^a-z]+', '-', name.lower()).strip('-')}")
