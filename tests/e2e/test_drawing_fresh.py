"""The drawing panel and the views around it keep up with the user (issue 21), in a real browser:

- Save as… confirms in place, under its buttons, never over the canvas: twelve saves in a row at
  1440×900, each one counted;
- Your drawings, open, shows a save within a second, in the page that saved and in a second page;
- a digit clicked in Data opens Inside a prediction at its top: the tab bar and the input in view.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from playwright.sync_api import Page, expect
from streamlit_page import FRESH, open_app
from test_page import ONE, SEVEN, button, chart, click_plot_point, draw, ensure_model, open_tab, settle, step

from mlpdash.drawings import listing


# It trains (and saves drawings) before the page tests, which expect an idle server: a server of its own.
OWN_SERVER = True

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
LAPTOP = {"width": 1440, "height": 900}
SAVES_IN_A_ROW = 12
# A save shows in Your drawings, in any page that has it open: 0.2-0.55 s here (the folder is watched
# twice a second); the issue found it stale for over 10 s, and asks for 1 s. Each page's median save
# within that; any one save within a little more, for a loaded CI machine.
FOLLOW_MEDIAN_MS = 1000
FOLLOW_WITHIN_MS = 1500
SAVES_FOLLOWED = 3


def window_shot(page: Page, name: str) -> None:
    """What the window shows, as the user sees it (the `screenshot` fixture's shot is the whole page,
    which says nothing about where the page is scrolled)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def kept(server_dir: Path) -> int:
    """Drawings in the test server's folder (beside its runs folder, as the page keeps them)."""
    return len(listing(server_dir / "drawings"))


def watch_toasts_over_canvas(page: Page) -> None:
    """From now on, note every toast that appears in the page, and whether it covers the canvas."""
    page.evaluate("""() => {
        window.__toasts = [];
        const look = () => {
            const canvas = document.querySelector('.st-key-canvas canvas.upper-canvas');
            for (const toast of document.querySelectorAll('[data-testid="stToast"]')) {
                if (toast.__seen) continue;
                toast.__seen = true;
                const t = toast.getBoundingClientRect();
                const c = canvas ? canvas.getBoundingClientRect() : null;
                const over = !!c && t.left < c.right && c.left < t.right && t.top < c.bottom && c.top < t.bottom;
                window.__toasts.push({text: toast.textContent, over});
            }
        };
        new MutationObserver(look).observe(document.body, {childList: true, subtree: true});
        look();
    }""")


def test_twelve_saves_in_a_row_are_confirmed_under_the_buttons_never_over_the_canvas(page: Page, server_dir):
    page.set_viewport_size(LAPTOP)
    settle(page)
    watch_toasts_over_canvas(page)
    buttons = page.locator(".st-key-save_as_buttons")
    done = page.locator(f".st-key-save_as_done{FRESH}")
    before = kept(server_dir)
    for number in range(1, SAVES_IN_A_ROW + 1):
        digit = number % 10
        buttons.scroll_into_view_if_needed()  # as a person saving one after another is scrolled
        draw(page, ONE if digit % 2 else SEVEN)
        saved = button(page, f"save_as_{digit}")
        expect(saved).to_be_enabled()  # the drawing has reached the server
        saved.click()
        expect(done).to_contain_text(f"Saved as a {digit} — {before + number} drawings kept")
        assert kept(server_dir) == before + number, f"save {number} was not kept"
        expect(saved).to_be_disabled()  # a fresh, empty canvas for the next one
        # In place: right under the buttons, in view with them.
        under, row = done.bounding_box(), buttons.bounding_box()
        assert under is not None and row is not None
        assert row["y"] + row["height"] - 1 <= under["y"] <= row["y"] + row["height"] + 80, (under, row)
        expect(done).to_be_in_viewport()
        toasts = page.evaluate("window.__toasts")
        assert not [t for t in toasts if t["over"]], f"a toast covered the canvas: {toasts}"
    step(f"{SAVES_IN_A_ROW} saves in a row, each kept and confirmed under the buttons")
    assert page.evaluate("window.__toasts") == []
    window_shot(page, "50-saved-in-place-1440")


def watch_count(page: Page, count: int) -> None:
    """From now on, note on the shared clock (Date.now(), ms) when Your drawings first says it holds
    `count` drawings."""
    page.evaluate("""(count) => {
        window.__counted = null;
        const said = new RegExp('(^|\\\\D)' + count + ' drawings in ');
        const look = () => {
            const box = document.querySelector('.st-key-drawings');
            if (window.__counted === null && box && said.test(box.textContent)) window.__counted = Date.now();
        };
        if (window.__countWatch) window.__countWatch.disconnect();
        window.__countWatch = new MutationObserver(look);
        window.__countWatch.observe(document.body, {childList: true, subtree: true, characterData: true});
        look();
    }""", count)


def test_your_drawings_shows_a_save_within_a_second_in_this_page_and_another(page: Page, context, app_url,
                                                                              server_dir):
    other = context.new_page()
    other.set_default_timeout(30_000)
    try:
        open_app(other, app_url)
        for shown in (page, other):
            open_tab(shown, "Your drawings")
            expect(shown.locator(".st-key-drawings")).to_be_visible()
            settle(shown)
        page.bring_to_front()  # the one drawn on: Chromium handles input slowly in the page behind
        followed: dict[str, list[float]] = {"this page": [], "another page": []}
        for _ in range(SAVES_FOLLOWED):
            count = kept(server_dir) + 1
            for shown in (page, other):
                watch_count(shown, count)
            draw(page, ONE)
            saved = button(page, "save_as_1")
            expect(saved).to_be_enabled()
            # When the button was clicked, on the shared clock: Playwright's own checks before a click
            # take a while and are no part of the page's lag.
            page.evaluate("""() => {
                window.__clicked = null;
                document.querySelector('.st-key-save_as_1 button').addEventListener(
                    'click', () => { window.__clicked = Date.now(); }, {capture: true, once: true});
            }""")
            saved.click()
            clicked = page.evaluate("window.__clicked")
            assert clicked is not None, "the click did not reach the button"
            lags = {}
            for name, shown in (("this page", page), ("another page", other)):
                expect(shown.locator(".st-key-drawings")).to_contain_text(
                    re.compile(rf"(^|\D){count} drawings in "), timeout=15_000)
                lags[name] = shown.evaluate("window.__counted") - clicked
                followed[name].append(lags[name])
            step(f"drawing {count} shown after " + ", ".join(f"{ms:.0f} ms in {name}" for name, ms in lags.items()))
            assert all(ms <= FOLLOW_WITHIN_MS for ms in lags.values()), lags
            settle(page)
        assert all(statistics.median(each) <= FOLLOW_MEDIAN_MS for each in followed.values()), followed
    finally:
        other.close()


def uncovered(element) -> bool:
    """Whether what the window shows at the element's centre is the element (not something over it)."""
    return element.evaluate("""e => {
        const r = e.getBoundingClientRect();
        return e.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
    }""")


def test_a_digit_clicked_in_data_opens_inside_a_prediction_at_its_top(page: Page):
    ensure_model(page)
    page.set_viewport_size(LAPTOP)
    open_tab(page, "Data")
    examples = chart(page, "data_examples")
    expect(examples).to_be_visible(timeout=30_000)
    first = examples.evaluate("plot => plot._fullData[1].customdata[0]")
    settle(page)
    click_plot_point(page, "data_examples", 13.5, 13.5)  # scrolls the examples into view first
    expect(page.get_by_role("tab", name="Inside a prediction")).to_have_attribute("aria-selected", "true",
                                                                                  timeout=30_000)
    expect(page.locator(".st-key-explain")).to_contain_text(f"input: test digit #{first}", timeout=30_000)
    settle(page)
    tab = page.get_by_role("tab", name="Inside a prediction")
    source = page.locator(".st-key-explain_source")
    expect(tab).to_be_in_viewport()
    expect(source).to_be_in_viewport()
    assert uncovered(tab) and uncovered(source), "under the header or the control bar, which stay over the page"
    window_shot(page, "51-data-to-inside-a-prediction-1440")


# What the browser was seen doing while a view opened from a click fills in: the view's content grows
# back and the scroll of the click that opened it is put back, all in one frame.
GROW_AND_PUT_BACK = """([scroll]) => {
    const main = document.querySelector('[data-testid="stMain"]');
    const tall = document.createElement('div');
    tall.style.height = '3000px';
    document.querySelector('.st-key-explain').appendChild(tall);
    main.scrollTop = scroll;
}"""
MAIN_SCROLL = "() => document.querySelector('[data-testid=\"stMain\"]').scrollTop"


def test_the_landing_holds_while_the_view_fills_in_and_leaves_a_scroll_made_after_it_alone(page: Page):
    ensure_model(page)
    page.set_viewport_size(LAPTOP)
    open_tab(page, "Data")
    expect(chart(page, "data_examples")).to_be_visible(timeout=30_000)
    settle(page)
    click_plot_point(page, "data_examples", 13.5, 13.5)
    clicked_at = page.evaluate(MAIN_SCROLL)  # the click scrolled the examples into view
    tab = page.get_by_role("tab", name="Inside a prediction")
    expect(tab).to_have_attribute("aria-selected", "true")
    expect(page.locator(".st-key-explain")).to_be_attached()
    page.evaluate(GROW_AND_PUT_BACK, [clicked_at])  # while the rerun still fills the view in
    settle(page)
    expect(tab).to_be_in_viewport()
    assert uncovered(tab)
    # A scroll the page did not make (a user's, a test's before a click) is kept.
    landed = page.evaluate(MAIN_SCROLL)
    page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollBy({top: 400})")
    page.wait_for_timeout(1_000)
    assert page.evaluate(MAIN_SCROLL) >= landed + 390
