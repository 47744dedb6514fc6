"""A local HTTP server speaking the part of the Hugging Face Hub API that huggingface_hub's
``model_info``, ``list_repo_tree``, ``hf_hub_download`` and ``snapshot_download`` use.

Point ``HF_ENDPOINT`` at :attr:`FakeHub.url`. It listens on 127.0.0.1 only, serves files
from memory, and records every request so tests can see what was (not) downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Revision:
    commit: str
    files: dict[str, bytes]


@dataclass
class FakeHub:
    """Repos by id, each a mapping of revision names (branches, tags) to file sets."""

    repos: dict[str, dict[str, Revision]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def add(self, repo_id: str, files: dict[str, bytes], revision: str = "main") -> str:
        """Publish ``files`` as ``revision`` of ``repo_id``; returns the commit hash."""
        digest = hashlib.sha1(repo_id.encode() + revision.encode())
        for path in sorted(files):
            digest.update(path.encode() + hashlib.sha1(files[path]).digest())
        commit = digest.hexdigest()
        self.repos.setdefault(repo_id, {})[revision] = Revision(commit, dict(files))
        return commit

    def add_folder(self, repo_id: str, folder: Path, revision: str = "main",
                   extra: dict[str, bytes] | None = None) -> str:
        """Publish every file under ``folder`` (plus ``extra``) as one revision."""
        files = {p.relative_to(folder).as_posix(): p.read_bytes()
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.add(repo_id, {**files, **(extra or {})}, revision)

    def downloaded(self, repo_id: str) -> set[str]:
        """Paths of ``repo_id`` fetched with GET (HEAD requests are not downloads)."""
        prefix = f"/{repo_id}/resolve/"
        return {unquote(path[len(prefix):]).split("/", 1)[1]
                for method, path in self.requests if method == "GET" and path.startswith(prefix)}

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def find(self, repo_id: str, revision: str) -> Revision | None:
        revisions = self.repos.get(repo_id, {})
        if revision in revisions:
            return revisions[revision]
        if _COMMIT.match(revision):
            return next((r for r in revisions.values() if r.commit == revision), None)
        return None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._route(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._route(body=True)

    def _route(self, body: bool) -> None:
        path = urlparse(self.path).path
        self.fake.requests.append((self.command, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            self._api(f"{parts[2]}/{parts[3]}", [unquote(p) for p in parts[4:]])
        elif len(parts) >= 5 and parts[2] == "resolve":
            repo_id, revision = f"{parts[0]}/{parts[1]}", unquote(parts[3])
            self._file(repo_id, revision, unquote("/".join(parts[4:])), body)
        else:
            self._error(404, "RepoNotFound", "unknown route")

    def _api(self, repo_id: str, tail: list[str]) -> None:
        if repo_id not in self.fake.repos:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        kind, revision = (tail[0], tail[1]) if len(tail) >= 2 else ("revision", "main")
        rev = self.fake.find(repo_id, revision)
        if rev is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if kind == "revision":
            siblings = [{"rfilename": p, "size": len(d)} for p, d in sorted(rev.files.items())]
            return self._json({"id": repo_id, "modelId": repo_id, "sha": rev.commit,
                               "private": False, "gated": False, "disabled": False,
                               "siblings": siblings, "tags": []})
        if kind == "tree":
            under = "/".join(tail[2:])
            entries = [{"type": "file", "path": p, "size": len(d),
                        "oid": hashlib.sha1(d).hexdigest()}
                       for p, d in sorted(rev.files.items())
                       if not under or p.startswith(under.rstrip("/") + "/")]
            return self._json(entries)
        return self._error(404, "EntryNotFound", "unknown api route")

    def _file(self, repo_id: str, revision: str, name: str, body: bool) -> None:
        if repo_id not in self.fake.repos:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        rev = self.fake.find(repo_id, revision)
        if rev is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        data = rev.files.get(name)
        if data is None:
            return self._error(404, "EntryNotFound", f"{name} does not exist")
        start = 0
        ranged = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if ranged:
            start = min(int(ranged.group(1)), len(data))
        self.send_response(206 if ranged else 200)
        self.send_header("X-Repo-Commit", rev.commit)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if body:
            self.wfile.write(data[start:])

    def _json(self, value: object) -> None:
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
