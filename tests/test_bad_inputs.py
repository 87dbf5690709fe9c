"""The bad-input catalogue: what a careless user types, and what ptft must answer.

Each entry of ``CASES`` is one bad input given to the real command line (``ptft.cli.main``): the
files it needs are written by its ``setup``, and the command must end with the exit code and a
message holding every one of the words (and no traceback: an uncaught exception fails the test).
Inputs that are refused before the expensive part also check that no run directory was created.
The cases that need a real results store share one small study run once for the module (a local
checkpoint folder with no step in its name, a user task in a YAML file). Cases that need another
process (Ctrl-C, SIGTERM) or a mounted file system (a full disk, a read-only folder) follow the
table as their own tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pandas as pd
import pytest

from ptft.cli import main

TASK_YAML = """\
name: my_sentiment
type: classification
labels: ["yes", "no"]
fields: [text]
data:
  train: {train}
  eval:
    - {{name: my_sentiment_test, path: {test}, domain: in}}
formats:
  default: {{template: "Review: {{text}}\\nPositive:"}}
  io: {{template: "{{text}}"}}
  instruct: {{template: "Is this review positive? {{text}} Answer:"}}
"""


def _reviews(n: int, offset: int = 0) -> list[dict]:
    return [{"text": f"the film was {'good' if i % 3 else 'bad'} number {i}", "label": "yes" if i % 3 else "no"}
            for i in range(offset, offset + n)]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _study(folder: Path, name: str, *, checkpoint: str = "final", task: str = "sentiment.yaml",
           extra: str = "", n_train: int | str = 16, n_eval: int = 8, shots: int = 1, max_length: int = 128) -> Path:
    path = folder / name
    path.write_text(
        f"name: catalogue\nseed: 1\n"
        f"checkpoints: {{source: local, local: {{paths: [{checkpoint}]}}}}\n"
        f"tasks:\n  - {{name: {task}, n_train: {n_train}, n_dev: 4, n_eval: {n_eval}}}\n"
        f"finetune: {{epochs: 1, learning_rates: [0.001], batch_size: 8, max_length: {max_length}}}\n"
        f"evaluation: {{shots: [{shots}], formats: [default], methods: [tokenprob], n_bootstrap: 50, "
        f"out_of_domain: false}}\n{extra}")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model_dir) -> SimpleNamespace:
    """A folder with a user task, a study on a local checkpoint, and broken checkpoints."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    root = tmp_path_factory.mktemp("catalogue")
    _write_jsonl(root / "train.jsonl", _reviews(24))
    _write_jsonl(root / "test.jsonl", _reviews(12, offset=100))
    (root / "sentiment.yaml").write_text(TASK_YAML.format(train="train.jsonl", test="test.jsonl"))
    final = root / "final"  # a checkpoint folder whose name has no step
    shutil.copytree(tiny_model_dir, final, ignore=shutil.ignore_patterns("pretrain_state.pt"))
    bert = root / "bert"
    BertForMaskedLM(BertConfig(vocab_size=1030, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(bert)
    AutoTokenizer.from_pretrained(final).save_pretrained(bert)
    no_tokenizer = root / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(final / name, no_tokenizer / name)
    truncated = root / "truncated"
    shutil.copytree(final, truncated)
    with open(truncated / "model.safetensors", "r+b") as f:
        f.truncate((truncated / "model.safetensors").stat().st_size // 2)
    study = _study(root, "study.yaml", n_eval=1000)  # n_eval beyond the 12 examples: a note, not an error
    return SimpleNamespace(root=root, study=study, final=final, bert=bert, no_tokenizer=no_tokenizer,
                           truncated=truncated)


@pytest.fixture(scope="module")
def run(files, tmp_path_factory) -> SimpleNamespace:
    """The study run once through the command line: a real results store, and what it printed."""
    import contextlib
    import io

    out_dir = tmp_path_factory.mktemp("catalogue-run") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["run", str(files.study), "--out", str(out_dir), "--no-progress"])
    assert rc == 0, stdout.getvalue()
    return SimpleNamespace(dir=out_dir, printed=stdout.getvalue())


def _damaged_copy(run_dir: Path, dest: Path) -> Path:
    """A copy of the run whose results.sqlite has one page in the middle overwritten."""
    shutil.copytree(run_dir, dest)
    db = dest / "results.sqlite"
    con = sqlite3.connect(db)
    page_size, pages = (con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count"))
    con.close()
    with open(db, "r+b") as f:
        f.seek(page_size * (pages // 2))
        f.write(b"\xff" * page_size)
    con = sqlite3.connect(db)
    try:  # the case is only meaningful if SQLite itself sees the damage
        assert con.execute("PRAGMA quick_check").fetchall() != [("ok",)]
    except sqlite3.DatabaseError:
        pass
    finally:
        con.close()
    return dest


# ------------------------------------------------------------------------------------ the table

@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[SimpleNamespace, Path], list[str]]  # (files [+ run], tmp folder) -> argv
    code: int
    words: tuple[str, ...]
    needs_run: bool = False
    no_run_dir: bool = False  # refused before the run directory <tmp>/out is created


def _config(text: str, name: str = "bad.yaml"):
    def setup(ns, tmp):
        (tmp / name).write_text(text)
        return ["plan", str(tmp / name)]
    return setup


def _run_config(**study):
    def setup(ns, tmp):
        for name in ("sentiment.yaml", "train.jsonl", "test.jsonl"):
            shutil.copy(ns.files.root / name, tmp / name)
        checkpoint = study.pop("checkpoint_of", "final")
        path = _study(tmp, "study.yaml", checkpoint=str(getattr(ns.files, checkpoint)), **study)
        return ["run", str(path), "--out", str(tmp / "out"), "--no-progress"]
    return setup


def _task_data(fmt: str, bad_index: int):
    """A user task whose eval file (JSONL, JSON array or CSV) has an unknown label at ``bad_index``."""
    def setup(ns, tmp):
        rows = _reviews(12, offset=100)
        rows[bad_index]["label"] = "maybe"
        path = tmp / f"test.{fmt}"
        if fmt == "jsonl":
            _write_jsonl(path, rows)
        elif fmt == "json":
            path.write_text(json.dumps(rows, indent=1))
        else:
            pd.DataFrame(rows).to_csv(path, index=False)
        _write_jsonl(tmp / "train.jsonl", _reviews(24))
        (tmp / "task.yaml").write_text(TASK_YAML.format(train="train.jsonl", test=path.name))
        return ["eval", "--model", str(ns.files.final), "--task", str(tmp / "task.yaml"), "--out", str(tmp / "p.jsonl")]
    return setup


def _results_table(edit: Callable[[pd.DataFrame], pd.DataFrame] | None):
    def setup(ns, tmp):
        path = tmp / "results.csv"
        if edit is None:
            path.write_bytes(b"")
        else:
            main(["export", str(ns.run.dir), "--out", str(path)])
            edit(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)
        return ["analyze", str(path), "--out", str(tmp / "analysis")]
    return setup


def _with_file(name: str, argv: Callable[[SimpleNamespace, Path], list[str]], content: str = "not a folder"):
    """Write a small file at tmp/name first (by default where a folder is expected), then run argv."""
    def setup(ns, tmp):
        (tmp / name).write_text(content)
        return argv(ns, tmp)
    return setup


def _local_labels(ns, tmp):
    (tmp / "bad.yaml").write_text(f"tasks: [{{name: sentiment}}]\ncheckpoints: {{source: local, local: "
                                  f"{{paths: [{ns.files.final}, {ns.files.final}], labels: [one]}}}}\n")
    return ["plan", str(tmp / "bad.yaml")]


def _held_lock(ns, tmp):
    """The run directory locked, as a `ptft run` working on it holds it."""
    import fcntl

    out = tmp / "out"
    out.mkdir()
    fd = os.open(out / ".ptft-run.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"pid 1 on elsewhere since today")
    ns.cleanup.append(lambda: os.close(fd))
    return ["run", str(ns.files.study), "--out", str(out), "--no-progress"]


def _two_tasks_of_one_name(ns, tmp):
    for name in ("train.jsonl", "test.jsonl"):
        shutil.copy(ns.files.root / name, tmp / name)
    for name in ("a.yaml", "b.yaml"):
        shutil.copy(ns.files.root / "sentiment.yaml", tmp / name)
    (tmp / "two.yaml").write_text("tasks: [{name: a.yaml}, {name: b.yaml}]\n")
    return ["plan", str(tmp / "two.yaml")]


def _on_damaged_store(command: str):
    def setup(ns, tmp):
        damaged = str(_damaged_copy(ns.run.dir, tmp / "damaged"))
        return {"run": ["run", str(ns.files.study), "--out", damaged, "--no-progress"],
                "analyze": ["analyze", damaged, "--out", str(tmp / "analysis")],
                "report": ["report", damaged, "--out", str(tmp / "report.html")]}.get(command, [command, damaged])
    return setup


def _not_a_database(ns, tmp):
    (tmp / "results.sqlite").write_bytes(b"not sqlite" * 500)
    return ["status", str(tmp)]


def _set_value(df: pd.DataFrame, row: int, column: str, value: str) -> pd.DataFrame:
    df.loc[row, column] = value
    return df


def _pretrain(model: str = "", **settings) -> Callable:
    body = ", ".join(f"{k}: {v}" for k, v in {"steps": 10, "num_checkpoints": 2, **settings}.items())
    return _config("tasks: [{name: sentiment, n_train: 16, n_dev: 4, n_eval: 8}]\n"
                   f"checkpoints: {{source: pretrain, pretrain: {{{body}, model: {{{model}}}}}}}\n"
                   "finetune: {max_length: 128}\n")


CASES = [
    # study configs (plan validates exactly what run does)
    Case("empty config file", _config(""), 2, ("bad.yaml", "the file is empty")),
    Case("config of comments only", _config("# a study, one day\n"), 2, ("the file is empty",)),
    Case("config is a folder", lambda ns, tmp: ["plan", str(tmp)], 2, ("is a folder, not a study config",)),
    Case("no such config or preset", lambda ns, tmp: ["plan", "smoek"], 2, ("no config file 'smoek'", "no preset")),
    Case("misspelt key", _config("tasks: [{name: sentiment}]\nfinetun: {}\n"), 2, ("unknown key 'finetun'",)),
    Case("wrong type", _config("tasks: [{name: sentiment}]\nfinetune: {batch_size: 8.5}\n"), 2,
         ("finetune.batch_size: expected an integer, got 8.5",)),
    Case("unknown task", _config("tasks: [{name: no_such_task}]\n"), 2, ("tasks[0].name: unknown task 'no_such_task'",)),
    Case("no task", _config("tasks: []\n"), 2, ("tasks: list at least one task",)),
    Case("not valid YAML", _config("tasks: [{name: sentiment}\n"), 2, ("not valid YAML",)),
    Case("warm-up not a fraction", _config("tasks: [{name: sentiment}]\nfinetune: {warmup: 3}\n"), 2,
         ("finetune.warmup: a fraction",)),
    Case("local checkpoint folder missing",
         _config("tasks: [{name: sentiment}]\ncheckpoints: {source: local, local: {paths: [nowhere/step1]}}\n"),
         2, ("checkpoints.local.paths[0]: folder nowhere/step1 does not exist",)),
    Case("zero heads", _pretrain("num_heads: 0"), 2, ("checkpoints.pretrain.model.num_heads: must be at least 1",)),
    Case("negative size", _pretrain("hidden_size: -64"), 2, ("checkpoints.pretrain.model.hidden_size: must be at least 1",)),
    Case("hidden size not divisible by heads", _pretrain("hidden_size: 128, num_heads: 3"), 2,
         ("model.hidden_size: 128 is not divisible by", "num_heads (3)")),
    Case("odd head dimension", _pretrain("hidden_size: 66, num_heads: 2"), 2, ("hidden_size / num_heads = 33 must be even",)),
    Case("max_seq_len below seq_len", _pretrain("max_seq_len: 64", seq_len=128), 2,
         ("model.max_seq_len: 64 is below checkpoints.pretrain.seq_len (128)",)),
    Case("max_seq_len below finetune.max_length", _pretrain("max_seq_len: 100", seq_len=64), 2,
         ("max_seq_len: 100 is below finetune.max_length (128)", "raise max_seq_len to at least 128")),
    Case("one checkpoint", _pretrain(num_checkpoints=1), 2, ("checkpoints.pretrain.num_checkpoints must be at least 2",)),
    Case("more shots than n_train",
         _config("tasks: [{name: sentiment, n_train: 16}]\nevaluation: {shots: [20]}\n"), 2,
         ("evaluation.shots: 20 demonstrations", "tasks[0] (sentiment) has n_train 16", "raise tasks[0].n_train")),
    Case("two tasks of one name", _two_tasks_of_one_name, 2, ("tasks[1].name", "defines task 'my_sentiment', as tasks[0]")),
    # checkpoints that are not causal LMs or are broken: refused before any cell, without the weights
    Case("masked LM as local checkpoint", _run_config(checkpoint_of="bert"), 2,
         ("checkpoints.local.paths[0]", "BertForMaskedLM", "not a causal language model"), no_run_dir=True),
    Case("local checkpoint without tokenizer", _run_config(checkpoint_of="no_tokenizer"), 2,
         ("has no tokenizer", "tokenizer.save_pretrained(folder)"), no_run_dir=True),
    Case("local checkpoint truncated", _run_config(checkpoint_of="truncated"), 2,
         ("truncated/model.safetensors is truncated or damaged",), no_run_dir=True),
    Case("more shots than the training split has", _run_config(n_train="null", shots=30), 2,
         ("evaluation.shots: 30 demonstrations", "training split of task my_sentiment has 23 example(s)"), no_run_dir=True),
    Case("finetune.max_length beyond the checkpoint's context", _run_config(max_length=4096), 2,
         ("finetune.max_length: 4096 tokens is beyond the context of checkpoint", "lower finetune.max_length"),
         no_run_dir=True),
    Case("run --out is a file", _with_file("out", lambda ns, tmp: ["run", str(ns.files.study), "--out", str(tmp / "out")]),
         2, ("is a file", "--out")),
    Case("run --out under a file", _with_file("f", lambda ns, tmp: ["run", str(ns.files.study), "--out",
                                                                     str(tmp / "f" / "out")]),
         2, ("so no folder can be made under it",)),
    # ptft eval
    Case("eval a masked LM", lambda ns, tmp: ["eval", "--model", str(ns.files.bert), "--task", "sentiment"], 2,
         ("BertForMaskedLM", "not a causal language model")),
    Case("eval without tokenizer", lambda ns, tmp: ["eval", "--model", str(ns.files.no_tokenizer), "--task",
                                                     "sentiment"], 2, ("has no tokenizer", "save_pretrained(folder)")),
    Case("eval truncated safetensors", lambda ns, tmp: ["eval", "--model", str(ns.files.truncated), "--task",
                                                         "sentiment"], 2, (f"{os.sep}model.safetensors is truncated",)),
    Case("eval --out a folder", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task", "sentiment",
                                                  "--out", str(tmp)], 2, ("is a folder", "predictions file")),
    Case("eval missing model", lambda ns, tmp: ["eval", "--model", str(tmp / "missing"), "--task", "sentiment"], 2,
         ("does not exist",)),
    Case("eval unknown task", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task", "no_such_task_xyz"], 2,
         ("unknown task 'no_such_task_xyz'",)),
    Case("eval method of another task type", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task",
                                                               "sentiment", "--method", "greedy"], 2,
         ("is classification: method must be one of tokenprob, constrained, free, not 'greedy'",)),
    Case("eval negative shots", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task", "sentiment",
                                                  "--shots", "-1"], 2, ("--shots must be >= 0",)),
    Case("eval unknown format", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task",
                                                  str(ns.files.root / "sentiment.yaml"), "--format", "xyz"], 2,
         ("task 'my_sentiment' has no format 'xyz'; it has default, io, instruct",)),
    Case("eval unknown eval set", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task",
                                                    str(ns.files.root / "sentiment.yaml"), "--eval-set", "nope"], 2,
         ("has no eval set 'nope'; it has my_sentiment_test",)),
    Case("eval a missing task file", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task",
                                                       str(tmp / "nothere.yaml")], 2, ("nothere.yaml' not found",)),
    Case("eval an empty task file", _with_file("e.yaml", lambda ns, tmp: ["eval", "--model", str(ns.files.final),
                                                                          "--task", str(tmp / "e.yaml")], content=""),
         2, ("e.yaml': the file is empty",)),
    Case("eval a task file with a misspelt key", _with_file("k.yaml", lambda ns, tmp: [
        "eval", "--model", str(ns.files.final), "--task", str(tmp / "k.yaml")], content="name: x\ntyp: generation\n"),
         2, ("k.yaml', key 'typ': unknown key",)),
    # task data: the line an editor shows
    Case("bad label in JSONL", _task_data("jsonl", 4), 2, ("test.jsonl line 5", "field 'label'", "unknown label 'maybe'")),
    Case("bad label in a JSON array", _task_data("json", 3), 2, ("test.json line 14", "field 'label'")),
    Case("bad label in CSV", _task_data("csv", 3), 2, ("test.csv line 5 (line 1 is the header)", "field 'label'")),
    # results tables
    Case("analyze a 0-byte CSV", _results_table(None), 2, ("results.csv", "the file is empty")),
    Case("analyze 'n/a' as a value", _results_table(lambda df: _set_value(df, 2, "value", "n/a")), 2,
         ("column 'value' must hold a number, found 'n/a' at row 3, line 4",), needs_run=True),
    Case("analyze an empty value", _results_table(lambda df: _set_value(df, 2, "value", "")), 2,
         ("found an empty cell at row 3, line 4",), needs_run=True),
    Case("analyze a table without a column", _results_table(lambda df: df.drop(columns=["domain"])), 2,
         ("missing column 'domain'",), needs_run=True),
    Case("analyze a missing file", lambda ns, tmp: ["analyze", str(tmp / "nope.csv"), "--out", str(tmp / "a")], 2,
         ("no such file",)),
    Case("analyze --out a file", _with_file("a", lambda ns, tmp: ["analyze", str(ns.run.dir), "--out", str(tmp / "a")]),
         2, ("--out", "is a file"), needs_run=True),
    Case("report --out a folder", lambda ns, tmp: ["report", str(ns.run.dir), "--out", str(tmp)], 2,
         ("is a folder", "report's file name"), needs_run=True),
    Case("export --out a folder", lambda ns, tmp: ["export", str(ns.run.dir), "--out", str(tmp)], 2,
         ("is a folder", "table's file name"), needs_run=True),
    Case("export --out under a file", _with_file("f", lambda ns, tmp: ["export", str(ns.run.dir), "--out",
                                                                         str(tmp / "f" / "t.csv")]),
         2, ("a file of this name already exists where a folder is needed",), needs_run=True),
    Case("export onto a full device", lambda ns, tmp: ["export", str(ns.run.dir), "--out", "/dev/full"], 2,
         ("/dev/full", "no space left"), needs_run=True),
    Case("run a folder another run is working on", _held_lock, 2,
         ("is being run by pid 1 on elsewhere since today", "wait for it to finish")),
    Case("analyze a file of another type", _with_file("r.txt", lambda ns, tmp: ["analyze", str(tmp / "r.txt"), "--out",
                                                                              str(tmp / "a")], content=""),
         2, ("unknown file type '.txt'",)),
    Case("analyze a malformed CSV", _with_file("r.csv", lambda ns, tmp: ["analyze", str(tmp / "r.csv"), "--out",
                                                                        str(tmp / "a")], content='a,b\n"x\n'),
         2, ("r.csv: cannot be read as csv",)),
    Case("hub source without repo", _config("tasks: [{name: sentiment}]\ncheckpoints: {source: hub}\n"), 2,
         ("checkpoints.hub.repo: name the model repository",)),
    Case("run a hub revision neither the Hub nor the cache can fingerprint",
         _with_file("hub.yaml", lambda ns, tmp: ["run", str(tmp / "hub.yaml"), "--out", str(tmp / "out")],
                    content="tasks: [{name: sentiment}]\ncheckpoints: {source: hub, hub: {repo: ptft-tests/no-model, "
                            "revisions: [step1000]}}\n"),
         2, ("checkpoints.hub: cannot fingerprint ptft-tests/no-model@step1000", "HF_HUB_OFFLINE=1"), no_run_dir=True),
    Case("local labels for fewer paths", _local_labels, 2, ("checkpoints.local.labels: 1 entries for 2 paths",)),
    Case("no worker", _config("tasks: [{name: sentiment}]\nexecutor: {workers: 0}\n"), 2,
         ("executor.workers: must be at least 1",)),
    Case("negative learning rate", _config("tasks: [{name: sentiment}]\nfinetune: {learning_rates: [-1e-3]}\n"),
         2, ("finetune.learning_rates: give one or more positive rates",)),
    Case("status of a folder that is no run", lambda ns, tmp: ["status", str(tmp)], 2, ("is not a run directory",)),
    # a damaged store: every command that opens it refuses it
    *[Case(f"{command} on a damaged store", _on_damaged_store(command), 2,
           ("results.sqlite is damaged", "Move it aside", "run the study again"), needs_run=True)
      for command in ("status", "export", "run", "analyze", "report")],
    Case("a store that is not a database", _not_a_database, 2, ("results.sqlite is damaged", "file is not a database")),
    # the settings of the newer axes, checked before anything runs
    Case("LoRA modules of another architecture", _config(
        "include: smoke\nfinetune: {methods: [full, lora], lora: {target_modules: [c_attn, c_proj]}}\n"), 2,
         ("finetune.lora.target_modules: c_attn, c_proj", "LlamaForCausalLM", "q_proj", "all-linear")),
    Case("LoRA modules of another architecture, local series", _run_config(
        extra="finetune: {epochs: 1, learning_rates: [0.001], methods: [lora], lora: {target_modules: [query]}}\n"),
         2, ("finetune.lora.target_modules: query", "v_proj"), no_run_dir=True),
    Case("a LoRA regex matching nothing", _config(
        "include: smoke\nfinetune: {methods: [lora], lora: {target_modules: '.*attn.c_proj'}}\n"), 2,
         ("target_modules: .*attn.c_proj name(s) no module",)),
    Case("negative fine-tuning seed", _config("tasks: [{name: sentiment}]\nfinetune: {seeds: [-1]}\n"), 2,
         ("finetune.seeds[0]: a seed must be between 0 and 4294967295", "got -1")),
    Case("fine-tuning seed beyond 2**32 - 1", _config("tasks: [{name: sentiment}]\nfinetune: {seeds: [0, 4294967296]}\n"),
         2, ("finetune.seeds[1]: a seed must be between 0 and 4294967295",)),
    Case("negative study seed", _config("tasks: [{name: sentiment}]\nseed: -3\n"), 2, ("bad.yaml: seed: a seed must be",)),
    Case("run --seed -1", lambda ns, tmp: ["run", str(ns.files.study), "--seed", "-1", "--out", str(tmp / "out")], 2,
         ("--seed must be between 0 and 4294967295", "got -1"), no_run_dir=True),
    Case("probe text file empty", _with_file("held.txt", _run_config(
        extra="probes: {enabled: true, text: held.txt}\n"), content="\n  \n"), 2,
         ("probes.text: held.txt holds no text",), no_run_dir=True),
    Case("probe text with a pre-trained series", _config(
        "include: smoke\nprobes: {enabled: true, text: /etc/hostname}\n"), 2,
         ("probes.text: a series pre-trained here is probed on its own held-out documents", "remove probes.text")),
    Case("probe noise of zero", _config("tasks: [{name: sentiment}]\nprobes: {enabled: true, sigma: 0}\n"), 2,
         ("probes.sigma:", "above 0", "got 0")),
    Case("LiNeS alpha above 1", _config("tasks: [{name: sentiment}]\nlines: {enabled: true, alpha: 1.5}\n"), 2,
         ("lines.alpha:", "in [0, 1], got 1.5")),
    Case("LiNeS beta below 0", _config("tasks: [{name: sentiment}]\nlines: {enabled: true, beta: -0.2}\n"), 2,
         ("lines.beta:", "[0, 0.5]", "got -0.2")),
    Case("LiNeS alpha + beta above 1", _config("tasks: [{name: sentiment}]\nlines: {alpha: 0.6, beta: 0.6}\n"), 2,
         ("lines.beta:", "[0, 0.4]",)),
    Case("run --workers 0", lambda ns, tmp: ["run", str(ns.files.study), "--workers", "0", "--out", str(tmp / "out")], 2,
         ("--workers must be at least 1, got 0",), no_run_dir=True),
    Case("run --workers -2", lambda ns, tmp: ["run", str(ns.files.study), "--workers", "-2", "--out", str(tmp / "out")],
         2, ("--workers must be at least 1, got -2",), no_run_dir=True),
    Case("--address without --executor ray", lambda ns, tmp: ["run", str(ns.files.study), "--address",
                                                              "127.0.0.1:6379", "--out", str(tmp / "out")], 2,
         ("--address 127.0.0.1:6379 names a Ray cluster", "add --executor ray"), no_run_dir=True),
    Case("Ray address where nothing listens", lambda ns, tmp: ["run", str(ns.files.study), "--executor", "ray",
                                                               "--address", f"127.0.0.1:{_closed_port()}",
                                                               "--out", str(tmp / "out")], 2,
         ("--address 127.0.0.1:", "no Ray cluster answers there within 10 s", "ray start --head"), no_run_dir=True),
    Case("Ray address that is no host:port", lambda ns, tmp: ["run", str(ns.files.study), "--executor", "ray",
                                                              "--address", "localhost", "--out", str(tmp / "out")], 2,
         ("--address localhost: expected host:port",), no_run_dir=True),
    Case("import into an .xlsx", lambda ns, tmp: ["import", "lm-eval", str(PYTHIA_LOG), "--out", str(tmp / "r.xlsx")],
         2, ("--out", "r.xlsx", "a table is written as .csv or .parquet", "r.csv")),
    Case("eval --batch-size 0", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task", "sentiment",
                                                  "--batch-size", "0"], 2, ("--batch-size must be >= 1, got 0",)),
    Case("eval --n-boot 0", lambda ns, tmp: ["eval", "--model", str(ns.files.final), "--task", "sentiment",
                                              "--n-boot", "0"], 2, ("--n-boot must be >= 1, got 0",)),
    Case("W&B tracking without wandb", _config("tasks: [{name: sentiment}]\ntracking: {wandb: {project: p}}\n"), 2,
         ("bad.yaml: tracking.wandb: the wandb package is not installed (pip install wandb)",)),
    Case("W&B tracking as true", _config("tasks: [{name: sentiment}]\ntracking: {wandb: true}\n"), 2,
         ("tracking.wandb: expected a mapping (project: ..., mode: ...) or null, got True",)),
    Case("a number where a list goes", _config("tasks: [{name: sentiment}]\nfinetune: {eval_at: 0.5}\n"), 2,
         ("finetune.eval_at: expected a list of numbers, got 0.5",)),
    Case("an lm-eval generation task", _config("tasks: [{name: sentiment}, {name: 'lm-eval:gsm8k', train: false}]\n"),
         2, ("'lm-eval:gsm8k' cannot be scored by ptft: output_type is 'generate_until'",)),
]

PYTHIA_LOG = Path(__file__).parent / "data" / "pythia-evals" / "160m_step1000.json"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, files, request, tmp_path, capsys) -> None:
    ns = SimpleNamespace(files=files, run=request.getfixturevalue("run") if case.needs_run else None, cleanup=[])
    argv = case.setup(ns, tmp_path)
    capsys.readouterr()
    try:
        rc = main(argv)
    finally:
        for undo in ns.cleanup:
            undo()
    err = capsys.readouterr().err
    assert rc == case.code, err
    for word in case.words:
        assert word in err, f"{word!r} not in: {err}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    if case.no_run_dir:
        assert not (tmp_path / "out").exists(), "refused only after the run directory was made"


# ------------------------------------------------------------------------ correct behaviour

def test_an_included_file_reads_its_paths_against_its_own_folder(files, tmp_path, monkeypatch) -> None:
    """base/base.yaml names its task file and checkpoint relative to base/; a study elsewhere that
    includes it, loaded from a third folder, finds both there (and its own paths beside itself)."""
    from ptft.config import load_config

    base = tmp_path / "base"
    (base / "task").mkdir(parents=True)
    for name in ("sentiment.yaml", "train.jsonl", "test.jsonl"):
        shutil.copy(files.root / name, base / "task" / name)
    shutil.copytree(files.final, tmp_path / "ckpt")
    (base / "base.yaml").write_text("tasks: [{name: task/sentiment.yaml, n_train: 8}]\n"
                                    "checkpoints: {source: local, local: {paths: [../ckpt]}}\ndata_dir: data\n")
    study = tmp_path / "studies" / "study.yaml"
    study.parent.mkdir()
    (tmp_path / "studies" / "held.txt").write_text("A paragraph of held-out text.\n")
    study.write_text("include: ../base/base.yaml\nprobes: {enabled: true, text: held.txt}\n")
    monkeypatch.chdir(tmp_path / "base" / "task")  # where ptft is started changes nothing
    config = load_config(study)
    assert config.tasks[0].name == str((base / "task" / "sentiment.yaml").resolve())
    assert config.checkpoints.local.paths == [str((tmp_path / "ckpt").resolve())]
    assert config.data_dir == str((base / "data").resolve())
    assert config.probes.text == str((tmp_path / "studies" / "held.txt").resolve())


def test_eval_at_points_on_one_step_are_evaluated_once() -> None:
    from ptft.training.finetune import distinct_steps

    # 5 steps: 0.1 and 0.2 both land on step 1, 0.95 on the last step (the final model, point 1.0)
    assert distinct_steps([0.5, 0.2, 0.1, 0.95], 5) == ({0.1: 1, 0.5: 2}, [0.2, 0.95])
    assert distinct_steps([0.25, 0.5, 0.75], 100) == ({0.25: 25, 0.5: 50, 0.75: 75}, [])


def test_plan_and_cells_name_a_user_task_by_its_name(files, capsys) -> None:
    from ptft.config import load_config
    from ptft.engine.study import plan_cells

    assert main(["plan", str(files.study)]) == 0
    printed = capsys.readouterr().out
    assert "my_sentiment" in printed and "sentiment.yaml" not in printed
    labels = [c.label for c in plan_cells(load_config(files.study), files.root / "unused-run")]
    assert "FT final my_sentiment lr=0.001 seed=0" in labels and "BASE final my_sentiment" in labels


def test_user_task_and_stepless_checkpoint_in_results(run, tmp_path) -> None:
    """A user task is named by its `name:` (not its file's path); a checkpoint folder named without a
    step still shows in the summary; n_eval beyond the data is said before any cell runs."""
    assert main(["export", str(run.dir), "--out", str(tmp_path / "t.csv")]) == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert set(table.eval_task) == {"my_sentiment"}
    assert set(table.train_task.fillna("")) == {"", "my_sentiment"}
    assert set(table.checkpoint) == {"final"} and table.step.isna().all()
    assert "no results yet" not in run.printed
    summary = run.printed[run.printed.index("In-domain metric"):]
    assert "final" in summary and "my_sentiment_test FT" in summary
    assert ("tasks[0] (my_sentiment): n_eval is 1000 but its eval set my_sentiment_test has 12 example(s); "
            "all 12 are used") in run.printed.split("cell(s) run")[0]


def test_a_folder_named_like_a_preset_is_not_a_config(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "smoke").mkdir()  # e.g. a run directory of the smoke preset
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "smoke"]) == 0
    assert "Study 'smoke'" in capsys.readouterr().out


def test_status_piped_into_head_is_quiet(run) -> None:
    proc = subprocess.run(f"{sys.executable} -m ptft status {run.dir} --all | head -1", shell=True,
                          capture_output=True, text=True, env=_env())
    assert proc.stdout.startswith(str(run.dir)) and proc.stderr == "", proc.stderr


def test_damaged_cache_file_is_found_by_checksum_and_extracted_again(files, bigbench_copy, tmp_path, monkeypatch,
                                                                     capsys) -> None:
    """A private cache and the user's BIG-bench archive: `ptft prepare` extracts the task files with
    a checksum; a damaged copy is extracted again by prepare; one that cannot be parsed names its path."""
    from ptft import sources
    from ptft.tasks import bbutil

    cache = tmp_path / "cache"
    monkeypatch.setenv("PTFT_CACHE", str(cache))
    config = files.root / "prep.yaml"
    config.write_text("tasks: [{name: bb_multiemo_sentiment, n_train: 20, n_dev: 4, n_eval: 8}]\n"
                      "checkpoints: {source: pretrain}\nfinetune: {max_length: 128}\n")
    assert main(["prepare", str(config)]) == 0
    relpath = "multiemo/hotels_sentence_en/task.json"
    target = cache / "files" / "bigbench-1.0.0" / bbutil.BENCHMARK_TASKS / relpath
    good = target.read_bytes()
    assert target.with_name(target.name + ".sha256").read_text() == hashlib.sha256(good).hexdigest()
    with open(target, "r+b") as f:  # a few bytes changed: still parses, only the checksum can tell
        f.seek(len(good) // 2)
        f.write(b"XXXX")
    sources._verified.clear()
    bbutil.bigbench_json.cache_clear()
    capsys.readouterr()
    assert main(["prepare", str(config)]) == 0
    assert f"extracted again (damaged, or extracted before checksums were kept): {target}" in capsys.readouterr().out
    assert target.read_bytes() == good
    target.write_bytes(good[:5000])  # cut short, and no checksum (as extracted by an older ptft)
    target.with_name(target.name + ".sha256").unlink()
    sources._verified.clear()
    bbutil.bigbench_json.cache_clear()
    with pytest.raises(sources.SourceError, match=rf"{target}: the cached file cannot be read.*ptft prepare"):
        sources.bigbench_task(relpath)
    bbutil.bigbench_json.cache_clear()
    assert main(["prepare", str(config)]) == 0
    assert target.read_bytes() == good


# --------------------------------------------------------- other processes and file systems

def _env() -> dict[str, str]:
    return {**os.environ, "PTFT_NUM_THREADS": "1"}


def _first_cell_running(run_dir: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            con = sqlite3.connect(f"file:{run_dir / 'results.sqlite'}?mode=ro", uri=True, timeout=1)
            try:
                if con.execute("SELECT 1 FROM cells WHERE status='running'").fetchone():
                    return
            finally:
                con.close()
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.05)
    raise AssertionError(f"no cell started: {proc.communicate()[1] if proc.poll() is not None else 'timeout'}")


@pytest.mark.parametrize("signum, code, how", [(signal.SIGINT, 130, "interrupted"),
                                               (signal.SIGTERM, 143, "stopped by SIGTERM")])
def test_interrupt_prints_one_line_and_the_rerun_resumes(files, tmp_path, signum, code, how, capsys) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "ptft", "run", str(files.study), "--out", str(out),
                             "--no-progress"], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    _first_cell_running(out, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip() == (f"ptft run: {how}; the cells finished so far are kept in {out}; run the same command "
                           f"again to resume (`ptft status {out}` shows what is left)")
    assert main(["run", str(files.study), "--out", str(out), "--no-progress"]) == 0
    done_before = int(capsys.readouterr().out.split(" already done")[0].rsplit(", ", 1)[1])
    assert done_before < 2  # the signal came while the first cell ran: at most the BASE cell was kept
    con = sqlite3.connect(out / "results.sqlite")
    rows = pd.read_sql_query("SELECT cell_id, eval_set, metric FROM results", con)
    con.close()
    assert not rows.duplicated().any() and len(rows) == 2  # one BASE and one FT accuracy, once each


def _mounted(tmp_path: Path, options: str, script: str) -> subprocess.CompletedProcess:
    """``script`` (sh) run with a fresh tmpfs mounted at tmp_path/mnt (own mount namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small file system")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {mnt}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()}")
    return subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o {options} tmpfs {mnt} && {script}"],
                          capture_output=True, text=True, env=_env())


def _fill(mnt: Path) -> str:
    return f"(dd if=/dev/zero of={mnt}/filler bs=4k 2>/dev/null; true)"


def test_full_disk_says_no_space_and_leaves_no_partial_files(run, files, tmp_path) -> None:
    mnt = tmp_path / "mnt"
    py = f"{sys.executable} -m ptft"
    write_jsonl = (f"{sys.executable} -c \"from pathlib import Path; from ptft.engine.work import write_jsonl; "
                   f"write_jsonl(Path('{mnt}/p.jsonl'), [{{'x': 'y' * 99999}}])\"")
    proc = _mounted(tmp_path, "size=16m", " ; ".join([
        f"cp -r {run.dir} {mnt}/run", _fill(mnt),
        f"{py} run {files.study} --out {mnt}/run --no-progress; echo rc=$?",
        f"{py} run {files.study} --out {mnt}/new --no-progress; echo rc=$?",
        f"{write_jsonl} 2>&1 | tail -1",
        f"find {mnt} -name '*.tmp' -o -name '*.part*' | sed 's/^/left: /'"]))
    lines = proc.stdout.splitlines()
    assert lines.count("rc=2") == 2, proc.stdout + proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 2 and all("no space left" in e for e in errors), proc.stderr
    assert f"{mnt}/run/results.sqlite: no space left" in errors[0] and f"{mnt}/new" in errors[1]
    assert "Traceback" not in proc.stderr
    assert any("No space left on device" in line for line in lines), proc.stdout  # the write itself failed...
    assert not [line for line in lines if line.startswith("left: ")], proc.stdout  # ...and left nothing behind


def test_read_only_folder_is_refused_and_its_store_still_read(run, files, tmp_path) -> None:
    mnt = tmp_path / "mnt"
    py = f"{sys.executable} -m ptft"
    proc = _mounted(tmp_path, "size=16m", " ; ".join([
        f"cp -r {run.dir} {mnt}/run", f"mount -o remount,ro {mnt}",
        f"{py} run {files.study} --out {mnt}/new --no-progress; echo rc=$?",
        f"{py} run {files.study} --out {mnt}/run --no-progress; echo rc=$?",
        f"{py} status {mnt}/run; echo rc=$?",
        f"{py} export {mnt}/run --out {tmp_path}/t.csv; echo rc=$?"]))
    rcs = [line for line in proc.stdout.splitlines() if line.startswith("rc=")]
    assert rcs == ["rc=2", "rc=2", "rc=0", "rc=0"], proc.stdout + proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 2 and all("is not writable (read-only or no permission)" in e for e in errors)
    assert "nothing left" in proc.stdout
    assert len(pd.read_csv(tmp_path / "t.csv")) == 2
