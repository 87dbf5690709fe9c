"""The instruction-tuning cell: instruction-tune one checkpoint on the configured mixture and
evaluate it on the multiple-choice suite (only with ``instruction_tuning.enabled``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ptft.checkpoints.series import Checkpoint
from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput, Expansion, Kind, digest, packing_inputs
from ptft.engine.work import train_and_evaluate
from ptft.grid import INSTRUCT_TRAIN_TASK, CellKind
from ptft.training.args import InstructArgs


class Instruct(Kind):
    kind = CellKind.INSTRUCT

    def per_checkpoint(self, ex: Expansion, ck: Checkpoint) -> list[Cell]:
        """Its training hash: the checkpoint, the instruction-tuning settings and packing's token
        budget (the SFT settings it shares with fine-tuning are not hashed, as before packing);
        its id adds the evaluation inputs of the suite."""
        config = ex.config
        it = config.instruction_tuning
        if not it.enabled:
            return []
        units = ex.units({s: ex.sets_of(s, True) for s in it.suite})
        settings = {k: v for k, v in asdict(it).items() if k not in ("suite", "n_eval")}
        training = {"kind": CellKind.INSTRUCT, **ex.source(ck), "it": settings, **packing_inputs(config), **ex.common}
        cid = digest({**training, **ex.eval_inputs(units)})
        return [Cell(cid, CellKind.INSTRUCT, f"IT {ck.label}", ck, INSTRUCT_TRAIN_TASK, it.lr, config.seed,
                     digest(training), units, ex.upstream)]

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        # deferred for start-up time: it imports torch and trl
        from ptft.training.instruct import instruction_tune

        def train(model, tokenizer, report, evaluate_during):
            return instruction_tune(model, tokenizer, InstructArgs.from_config(config, cell.seed), progress=progress,
                                    report=report)

        return train_and_evaluate(config, run_dir, cell, progress, train, [], against_base=False, dev_metric=False)
