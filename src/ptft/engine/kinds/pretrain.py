"""The pre-training cell: pre-train the model series into RUN/checkpoints (only for
``checkpoints.source: pretrain``). Every other cell depends on it."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from ptft import __version__
from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput, Expansion, Kind, digest
from ptft.engine.work import write_json
from ptft.grid import CellKind

PRETRAIN_MARKER = "ptft_pretrain.json"


class Pretrain(Kind):
    kind = CellKind.PRETRAIN
    alone = True

    def per_study(self, ex: Expansion) -> list[Cell]:
        """Its id hashes the pre-training settings, the seed, its thread count and ptft's version."""
        config = ex.config
        if config.checkpoints.source != "pretrain":
            return []
        pid = digest({"kind": CellKind.PRETRAIN, "settings": asdict(config.checkpoints.pretrain), "seed": config.seed,
                      "threads": config.executor.pretrain_threads, "version": __version__})
        return [Cell(pid, CellKind.PRETRAIN, "pretrain")]

    def threads(self, config: StudyConfig) -> int:
        return config.executor.pretrain_threads

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        """Pre-train into RUN/checkpoints (resuming a killed pre-training of the same settings). A
        series made with other settings (another pre-training cell) is moved aside to
        RUN/checkpoints.<its cell id>, never resumed from or silently reused."""
        # deferred for start-up time: it imports torch
        from ptft.training.pretrain import pretrain_series

        folder = run_dir / "checkpoints"
        marker = folder / PRETRAIN_MARKER
        out = CellOutput(cell.cell_id)
        if marker.exists():
            previous = json.loads(marker.read_text()).get("cell_id")
            if previous != cell.cell_id:
                aside = run_dir / f"checkpoints.{previous}"
                shutil.rmtree(aside, ignore_errors=True)
                folder.rename(aside)
                out.notes.append(f"pre-training settings changed: the earlier series moved to {aside.name}")
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"cell_id": cell.cell_id}))
        result = pretrain_series(config.checkpoints.pretrain, folder, seed=config.seed, progress=progress)
        out.training = {"tokens_per_second": result.tokens_per_second, "parameters": result.parameters,
                        "seconds": result.seconds,
                        "checkpoints": {str(k): str(v) for k, v in result.checkpoints.items()}}
        return out

    def training_row(self, run_dir: Path, cell: Cell, out: CellOutput) -> dict | None:
        """None: the series' figures go to RUN/pretrain.json, not to the fine-tuning trainings."""
        if out.training is not None:
            write_json(run_dir / "pretrain.json", out.training)
        return None
