"""Text from files and users (graph names, ids, paths, messages) shown as text.

Streamlit renders element bodies as Markdown; a graph name such as ``![](http://host/x.png)``
would make the browser fetch that address, and underscores in messages would turn into
italics. ``md_text`` escapes every ASCII punctuation character (CommonMark's backslash
escapes), so what reaches the page reads exactly as it was written.
"""

from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")


def md_text(text: object) -> str:
    """``text`` as Markdown that renders as the plain text itself (one line per line)."""
    lines = str(text).replace("\r\n", "\n").split("\n")
    return "  \n".join(_PUNCTUATION.sub(r"\\\1", line) for line in lines)
