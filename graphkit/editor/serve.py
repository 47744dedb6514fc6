"""Serve the editor: import the node packs first, so the first page is ready at once.

``python -m graphkit.editor.serve [streamlit flags...]`` is ``streamlit run app.py`` in a
process that has already imported the registry (torch, diffusers) and the editor modules.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def warm_up() -> None:
    """Import everything the first script run needs."""
    from graphkit.registry import registry

    registry()
    # Components (the canvas...) are left to the first run: they register their frontends
    # with the running server.
    import graphkit.editor.inspector  # noqa: F401
    import graphkit.editor.panels  # noqa: F401
    import graphkit.editor.runview  # noqa: F401
    import graphkit.editor.sampoints  # noqa: F401


def _import_model_libraries() -> None:
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        pass


def main(flags: list[str]) -> None:
    warm_up()
    # The first run would import these; do it while the server starts and the page loads.
    threading.Thread(target=_import_model_libraries, daemon=True, name="warm-imports").start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *flags]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
