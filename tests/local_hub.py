"""A Hugging Face Hub on 127.0.0.1 for the tests of Hub series: a real HTTP server that answers the
model-metadata request (``GET /api/models/<repo>/revision/<revision>?blobs=True``) the way the Hub
does, and the file downloads (``HEAD``/``GET /<repo>/resolve/<revision>/<file>``) that fill the
Hugging Face cache, from files the test gives it. huggingface_hub's own client talks to it, so the
cache is laid out by huggingface_hub itself; nothing of ptft is replaced."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

from huggingface_hub import HfApi

# Hugging Face stores these in Git LFS; the Hub reports their sha256
LFS_SUFFIXES = (".safetensors", ".bin")


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class LocalHub:
    def __init__(self) -> None:
        self.revisions: dict[tuple[str, str], dict[str, bytes]] = {}
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"HEAD {path}")
                self._file(path, body=False)

            def do_GET(self) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(path)
                if "/resolve/" in path:
                    return self._file(path, body=True)
                prefix = "/api/models/"
                if not path.startswith(prefix) or "/revision/" not in path:
                    return self._answer(404, {"error": "not found"}, "EntryNotFound")
                repo, revision = path[len(prefix):].split("/revision/", 1)
                if not any(r == repo for r, _ in hub.revisions):
                    return self._answer(404, {"error": "Repository not found"}, "RepoNotFound")
                revision = hub.branch_of(repo, revision)
                files = hub.revisions.get((repo, revision))
                if files is None:
                    return self._answer(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
                self._answer(200, {"id": repo, "sha": hub.commit(repo, revision), "siblings": [
                    {"rfilename": name, "size": len(content), "blobId": git_blob_id(content)}
                    | ({"lfs": {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content),
                                "pointerSize": 134}} if name.endswith(LFS_SUFFIXES) else {})
                    for name, content in files.items()]})

            def _file(self, path: str, body: bool) -> None:
                """``/<repo>/resolve/<revision or commit>/<file>`` with the headers huggingface_hub
                reads: the commit, the ETag (Git blob id) and, for LFS files, the sha256 and size."""
                repo, rest = path[1:].split("/resolve/", 1)
                revision, name = rest.split("/", 1)
                revision = hub.branch_of(repo, revision)
                content = hub.revisions.get((repo, revision), {}).get(name)
                if content is None:
                    return self._answer(404, {"error": "Entry not found"}, "EntryNotFound")
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.commit(repo, revision))
                self.send_header("ETag", f'"{git_blob_id(content)}"')
                if name.endswith(LFS_SUFFIXES):
                    self.send_header("X-Linked-Etag", f'"{hashlib.sha256(content).hexdigest()}"')
                    self.send_header("X-Linked-Size", str(len(content)))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if body:
                    self.wfile.write(content)

            def _answer(self, status: int, body: dict, error_code: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error_code:
                    self.send_header("X-Error-Code", error_code)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def put(self, repo: str, revision: str, files: dict[str, bytes]) -> None:
        self.revisions[(repo, revision)] = dict(files)

    def branch_of(self, repo: str, revision: str) -> str:
        """The branch a commit hash names (the revision itself otherwise)."""
        return next((b for r, b in self.revisions if r == repo and self.commit(r, b) == revision), revision)

    def commit(self, repo: str, revision: str) -> str:
        files = self.revisions[(repo, revision)]
        return hashlib.sha1(repr((repo, revision, sorted(files.items()))).encode()).hexdigest()

    def download(self, repo: str, revision: str, names: list[str] | None = None) -> None:
        """Download ``names`` (default: every file) of the revision with huggingface_hub itself, into
        the Hugging Face cache it is set to, as a user's `hf download` would."""
        for name in names if names is not None else self.revisions[(repo, revision)]:
            HfApi().hf_hub_download(repo, name, revision=revision)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
