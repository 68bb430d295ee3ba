"""The page's few style rules: room on small screens, columns that wrap instead of squeezing.

Streamlit stacks columns only below 640 px; between that and a wide screen it squeezes them, which
cut the canvas and ellipsised the metrics at 1024 px. The keyed rows below wrap instead: a column
that would get narrower than what it holds moves under its neighbour.
"""

from __future__ import annotations

import streamlit as st

# Narrowest useful width of each wrapping column, in px: the canvas is 280 px wide, a chart under
# about 380 px squeezes its legend and ticks.
TRAINING_MIN_PX = 380
DRAWING_MIN_PX = 300
# Start, Pause, Stop and the speed side by side with their labels whole.
CONTROLS_MIN_PX = 440
# Every chart's Plotly config: the toolbar covered chart titles on a phone; zoom by dragging and reset
# by double-click remain.
CHART_CONFIG = {"displayModeBar": False}

_RULES = f"""
<style>
[data-testid="stMainBlockContainer"] {{ padding-top: 1.2rem; padding-left: 1.5rem; padding-right: 1.5rem; }}
.st-key-main_row [data-testid="stHorizontalBlock"]:has(.st-key-training_column) {{ flex-wrap: wrap; }}
.st-key-training_column {{ min-width: {TRAINING_MIN_PX}px; }}
.st-key-drawing_column {{ min-width: {DRAWING_MIN_PX}px; }}
.st-key-main_row [data-testid="stColumn"]:has(.st-key-training_column) {{ flex: 3 1 {TRAINING_MIN_PX}px; min-width: {TRAINING_MIN_PX}px; }}
.st-key-main_row [data-testid="stColumn"]:has(.st-key-drawing_column) {{ flex: 2 1 {DRAWING_MIN_PX}px; min-width: {DRAWING_MIN_PX}px; }}
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .st-key-confusion_column) {{ flex-wrap: wrap; }}
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .st-key-hardest_column) {{ flex-wrap: wrap; }}
[data-testid="stColumn"]:has(.st-key-confusion_column) {{ flex: 2 1 380px; min-width: 340px; }}
[data-testid="stColumn"]:has(.st-key-mistake_cell_column) {{ flex: 3 1 380px; min-width: 340px; }}
[data-testid="stColumn"]:has(.st-key-hardest_column) {{ flex: 3 1 380px; min-width: 340px; }}
[data-testid="stColumn"]:has(.st-key-per_class_column) {{ flex: 2 1 300px; min-width: 280px; }}
.st-key-control_bar [data-testid="stHorizontalBlock"]:has(.st-key-controls_column) {{ flex-wrap: wrap; }}
.st-key-control_bar [data-testid="stColumn"]:has(.st-key-status_column) {{ flex: 3 1 340px; min-width: 280px; }}
.st-key-control_bar [data-testid="stColumn"]:has(.st-key-controls_column) {{ flex: 1 1 {CONTROLS_MIN_PX}px; min-width: {CONTROLS_MIN_PX}px; }}
@media (max-width: 640px) {{ [data-testid="stMainBlockContainer"] {{ padding-top: 3.5rem; }} }}
[data-testid="stMetricValue"] {{ font-size: 1.7rem; }}
.st-key-save_as_buttons {{ gap: 0.3rem; }}
.st-key-save_as_buttons button {{ min-height: 2rem; min-width: 2rem; padding: 0.15rem 0.55rem; }}
</style>
"""


def page_style() -> None:
    """Apply the rules (once a script run; Streamlit sends a style-only st.html without a box)."""
    st.html(_RULES)
