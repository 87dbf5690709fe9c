"""Experiment tracking in TensorBoard and Weights & Biases, off by default.

Study config::

    tracking:
      tensorboard: true                          # RUN/tensorboard/
      wandb: {project: my-project, mode: offline}  # needs `pip install wandb`; RUN/wandb/ offline

- **Training curves** go through trl's own reporting (``report_to`` of ``SFTConfig``:
  transformers' TensorBoard and W&B callbacks): loss, learning rate, gradient norm per logging
  step, and the dev loss, one TensorBoard folder ``RUN/tensorboard/train/<cell>/`` and one W&B run
  per fine-tuning or instruction-tuning cell, grouped under the study's name.
- **Evaluation metrics**: each result row of a cell, logged by the study driver as the cell is
  stored (``RUN/tensorboard/study/``; one W&B run ``<study>/study``, written when the study ends). The x axis is the
  checkpoint's pre-training step, so a tag is a trajectory over the series: ``base/<eval set>/
  <format>.<k>shot.<method>/<metric>``, ``ft/<train task>/<eval set>/<format>.<k>shot.<method>/
  <metric>/lr<lr>.seed<seed>`` (``it/`` for instruction tuning; then ``.lora`` or ``.hft`` for a
  fine-tuning method other than full, ``.ft0.5`` for a point of ``finetune.eval_at`` before the
  end, ``.lines`` for the LiNeS-edited model).
- **Headline numbers**: the table ``ptft run`` prints at the end (in-domain metric per
  checkpoint, BASE vs FT), as ``summary/<eval set> BASE|FT`` over the pre-training step.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from ptft.grid import FULL, INSTRUCT_TRAIN_TASK, PROBE_METHOD, ResultRow

TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"


@dataclass(frozen=True)
class TrainingReport:
    """How one training run reports: trl's ``report_to`` names, its run name, and the environment
    transformers' callbacks read their settings from (log folder, W&B project and mode)."""

    report_to: tuple[str, ...]
    run_name: str
    env: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        with _environ(self.env):
            try:
                yield
            finally:
                if "wandb" in self.report_to:
                    import wandb

                    if wandb.run is not None:  # the run transformers' callback opened: one per training
                        wandb.run.finish()


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def safe_name(text: str) -> str:
    """A folder name from a cell label (``FT step60 bb_xsum lr=0.001 seed=1``)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")


def training_report(config, run_dir: Path, run_name: str) -> TrainingReport | None:
    """The reporting of one training run of the study, or None when tracking is off."""
    t = config.tracking
    report_to: list[str] = []
    env: dict[str, str] = {}
    if t.tensorboard:
        report_to.append("tensorboard")
        env["TENSORBOARD_LOGGING_DIR"] = str(Path(run_dir) / TENSORBOARD_DIR / "train" / safe_name(run_name))
    if t.wandb is not None:
        report_to.append("wandb")
        env |= _wandb_env(config, run_dir)
        env["WANDB_LOG_MODEL"] = "false"
    if not report_to:
        return None
    return TrainingReport(tuple(report_to), run_name, env)


def _wandb_env(config, run_dir: Path) -> dict[str, str]:
    folder = Path(run_dir) / WANDB_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return {"WANDB_PROJECT": config.tracking.wandb.project or config.name, "WANDB_MODE": config.tracking.wandb.mode,
            "WANDB_DIR": str(folder), "WANDB_RUN_GROUP": config.name}


def metric_tag(row: ResultRow) -> str:
    """The tag of a result row: what was trained and what was measured, not the checkpoint (the
    x axis)."""
    model, unit = row.model, row.unit
    measure = f"{unit.eval_set}/{unit.format}.{unit.shots}shot.{unit.method}/{row.metric}"
    if unit.method == PROBE_METHOD:  # a proxy of the checkpoint, not a BASE result
        return f"probe/{unit.eval_set}/{unit.shots}shot/{row.metric}" if unit.eval_set else f"probe/model/{row.metric}"
    if not model.train_task:
        return f"base/{measure}"
    prefix = "it" if model.train_task == INSTRUCT_TRAIN_TASK else f"ft/{model.train_task}"
    # a fine-tuning method other than full, then the model's state as its prediction files name it
    method = f".{model.ft_method}" if model.ft_method not in ("", FULL) else ""
    return f"{prefix}/{measure}/lr{model.lr:g}.seed{model.seed}{method}" + row.state.suffix


class StudyTracker:
    """The driver's writer for evaluation metrics and headline numbers (one per study run).

    TensorBoard gets each row as its cell is stored. The W&B run of the study is written when the
    study ends: transformers' W&B callback takes over whatever run is current in its process, and
    with one worker the training cells run in this very process."""

    def __init__(self, config, run_dir: Path):
        self.writer = None
        self.wandb_settings: dict | None = None
        self._wandb_rows: list[dict] = []
        self._env = contextlib.ExitStack()
        if config.tracking.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_DIR / "study"))
        if config.tracking.wandb is not None:
            env = _wandb_env(config, run_dir)
            # wandb reads its settings from the environment once per process: training cells run
            # in this process must find them set already
            self._env.enter_context(_environ(env))
            self.wandb_settings = {"project": env["WANDB_PROJECT"], "mode": env["WANDB_MODE"],
                                   "dir": env["WANDB_DIR"], "group": config.name, "name": f"{config.name}/study",
                                   "job_type": "study", "config": config.to_dict()}

    def _scalar(self, tag: str, value: float, step) -> None:
        step = 0 if step is None or step != step else int(step)  # unknown step (a 'main' checkpoint): 0
        if self.writer is not None:
            self.writer.add_scalar(tag, float(value), step)
        if self.wandb_settings is not None:
            self._wandb_rows.append({tag: float(value), "pretrain_step": step})

    def log_rows(self, rows: Sequence) -> None:
        for row in rows:
            self._scalar(metric_tag(row), row.value, row.model.step)
        if self.writer is not None:
            self.writer.flush()

    def log_summary(self, table) -> None:
        """``engine.summary.summary_table``: rows (step, checkpoint), columns '<eval set> BASE|FT'."""
        for (step, _checkpoint), values in table.iterrows():
            if step == "-":  # a checkpoint with no known step has no place on the step axis
                continue
            for column, value in values.items():
                if value == value:  # NaN: no FT cell at this checkpoint yet
                    self._scalar(f"summary/{column}", value, int(step))
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb_settings is not None and self._wandb_rows:
            import wandb

            run = wandb.init(**self.wandb_settings)
            run.define_metric("pretrain_step")
            run.define_metric("*", step_metric="pretrain_step")
            for record in self._wandb_rows:
                run.log(record)
            run.finish()
        self._env.close()


def open_tracker(config, run_dir: Path) -> StudyTracker | None:
    t = config.tracking
    if not t.tensorboard and t.wandb is None:
        return None
    return StudyTracker(config, run_dir)
