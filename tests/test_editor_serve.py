"""The editor's server answers only to the host names it serves on (DNS rebinding).

A page on another domain whose name an attacker points at 127.0.0.1 reaches the editor with
that domain in its Host header; such HTTP requests and websocket upgrades are refused.
Tested against a real running editor with raw requests.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from graphkit.editor.launch import allowed_hosts, free_port

EXTRA = "editor.example.test"


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``graphkit edit`` on a free local port, told one extra host name it may answer to."""
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    log_path = root / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "graphkit.editor.launch", "--port", str(port),
             "--workspace", str(root / "ws"), "--allow-host", EXTRA],
            env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                                timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"editor did not start: {log_path.read_text()}")
                time.sleep(0.2)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def status(port: int, host: str, path: str = "/_stcore/health",
           websocket: bool = False) -> int:
    """The HTTP status line's code for a raw request with this Host header."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if websocket:
        key = base64.b64encode(os.urandom(16)).decode()
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                  "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: streamlit",
                  f"Origin: http://{host}"]
    else:
        lines.append("Connection: close")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = conn.recv(1024)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "attacker.test:80",
                                  "127.0.0.1.evil.example:{port}", "localhost.evil:{port}", ""])
@pytest.mark.parametrize("path", ["/_stcore/health", "/", "/_stcore/host-config"])
def test_http_with_a_foreign_host_is_refused(port: int, host: str, path: str) -> None:
    assert status(port, host.format(port=port), path) == 403


@pytest.mark.parametrize("host", ["evil.example:{port}", "rebind.attacker.test:{port}"])
def test_websocket_upgrade_with_a_foreign_host_is_refused(port: int, host: str) -> None:
    assert status(port, host.format(port=port), "/_stcore/stream", websocket=True) == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}",
                                  "[::1]:{port}", "127.0.0.1", f"{EXTRA}:{{port}}"])
def test_the_hosts_it_serves_on_are_accepted(port: int, host: str) -> None:
    host = host.format(port=port)
    assert status(port, host) == 200
    assert status(port, host, "/_stcore/stream", websocket=True) == 101


def test_allowed_hosts_follow_the_bind_address() -> None:
    assert allowed_hosts("127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert "192.168.1.7" in allowed_hosts("192.168.1.7")
    assert "my.box.example" in allowed_hosts("0.0.0.0", ["My.Box.Example"])
    assert socket.gethostname().lower() in allowed_hosts("0.0.0.0")
    assert "my.box.example" not in allowed_hosts("0.0.0.0")
