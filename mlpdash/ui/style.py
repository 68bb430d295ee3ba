"""The page's few style rules: room on small screens, columns that wrap instead of squeezing, a control
bar that stays in view.

Streamlit stacks columns only below 640 px; between that and a wide screen it squeezes them, which
cut the canvas and ellipsised the metrics at 1024 px. The keyed rows below wrap instead: a column
that would get narrower than what it holds moves under its neighbour. Below 640 px (a phone) no
column may ask for more than the screen: 44 px of sideways scrolling pushed Start, Pause, Stop and
the Speed off the right edge.

On a projector (1024x768) the sidebar starts closed (`SIDEBAR_SCRIPT`), so that the live charts and
the canvas sit side by side and fit the screen with the control bar; the bar sticks to the top of
the page while the views below are scrolled, so Stop is always one click away.
"""

from __future__ import annotations

import streamlit as st

# Narrowest useful width of each wrapping column, in px: the canvas is 280 px wide, a chart under
# about 380 px squeezes its legend and ticks.
TRAINING_MIN_PX = 380
DRAWING_MIN_PX = 300
# Start, Pause, Stop and the Speed side by side with their labels whole ("Speed: 2,000 digits/s" was
# cut to "Speed: 100 digits/" in a narrower box).
CONTROLS_MIN_PX = 540
# Below this width the sidebar starts closed: at 1024 px its 300 px pushed the canvas under the charts,
# below the fold. Streamlit's own "auto" closes it only below 768 px.
SIDEBAR_CLOSED_BELOW_PX = 1100
# Streamlit's phone layout (columns stacked) starts at this width.
PHONE_MAX_PX = 640
# Width of Your drawings' gallery on a phone (it scrolls sideways in its box): tiles of about 50 px.
GALLERY_PHONE_PX = 560
# Height of Streamlit's header bar, opaque while the sidebar is closed.
HEADER_REM = 3.75
# Every chart's Plotly config: the toolbar covered chart titles on a phone; zoom by dragging and reset
# by double-click remain.
CHART_CONFIG = {"displayModeBar": False}

# Streamlit wraps a keyed container in a box of its own height: that box is what must stick.
_BAR = '[data-testid="stLayoutWrapper"]:has(> .st-key-control_bar)'
_RULES = f"""
<style>
[data-testid="stMainBlockContainer"] {{ padding-top: 1.2rem; padding-left: 1.5rem; padding-right: 1.5rem; }}
.st-key-main_row [data-testid="stHorizontalBlock"]:has(.st-key-training_column) {{ flex-wrap: wrap; }}
/* Half gaps in the training column: with its charts beside the canvas it fits a 768-px screen. */
.st-key-training_column {{ min-width: {TRAINING_MIN_PX}px; gap: 0.5rem; }}
.st-key-training_column [data-testid="stVerticalBlock"] {{ gap: 0.5rem; }}
.st-key-drawing_column {{ min-width: {DRAWING_MIN_PX}px; }}
.st-key-main_row [data-testid="stColumn"]:has(.st-key-training_column) {{ flex: 3 1 {TRAINING_MIN_PX}px; min-width: {TRAINING_MIN_PX}px; }}
.st-key-main_row [data-testid="stColumn"]:has(.st-key-drawing_column) {{ flex: 2 1 {DRAWING_MIN_PX}px; min-width: {DRAWING_MIN_PX}px; }}
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .st-key-confusion_column) {{ flex-wrap: wrap; }}
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .st-key-hardest_column) {{ flex-wrap: wrap; }}
[data-testid="stColumn"]:has(.st-key-confusion_column) {{ flex: 2 1 380px; min-width: 340px; }}
[data-testid="stColumn"]:has(.st-key-mistake_cell_column) {{ flex: 3 1 380px; min-width: 340px; }}
[data-testid="stColumn"]:has(.st-key-hardest_column) {{ flex: 3 1 380px; min-width: 340px; }}
[data-testid="stColumn"]:has(.st-key-per_class_column) {{ flex: 2 1 300px; min-width: 280px; }}
.st-key-control_bar [data-testid="stHorizontalBlock"]:has(.st-key-controls_column) {{ flex-wrap: wrap; row-gap: 0.4rem; }}
.st-key-control_bar [data-testid="stColumn"]:has(.st-key-status_column) {{ flex: 3 1 340px; min-width: 280px; }}
.st-key-control_bar [data-testid="stColumn"]:has(.st-key-controls_column) {{ flex: 1 1 {CONTROLS_MIN_PX}px; min-width: {CONTROLS_MIN_PX}px; }}
/* The control bar stays at the top while the page scrolls (not on a phone, where it would take a third
   of the screen). With the sidebar closed, Streamlit's header turns opaque over the top {HEADER_REM}rem (it
   holds the sidebar's open button): the title starts and the bar sticks under it. */
@media (min-width: {PHONE_MAX_PX + 1}px) {{
  {_BAR}, .st-key-control_bar {{ position: sticky; top: 0; z-index: 99; }}
  .st-key-control_bar {{ background: #ffffff; padding: 0.35rem 0; border-bottom: 1px solid rgba(49, 51, 63, 0.12); }}
  .stApp:has([data-testid="stSidebar"][data-collapsed="true"]) :is({_BAR}, .st-key-control_bar) {{ top: {HEADER_REM}rem; }}
  .stApp:has([data-testid="stSidebar"][data-collapsed="true"]) [data-testid="stMainBlockContainer"] {{ padding-top: {HEADER_REM}rem; }}
  /* Whatever is scrolled into view (a search hit, an element a script or a test scrolls to) stops under
     the bar, not behind it: the canvas' top, half under the bar, took a stroke's start for the bar's. */
  [data-testid="stMain"] {{ scroll-padding-top: 5.5rem; }}
  .stApp:has([data-testid="stSidebar"][data-collapsed="true"]) [data-testid="stMain"] {{ scroll-padding-top: {HEADER_REM + 5.5}rem; }}
  /* A view scrolled to its top (a digit opened in Inside a prediction) lands under the bar, not behind it. */
  [data-testid="stTabs"], [data-testid="stTabs"] [role="tablist"] {{ scroll-margin-top: 5.5rem; }}
  .stApp:has([data-testid="stSidebar"][data-collapsed="true"]) :is([data-testid="stTabs"], [role="tablist"]) {{
    scroll-margin-top: {HEADER_REM + 5.5}rem; }}
}}
/* All eight tab labels on one line at 1024 px (they were clipped at "Runs &" behind a scroll arrow);
   narrower, they wrap onto a second line rather than hide. */
[data-testid="stTabs"] [role="tablist"] {{ flex-wrap: wrap; column-gap: 0.9rem; row-gap: 0.1rem; overflow: visible; }}
[data-testid="stTabs"] [role="tab"] {{ padding-left: 0; padding-right: 0; }}
[data-testid="stTabs"] [role="tab"] p {{ font-size: 0.9rem; white-space: nowrap; }}
@media (max-width: {PHONE_MAX_PX}px) {{
  [data-testid="stMainBlockContainer"] {{ padding-top: 3.5rem; padding-left: 1rem; padding-right: 1rem; }}
  .st-key-training_column, .st-key-drawing_column,
  .st-key-main_row [data-testid="stColumn"]:has(.st-key-training_column),
  .st-key-main_row [data-testid="stColumn"]:has(.st-key-drawing_column),
  .st-key-control_bar [data-testid="stColumn"]:has(.st-key-status_column),
  .st-key-control_bar [data-testid="stColumn"]:has(.st-key-controls_column) {{ min-width: 0; }}
  /* Start, Pause and Stop share a row, the Speed goes under them. */
  .st-key-controls_column [data-testid="stHorizontalBlock"] {{ flex-flow: row wrap; gap: 0.4rem; }}
  .st-key-controls_column [data-testid="stColumn"] {{ flex: 1 1 5rem; min-width: 5rem; width: auto; }}
  .st-key-controls_column [data-testid="stColumn"]:has(.st-key-pace) {{ flex: 1 1 100%; }}
  /* Your drawings' gallery keeps tiles big enough to tell a 4 from a 9 (ten to a row, they were 33 px):
     wider than the screen, it scrolls sideways in its own box, the page does not. */
  .st-key-drawings_gallery_box {{ overflow-x: auto; }}
  .st-key-drawings_gallery {{ min-width: {GALLERY_PHONE_PX}px; }}
}}
[data-testid="stMetricValue"] {{ font-size: 1.7rem; }}
.st-key-page_title h3 {{ padding: 0 0 0.2rem 0; }}
.st-key-save_as_buttons {{ gap: 0.3rem; }}
.st-key-save_as_buttons button {{ min-height: 2rem; min-width: 2rem; padding: 0.15rem 0.55rem; }}
/* Pictures in a row (a drawing's steps, the nearest digits) apart, as a figure's panels were:
   Streamlit puts no space between them, only between rows. */
[data-testid="stImage"] {{ column-gap: 0.5rem; }}
</style>
"""

# Closes the sidebar once, when the page opens in a window narrower than SIDEBAR_CLOSED_BELOW_PX; it
# clicks Streamlit's own button, so the sidebar's open button brings it back, and a later rerun (or
# a resize) never closes it again.
SIDEBAR_SCRIPT = f"""
<script>
(() => {{
  if (window.__mlpdashSidebarChecked) return;
  window.__mlpdashSidebarChecked = true;
  if (window.innerWidth >= {SIDEBAR_CLOSED_BELOW_PX}) return;
  const close = (tries) => {{
    const sidebar = document.querySelector('[data-testid="stSidebar"]');
    const button = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (sidebar && button && sidebar.getAttribute('data-collapsed') === 'false') button.click();
    else if (tries > 0 && !(sidebar && sidebar.getAttribute('data-collapsed') === 'true'))
      setTimeout(() => close(tries - 1), 100);
  }};
  close(50);
}})();
</script>
"""


def page_style() -> None:
    """Apply the rules (once a script run; Streamlit sends a style-only st.html without a box), and
    the sidebar's start state for the window's width."""
    st.html(_RULES)
    st.html(SIDEBAR_SCRIPT, unsafe_allow_javascript=True)
