"""Serve the editor: import the node packs first, so the first page is ready at once.

``python -m graphkit.editor.serve [streamlit flags...]`` is ``streamlit run app.py`` in a
process that has already imported the registry (torch, diffusers) and the editor modules.

Every HTTP request and websocket upgrade must name, in its Host header, a host the editor
serves on (``GRAPHKIT_EDITOR_HOSTS``, set by ``graphkit edit``; else the loopback names and
the ``--server.address``). A web page on another domain that an attacker points at
127.0.0.1 (DNS rebinding) sends its own domain and is refused with 403.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

APP = Path(__file__).with_name("app.py")
ALLOWED_HOSTS_ENV = "GRAPHKIT_EDITOR_HOSTS"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MIN_STREAMLIT = (1, 67)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def host_name(header: str) -> str:
    """The host of a Host header, lower case, without its port (``[::1]:8501`` -> ``::1``)."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    name, colon, port = value.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else value


class HostCheck:
    """ASGI middleware: pass on only requests whose Host header names an allowed host."""

    def __init__(self, app: Callable[..., Awaitable[None]], allowed: set[str]) -> None:
        self.app = app
        self.allowed = {name.lower() for name in allowed}

    def allows(self, scope: Scope) -> bool:
        hosts = [v for k, v in scope.get("headers", ()) if k.lower() == b"host"]
        if len(hosts) != 1:
            return False
        return host_name(hosts[0].decode("latin-1")) in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allows(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            body = b"this editor does not serve that host name\n"
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        else:  # closing before accepting answers the upgrade with 403
            await send({"type": "websocket.close", "code": 1008})


def allowed_from(environ: MutableMapping[str, str], flags: list[str]) -> set[str]:
    """The allowed host names: from the environment, else loopback and --server.address."""
    listed = environ.get(ALLOWED_HOSTS_ENV, "")
    if listed.strip():
        return {name.strip().lower() for name in listed.split(",") if name.strip()}
    names = set(LOOPBACK_NAMES)
    for i, flag in enumerate(flags[:-1]):
        if flag == "--server.address" and flags[i + 1] not in ("0.0.0.0", "::", ""):
            names.add(flags[i + 1].strip("[]").lower())
    return names


def guard_server(allowed: set[str]) -> None:
    """Wrap the app Streamlit's server builds in :class:`HostCheck` (before it starts)."""
    from importlib.metadata import version

    try:  # from 1.67 on every request goes through the app this module builds
        from streamlit.web.server.starlette import starlette_server
        release = tuple(int(p) for p in version("streamlit").split(".")[:2])
    except (ImportError, ValueError):
        release = (0, 0)
    if release < MIN_STREAMLIT:
        raise SystemExit("error: graphkit edit needs streamlit>=1.67, whose server it can "
                         "guard against requests for other host names")
    build = starlette_server.create_starlette_app

    def guarded(runtime: Any) -> HostCheck:
        return HostCheck(build(runtime), allowed)

    starlette_server.create_starlette_app = guarded


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
    import os

    guard_server(allowed_from(os.environ, flags))
    warm_up()
    # The first run would import these; do it while the server starts and the page loads.
    threading.Thread(target=_import_model_libraries, daemon=True, name="warm-imports").start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *flags]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
