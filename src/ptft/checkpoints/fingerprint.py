"""What a checkpoint folder's weights are, as one hash: published series have served the same
weights under two step names and other weights under one, and a study that compares checkpoints
must know which it has.

The fingerprint hashes the tensors, not the files: for safetensors files (sharded or not), each
tensor's name, dtype, shape and bytes, in name order, read straight from the files (no torch, no
copy); the files' own metadata and how the tensors are split into shards do not count. Other
weight files (``pytorch_model*.bin``) are hashed whole. It is cached in ``$PTFT_CACHE`` under the
folder's path and each weight file's size and modification time, so only new or changed weights
are read again.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from pathlib import Path

from ptft.sources import cache_dir

CACHE_FILE = "fingerprints.json"
OTHER_WEIGHTS = ("*.bin", "*.pt", "*.pth")


def weight_files(folder: Path) -> list[Path]:
    safetensors = sorted(folder.glob("*.safetensors"))
    return safetensors or sorted(p for pattern in OTHER_WEIGHTS for p in folder.glob(pattern))


def fingerprint(folder: str | Path) -> str | None:
    """The weights' hash (16 hex digits); None for a folder without weight files."""
    folder = Path(folder).resolve()
    files = weight_files(folder)
    if not files:
        return None
    key = f"{folder}|" + "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    cache = _read_cache()
    if key not in cache:
        cache[key] = _hash_safetensors(files) if files[0].suffix == ".safetensors" else _hash_files(files)
        _write_cache(cache)
    return cache[key]


def _hash_safetensors(files: list[Path]) -> str:
    tensors = []  # (name, dtype, shape, file, start, end)
    for path in files:
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        start = 8 + size  # the tensors' bytes follow the length and the header
        tensors += [(name, t["dtype"], t["shape"], path, start + t["data_offsets"][0], start + t["data_offsets"][1])
                    for name, t in header.items() if name != "__metadata__"]
    digest = hashlib.sha256()
    maps: dict[Path, mmap.mmap] = {}
    try:
        for name, dtype, shape, path, start, end in sorted(tensors):
            digest.update(f"{name}|{dtype}|{shape}|".encode())
            if end > start:
                if path not in maps:
                    with path.open("rb") as f:
                        maps[path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                digest.update(memoryview(maps[path])[start:end])
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
    except (OSError, ValueError):  # none yet, or unreadable: recompute (it is only a cache)
        return {}


def _write_cache(cache: dict[str, str]) -> None:
    path = cache_dir() / CACHE_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(cache), encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only cache: the hash is computed again next time
        tmp.unlink(missing_ok=True)
