"""``graphkit edit [GRAPH]``: start the Streamlit editor on this machine."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def add_edit_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``edit`` sub-command to the CLI's sub-parsers."""
    edit = sub.add_parser("edit", help="edit, run and share graphs in the browser")
    edit.add_argument("file", type=Path, nargs="?", help="a graph file or graphkit PNG to open")
    edit.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    edit.add_argument("--port", type=int, default=8501, help="port (default 8501; 0 = any free)")
    edit.add_argument("--allow-remote", action="store_true",
                      help="allow a --host other than this machine (there is no login)")
    edit.add_argument("--allow-host", dest="allow_hosts", action="append", default=[],
                      metavar="NAME", help="another host name the editor may be reached "
                      "under (a DNS name of this machine, a proxy's name); requests naming "
                      "any other host are refused, against DNS rebinding")
    edit.add_argument("--workspace", type=Path, default=None,
                      help="folder for graphs saved by name, uploaded input images (inputs/) "
                           "and run outputs (out/) (default: the current folder)")
    edit.add_argument("--models", choices=["hub", "tiny"], default=None,
                      help="'tiny' maps every default model to tiny offline test models")
    edit.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                      help="show tracebacks")
    return edit


def allowed_hosts(host: str, extra: list[str] | None = None) -> set[str]:
    """Host names (lower case, no port) the editor answers to: this machine's loopback
    names, the bound address, and ``extra``; bound to every address, this machine's own
    name and addresses too. Anything else in a Host header is refused."""
    names = set(LOCAL_HOSTS)
    if host in WILDCARD_HOSTS:
        names |= _own_names()
    else:
        names.add(host.strip("[]").lower())
    names |= {name.strip().strip("[]").lower() for name in extra or [] if name.strip()}
    return names


def _own_names() -> set[str]:
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        infos = []
    return names | {str(info[4][0]).lower() for info in infos}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def streamlit_command(host: str, port: int) -> list[str]:
    """The command line that serves the editor app."""
    return [
        sys.executable, "-m", "graphkit.editor.serve",
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--global.developmentMode", "false",
        "--server.maxUploadSize", "16",
        "--client.toolbarMode", "minimal",
        # A full gc.collect() after every script run stalls a run's thread on a big heap
        # (torch, diffusers), and progress polling reruns a fragment several times a second.
        "--runner.postScriptGC", "false",
    ]


def prepare_workspace(workspace: Path, graph: Path | None) -> Path | None:
    """Create the workspace and check the graph named on the command line (a GraphError
    says what is wrong with it); returns that graph's absolute path, which every new tab
    opens and saves in place."""
    from graphkit.editor.files import open_path

    workspace.mkdir(parents=True, exist_ok=True)
    if graph is None:
        return None
    open_path(graph)
    return Path(graph).resolve()


def cmd_edit(args: argparse.Namespace) -> int:
    """Serve the editor until interrupted; GraphError from a bad GRAPH goes to the CLI."""
    from graphkit.editor.session import FILE_ENV, WORKSPACE_ENV

    host = args.host
    if host not in LOCAL_HOSTS and not args.allow_remote:
        print(f"error: --host {host} would let other machines reach the editor, which has no "
              "login; add --allow-remote if you mean it", file=sys.stderr)
        return 2
    if host not in LOCAL_HOSTS:
        print(f"warning: serving on {host} with no authentication: anyone who can reach this "
              "port can read and write files as you", file=sys.stderr)
    port = args.port or free_port(host if host in LOCAL_HOSTS else "0.0.0.0")
    workspace = (args.workspace or Path.cwd()).expanduser().resolve()
    graph = prepare_workspace(workspace, args.file)
    from graphkit.editor.serve import ALLOWED_HOSTS_ENV

    hosts = allowed_hosts(host, args.allow_hosts)
    env = dict(os.environ, **{WORKSPACE_ENV: str(workspace),
                              ALLOWED_HOSTS_ENV: ",".join(sorted(hosts))})
    env.pop(FILE_ENV, None)
    if graph is not None:
        env[FILE_ENV] = str(graph)
    if args.models:
        env["GRAPHKIT_MODELS"] = args.models
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}"
    print(f"graphkit editor: {url}  (workspace {workspace}, outputs in {workspace / 'out'}; "
          "Ctrl-C to stop)", flush=True)
    if host not in LOCAL_HOSTS or args.allow_hosts:
        print(f"answering to the host names: {', '.join(sorted(hosts))}", flush=True)
    proc = subprocess.Popen(streamlit_command(host, port), env=env)
    previous = signal.signal(signal.SIGTERM, _stop_on_term)
    try:
        return proc.wait()
    except (KeyboardInterrupt, _Terminated):
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Terminated(Exception):  # noqa: N818 - a signal, not a fault
    """SIGTERM arrived: stop the server too."""


def _stop_on_term(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m graphkit.editor.launch``), same options as the CLI."""
    parser = argparse.ArgumentParser(prog="graphkit edit")
    sub = parser.add_subparsers(dest="command", required=True)
    add_edit_parser(sub)
    args = parser.parse_args(["edit", *(argv if argv is not None else sys.argv[1:])])
    from graphkit.environment import refused
    from graphkit.errors import GraphError

    if refused():  # bad GRAPHKIT_* settings, before the server starts (as the CLI does)
        return 2
    try:
        return cmd_edit(args)
    except GraphError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
