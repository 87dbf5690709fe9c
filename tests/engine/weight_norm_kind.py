"""An example kind of cell from outside ptft, one module as a kind is: measure each checkpoint's
weight norm. `tests/engine/test_engine_cells.py` registers it and runs a study with it."""

from __future__ import annotations

from pathlib import Path

from ptft.checkpoints.series import Checkpoint
from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput, Expansion, Kind, digest
from ptft.engine.work import load_model
from ptft.grid import PROBE_METHOD, EvalUnit, ResultRow


class WeightNorm(Kind):
    kind = "weight_norm"

    def per_checkpoint(self, ex: Expansion, ck: Checkpoint) -> list[Cell]:
        cid = digest({"kind": self.kind, **ex.source(ck), **ex.common})
        return [Cell(cid, self.kind, f"NORM {ck.label}", ck, depends_on=ex.upstream)]

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        model, _ = load_model(config, cell, dtype="float32")
        norm = sum(float((p.double() ** 2).sum()) for p in model.parameters()) ** 0.5
        row = ResultRow(cell.model_id, cell.model_key(""), EvalUnit("weights", "", "default", 0, PROBE_METHOD), "", "",
                        "weight_norm", norm, cell_id=cell.cell_id)
        return CellOutput(cell.cell_id, rows=[row])
