"""A Hugging Face Hub on 127.0.0.1 for the tests of Hub series: a real HTTP server that answers the
model-metadata request (``GET /api/models/<repo>/revision/<revision>?blobs=True``) the way the Hub
does, from files the test gives it, and a Hugging Face cache laid out as ``huggingface_hub`` writes
it. huggingface_hub's own client talks to it; nothing of ptft is replaced."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

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
            def do_GET(self) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(path)
                prefix = "/api/models/"
                if not path.startswith(prefix) or "/revision/" not in path:
                    return self._answer(404, {"error": "not found"}, "EntryNotFound")
                repo, revision = path[len(prefix):].split("/revision/", 1)
                if not any(r == repo for r, _ in hub.revisions):
                    return self._answer(404, {"error": "Repository not found"}, "RepoNotFound")
                files = hub.revisions.get((repo, revision))
                if files is None:
                    return self._answer(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
                self._answer(200, {"id": repo, "sha": hub.commit(repo, revision), "siblings": [
                    {"rfilename": name, "size": len(content), "blobId": git_blob_id(content)}
                    | ({"lfs": {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content),
                                "pointerSize": 134}} if name.endswith(LFS_SUFFIXES) else {})
                    for name, content in files.items()]})

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

    def commit(self, repo: str, revision: str) -> str:
        files = self.revisions[(repo, revision)]
        return hashlib.sha1(repr((repo, revision, sorted(files.items()))).encode()).hexdigest()

    def download(self, cache: Path, repo: str, revision: str, names: list[str] | None = None) -> None:
        """Lay ``names`` (default: every file) of the revision out in ``cache`` as huggingface_hub
        does: blobs named by their sha256 (LFS) or Git blob id, a snapshot of symlinks to them, and
        the branch's ref holding the commit."""
        files = self.revisions[(repo, revision)]
        root = cache / ("models--" + repo.replace("/", "--"))
        commit = self.commit(repo, revision)
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / revision).write_text(commit)
        snapshot = root / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        (root / "blobs").mkdir(exist_ok=True)
        for name in names if names is not None else files:
            content = files[name]
            blob = hashlib.sha256(content).hexdigest() if name.endswith(LFS_SUFFIXES) else git_blob_id(content)
            (root / "blobs" / blob).write_bytes(content)
            (snapshot / name).symlink_to(Path("..", "..", "blobs", blob))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
