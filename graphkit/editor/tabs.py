"""Which page shows each tab id, so that a duplicated browser tab (the same ``?tab=``
address in a second page) gets a tab id of its own instead of sharing, and overwriting, the
first page's autosave.

A page is a Streamlit session. A reloaded page is a new session whose old one has ended, so
it keeps its tab; only a second live session asking for a held tab id is told to take a
new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from graphkit.editor.session import TAB_ID

PRUNE_ABOVE = 1000  # held tab ids before those of ended sessions are forgotten

_lock = threading.Lock()
_holders: dict[str, str] = {}  # tab id -> the session showing it


def claim(tab: str | None, session: str, alive: Callable[[str], bool]) -> bool:
    """Record that ``session`` shows ``tab``; False (nothing recorded) when another session
    that is still ``alive`` shows it: the page is a copy and needs a tab of its own. A
    ``tab`` that is no tab id (from an edited address) is not recorded: it gets a new id."""
    if not tab or not TAB_ID.fullmatch(tab):
        return True
    with _lock:
        holder = _holders.get(tab)
        if holder is not None and holder != session and alive(holder):
            return False
        _holders[tab] = session
        if len(_holders) > PRUNE_ABOVE:
            for held, owner in list(_holders.items()):
                if owner != session and not alive(owner):
                    del _holders[held]
        return True


def this_session() -> tuple[str, Callable[[str], bool]]:
    """The running Streamlit session's id, and a test of whether a session is still
    connected ("" and never, outside a Streamlit server, as under AppTest)."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return "", lambda _session: False
    return ctx.session_id, runtime.get_instance().is_active_session
