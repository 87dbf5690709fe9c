"""User-defined tasks from a YAML file (``ptft ... --task path/to/task.yaml``).

Schema (paths are relative to the YAML file; see ``docs/tasks.md`` and ``examples/tasks/``)::

    name: movie_sentiment                  # required; the task's name in results
    type: classification                   # classification | multiple_choice | generation
    description: Sentiment of short movie reviews      # optional
    labels: [positive, negative]           # classification: the label words
    label_field: label                     # classification: the column holding the label (default: label)
    label_map: {0: negative, 1: positive}  # optional: raw column value -> label word
    target_field: summary                  # generation: the column holding the reference text
    choices_field: choices                 # multiple_choice: the column holding the list of choices
    answer_field: answer                   # multiple_choice: the correct choice (its index or its text)
    fields: {text: review}                 # prompt field -> column (or a list: [review] = same name)
    data:
      train: data/train.jsonl              # required (.jsonl, .json, .csv or .parquet)
      dev: data/dev.jsonl                  # optional; else dev_fraction of train, by a stable hash
      dev_fraction: 0.1                    # optional (default 0.1)
      eval:                                # one or more; at least one with domain: in
        - {name: movie_sentiment, path: data/test.jsonl, domain: in}
        - {name: product_reviews, path: data/products.csv, domain: out,
           labels: [positive, negative], label_map: {...}, fields: {...},
           label_field: stars}             # optional overrides (target_field for generation)
    formats:                               # all three: default, io, instruct
      default: {template: "### Input: {text}\\n ### Sentiment:", cue: "### Input"}
      io: {template: "{text}"}
      instruct: {template: "Is this review positive or negative? Review: {text} Answer:", cue: "Is this review"}
    max_new_tokens: 5                      # optional (default 5 for classification, 60 otherwise)
    normalize_whitespace: false            # optional: true strips every field and collapses whitespace
                                           # in targets and choices; default: text as the data gives it

Unknown keys, wrong types, missing files and templates that use undeclared fields raise
:class:`ptft.errors.ConfigError` naming the YAML file and the key (``data.eval[1].path``). Bad
rows raise :class:`TaskDataError` naming the dataset (eval-set name, or ``<task>`` for
train/dev), the split, the row and the column, when the task is loaded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from ptft.errors import ConfigError, yaml_problem
from ptft.tasks.base import (FORMAT_NAMES, EvalSet, Example, LoadRequest, PromptFormat, Task, TaskData, TaskDataError,
                             one_line)
from ptft.tasks.rows import LOCAL_SUFFIXES, Row, convert_rows, read_local
from ptft.tasks.splits import carve, subsample

TOP_KEYS = {"name", "type", "description", "labels", "label_field", "label_map", "target_field", "choices_field",
            "answer_field", "fields", "data", "formats", "max_new_tokens", "normalize_whitespace"}
DATA_KEYS = {"train", "dev", "dev_fraction", "eval"}
EVAL_KEYS = {"name", "path", "domain", "labels", "label_map", "fields", "label_field", "target_field"}
FORMAT_KEYS = {"template", "cue"}
TYPES = ("classification", "multiple_choice", "generation")


class _Ctx:
    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"task file {str(self.path)!r}, key {key!r}: {problem}")

    def expect(self, value: Any, typ: type | tuple, key: str, what: str) -> Any:
        if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
            raise self.error(key, f"expected {what}, got {type(value).__name__} {value!r}")
        return value

    def text(self, value: Any, key: str) -> str:
        value = self.expect(value, str, key, "text")
        if not value.strip():
            raise self.error(key, "empty")
        return value

    def unknown(self, mapping: Mapping, allowed: set[str], key: str) -> None:
        extra = sorted(set(map(str, mapping)) - allowed)
        if extra:
            where = f"{key}." if key else ""
            raise self.error(f"{where}{extra[0]}", f"unknown key; allowed here: {sorted(allowed)}")

    def file(self, value: Any, key: str) -> Path:
        rel = self.text(value, key)
        path = (self.path.parent / rel).resolve()
        if path.suffix not in LOCAL_SUFFIXES:
            raise self.error(key, f"{rel!r}: unsupported file type; use one of {list(LOCAL_SUFFIXES)}")
        if not path.is_file():
            raise self.error(key, f"file {rel!r} not found (looked in {path})")
        return path


@dataclass(frozen=True)
class _Source:
    name: str           # dataset name used in uids and errors
    role: str           # train / dev / eval-set name
    path: Path
    fields: Mapping[str, str]
    labels: tuple[str, ...]
    label_map: Mapping[str, str] | None
    target_col: str
    part: str = "all"   # all | train | dev (dev carved from train)

    @property
    def split(self) -> str:
        """The split named in uids and errors: train (also a carved dev), dev, or eval."""
        if self.part != "all":
            return "train"
        return self.role if self.role in ("train", "dev") else "eval"


def _fields(ctx: _Ctx, value: Any, key: str) -> dict[str, str]:
    if isinstance(value, list):
        out = {ctx.text(v, f"{key}[{i}]"): v for i, v in enumerate(value)}
    elif isinstance(value, dict):
        out = {ctx.text(k, f"{key}.{k}"): ctx.text(v, f"{key}.{k}") for k, v in value.items()}
    else:
        raise ctx.error(key, f"expected a mapping prompt-field -> column (or a list of columns), got {value!r}")
    if not out:
        raise ctx.error(key, "no input fields")
    for name in out:
        if not name.isidentifier():
            raise ctx.error(f"{key}.{name}", "a prompt field name must be a Python identifier (used as {name})")
    return out


def _label_map(ctx: _Ctx, value: Any, key: str, labels: tuple[str, ...]) -> dict[str, str] | None:
    if value is None:
        return None
    ctx.expect(value, dict, key, "a mapping raw value -> label")
    out = {}
    for raw, word in value.items():
        word = ctx.text(word, f"{key}.{raw}")
        if labels and word not in labels:
            raise ctx.error(f"{key}.{raw}", f"maps to {word!r}, which is not one of the labels {list(labels)}")
        out[_norm(raw)] = word
    return out


def _norm(raw: Any) -> str:
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    return str(raw).strip()


def _labels(ctx: _Ctx, value: Any, key: str) -> tuple[str, ...]:
    ctx.expect(value, list, key, "a list of label words")
    labels = tuple(ctx.text(v, f"{key}[{i}]").strip() for i, v in enumerate(value))
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ctx.error(key, f"needs at least two distinct labels, got {list(labels)}")
    return labels


def load_yaml_task(path: Path | str) -> Task:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"task file {str(path)!r} not found")
    ctx = _Ctx(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"task file {str(path)!r}: not valid YAML ({yaml_problem(err)})") from None
    if spec is None:
        raise ConfigError(f"task file {str(path)!r}: the file is empty; a task needs name, type, fields, data "
                          "and formats (docs/tasks.md)")
    if not isinstance(spec, dict):
        raise ConfigError(f"task file {str(path)!r}: expected a mapping at the top level")
    ctx.unknown(spec, TOP_KEYS, "")
    for key in ("name", "type", "fields", "data", "formats"):
        if key not in spec:
            raise ctx.error(key, "missing (required)")

    name = ctx.text(spec["name"], "name").strip()
    task_type = ctx.text(spec["type"], "type")
    if task_type not in TYPES:
        raise ctx.error("type", f"{task_type!r} is not one of {list(TYPES)}")
    description = ctx.expect(spec.get("description", ""), str, "description", "text")
    fields = _fields(ctx, spec["fields"], "fields")

    per_type = {"classification": {"labels", "label_field", "label_map"},
                "generation": {"target_field"}, "multiple_choice": {"choices_field", "answer_field"}}
    for other, keys in per_type.items():
        if other != task_type:
            for key in keys & set(spec):
                raise ctx.error(key, f"only for type {other!r} (this task is {task_type!r})")
    labels: tuple[str, ...] = ()
    label_map = None
    if task_type == "classification":
        if "labels" not in spec:
            raise ctx.error("labels", "missing (a classification task needs its label words)")
        labels = _labels(ctx, spec["labels"], "labels")
        label_map = _label_map(ctx, spec.get("label_map"), "label_map", labels)
        target_col = ctx.text(spec.get("label_field", "label"), "label_field")
    elif task_type == "generation":
        if "target_field" not in spec:
            raise ctx.error("target_field", "missing (a generation task needs the reference column)")
        target_col = ctx.text(spec["target_field"], "target_field")
    else:
        for key in ("choices_field", "answer_field"):
            if key not in spec:
                raise ctx.error(key, "missing (a multiple-choice task needs it)")
        target_col = ctx.text(spec["answer_field"], "answer_field")
    choices_col = ctx.text(spec["choices_field"], "choices_field") if task_type == "multiple_choice" else None

    max_new = spec.get("max_new_tokens", 5 if task_type == "classification" else 60)
    ctx.expect(max_new, int, "max_new_tokens", "an integer")
    if max_new < 0:
        raise ctx.error("max_new_tokens", "must be >= 0")
    normalize = ctx.expect(spec.get("normalize_whitespace", False), bool, "normalize_whitespace", "true or false")

    # formats
    fmts_spec = ctx.expect(spec["formats"], dict, "formats", "a mapping with default, io, instruct")
    ctx.unknown(fmts_spec, set(FORMAT_NAMES), "formats")
    formats: dict[str, PromptFormat] = {}
    for fname in FORMAT_NAMES:
        key = f"formats.{fname}"
        if fname not in fmts_spec:
            raise ctx.error(key, "missing (every task has default, io and instruct formats)")
        f = fmts_spec[fname]
        if isinstance(f, str):
            f = {"template": f}
        ctx.expect(f, dict, key, "a mapping with template (and cue)")
        ctx.unknown(f, FORMAT_KEYS, key)
        if "template" not in f:
            raise ctx.error(f"{key}.template", "missing")
        fmt = PromptFormat(fname, ctx.text(f["template"], f"{key}.template"),
                           ctx.expect(f.get("cue", ""), str, f"{key}.cue", "text"))
        try:
            used = fmt.fields()
        except ValueError as err:
            raise ctx.error(f"{key}.template",
                            f"not a valid template ({err}); write literal braces as {{{{ }}}}") from None
        unknown = [u for u in used if u not in fields]
        if unknown:
            raise ctx.error(f"{key}.template", f"uses {unknown[0]!r}, which is not among the fields {sorted(fields)}")
        if not used:
            raise ctx.error(f"{key}.template", "uses no field")
        formats[fname] = fmt

    # data
    data = ctx.expect(spec["data"], dict, "data", "a mapping with train, eval (and dev)")
    ctx.unknown(data, DATA_KEYS, "data")
    if "train" not in data:
        raise ctx.error("data.train", "missing (training data and few-shot demonstrations come from it)")
    if "eval" not in data:
        raise ctx.error("data.eval", "missing (at least one eval set with domain: in)")
    train_path = ctx.file(data["train"], "data.train")
    dev_fraction = data.get("dev_fraction", 0.1)
    ctx.expect(dev_fraction, (int, float), "data.dev_fraction", "a number")
    if not 0 < dev_fraction < 1:
        raise ctx.error("data.dev_fraction", f"must lie strictly between 0 and 1, got {dev_fraction}")
    if "dev" in data and "dev_fraction" in data:
        raise ctx.error("data.dev_fraction", "give either data.dev (a file) or data.dev_fraction, not both")
    train_src = _Source(name, "train", train_path, fields, labels, label_map, target_col,
                        "train" if "dev" not in data else "all")
    if "dev" in data:
        dev_src = _Source(name, "dev", ctx.file(data["dev"], "data.dev"), fields, labels, label_map, target_col)
    else:
        dev_src = _Source(name, "dev", train_path, fields, labels, label_map, target_col, "dev")

    evals_spec = ctx.expect(data["eval"], list, "data.eval", "a list of eval sets")
    if not evals_spec:
        raise ctx.error("data.eval", "empty")
    eval_sets: list[EvalSet] = []
    eval_srcs: list[_Source] = []
    for i, e in enumerate(evals_spec):
        key = f"data.eval[{i}]"
        ctx.expect(e, dict, key, "a mapping with name, path, domain")
        ctx.unknown(e, EVAL_KEYS, key)
        for req in ("name", "path", "domain"):
            if req not in e:
                raise ctx.error(f"{key}.{req}", "missing")
        ename = ctx.text(e["name"], f"{key}.name").strip()
        if ename in {s.name for s in eval_sets}:
            raise ctx.error(f"{key}.name", f"eval set {ename!r} is declared twice")
        domain = e["domain"]
        if domain not in ("in", "out"):
            raise ctx.error(f"{key}.domain", f"must be 'in' or 'out', got {domain!r}")
        epath = ctx.file(e["path"], f"{key}.path")
        if epath in (train_path, dev_src.path):
            raise ctx.error(f"{key}.path", "is the train/dev file: eval items must not be trained on or used as demos")
        efields = _fields(ctx, e["fields"], f"{key}.fields") if "fields" in e else fields
        if set(efields) != set(fields):
            raise ctx.error(f"{key}.fields", f"must define the same prompt fields {sorted(fields)}")
        elabels = None
        if "labels" in e or "label_map" in e:
            if task_type != "classification":
                raise ctx.error(f"{key}.labels", "only for classification tasks")
        if "labels" in e:
            elabels = _labels(ctx, e["labels"], f"{key}.labels")
        emap = _label_map(ctx, e.get("label_map"), f"{key}.label_map", elabels or labels) if "label_map" in e else (
            label_map if elabels is None else None)
        ecol = target_col
        for col_key, for_type in (("label_field", "classification"), ("target_field", "generation")):
            if col_key in e:
                if task_type != for_type:
                    raise ctx.error(f"{key}.{col_key}", f"only for type {for_type!r} (this task is {task_type!r})")
                ecol = ctx.text(e[col_key], f"{key}.{col_key}")
        eval_sets.append(EvalSet(ename, domain, elabels))
        eval_srcs.append(_Source(ename, ename, epath, efields, elabels or labels, emap, ecol))
    if not any(s.domain == "in" for s in eval_sets):
        raise ctx.error("data.eval", "needs at least one eval set with domain: in")

    spec_obj = _Spec(name, task_type, choices_col, dev_fraction)
    loader = _make_loader(spec_obj, train_src, dev_src, eval_srcs)
    try:
        return Task(name=name, task_type=task_type, formats=formats, eval_sets=tuple(eval_sets), loader=loader,
                    labels=labels, max_new_tokens=max_new, description=description or f"user task from {path}",
                    normalize_whitespace=normalize)
    except ValueError as err:
        raise ConfigError(f"task file {str(path)!r}: {err}") from None


@dataclass(frozen=True)
class _Spec:
    name: str
    task_type: str
    choices_col: str | None
    dev_fraction: float


def _convert(spec: _Spec, src: _Source, row: Row) -> Example:
    fields = {pf: row.text(col) for pf, col in src.fields.items()}
    if spec.task_type == "generation":
        return Example(row.uid(), fields, one_line(row.text(src.target_col)))
    if spec.task_type == "classification":
        raw = row.raw(src.target_col)
        key = _norm(raw)
        if src.label_map is not None:
            if key not in src.label_map:
                if key == "-1":
                    raise row.error(src.target_col, "label -1: hidden labels cannot be scored")
                raise row.error(src.target_col, f"unknown label {raw!r}; label_map knows {sorted(src.label_map)}")
            return Example(row.uid(), fields, src.label_map[key])
        if key not in src.labels:
            hint = " (hidden labels cannot be scored)" if key == "-1" else " (add a label_map?)"
            raise row.error(src.target_col, f"unknown label {raw!r}; expected one of {list(src.labels)}{hint}")
        return Example(row.uid(), fields, key)
    raw_choices = row.nested(spec.choices_col)
    choices = [str(c) for c in raw_choices] if isinstance(raw_choices, list) else None
    if not choices or len(choices) < 2 or any(not c.strip() for c in choices):
        raise row.error(spec.choices_col, "expected a list of at least two non-empty choices")
    answer = row.raw(src.target_col)
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    if isinstance(answer, int) and not isinstance(answer, bool):
        if not 0 <= answer < len(choices):
            raise row.error(src.target_col, f"answer index {answer} outside 0..{len(choices) - 1}")
        target = choices[answer]
    else:
        target = str(answer)
        if target.strip().isdigit() and target not in choices and int(target) < len(choices):
            target = choices[int(target)]
        if target not in choices:
            raise row.error(src.target_col, f"answer {answer!r} is neither a choice nor a choice index")
    return Example(row.uid(), fields, target, tuple(choices))


def _make_loader(spec: _Spec, train: _Source, dev: _Source, evals: list[_Source]):
    def rows_of(src: _Source, n: int | None, seed: int) -> list[Example]:
        try:
            rows = read_local(src.path)
        except TaskDataError:
            raise
        except Exception as err:  # unreadable file
            raise TaskDataError(f"dataset {src.name!r}, split {src.split!r}: cannot read {src.path} ({err})") from None
        if not rows:
            raise TaskDataError(f"dataset {src.name!r}, split {src.split!r}: no rows in {src.path}")
        if src.part == "all":
            indices = list(range(len(rows)))
        else:
            indices = list(carve(len(rows), spec.dev_fraction, f"{spec.name}:train", src.part))
        chosen = subsample(indices, n, seed, src.role)
        out, _ = convert_rows([rows[i] for i in chosen], chosen, src.name, src.split,
                              functools.partial(_convert, spec, src), rows.place)
        if not out:
            raise TaskDataError(f"dataset {src.name!r}, split {src.role!r}: no rows left after carving dev "
                                f"out of {src.path}")
        return out

    def load(request: LoadRequest) -> TaskData:
        return TaskData(
            train=rows_of(train, request.n_train, request.seed),
            dev=rows_of(dev, request.n_dev, request.seed),
            eval={src.role: rows_of(src, request.n_eval, request.seed) for src in evals},
            notes={"sources": {"train": str(train.path),
                               "dev": str(dev.path) + (" (carved from train)" if dev.part == "dev" else ""),
                               **{src.role: str(src.path) for src in evals}}},
        )

    return load
