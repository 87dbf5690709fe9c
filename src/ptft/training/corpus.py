"""The pre-training corpus: named offline texts or text files, split into train and held-out
documents. Torch-free, so that `ptft prepare` can fetch it without loading torch."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from ptft import sources
from ptft.errors import ConfigError


def load_corpus(names: list[str], max_documents: int | None = None) -> list[str]:
    readers: dict[str, Callable[[], list[str]]] = {
        "wiki": sources.wiki_summaries,
        "shakespeare": sources.shakespeare_texts,
    }
    docs: list[str] = []
    for name in names:
        if name in readers:
            docs += readers[name]()
        elif Path(name).is_file():
            docs += [t for t in Path(name).read_text(encoding="utf-8").split("\n\n") if t.strip()]
        else:
            raise ConfigError(f"pretrain.corpus: unknown corpus {name!r}; use wiki, shakespeare or a text file path")
    return docs[:max_documents] if max_documents else docs


def split_documents(docs: list[str], heldout_fraction: float) -> tuple[list[str], list[str]]:
    """Held-out documents chosen by a hash of their text, so the split never depends on order."""
    train, heldout = [], []
    for d in docs:
        bucket = int(hashlib.sha1(d.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (heldout if bucket < heldout_fraction else train).append(d)
    return train, heldout
