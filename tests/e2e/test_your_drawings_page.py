"""Your drawings in the real page: three drawings saved with Save as… under the canvas, seen in the
tab's gallery with the model evaluated on them, and the model fine-tuned on them as a new run.

Named to run after test_page.py (pytest takes the files in name order): it leaves the shared server
with a finished job, and test_page.py's first test expects a server that has trained nothing."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from test_page import FLAG, ONE, SEVEN, button, draw, ensure_model, ink, open_tab, prediction_of, settle, step

FINETUNE_TIMEOUT_MS = 180_000


def save_as(page: Page, shape: list[tuple[float, float]], digit: int) -> None:
    settle(page)
    draw(page, shape)
    prediction_of(page)  # the drawing has reached the server
    saved = button(page, f"save_as_{digit}")
    expect(saved).to_be_enabled()
    saved.click()
    expect(page.locator(".st-key-save_as_done")).to_contain_text(f"Saved as a {digit}")  # under the buttons
    expect(button(page, f"save_as_{digit}")).to_be_disabled(timeout=15_000)  # a fresh, empty canvas
    assert ink(page) == 0


def test_three_drawings_saved_evaluated_explained_and_fine_tuned(page: Page, screenshot):
    ensure_model(page)
    for shape, digit in ((ONE, 1), (SEVEN, 7), (ONE + FLAG, 1)):
        save_as(page, shape, digit)
    step("three drawings saved")
    screenshot(page, "40-saved-drawings")
    open_tab(page, "Your drawings")
    box = page.locator(".st-key-drawings")
    expect(box).to_contain_text("3 drawings in")
    expect(box).to_contain_text("2 × 1, 1 × 7")
    expect(box).to_contain_text(re.compile(r"\d+\.\d% of 3 drawings read right"))
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # Fine-tune: the server's job, in the status line like a training run; its new run, with its
    # report, becomes the run every panel shows.
    settle(page)
    button(page, "drawings_finetune").click()
    expect(box).to_contain_text("New run", timeout=FINETUNE_TIMEOUT_MS)
    expect(box).to_contain_text("the MNIST test split")
    expect(page.locator(".st-key-status")).to_contain_text("Finished fine-tuning")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    settle(page)
    box.scroll_into_view_if_needed()
    screenshot(page, "41-your-drawings")
