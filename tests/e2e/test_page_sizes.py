"""The page at the sizes it is used at: a wide screen, a classroom projector, a phone.

Each size is checked for what went wrong there before (cut, ellipsised or wrapped text, a clipped
canvas or model input, narrow charts, controls out of reach) and shot to artifacts/screenshots/.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect
from test_page import ONE, button, draw, ensure_model, prediction_heading, prediction_of

WIDE = (1440, 960)
PROJECTOR = (1024, 768)
PHONE = (420, 900)
MIN_CHART_WIDTH = 420

# Visible elements of the main area whose text the browser cut with an ellipsis.
ELLIPSISED = """() => [...document.querySelectorAll('[data-testid="stMain"] *')].filter(e => {
    const s = getComputedStyle(e);
    return e.offsetParent !== null && s.textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1;
}).map(e => e.textContent.trim().slice(0, 60))"""

# Plotly legends and titles that reach past their chart's right edge.
OVERFLOWING_PLOT_PARTS = """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
    .filter(p => p.offsetParent !== null).flatMap(p => {
        const edge = p.getBoundingClientRect().right + 1;
        return [...p.querySelectorAll('.legend, .gtitle')]
            .filter(part => part.getBoundingClientRect().right > edge)
            .map(part => part.textContent.slice(0, 40));
    })"""


def resize(page: Page, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.wait_for_timeout(800)  # Plotly re-lays out its charts on resize


def assert_nothing_cut(page: Page) -> None:
    assert page.evaluate(ELLIPSISED) == []
    assert page.evaluate(OVERFLOWING_PLOT_PARTS) == []
    canvas = page.locator(".st-key-canvas canvas.upper-canvas").bounding_box()
    holder = page.locator(".st-key-drawing_column").bounding_box()
    assert canvas["x"] >= holder["x"] - 1 and canvas["x"] + canvas["width"] <= holder["x"] + holder["width"] + 1
    digit = page.locator(".st-key-digit_chart .js-plotly-plot").bounding_box()
    assert digit["x"] + digit["width"] <= holder["x"] + holder["width"] + 1
    for key in ("start_training", "pause_training", "stop_training"):
        label = button(page, key).locator("p")
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), key
    speed = page.locator(".st-key-pace").bounding_box()
    stop = page.locator(".st-key-stop_training").bounding_box()
    assert speed["x"] >= stop["x"] + stop["width"] - 1 or speed["y"] >= stop["y"] + stop["height"] - 1
    lines = prediction_heading(page).evaluate("""e => {
        // Lines of the heading's own text (Streamlit adds an anchor icon beside it).
        const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
        const tops = new Set();
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const range = document.createRange();
            range.selectNodeContents(node);
            for (const rect of range.getClientRects()) if (rect.width > 0) tops.add(Math.round(rect.top));
        }
        return tops.size;
    }""")
    assert lines == 1, "the prediction wraps onto a second line"


def in_view(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] \
        and box["x"] + box["width"] <= size["width"]


def test_the_page_fits_a_wide_screen_a_projector_and_a_phone(page: Page, screenshot):
    ensure_model(page)

    resize(page, WIDE)
    draw(page, ONE)
    assert prediction_of(page) == 1
    page.wait_for_timeout(500)
    # After a stroke at 1440x960 the answer, its probabilities and the model's input are all in view,
    # without scrolling.
    assert page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTop") == 0
    for selector in (".st-key-prediction h3", ".st-key-digit_chart .js-plotly-plot",
                     ".st-key-probabilities_chart .js-plotly-plot"):
        assert in_view(page, selector), selector
    for key in ("loss_chart", "accuracy_chart"):
        width = page.locator(f".st-key-{key} .js-plotly-plot").bounding_box()["width"]
        assert width >= MIN_CHART_WIDTH, (key, width)
    assert_nothing_cut(page)
    screenshot(page, "layout-1440")

    resize(page, PROJECTOR)
    assert_nothing_cut(page)
    screenshot(page, "layout-1024")

    resize(page, PHONE)
    # The sidebar is a closed drawer on a phone; Start, Pause and Stop are on the page itself.
    expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true")
    for key in ("start_training", "pause_training", "stop_training"):
        control = button(page, key)
        expect(control).to_be_visible()
        assert control.evaluate("e => !e.closest('[data-testid=\"stSidebar\"]')"), key
    assert_nothing_cut(page)
    screenshot(page, "layout-420")
