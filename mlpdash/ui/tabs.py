"""The exploration views under the live panel: one tab each, computed only while open.

A view is a name and a function that draws it; `VIEWS` is their order on the page. A new view (the
explanation of a prediction, weights over time, units...) is one entry here and one module of its
own. It receives the `Focus` (which run and model it is about, by the one rule of `mlpdash.focus`);
a view that also acts (starts a fine-tune, queues a sweep) says so and receives the server's parts
too. Its input and other choices are in `mlpdash.ui.choices`, as the others' are. Only the open
tab runs (Streamlit's lazy tabs, `on_change="rerun"` with `.open`), so a stroke on the canvas never
pays for a view nobody is looking at.

A view about the drawing (`with_canvas`) is drawn by the canvas's fragment, into its place under its
tab (Streamlit lets a fragment write into a container made outside it): a stroke then redraws the
canvas, its answer and that view, and nothing else; before, it ran the whole page after the fragment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from mlpdash.focus import Focus
from mlpdash.server import Server
from mlpdash.ui import choices, follow_epochs, guarded
from mlpdash.ui.compare_view import compare_ui
from mlpdash.ui.data_view import data_view_ui
from mlpdash.ui.drawings_view import drawings_ui
from mlpdash.ui.explain_view import explain_ui
from mlpdash.ui.mistakes_view import mistakes_ui
from mlpdash.ui.over_time_view import over_time_ui
from mlpdash.ui.panels import weights_ui
from mlpdash.ui.units_view import units_ui


@dataclass(frozen=True)
class View:
    name: str
    draw: Callable[..., None]  # (focus), or (focus, server) for a view that acts
    follows_drawing: bool = False  # redrawn on every stroke while open (a run of the whole page)
    follows_epochs: bool = False  # redrawn when the job in focus ends an epoch, while open
    acts: bool = False
    with_canvas: bool = False  # drawn by the canvas's fragment: a stroke redraws it and nothing else


VIEWS: tuple[View, ...] = (
    View("Mistakes", mistakes_ui, follows_epochs=True),
    View("Inside a prediction", explain_ui, with_canvas=True),
    View("First-layer weights", weights_ui),
    View("Weights over time", over_time_ui, follows_drawing=True, follows_epochs=True),
    View("Units", units_ui, follows_epochs=True),
    View("Data", data_view_ui),
    View(choices.DRAWINGS_TAB, drawings_ui, acts=True),
    View("Runs & comparison", compare_ui, acts=True),
)
TAB_KEY = choices.VIEW_TAB_KEY  # the open view's name: the page's, not the tab bar's (below)
# The tab bar's (generation, view it opened on, view it showed last). Every request from a browser
# carries the values of all the page's widgets as that browser last had them, and Streamlit applies
# them to the session: a request sent just before the page opened a view itself (a lesson's step, a
# click in another view) put the old tab back, seen in CI as a lesson step whose view closed again.
# So a view opened by the page gets a tab bar of a new generation (a new key): the old bar's values,
# stale, belong to no widget of the page any more and are dropped.
BAR_KEY = "view_tab_bar"
LAND_GAP_PX = 12  # between what stays over the top of the page and the tab bar landed on
LAND_HOLD_MS = 2_500  # the landing is let go once the page has not moved it for this long
LAND_MOST_MS = 20_000  # and at the latest this long after it landed


def open_view_follows_drawing() -> bool:
    """Whether the tab open now shows the drawing (so that a stroke must redraw it too)."""
    name = st.session_state.get(TAB_KEY) or VIEWS[0].name
    return any(view.follows_drawing for view in VIEWS if view.name == name)


@dataclass(frozen=True)
class OpenView:
    """The view whose tab is open, and its place under the tab, not drawn yet."""

    view: View
    place: DeltaGenerator
    server: Server

    @property
    def with_canvas(self) -> bool:
        return self.view.with_canvas

    def draw(self, focus: Focus) -> None:
        """Draw the view in its place (in the whole page's run, or in the canvas's fragment's)."""
        with self.place, guarded(self.view.name.lower()):
            self.view.draw(focus, self.server) if self.view.acts else self.view.draw(focus)
            if self.view.follows_epochs:
                follow_epochs(focus)


def views_ui(server: Server) -> OpenView:
    """The tab bar, and a place under the open tab for its view; `OpenView.draw` draws it there (the
    page right away, or the canvas's fragment for a view `with_canvas`)."""
    st.session_state.pop(choices.TAB_CHANGED_KEY, None)  # a full run shows any tab change itself
    tabs = _tab_bar()
    for view, tab in zip(VIEWS, tabs, strict=True):
        if tab.open:
            st.session_state[TAB_KEY] = view.name
            st.session_state[BAR_KEY] = (*st.session_state[BAR_KEY][:2], view.name)
            with tab:
                if st.session_state.get(choices.LAND_KEY, False):  # opened from a click in another view
                    _land_at_the_tabs()
                    # Let go once sent: a run stopped by a new rerun before it got here lands in that one.
                    st.session_state.pop(choices.LAND_KEY, None)
                return OpenView(view, st.container(), server)
    # Streamlit opens the first tab when none is chosen: not reached, but a view is always there.
    with tabs[0]:
        return OpenView(VIEWS[0], st.container(), server)


def _tab_bar() -> Sequence[DeltaGenerator]:
    """The views' tab bar, open on the view the page asks for (TAB_KEY) if it changed it since the bar
    was last drawn, else on the tab the user picked."""
    names = [view.name for view in VIEWS]
    wanted = st.session_state.get(TAB_KEY)
    wanted = wanted if wanted in names else names[0]
    generation, opened_on, shown = st.session_state.get(BAR_KEY, (0, wanted, wanted))
    if wanted != shown:
        generation, opened_on = generation + 1, wanted
    st.session_state[BAR_KEY] = (generation, opened_on, shown)
    # The view it opens on is part of the widget's identity: constant within a generation, or a click
    # would be lost to a new widget.
    return st.tabs(names, key=f"{BAR_KEY}_{generation}", default=opened_on, on_change="rerun")


# Streamlit has no scroll API, and a tab opened from a click far down another view keeps the page's
# scroll: the view would open at its middle, its tab bar and input off screen. This scrolls the views'
# tab bar to the top of the window, clear of what stays over the page there (Streamlit's header, the
# sticky control bar). The script runs as its element arrives, while the rest of the rerun is still
# to come: the old view's elements leave and the new view's fill in, and on a loaded machine that
# can go on for seconds: seen in Chromium, the browser put back the scroll of the click that opened
# the view once the view had grown again, and the bar was off screen. So the landing is held: put
# back while the page changes under it, until it has not for LAND_HOLD_MS, or the user scrolls,
# clicks or types, or something else scrolls (the bar moves, the page unchanged).
# Checked in Chromium: Streamlit scrolls inside its main block, which scrollIntoView moves. Its own
# text: nothing from a user or a file is in it.
_LAND_SCRIPT = """<script data-landing="{nonce}">
(() => {{
  // Returns where the bar was put: the bar, the box that scrolls it, its top in the window and in that
  // box's content (a page shift moves the second; a scroll moves only the first).
  const land = () => {{
    // The tab bar over this script's own box: a tab bar just drawn anew has no tab selected yet.
    const tabs = document.querySelector('.st-key-view_landing')?.closest('[data-testid="stTabs"]');
    const bar = tabs && tabs.querySelector('[role="tablist"]');
    if (!bar) return null;
    bar.scrollIntoView({{block: "start", behavior: "instant"}});
    let covered = 0;
    for (const over of document.querySelectorAll('[data-testid="stHeader"], .st-key-control_bar')) {{
      const style = getComputedStyle(over);
      if ((style.position === "fixed" || style.position === "sticky") && style.visibility !== "hidden")
        covered = Math.max(covered, over.getBoundingClientRect().bottom);
    }}
    const short = covered + {gap} - bar.getBoundingClientRect().top;
    let scroller = bar.parentElement;
    while (scroller && !(scroller.scrollHeight > scroller.clientHeight
                         && /(auto|scroll)/.test(getComputedStyle(scroller).overflowY)))
      scroller = scroller.parentElement;
    scroller = scroller || document.scrollingElement;
    if (short > 0) scroller.scrollBy({{top: -short, behavior: "instant"}});
    return where({{bar, scroller}});
  }};
  const where = (put) => {{
    const top = put.bar.getBoundingClientRect().top;
    return {{...put, top, inside: top + put.scroller.scrollTop, height: put.scroller.scrollHeight}};
  }};
  let put = land();
  if (!put) return;
  const user = ["wheel", "touchstart", "keydown", "pointerdown"];
  let held = true;
  const letGo = () => {{ held = false; }};
  for (const kind of user) window.addEventListener(kind, letGo, {{capture: true, passive: true}});
  let still = performance.now();
  const last = still + {most};
  const hold = () => {{
    const now = performance.now();
    const moved = put.bar.isConnected ? where(put) : null;
    // The page moves the bar when what is above it changes, and when what scrolls changes height:
    // the browser clamps the scroll as the old view leaves, and may put back an older scroll (the one
    // the click that opened the view had made) as the new view fills in.
    const paged = !moved || Math.abs(moved.inside - put.inside) > 1 || moved.height !== put.height;
    const off = !moved || Math.abs(moved.top - put.top) > 1;
    const scrolled = off && !paged;  // by someone else, the page unchanged: theirs
    if (held && paged) {{
      put = off ? land() : moved;
      still = now;
    }}
    if (!put || !held || scrolled || now - still > {hold} || now > last) {{
      for (const kind of user) window.removeEventListener(kind, letGo, {{capture: true}});
      return;
    }}
    requestAnimationFrame(hold);
  }};
  requestAnimationFrame(hold);
}})();
</script>"""


def _land_at_the_tabs() -> None:
    """Bring the views' tab bar (and under it the view's input) into view, once. Before the view, so
    that the page lands before its figures are drawn; outside it, as a view drawn by the canvas's
    fragment is drawn again by every stroke (and the script gone with its element)."""
    with st.container(key="view_landing"):
        # A body of its own each time: the script runs when the body changes.
        script = _LAND_SCRIPT.format(nonce=time.monotonic_ns(), gap=LAND_GAP_PX, hold=LAND_HOLD_MS,
                                     most=LAND_MOST_MS)
        st.html(script, unsafe_allow_javascript=True)
