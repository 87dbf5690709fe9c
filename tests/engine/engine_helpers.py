"""Helpers of the engine tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ptft.config import StudyConfig

# results that must be reproduced exactly
NUMBERS = ["value", "ci_low", "ci_high", "n"]
KEYS = ["checkpoint", "train_task", "lr", "seed", "eval_set", "format", "shots", "method", "metric"]


@dataclass
class Reference:
    config: StudyConfig
    run_dir: Path
    frame: pd.DataFrame
    seconds: float

    def copy_to(self, dest: Path) -> Path:
        """A copy of the finished run directory, to change and resume without paying for the grid."""
        shutil.copytree(self.run_dir, dest)
        return dest


def assert_same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same rows (by what they measure) and the very same numbers."""
    assert len(a) == len(b) > 0
    assert not a.duplicated(KEYS).any() and not b.duplicated(KEYS).any()
    left = a.sort_values(KEYS).reset_index(drop=True)
    right = b.sort_values(KEYS).reset_index(drop=True)
    pd.testing.assert_frame_equal(left[KEYS + NUMBERS + ["selected"]], right[KEYS + NUMBERS + ["selected"]],
                                  check_exact=True)


def trainings(run_dir: Path) -> pd.DataFrame:
    from ptft.store import ResultsStore

    with ResultsStore(run_dir / "results.sqlite") as store:
        df = store.frame("trainings")
    return df.sort_values("model_id")[["model_id", "train_loss", "dev_loss", "steps", "tokens"]].reset_index(drop=True)


def predictions(run_dir: Path) -> dict[str, list[dict]]:
    import json

    root = run_dir / "predictions"
    return {str(p.relative_to(root)): [json.loads(line) for line in p.read_text().splitlines()]
            for p in sorted(root.rglob("*.jsonl"))}


def assert_same_run(run_dir: Path, reference: Reference) -> None:
    """The exported table, the training losses and every per-example prediction (label
    log-probabilities, generated text) are exactly the reference's."""
    from ptft.store import results_frame

    assert_same_numbers(results_frame(run_dir), reference.frame)
    pd.testing.assert_frame_equal(trainings(run_dir), trainings(reference.run_dir), check_exact=True)
    mine, theirs = predictions(run_dir), predictions(reference.run_dir)
    assert mine.keys() == theirs.keys() and len(mine) == 8
    assert mine == theirs
