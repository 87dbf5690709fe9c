"""What a checkpoint's weights are, as one hash: published series have served the same weights
under two step names and other weights under one, and a study that compares checkpoints must know
which it has.

**A local folder.**
The weights are the files Hugging Face loads: ``model.safetensors``, or the shards its index
names, else ``pytorch_model.bin`` or its shards (not optimizer states or training arguments kept
beside them). The fingerprint hashes the tensors, not the files: for safetensors, each tensor's
name, dtype, shape and bytes, in name order, read straight from the files (no torch, no copy); the
files' own metadata and how the tensors are split into shards do not count. ``.bin`` files are
hashed whole. Only the weights count, not ``config.json`` or the tokenizer.

It is cached in ``$PTFT_CACHE`` under the folder's path and each weight file's size and
modification time, so only new or changed weights are read again; a file modified in the last
two seconds is not cached (its next change could keep the same size and time stamp, as git's
index knows).

**A Hub revision** is not downloaded to be fingerprinted: its fingerprint hashes each weight
file's name and sha256, which the Hub keeps for every Git LFS file and answers in one request per
revision. Offline (or when the Hub does not answer) the same sha256s are read from the Hugging Face
cache, whose blobs are named by them, so a revision whose weights were downloaded gets the same
fingerprint with or without the network. It hashes files, not tensors: the same weights sharded
another way get another Hub fingerprint, and a Hub revision and a local copy of it get different
ones; within a series, the same files give the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
import time
from pathlib import Path

from huggingface_hub import HfApi, constants
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.file_download import repo_folder_name

from ptft.errors import CheckpointError
from ptft.sources import cache_dir

CACHE_FILE = "fingerprints.json"
# One metadata request per revision; a Hub that does not answer in this time is read as offline.
HUB_TIMEOUT_S = 20
# how the Hugging Face cache names a blob: its sha256 (Git LFS files) or its Git blob id
_BLOB_NAME = re.compile(r"^(?:[0-9a-f]{64}|[0-9a-f]{40})$")
# (index, single file, shard prefix, extension): what Hugging Face loads, safetensors first
_LAYOUTS = (("model.safetensors.index.json", "model.safetensors", "model-", ".safetensors"),
            ("pytorch_model.bin.index.json", "pytorch_model.bin", "pytorch_model-", ".bin"))
# A file modified this recently may change again within its time stamp's resolution.
RACY_NS = 2_000_000_000


def weight_files(folder: Path) -> list[Path]:
    for index, single, _, _ in _LAYOUTS:
        if (folder / index).is_file():
            try:
                names = set(json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"].values())
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise CheckpointError(f"{folder / index}: not a weight index ({type(err).__name__}: {err})") from None
            return sorted(folder / name for name in names)
        if (folder / single).is_file():
            return [folder / single]
    return []


def fingerprint(folder: str | Path) -> str | None:
    """The weights' hash (16 hex digits); None for a folder without weight files."""
    folder = Path(folder).resolve()
    files = weight_files(folder)
    if not files:
        return None
    stats = [p.stat() for p in files]
    key = f"{folder}|" + "|".join(f"{p.name}:{st.st_size}:{st.st_mtime_ns}" for p, st in zip(files, stats))
    cache = _read_cache()
    if key in cache:
        return cache[key]
    value = _hash_safetensors(files) if files[0].suffix == ".safetensors" else _hash_files(files)
    if all(time.time_ns() - st.st_mtime_ns > RACY_NS for st in stats):
        cache[key] = value
        _write_cache(cache)
    return value


def _hash_safetensors(files: list[Path]) -> str:
    tensors = []  # (name, dtype, shape, file, start, end)
    for path in files:
        try:
            with path.open("rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(size))
            start, length = 8 + size, path.stat().st_size  # the tensors' bytes follow the header
            for name, t in header.items():
                if name == "__metadata__":
                    continue
                begin, end = t["data_offsets"]
                if start + end > length:
                    raise ValueError(f"tensor {name} ends at byte {start + end} of {length}")
                tensors.append((name, t["dtype"], t["shape"], path, start + begin, start + end))
        except (struct.error, ValueError, KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{path}: not a whole safetensors file ({type(err).__name__}: {err}); download "
                                  "or save it again") from None
    digest = hashlib.sha256()
    maps: dict[Path, mmap.mmap] = {}
    try:
        for name, dtype, shape, path, begin, end in sorted(tensors):
            digest.update(f"{name}|{dtype}|{shape}|".encode())
            if end > begin:
                if path not in maps:
                    with path.open("rb") as f:
                        maps[path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                with memoryview(maps[path]) as view:  # no copy of the tensor's bytes
                    digest.update(view[begin:end])
    finally:
        for m in maps.values():
            m.close()
    return digest.hexdigest()[:16]


def _hash_files(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}|".encode())
        _read_into(digest, path)
    return digest.hexdigest()[:16]


def _read_into(digest, path: Path):
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest


def _read_cache() -> dict[str, str]:
    try:
        return json.loads((cache_dir() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, unreadable or no cache at all: recompute (it is only a cache)
        return {}


def _write_cache(cache: dict[str, str]) -> None:
    """Written whole through a renamed temporary file; entries of folders that are gone are dropped.
    Two processes writing at once may lose one's entry: it is computed again next time."""
    kept = {key: value for key, value in cache.items() if Path(key.split("|", 1)[0]).exists()}
    tmp = None
    try:
        path = cache_dir() / CACHE_FILE
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept), encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only cache: the hash is computed again next time
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def hub_fingerprint(repo: str, revision: str, *, network: bool = True) -> str | None:
    """The weight files' hash (16 hex digits) of ``repo`` at ``revision``, from the Hub (unless
    ``network`` is false or Hugging Face is offline) or else from the Hugging Face cache; None when
    neither has it. A repository or revision the Hub says does not exist is a CheckpointError."""
    if network and not constants.HF_HUB_OFFLINE:
        try:
            info = HfApi().model_info(repo, revision=revision, files_metadata=True, timeout=HUB_TIMEOUT_S)
        except RevisionNotFoundError:
            raise CheckpointError(f"{repo} has no revision {revision!r} (published series miss some steps); "
                                  "choose a revision the repository lists") from None
        except RepositoryNotFoundError:  # gated or private repositories too: their download would fail alike
            raise CheckpointError(f"{repo}: no such model repository on the Hub, or it needs a token you have "
                                  "not given (huggingface-cli login)") from None
        except Exception:  # the Hub did not answer, or not with metadata (network errors come in many types)
            pass  # the cache may have it
        else:
            # a file small enough to live outside Git LFS has its Git blob id instead, as in the cache
            blob = {s.rfilename: s.lfs.sha256 if s.lfs is not None else s.blob_id for s in info.siblings or ()}
            names = _weight_names(n for n, b in blob.items() if b)
            if names:
                return _files_digest([(n, blob[n]) for n in names])
    return _cached_fingerprint(repo, revision)


def _weight_names(names) -> list[str]:
    """The weight files among a revision's top-level file names, as :func:`weight_files` picks them
    from a folder (an index's shards are named ``<prefix>NNNNN-of-NNNNN<extension>``)."""
    names = set(names)
    for index, single, prefix, extension in _LAYOUTS:
        if index in names:
            return sorted(n for n in names if n.startswith(prefix) and n.endswith(extension) and "/" not in n)
        if single in names:
            return [single]
    return []


def _cached_fingerprint(repo: str, revision: str) -> str | None:
    """From the Hugging Face cache's snapshot of ``revision``, when it holds every weight file."""
    root = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type="model")
    try:
        commit = (root / "refs" / revision).read_text(encoding="utf-8").strip()
    except OSError:
        commit = revision  # a commit hash names its snapshot directly
    snapshot = root / "snapshots" / commit
    try:
        files = weight_files(snapshot) if snapshot.is_dir() else []
    except CheckpointError:  # an index that did not finish downloading
        return None
    if not files or not all(f.is_file() for f in files):
        return None
    pairs = []
    for f in files:
        blob = f.resolve().name
        # a cache without symlinks (Windows) keeps the files themselves: their sha256 is the LFS one
        pairs.append((f.name, blob if _BLOB_NAME.match(blob) else _read_into(hashlib.sha256(), f).hexdigest()))
    return _files_digest(pairs)


def _files_digest(pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, sha in sorted(pairs):
        digest.update(f"{name}|{sha}\n".encode())
    return digest.hexdigest()[:16]
