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
revision (a sharded checkpoint's index, a few kB, is read too, to know its shards). Offline, or when
the Hub does not answer, the same sha256s are read from the Hugging Face cache, whose blobs are
named by them, so a revision whose weights were downloaded gets the same fingerprint with or
without the network. It hashes files, not tensors: the same weights sharded or saved another way
get another Hub fingerprint, and a Hub revision and a local copy of it get different ones; within
a series, the same files give the same fingerprint. The commit the revision named is kept with it,
and cells load that commit.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
import time
from dataclasses import dataclass
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
# (index, single file): what Hugging Face loads, safetensors first
_LAYOUTS = (("model.safetensors.index.json", "model.safetensors"), ("pytorch_model.bin.index.json", "pytorch_model.bin"))
# A file modified this recently may change again within its time stamp's resolution.
RACY_NS = 2_000_000_000


def weight_files(folder: Path) -> list[Path]:
    for index, single in _LAYOUTS:
        if (folder / index).is_file():
            return sorted(folder / name for name in _index_shards(folder / index))
        if (folder / single).is_file():
            return [folder / single]
    return []


def _index_shards(index: Path) -> set[str]:
    try:
        return set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{index}: not a weight index ({type(err).__name__}: {err})") from None


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


class NotFingerprinted(CheckpointError):
    """Neither the Hub nor the Hugging Face cache gave a revision's weight files (the network or the
    download is missing, not the revision)."""


@dataclass(frozen=True)
class HubWeights:
    fingerprint: str
    # the commit the revision named when it was fingerprinted: cells load that commit, so a branch
    # pushed to between the check and the cell cannot give a cell other weights than its id says
    commit: str


def hub_weights(repo: str, revision: str, *, network: bool = True) -> HubWeights | None:
    """The weight files' hash (16 hex digits) of ``repo`` at ``revision`` and the commit it was
    taken at, from the Hub (unless ``network`` is false or Hugging Face is offline) or else from
    the Hugging Face cache. Without the network, None when the cache lacks it; with it,
    NotFingerprinted saying why neither had it. A repository or revision the Hub says does not
    exist is a CheckpointError."""
    why = "Hugging Face is offline (HF_HUB_OFFLINE)" if constants.HF_HUB_OFFLINE else ""
    if network and not constants.HF_HUB_OFFLINE:
        try:
            api = HfApi()
            info = api.model_info(repo, revision=revision, files_metadata=True, timeout=HUB_TIMEOUT_S)
        except RevisionNotFoundError:
            raise CheckpointError(f"{repo} has no revision {revision!r} (published series miss some steps); "
                                  "choose a revision the repository lists") from None
        except RepositoryNotFoundError:  # gated or private repositories too: their download would fail alike
            raise CheckpointError(f"{repo}: no such model repository on the Hub, or it needs a token you have "
                                  "not given (hf auth login)") from None
        except Exception as err:  # network errors come in many types; the cache may have it
            why = f"the Hub did not answer ({type(err).__name__}: {err})"
        else:
            found, why = _hub_weights(api, info)
            if found is not None:
                return found
    cached = _cached_weights(repo, revision)
    if cached is not None or not network:
        return cached
    raise NotFingerprinted(f"cannot fingerprint {repo}@{revision}: {why}, and the Hugging Face cache does not hold "
                           f"its weight files; connect to the Hub, or download the revision first (hf download {repo} "
                           f"--revision {revision}) and run with HF_HUB_OFFLINE=1")


def _hub_weights(api: HfApi, info) -> tuple[HubWeights | None, str]:
    """From the revision's file list, the weight files as :func:`weight_files` picks them from a
    folder: the shards its index names (the index is read from the Hub: a few kB), else the single
    file. (None, why) when there are none."""
    # a file small enough to live outside Git LFS has its Git blob id instead, as in the cache
    blob = {s.rfilename: s.lfs.sha256 if s.lfs is not None else s.blob_id for s in info.siblings or ()}
    for index, single in _LAYOUTS:
        if index in blob:
            try:
                names = sorted(_index_shards(Path(api.hf_hub_download(info.id, index, revision=info.sha,
                                                                      etag_timeout=HUB_TIMEOUT_S))))
            except Exception as err:  # as above
                return None, f"its weight index {index} could not be read ({type(err).__name__}: {err})"
            missing = [n for n in names if not blob.get(n)]
            if missing:
                return None, f"its weight index {index} names files the revision lacks ({', '.join(missing[:3])})"
            return HubWeights(_files_digest([(n, blob[n]) for n in names]), info.sha), ""
        if blob.get(single):
            return HubWeights(_files_digest([(single, blob[single])]), info.sha), ""
    return None, (f"the Hub lists none of {', '.join(single for _, single in _LAYOUTS)} or their shards among "
                  f"its {len(blob)} files")


def _cached_weights(repo: str, revision: str) -> HubWeights | None:
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
    return HubWeights(_files_digest(pairs), commit)


def _files_digest(pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, sha in sorted(pairs):
        digest.update(f"{name}|{sha}\n".encode())
    return digest.hexdigest()[:16]
