"""The probe cell: measure one checkpoint's proxies without fine-tuning it (only with
``probes.enabled``): held-out loss, sensitivity to weight noise, and the gold log-likelihood of
each in-domain eval set."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ptft.checkpoints.series import Checkpoint
from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput, Expansion, Kind, digest
from ptft.engine.work import load_model, study_tasks
from ptft.grid import PROBE_METHOD, CellKind, EvalUnit, ResultRow
from ptft.tasks.base import completion_text
from ptft.training.corpus import load_corpus, split_documents

log = logging.getLogger("ptft.engine")


def heldout_source(config: StudyConfig) -> str:
    """Which text the probes' held-out loss is measured on (the rows' ``eval_task``): the
    pre-training held-out documents of a series ptft pre-trained, else ``probes.text``, else the
    training prompts of the study's tasks."""
    if config.checkpoints.source == "pretrain":
        return "pretrain_heldout"
    return "probes_text" if config.probes.text else "train_prompts"


def file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _heldout_docs(config: StudyConfig) -> list[str]:
    """The documents of the probes' held-out loss (see :func:`heldout_source`)."""
    source = heldout_source(config)
    if source == "pretrain_heldout":
        settings = config.checkpoints.pretrain
        return split_documents(load_corpus(settings.corpus, settings.max_documents), settings.heldout_fraction)[1]
    if source == "probes_text":
        return load_corpus([config.probes.text])
    tasks = study_tasks(config)
    return [task.formats["default"].render(ex) + completion_text(ex.target)
            for task, data in (tasks[t.name] for t in config.tasks) for ex in data.train]


class Probe(Kind):
    kind = CellKind.PROBE

    def per_checkpoint(self, ex: Expansion, ck: Checkpoint) -> list[Cell]:
        """One cell per checkpoint. Its units are the gold log-likelihoods: every in-domain set of
        the study's tasks in the default format at each shot count (the proxy is compared with FT
        metrics on in-domain sets only). Its id hashes those units' inputs, the probe settings and
        the held-out text: the pre-training cell (upstream), the file's content, or the tasks'
        definitions and training splits. No other cell hashes the probe settings, so turning
        probes on or off changes no other id."""
        config = ex.config
        if not config.probes.enabled:
            return []
        names = [t.name for t in config.tasks]
        units = [EvalUnit(task, s, "default", shots, PROBE_METHOD) for task in names
                 for s, d in ex.task_eval_sets[task] if d == "in" for shots in config.evaluation.shots]
        text = heldout_source(config)
        held = {"source": text}
        if text == "probes_text":
            held["file"] = file_digest(config.probes.text)
        elif text == "train_prompts":
            held["tasks"] = {t: [ex.fp(t, "task"), ex.fp(t, "train")] for t in names}
        settings = asdict(config.probes)
        settings.pop("text")  # its content is hashed above, not its path
        cid = digest({"kind": CellKind.PROBE, **ex.source(ck), "probes": settings, "heldout": held,
                      **ex.eval_inputs(units), **ex.common})
        return [Cell(cid, CellKind.PROBE, f"PROBE {ck.label}", ck, units=units, depends_on=ex.upstream)]

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        """A checkpoint's proxies as result rows (method ``probe``, train_task ''): ``heldout_loss``,
        ``sensitivity``, ``rankme`` and ``alpha_req`` with eval_set '' and the held-out text's name
        as eval_task, and ``gold_loglik`` per unit; RankMe and alpha-ReQ of every block's output in
        the layers table."""
        # deferred for start-up time: they import torch
        import torch

        from ptft.evaluation import Evaluator, select_demos
        from ptft.evaluation.geometry import (alpha_req, block_outputs, head_inputs, kept_positions, rankme,
                                              sample_positions)
        from ptft.evaluation.probes import heldout_loss, sensitivity, text_windows
        from ptft.evaluation.scoring import infer_max_length
        from ptft.evaluation.stats import metric_value

        model, tokenizer = load_model(config, cell)
        out = CellOutput(cell.cell_id)
        ck, pr, ev = cell.checkpoint, config.probes, config.evaluation
        config_hash = config.hash()

        key = cell.model_key("")

        def row(eval_set: str, eval_task: str, task_type: str, domain: str, shots: int, metric: str, value: float,
                ci_low=None, ci_high=None, n=None, seconds=0.0) -> ResultRow:
            return ResultRow(cell.model_id, key, EvalUnit(eval_task, eval_set, "default", shots, PROBE_METHOD),
                             task_type, domain, metric, value, ci_low, ci_high, n, seconds=seconds,
                             config_hash=config_hash, cell_id=cell.cell_id)

        start = time.perf_counter()
        source = heldout_source(config)
        if source == "pretrain_heldout":
            settings = config.checkpoints.pretrain  # the very windows pre-training logged its held-out loss on
            windows, seq_len = settings.heldout_windows, settings.seq_len
        else:
            windows, seq_len = pr.windows, pr.seq_len
        batches = text_windows(tokenizer, _heldout_docs(config), windows, seq_len, ev.batch_size,
                               infer_max_length(model, tokenizer))
        geometry_on = pr.representation_tokens > 0
        keep = kept_positions(sum(len(b) * (b.shape[1] - 1) for b in batches), pr.representation_tokens, config.seed)
        with (head_inputs(model) if geometry_on else contextlib.nullcontext([]) as states,
              block_outputs(model, keep) if geometry_on else contextlib.nullcontext([]) as per_block):
            clean = heldout_loss(model, batches)
        n_windows = sum(len(b) for b in batches)
        out.rows.append(row("", source, "", "", 0, "heldout_loss", clean, n=n_windows,
                            seconds=time.perf_counter() - start))
        start = time.perf_counter()
        draws = sensitivity(model, batches, pr.sigma, pr.draws, config.seed, clean=clean)
        mean = float(np.mean(draws))
        half = 1.96 * float(np.std(draws, ddof=1)) / math.sqrt(len(draws)) if len(draws) > 1 else float("nan")
        out.rows.append(row("", source, "", "", 0, "sensitivity", mean, mean - half, mean + half, len(draws),
                            time.perf_counter() - start))
        log.info("probe %s: held-out loss %.4f on %d windows of %s, sensitivity %.4f (sigma %g, %d draws)",
                 ck.label, clean, n_windows, source, mean, pr.sigma, pr.draws)
        if pr.representation_tokens:
            start = time.perf_counter()
            z = sample_positions(states, pr.representation_tokens, config.seed)
            geometry = {"rankme": rankme(z), "alpha_req": alpha_req(z)}
            seconds = (time.perf_counter() - start) / len(geometry)
            out.rows += [row("", source, "", "", 0, name, value, n=len(z), seconds=seconds)
                         for name, value in geometry.items()]
            log.info("probe %s: RankMe %.2f, alpha-ReQ %.3f on %d x %d final hidden states", ck.label,
                     geometry["rankme"], geometry["alpha_req"], *z.shape)
            model_columns = {"model_id": cell.model_id, **asdict(key), "eval_task": source, "eval_set": "",
                             "domain": "", "format": "default", "shots": 0}
            for layer, parts in enumerate(per_block, start=1):
                z = torch.cat(parts)
                out.layers += [model_columns | {"layer": layer, "measure": name, "value": fn(z), "n": len(z)}
                               for name, fn in (("rankme", rankme), ("alpha_req", alpha_req))]
        tasks = study_tasks(config)
        evaluator = Evaluator(model, tokenizer, batch_size=ev.batch_size)
        for unit in cell.units:
            task, data = tasks[unit.eval_task]
            start = time.perf_counter()
            values, notes = evaluator.gold_logliks(task, unit.eval_set, data.eval[unit.eval_set], unit.format,
                                                   select_demos(data.train, unit.shots, config.seed))
            out.notes += [f"{unit.name}: {n}" for n in notes]
            mv = metric_value(values, config.seed, n_boot=ev.n_bootstrap)
            out.rows.append(row(unit.eval_set, task.name, task.task_type, "in", unit.shots, "gold_loglik", mv.value,
                                mv.ci_low, mv.ci_high, mv.n, time.perf_counter() - start))
        return out
