"""Session fixtures shared by every test package: a tiny real model, pre-trained here.

The model is ptft's own pre-training code run for a few seconds on real Wikipedia text, so
tests exercise real weights and a real BPE tokenizer, never mocked outputs."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Tests run a few processes side by side on 2 cores; one thread each avoids OpenMP spin-waits.
os.environ.setdefault("PTFT_NUM_THREADS", "1")
# Never the network, and an empty Hugging Face cache of the session's own (set before huggingface_hub
# is imported, which reads both once): what a developer has downloaded must not change a result.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="ptft-tests-hf-cache-")
atexit.register(shutil.rmtree, os.environ["HF_HUB_CACHE"], ignore_errors=True)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _tiny_settings():
    from ptft.training.args import ModelShape, PretrainSettings

    return PretrainSettings(
        model=ModelShape(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=192, vocab_size=1024,
                         max_seq_len=512),
        steps=60, batch_size=8, seq_len=64, lr=3e-3, warmup_steps=5, num_checkpoints=3,
        max_documents=1500, heldout_windows=16,
    )


@pytest.fixture(scope="session")
def tiny_series(tmp_path_factory) -> dict[int, Path]:
    """Three checkpoints (steps 1, 8, 60) of a 2-layer Llama pre-trained in a few seconds."""
    import torch

    from ptft.training.pretrain import pretrain_series

    torch.set_num_threads(int(os.environ["PTFT_NUM_THREADS"]))
    out = tmp_path_factory.mktemp("tiny-series")
    return pretrain_series(_tiny_settings(), out, seed=0, progress=False).checkpoints


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_series) -> Path:
    """The final checkpoint of the tiny series: a Hugging Face folder with model and tokenizer."""
    return tiny_series[max(tiny_series)]


@pytest.fixture
def bigbench_copy(tmp_path, monkeypatch):
    """A user's copy of the BIG-bench archive, laid out as the sdist, pinned for the test and named
    by PTFT_BIGBENCH_ARCHIVE (the package index no longer serves the real one). Every task file the
    bb_* modules declare holds the same examples: real shipped movie-review snippets with the
    MultiEmo labels in turn."""
    import hashlib
    import io
    import json
    import tarfile
    from types import SimpleNamespace

    from ptft import sources
    from ptft.tasks import available, bbutil

    available()  # imports every task module, so that each declares the BIG-bench files it reads
    rows = [r for r in sources.shipped_rows("sentiment_ratings") if r["domain"] == "movies"][:400]
    labels = ("positive", "negative", "neutral", "ambivalent")
    examples = [{"input": r["text"], "target_scores": {k: int(k == labels[i % 4]) for k in labels}}
                for i, r in enumerate(rows)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for path in sorted(bbutil._NEEDED):
            data = json.dumps({"examples": examples}).encode()
            info = tarfile.TarInfo(f"bigbench-1.0.0/{bbutil.BENCHMARK_TASKS}/{path}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    archive = tmp_path / "copy" / "bigbench-1.0.0.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(buffer.getvalue())
    monkeypatch.setattr(sources, "BIGBENCH", sources.Artefact(
        "bigbench", "1.0.0", "bigbench-1.0.0.tar.gz", hashlib.sha256(buffer.getvalue()).hexdigest(), "test"))
    monkeypatch.setenv(sources.ARCHIVE_ENV, str(archive))
    bbutil.bigbench_json.cache_clear()
    yield SimpleNamespace(archive=archive, examples=examples, labels=labels)
    bbutil.bigbench_json.cache_clear()
    sources._verified.clear()
