"""A guided lesson walked from its first step to its last in one page at 1024x768 (a projector), while
a second page of the same server follows it: each step's text, the view it names and the control bar
on one screen, in both pages; a screenshot of each step."""

from __future__ import annotations

import re
import time

from playwright.sync_api import BrowserContext, Page, expect
from streamlit_page import FRESH, open_app
from test_every_width import PROJECTOR, SCREENSHOTS, box, in_window
from test_page import RUN_TIMEOUT_MS, button, settle, status, step

# It trains: a server of its own, so that the page tests still start from an idle one.
OWN_SERVER = True
LESSON = "What a neuron learns"
STEPS = [("Noise at step 0", "First-layer weights"), ("After one epoch", "Weights over time"),
         ("One unit up close", "Units"), ("A linear model's templates", "First-layer weights")]
FOLLOW_MS = 15_000  # a page that was idle looks every 5 s, then every second while in the lesson


def step_button(page: Page, key: str):
    """A button of the step's box, once there is one of it (while its fragment reruns, the old box
    lingers a moment beside the new)."""
    found = page.locator(f".st-key-lesson_step{FRESH} .st-key-{key} button").filter(visible=True)
    expect(found).to_have_count(1, timeout=FOLLOW_MS)
    return found


def on_one_screen(page: Page, view: str) -> None:
    """The step's box, the control bar and the tab of the step's view (open), all in the window, within
    FOLLOW_MS of the step's text (the landing script scrolls once the view is drawn; on a loaded
    machine that may be seconds later)."""
    tab = page.get_by_role("tab", name=view)
    expect(tab).to_have_attribute("aria-selected", "true", timeout=FOLLOW_MS)
    page.locator("[data-test-script-state='notRunning']").wait_for(state="attached", timeout=RUN_TIMEOUT_MS)
    deadline = time.monotonic() + FOLLOW_MS / 1000
    while True:
        where = (("step", box(page, f".st-key-lesson_step{FRESH}")),
                 ("control bar", box(page, ".st-key-control_bar")), ("tab", tab.bounding_box()))
        if all(found is not None and in_window(found, PROJECTOR) for _, found in where):
            return
        if time.monotonic() > deadline:
            page.screenshot(path=str(SCREENSHOTS / f"lesson-not-on-one-screen-{view}.png"))
            raise AssertionError(f"not all in the {PROJECTOR} window: {where}")
        page.wait_for_timeout(200)


def test_a_lesson_walked_in_one_page_is_followed_by_a_second(page: Page, context: BrowserContext, app_url: str):
    page.set_viewport_size({"width": PROJECTOR[0], "height": PROJECTOR[1]})
    open_app(page, app_url)
    follower = context.new_page()
    follower.set_viewport_size({"width": PROJECTOR[0], "height": PROJECTOR[1]})
    open_app(follower, app_url)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        # The teacher opens the sidebar (closed below 1100 px) and begins the lesson.
        expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true", timeout=10_000)
        page.get_by_test_id("stExpandSidebarButton").click()
        expect(page.get_by_role("combobox", name="Guided lesson")).to_have_value(LESSON)
        button(page, "guided_begin").click()
        for number, (title, view) in enumerate(STEPS, start=1):
            heading = re.compile(rf"step {number} of {len(STEPS)}: {re.escape(title)}")
            # The teacher's page first (a loaded machine may take a while over a view's first visit),
            # then the follower within its polling time.
            for shown, within in ((page, RUN_TIMEOUT_MS), (follower, FOLLOW_MS)):
                expect(shown.locator(f".st-key-lesson_step{FRESH}")).to_contain_text(heading, timeout=within)
                on_one_screen(shown, view)
            step(f"step {number}: {title}, {view}, on both pages")
            if number == 1:
                expect(status(page)).to_contain_text("Training", timeout=RUN_TIMEOUT_MS)
            if number == 2:  # full speed, held when the first epoch ends
                expect(status(page)).to_contain_text("Paused", timeout=RUN_TIMEOUT_MS)
                expect(status(follower)).to_contain_text("Paused", timeout=FOLLOW_MS)
            if number == 4:  # the linear model's ten tiles, not the stopped recipe's 700 (a stale view)
                for shown in (page, follower):
                    expect(shown.get_by_role("tabpanel").filter(visible=True)).not_to_contain_text(
                        "of the 700", timeout=RUN_TIMEOUT_MS)
            settle(page)
            page.screenshot(path=str(SCREENSHOTS / f"lesson-step-{number}-1024.png"))
            if number < len(STEPS):
                step_button(page, "guided_next").click()
        follower.screenshot(path=str(SCREENSHOTS / "lesson-follower-last-step-1024.png"))
        expect(step_button(page, "guided_next")).to_be_disabled()  # the last step
        step_button(page, "guided_end").click()
        for shown in (page, follower):
            expect(shown.locator(".st-key-lesson_step")).to_have_count(0, timeout=FOLLOW_MS)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(follower.get_by_test_id("stException")).to_have_count(0)
    finally:
        follower.close()
