"""ptft prepare [CONFIG]: load every task of a study once and check its data, so that the study
itself starts with nothing left to fetch or extract. The offline tasks read data shipped with ptft;
Hub tasks are fetched into the Hub's cache; BIG-bench tasks are extracted from your copy of the
archive (PTFT_BIGBENCH_ARCHIVE) into ptft's cache, every file checked against its checksum."""

from __future__ import annotations

import argparse


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
    print(f"data checked ({prepared.seconds:.0f}s); extracted files are cached in {prepared.cache_dir}")
    return 0
