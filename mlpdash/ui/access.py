"""Classroom mode: with a control password set, only those who entered it may change the job.

The password comes from `.streamlit/secrets.toml` (`control_password = "..."`) or the environment
variable MLPDASH_CONTROL_PASSWORD. Without one, everyone controls the page (one person on their own
machine). With one, everyone else watches the live run and draws digits; Start, Pause, Stop, the
settings and run evaluation are for those who unlocked them in this browser session.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

PASSWORD_ENV = "MLPDASH_CONTROL_PASSWORD"
SECRET_KEY = "control_password"
UNLOCKED_KEY = "controls_unlocked"


def control_password() -> str | None:
    """The configured password, or None when the page is not in classroom mode."""
    try:
        configured = st.secrets.get(SECRET_KEY)
    except Exception:  # no secrets file, or an unreadable one: Streamlit raises several types
        configured = None
    value = configured or os.environ.get(PASSWORD_ENV)
    return str(value) if value else None


def may_control() -> bool:
    """Whether this browser session may start, pause, stop or change the job."""
    return control_password() is None or bool(st.session_state.get(UNLOCKED_KEY))


def password_matches(given: str, expected: str) -> bool:
    # Constant time: the comparison must not tell how many leading characters were right.
    return hmac.compare_digest(given.encode(), expected.encode())


def access_ui() -> bool:
    """In classroom mode, the unlock form (or a lock button); returns may_control()."""
    expected = control_password()
    if expected is None:
        return True
    if st.session_state.get(UNLOCKED_KEY):
        st.caption("Classroom mode: you control the job.")
        if st.button("Lock the controls", key="lock_controls", icon=":material/lock:"):
            st.session_state[UNLOCKED_KEY] = False
            st.rerun()
        return True
    st.info("Classroom mode: you can watch the run and draw digits. Enter the control password to "
            "start, pause or stop training.", icon=":material/school:")
    with st.form("unlock", border=False):
        given = st.text_input("Control password", type="password", key="control_password_input")
        if st.form_submit_button("Unlock the controls", icon=":material/lock_open:"):
            if password_matches(given, expected):
                st.session_state[UNLOCKED_KEY] = True
                st.rerun()
            st.error("That is not the control password.", icon=":material/warning:")
    return False
