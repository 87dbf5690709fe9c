"""A small real study for the engine tests: two checkpoints of the session's tiny pre-trained Llama
(``tiny_series``), a classification task and a generation task from the data shipped in ptft,
a handful of examples each, one epoch. Every cell takes a second or two on one CPU thread.

``small_config(**overrides)`` builds a validated :class:`StudyConfig` (dotted override keys, as
``load_config`` takes them); ``reference_run`` is that study run once, uninterrupted, in this
process, with its exported table: the numbers every other way of running it must reproduce.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from engine_helpers import Reference

from ptft.config import StudyConfig, load_config

# cross_task off and out-of-domain sets off keep the dependency of each cell on each task's data
# easy to count in the tests; the engine handles them like any other eval unit.
BASE_CONFIG: dict[str, Any] = {
    "name": "engine-test",
    "seed": 7,
    "checkpoints": {"source": "local"},
    "tasks": [
        {"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16},
        {"name": "social_qg", "n_train": 16, "n_dev": 4, "n_eval": 4},
    ],
    # steps of 8 examples, counted by hand in the tests (4 and 2); packed, each task would fit one
    # step. Packing has its own tests (test_packing.py) and runs end to end in the smoke study.
    "finetune": {"epochs": 1, "learning_rates": [0.001], "batch_size": 8, "max_length": 160, "packing": False},
    "evaluation": {"shots": [1], "formats": ["default"], "methods": ["tokenprob"], "n_bootstrap": 100,
                   "batch_size": 16, "cross_task": False, "out_of_domain": False},
}

def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[last] = value


@pytest.fixture(scope="session")
def small_config_factory(tiny_series, tmp_path_factory) -> Callable[..., StudyConfig]:
    """``factory(**{"finetune.learning_rates": [...], ...})`` -> a validated StudyConfig. Dotted keys
    may also be passed with ``__`` for dots (``finetune__keep_weights=True``)."""
    steps = sorted(tiny_series)[-2:]
    folder = tmp_path_factory.mktemp("engine-configs")
    counter = iter(range(10**6))

    def factory(tasks: list[dict] | None = None, **overrides: Any) -> StudyConfig:
        raw = yaml.safe_load(yaml.safe_dump(BASE_CONFIG))
        raw["checkpoints"]["local"] = {"paths": [str(tiny_series[s]) for s in steps],
                                       "labels": [f"step{s}" for s in steps], "steps": steps}
        if tasks is not None:
            raw["tasks"] = tasks
        for key, value in overrides.items():
            _set(raw, key.replace("__", "."), value)
        path = folder / f"study{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_config(path)

    return factory


@pytest.fixture(scope="session")
def small_config_file(small_config_factory, tmp_path_factory) -> Callable[..., Path]:
    """The same config written as a YAML file (for `ptft run FILE` in a subprocess)."""
    folder = tmp_path_factory.mktemp("engine-config-files")
    counter = iter(range(10**6))

    def write(**overrides: Any) -> Path:
        config = small_config_factory(**overrides)
        path = folder / f"study{next(counter)}.yaml"
        path.write_text(config.to_yaml())
        return path

    return write


@pytest.fixture(scope="session")
def reference_run(small_config_factory, tmp_path_factory) -> Reference:
    import torch

    from ptft.engine.study import run_study
    from ptft.store import results_frame

    config = small_config_factory()
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    # As a fresh `ptft run` in a shell would start: torch's own thread count (every core), no
    # PTFT_NUM_THREADS. The cells must compute with executor.threads anyway, so the worker and Ray
    # runs the executor tests compare with this one get the very same numbers.
    saved_env, saved_threads = os.environ.pop("PTFT_NUM_THREADS", None), torch.get_num_threads()
    torch.set_num_threads(max(2, os.cpu_count() or 1))
    try:
        result = run_study(config, run_dir=run_dir, progress=False)
    finally:
        torch.set_num_threads(saved_threads)
        if saved_env is not None:
            os.environ["PTFT_NUM_THREADS"] = saved_env
    assert not result.failed, result.failed
    return Reference(config, run_dir, results_frame(run_dir), result.seconds)
