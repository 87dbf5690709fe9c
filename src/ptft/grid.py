"""The grid's vocabulary: the names every layer shares, at the bottom of the import graph.

The planner (``ptft.engine``) makes cells of these kinds; the store keeps their evaluation units
and model states in typed columns; tracking, the export and the analyses read them back. Defining
them here, with nothing of ptft imported, lets each of those import them without importing the
others. The string values are what cell ids hash and the store records: changing one changes
every id.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path

# The file of a run directory that holds every result.
STORE_FILE = "results.sqlite"

# The fine-tuning method that trains every parameter: the paper's, and the default.
FULL = "full"

# The `method` of probe units and of the proxy rows they produce: what tells a proxy row from a
# BASE row in the results table (both have an empty train_task).
PROBE_METHOD = "probe"


# The `variant` of a model as trained: no evaluation-only edit applied.
UNEDITED = "none"

# The `variant` of a LiNeS-edited model (evaluation/weights.py).
LINES_VARIANT = "lines"

# The metric of TuCo rows (evaluation/tuco.py): the fine-tuning contribution to a fine-tuned
# model's answers, a lens on the model rather than a score of its answers.
TUCO_METRIC = "tuco"

# The `variant` of a graft (evaluation/grafting.py): ``graft0.01pct`` keeps the top 0.01 % of the
# fine-tuning change by magnitude.
def graft_variant(percent: float) -> str:
    return f"graft{percent:g}pct"


def graft_percent(variant: str) -> float | None:
    """The percent a variant grafts; None for any other variant."""
    if not (variant.startswith("graft") and variant.endswith("pct")):
        return None
    try:
        return float(variant[len("graft"):-len("pct")])
    except ValueError:
        return None


# The `train_task` of an instruction-tuned model: instruction tuning trains on a mixture, not on
# one of the study's tasks (and "instruct" is also a prompt format's name; the two never meet).
INSTRUCT_TRAIN_TASK = "instruct"


def store_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STORE_FILE


class CellKind(StrEnum):
    """A StrEnum: the value is what cell ids hash and the store records, so ids stay as they were."""
    PRETRAIN = "pretrain"
    BASE = "base"
    FINETUNE = "finetune"
    INSTRUCT = "instruct"
    PROBE = "probe"
    # the evaluation of the learning rate the dev split selects (finetune.evaluate: selected)
    SELECTED = "selected"


@dataclass(frozen=True)
class EvalUnit:
    """One scored combination of a cell; the store keeps it in typed columns."""
    eval_task: str
    eval_set: str
    format: str
    shots: int
    method: str

    @property
    def name(self) -> str:
        """The unit in file names (RUN/predictions/<model>/<name>.jsonl) and notes."""
        return f"{self.eval_set}.{self.format}.{self.shots}shot.{self.method}"


@dataclass(frozen=True)
class ModelState:
    """Which state of a cell's model a score belongs to: the final fine-tuned model
    (``ft_fraction`` 1.0), an intermediate point of the same training run, or an evaluation-only
    edit of it (``variant``). A BASE or pre-training cell has the one state ``ModelState()``.

    ``ft_step`` is carried, not compared: the fraction names the point (it is what the config
    asks for), the step is where it fell in this cell's run."""
    variant: str = UNEDITED
    ft_fraction: float = 1.0
    ft_step: int | None = field(default=None, compare=False)

    @property
    def suffix(self) -> str:
        """What a prediction file name adds for this state ('' for the final, unedited model)."""
        parts = ([f"ft{self.ft_fraction:g}"] if self.ft_fraction != 1.0 else []) + \
            ([self.variant] if self.variant != UNEDITED else [])
        return "".join(f".{p}" for p in parts)


# The state every analysis uses unless told otherwise, and learning-rate selection's.
FINAL = ModelState()

# Per-example scores of a cell: model state -> evaluation unit -> metric -> one value per example.
Scores = dict[ModelState, dict[EvalUnit, dict[str, list[float]]]]


@dataclass(frozen=True)
class ModelKey:
    """Which model a result belongs to: a checkpoint as it is (BASE: no train task, method, rate or
    seed) or a model trained from it. ``step`` is carried, not compared: the label names the
    checkpoint."""
    checkpoint: str
    step: int | None = field(default=None, compare=False)
    train_task: str = ""
    ft_method: str = ""
    lr: float | None = None
    seed: int | None = None


@dataclass
class ResultRow:
    """One result: a model, one of its states, one evaluation unit (``eval_task`` as results name
    the task), a metric with its value and interval, and where it came from (the store keeps it;
    the export leaves it out)."""
    model_id: str
    model: ModelKey
    unit: EvalUnit
    task_type: str
    domain: str
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None  # None only for imported results that do not record it
    state: ModelState = FINAL
    seconds: float = 0.0
    config_hash: str = ""
    cell_id: str = ""
    created_at: float = field(default_factory=time.time)

    def columns(self) -> dict:
        """The row as the results table's columns (:data:`RESULT_COLUMNS`)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out.update(asdict(value) if f.name in _NESTED else {f.name: value})
        return out


_NESTED = {"model": ModelKey, "state": ModelState, "unit": EvalUnit}
# The columns of the store's results table, derived from the types.
RESULT_COLUMNS = tuple(name for f in fields(ResultRow)
                       for name in ([g.name for g in fields(_NESTED[f.name])] if f.name in _NESTED else [f.name]))
# The columns that say where a result came from: kept in the store, not exported.
PROVENANCE_COLUMNS = ("model_id", "seconds", "config_hash", "cell_id", "created_at")

# The grid's coordinates as the columns of a result (the results table, the store, the analyses'
# key): which trained model (BASE: no train task, method, rate or seed), which of its states, which
# evaluation unit (its eval task follows from the eval set), which metric.
MODEL_COLUMNS = tuple(f.name for f in fields(ModelKey) if f.compare)
STATE_COLUMNS = tuple(f.name for f in fields(ModelState) if f.compare)
UNIT_COLUMNS = tuple(f.name for f in fields(EvalUnit) if f.name != "eval_task")
# One result of one model: no two rows of a results table share it.
RESULT_KEY = MODEL_COLUMNS + STATE_COLUMNS + UNIT_COLUMNS + ("metric",)
# One score of one cell's model (the store's tables add the cell and the model they belong to).
SCORE_KEY = STATE_COLUMNS + UNIT_COLUMNS + ("metric",)
