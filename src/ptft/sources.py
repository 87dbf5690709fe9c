"""The data ptft reads offline: files shipped inside the package, and the BIG-bench archive for
those who hold it.

Shipped files (``ptft/data/*.jsonl.gz``) hold everything the CPU presets and the tests read: the
pre-training text and the offline tasks' examples, taken from pinned upstream archives by
``scripts/build_data.py`` (``docs/data.md`` lists their provenance). Each is checked against the
sha256 in ``ptft/data/manifest.json`` the first time a process reads it.

BIG-bench (``bigbench==1.0.0``) is no longer served by the package index. The ``bb_*`` tasks read
it from a copy the user provides: ``$PTFT_BIGBENCH_ARCHIVE`` names the ``bigbench-1.0.0.tar.gz``
file (or it lies in ``<cache>/archives/``), checked against the pinned sha256. Files are
extracted from it into the cache (``$PTFT_CACHE`` or ``~/.cache/ptft``) on first use, each with its
sha256 next to it (``<file>.sha256``), checked when the file is first used in a process: a file
that no longer matches is extracted again from the archive, with a warning naming it. Files
extracted by an older ptft have no checksum yet; ``ptft prepare`` (:func:`checking`) extracts those
again and records one.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import logging
import os
import tarfile
from dataclasses import dataclass
from importlib import resources
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


ARCHIVE_ENV = "PTFT_BIGBENCH_ARCHIVE"


def bigbench_archive() -> Path:
    """The user's copy of the BIG-bench sdist, its sha256 checked; a SourceError in one line when
    there is none or it is not the pinned file."""
    art = BIGBENCH
    given = os.environ.get(ARCHIVE_ENV)
    path = Path(given).expanduser() if given else cache_dir() / "archives" / art.filename
    where = f"{ARCHIVE_ENV}={given}" if given else str(path)
    if not path.is_file():
        raise SourceError(
            f"the BIG-bench tasks read {art.filename}, which the package index no longer serves and ptft "
            f"cannot download; if you have a copy (sha256 {art.sha256}), set {ARCHIVE_ENV} to its path"
            + (f" ({where} is not a file)" if given else f" or put it in {path.parent}")
            + "; otherwise use the shipped tasks (`ptft tasks`)")
    key = (str(path), path.stat().st_mtime, path.stat().st_size)
    if key not in _verified:
        digest = _sha256(path)
        if digest != art.sha256:
            raise SourceError(f"{where}: sha256 {digest} is not the pinned {art.sha256} of {art.filename}; "
                              f"point {ARCHIVE_ENV} at an unmodified copy of {art.package} {art.version}")
        _verified.add(key)
    return path


def require_bigbench() -> None:
    """Raise the one-line SourceError of :func:`bigbench_archive` unless the archive is usable."""
    bigbench_archive()


def extracted_many(art: Artefact, members: list[str]) -> list[Path]:
    """Files of the archive, extracted into the cache (atomically) in one pass over the archive
    (a 358 MB sdist is slow to scan per file); those already cached and intact are not read again."""
    root = cache_dir() / "files" / f"{art.package}-{art.version}"
    missing = [m for m in members if not usable(root / m)]
    if missing:
        prefix = art.filename[: -len(".tar.gz")]
        wanted = {f"{prefix}/{m}": m for m in missing}
        with tarfile.open(bigbench_archive()) as tf:
            for info in tf:
                if info.name in wanted:
                    _store(root / wanted.pop(info.name), tf.extractfile(info).read())
                    if not wanted:
                        break
        if wanted:
            raise SourceError(f"{art.filename} has no member(s) {sorted(wanted.values())}")
    return [root / m for m in members]


def bigbench_task(relpath: str) -> dict:
    """A BIG-bench ``task.json`` (path relative to ``bigbench/benchmark_tasks``), parsed."""
    [path] = extracted_many(BIGBENCH, [f"bigbench/benchmark_tasks/{relpath}"])
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise damaged(path, err) from None


# ------------------------------------------------------------------------------- shipped files

SHIPPED = "data"  # the folder of the ptft package that holds them
MANIFEST = "manifest.json"


@functools.lru_cache(maxsize=None)
def _manifest() -> dict:
    return json.loads((resources.files("ptft") / SHIPPED / MANIFEST).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def shipped_rows(name: str) -> tuple[dict, ...]:
    """The rows of the shipped file ``<name>.jsonl.gz``, checked against the manifest's sha256
    (once per process); parsed once per process."""
    filename = f"{name}.jsonl.gz"
    entry = _manifest()["files"].get(filename)
    if entry is None:
        raise SourceError(f"ptft ships no data file {filename!r}; shipped: {', '.join(sorted(_manifest()['files']))}")
    path = resources.files("ptft") / SHIPPED / filename
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SourceError(f"{path}: cannot read the shipped data file ({err}); reinstall ptft") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise SourceError(f"{path}: the shipped data file does not match the sha256 in {MANIFEST}; it was changed "
                          "or damaged: reinstall ptft (or rebuild it with scripts/build_data.py)")
    # "\n" only: a text may hold other line separators (U+2028) that splitlines() would cut at
    return tuple(json.loads(line) for line in gzip.decompress(data).decode("utf-8").split("\n") if line)


def wiki_summaries() -> list[str]:
    """10,033 English Wikipedia lead extracts (CC BY-SA 4.0), in a stable (alphabetical) order."""
    return [row["text"] for row in shipped_rows("wiki_summaries")]


def shakespeare_texts() -> list[str]:
    """Gutenberg plays and poems, one string per work, ordered by file name."""
    return [row["text"] for row in shipped_rows("shakespeare")]
