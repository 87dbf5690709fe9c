"""What a checkpoint folder's weights are, as one hash: published series have served the same
weights under two step names and other weights under one, and a study that compares checkpoints
must know which it has.

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
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import time
from pathlib import Path

from ptft.errors import CheckpointError
from ptft.sources import cache_dir

CACHE_FILE = "fingerprints.json"
# A file modified this recently may change again within its time stamp's resolution.
RACY_NS = 2_000_000_000


def weight_files(folder: Path) -> list[Path]:
    for index, single in (("model.safetensors.index.json", "model.safetensors"),
                          ("pytorch_model.bin.index.json", "pytorch_model.bin")):
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
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


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
