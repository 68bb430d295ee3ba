"""The guided lesson on the page: its chooser in the sidebar, and its step in the control bar, where it
stays in view (the bar sticks to the top of a laptop's or projector's screen) above the view it opens.

The step is the server's (`mlpdash.guide`), so every page shows the same one: a page that sees the
guide's version move opens the step's view (or scrolls to the charts) within a second. In classroom
mode only the password holder begins, moves and ends a lesson.
"""

from __future__ import annotations

import time
from functools import lru_cache

import streamlit as st

from mlpdash.lessons import preset_named
from mlpdash.lessons.guided import GUIDED_FOLDER, Lesson, load_lessons
from mlpdash.server import Server
from mlpdash.ui import choices, plain
from mlpdash.ui.access import may_control
from mlpdash.ui.tabs import VIEWS

PICK_KEY = "guided_pick"
SEEN_KEY = "guided_seen"  # the guide's version this page has followed
PENDING_KEY = "guided_pending"  # the view (or CHARTS) a step opens, until the tabs have been drawn
CHARTS = "charts"
# Streamlit has no scroll API: a step about the charts scrolls the page to its top, once. Its own
# text; nothing from a user or a file is in it.
_TOP_SCRIPT = """<script data-landing="{nonce}">
(() => {{
  const main = document.querySelector('[data-testid="stMain"]');
  for (const box of [main, document.scrollingElement]) if (box) box.scrollTo({{top: 0, behavior: "instant"}});
}})();
</script>"""


def lessons() -> tuple[tuple[Lesson, ...], dict[str, str]]:
    """The guided lessons and the problem of each file that failed, read again when a file changes
    (a teacher adds a lesson without restarting the server)."""
    stamp = tuple((path.name, path.stat().st_mtime_ns) for path in sorted(GUIDED_FOLDER.glob("*.toml")))
    return _lessons(stamp)


@lru_cache(maxsize=4)
def _lessons(stamp: tuple) -> tuple[tuple[Lesson, ...], dict[str, str]]:
    return load_lessons([view.name for view in VIEWS])


def _lesson(key: str | None) -> Lesson | None:
    return next((lesson for lesson in lessons()[0] if lesson.key == key), None)


def chooser_ui(server: Server, locked: bool = False) -> None:
    """The sidebar's lesson list and Begin: the first step opens on every page of the server."""
    found, problems = lessons()
    for name, problem in problems.items():
        st.warning(f"The lesson file {plain(name)} cannot be used: {plain(problem)}", icon=":material/warning:")
    if not found:
        return
    by_key = {lesson.key: lesson for lesson in found}
    if st.session_state.get(PICK_KEY) not in by_key:
        st.session_state[PICK_KEY] = found[0].key
    st.selectbox("Guided lesson", list(by_key), key=PICK_KEY, format_func=lambda key: by_key[key].title,
                     disabled=locked, help="A few steps, each opening the view that shows it and starting or "
                                          "pausing the run at the moment that teaches; every page follows.")
    st.button("Begin the lesson", key="guided_begin", icon=":material/school:", disabled=locked,
              on_click=_move, args=(server, st.session_state[PICK_KEY], 0, True))


def _move(server: Server, key: str, index: int, act: bool) -> None:
    """Open step `index` of lesson `key` (a button's callback); with `act`, do what the step says."""
    lesson = _lesson(key)
    if lesson is None or not may_control():
        return
    step = lesson.steps[index]
    if act and step.preset is not None:
        choices.apply_preset(preset_named(step.preset))  # this page's settings show what trains
    server.guide.open(lesson, index, choices.data_choice(), act=act)


def _end(server: Server) -> None:
    if may_control():
        server.guide.end()


def moved(server: Server) -> bool:
    """Whether the class has moved to another step since this page last followed it."""
    return server.guide.place.version != st.session_state.get(SEEN_KEY, 0)


def follow(server: Server) -> None:
    """In a run of the whole page, before the views' tabs: open the view of a step this page has not
    followed yet (or scroll to the charts for a step without one). Until `followed()` says the tabs
    were drawn, every run of the page does it again: a run cut short by another rerun (an epoch's end
    reruns the page too) would otherwise leave the browser's old tab in place."""
    place = server.guide.place
    if moved(server):
        st.session_state[SEEN_KEY] = place.version
        lesson = _lesson(place.lesson)
        if lesson is not None:
            st.session_state[PENDING_KEY] = lesson.steps[place.step].view or CHARTS
    pending = st.session_state.get(PENDING_KEY)
    if pending == CHARTS:
        st.html(_TOP_SCRIPT.format(nonce=time.monotonic_ns()), unsafe_allow_javascript=True)
    elif pending is not None:
        choices.open_view_tab(pending)


def followed() -> None:
    """After the views' tabs in a run of the whole page: the step's view is open in the browser."""
    st.session_state.pop(PENDING_KEY, None)


def step_ui(server: Server) -> None:
    """The step the class is at: what to look at and the question, with Back, Next and End."""
    place = server.guide.place
    if place.lesson is None:
        return
    lesson = _lesson(place.lesson)
    allowed = may_control()
    with st.container(key="lesson_step", border=True):
        if lesson is None:
            st.warning(f"The lesson {plain(place.lesson)} is no longer there.", icon=":material/warning:")
            st.button("End the lesson", key="guided_end", on_click=_end, args=(server,), disabled=not allowed)
            return
        step, count = lesson.steps[place.step], len(lesson.steps)
        heading, buttons = st.columns([5, 4], vertical_alignment="center")
        heading.markdown(f"**{plain(lesson.title)}** · step {place.step + 1} of {count}: **{plain(step.title)}**")
        with buttons, st.container(horizontal=True, horizontal_alignment="right", key="lesson_buttons"):
            st.button("Back", key="guided_back", icon=":material/arrow_back:", disabled=not allowed or place.step == 0,
                      on_click=_move, args=(server, lesson.key, max(place.step - 1, 0), False),
                      help="The step before, without running it again")
            last = place.step + 1 >= count
            st.button("Next", key="guided_next", icon=":material/arrow_forward:", type="primary",
                      disabled=not allowed or last, on_click=_move,
                      args=(server, lesson.key, min(place.step + 1, count - 1), True))
            st.button("End", key="guided_end", icon=":material/close:", disabled=not allowed,
                      on_click=_end, args=(server,), help="Leave the lesson (the runs it made stay)")
        st.markdown(plain(step.look))
        st.markdown(f":blue[**Question:**] {plain(step.question)}")
        if server.guide.problem:
            st.error(plain(server.guide.problem), icon=":material/warning:")
