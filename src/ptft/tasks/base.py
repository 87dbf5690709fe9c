"""What a task is: examples, prompt formats, eval sets.

A *task* is something a model is fine-tuned on (NLI, question generation, ...). It owns three
prompt formats, a task type and, for classification, a label set. Its data comes as named splits:
``train`` (fine-tuning data and few-shot demonstrations), ``dev`` (learning-rate selection) and one
split per eval set. Eval sets are in-domain (the task's own held-out data) or out-of-domain (another
dataset rendered with this task's formats, possibly with its own label set).

The whitespace rule of the study lives here and nowhere else: a prompt never ends with a space,
a completion always starts with one, so training, few-shot demos and scoring agree on the token
boundary. Input text is otherwise used as the data gives it; a task that wants its fields stripped
and the whitespace in its choices and targets collapsed says so (``normalize_whitespace``).
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

from ptft.errors import DataError
from ptft.task_types import get_task_type

Domain = Literal["in", "out"]
FORMAT_NAMES = ("default", "io", "instruct")
DEMO_SEPARATOR = "\n\n"


class TaskDataError(DataError):
    """Bad task data: names the dataset, split, row and field so the user can fix the file."""


@dataclass(frozen=True)
class Example:
    """One item. ``target`` is the gold label word (classification), the reference text
    (generation) or the correct choice text (multiple choice). It is never part of ``fields``,
    so no prompt can leak it."""

    uid: str
    fields: Mapping[str, str]
    target: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromptFormat:
    """A prompt template over an example's fields, e.g. ``"### Input: {document}\\n ### Summary:"``.

    ``cue`` is the text that starts the next demonstration in this format (e.g. ``"### Input"``);
    generation stops there as well as at a newline."""

    name: str
    template: str
    cue: str = ""

    def fields(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.template) if name]

    def render(self, example: Example) -> str:
        try:
            text = self.template.format(**example.fields)
        except KeyError as err:
            raise TaskDataError(
                f"example {example.uid!r}: format {self.name!r} needs field {err.args[0]!r}; "
                f"the example has {sorted(example.fields)}"
            ) from None
        return text.rstrip(" ")

    def stop_sequences(self) -> tuple[str, ...]:
        return ("\n",) + ((self.cue,) if self.cue else ())


def one_line(text: str) -> str:
    """Whitespace collapsed to single spaces (targets must be producible before a newline stop)."""
    return " ".join(text.split())


def normalize_whitespace(ex: Example) -> Example:
    """A task's ``normalize_whitespace`` option: every field stripped, the target and every choice
    on one line with single spaces."""
    return Example(ex.uid, {k: v.strip() for k, v in ex.fields.items()}, one_line(ex.target),
                   tuple(one_line(c) for c in ex.choices))


def completion_text(target: str) -> str:
    """The text a model is trained to produce and scored on, with the leading space."""
    return " " + target.strip()


def build_prompt(fmt: PromptFormat, example: Example, demos: Sequence[Example] = ()) -> str:
    """Few-shot prompt: each demo is prompt + completion, then the query prompt (no trailing space)."""
    parts = [fmt.render(d) + completion_text(d.target) for d in demos]
    parts.append(fmt.render(example))
    return DEMO_SEPARATOR.join(parts)


def demo_prefix(fmt: PromptFormat, demos: Sequence[Example]) -> str:
    """The shared start of every few-shot prompt of an eval set (what a KV cache can reuse)."""
    if not demos:
        return ""
    return DEMO_SEPARATOR.join(fmt.render(d) + completion_text(d.target) for d in demos) + DEMO_SEPARATOR


@dataclass(frozen=True)
class EvalSet:
    """An evaluation dataset of a task. ``labels`` overrides the task's label set (e.g. RTE's
    entailment / not_entailment under an NLI task)."""

    name: str
    domain: Domain
    labels: tuple[str, ...] | None = None


@dataclass
class TaskData:
    """A task's loaded splits. ``eval`` maps eval-set name to its examples.

    ``notes`` carries what a loader wants reported but is not data, e.g.
    ``notes["skipped"] = {"bb_xsum": {"empty summary": 2}}`` (rows dropped on purpose, with counts)
    or ``notes["pool_sizes"]``; it is not part of the fingerprints."""

    train: list[Example]
    dev: list[Example]
    eval: dict[str, list[Example]]
    notes: dict[str, Any] = field(default_factory=dict)

    def split_fingerprints(self) -> dict[str, Any]:
        """Content hash of each split on its own (``train``, ``dev``, ``eval``: set -> hash), so a
        cell's identity covers exactly the splits it reads."""
        def of(rows: list[Example]) -> str:
            h = hashlib.sha256()
            _hash_examples(h, rows)
            return h.hexdigest()[:16]

        return {"train": of(self.train), "dev": of(self.dev),
                "eval": {name: of(rows) for name, rows in sorted(self.eval.items())}}


def _hash_examples(h: Any, rows: Sequence[Example]) -> None:
    for ex in rows:
        h.update(json.dumps([ex.uid, dict(ex.fields), ex.target, list(ex.choices)], sort_keys=True).encode())


@dataclass(frozen=True)
class LoadRequest:
    """What a loader is asked for. Sizes cap each split (sub-sampled with ``seed``); None keeps all."""

    data_dir: str | None
    seed: int
    n_train: int | None = None
    n_dev: int | None = None
    n_eval: int | None = None


Loader = Callable[[LoadRequest], TaskData]


@dataclass(frozen=True)
class DataSource:
    """A task's data, declared once: its eval sets and the loader that fills exactly those."""

    eval_sets: tuple[EvalSet, ...]
    load: Loader = field(compare=False, repr=False)
    normalize_whitespace: bool = False  # the Task option, for a source whose text needs it
    # raises a one-line PtftError when the data cannot be had (an archive the user must provide);
    # the config check calls it, so a study is refused before anything runs
    requires: Callable[[], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Task:
    name: str
    task_type: str  # a name of ptft.task_types.TASK_TYPES
    formats: Mapping[str, PromptFormat]
    eval_sets: tuple[EvalSet, ...]
    loader: Loader = field(compare=False, repr=False)
    labels: tuple[str, ...] = ()
    max_new_tokens: int = 60
    description: str = ""
    # strip fields, collapse whitespace in targets and choices (off: input text as given, as
    # lm-evaluation-harness uses it)
    normalize_whitespace: bool = False
    # prompt + completion tokens of a typical training example in the default format (GPT-NeoX /
    # OLMo BPE), for `ptft plan`'s cost estimate; None: unknown (plan then assumes max_length)
    typical_tokens_per_example: int | None = field(default=None, compare=False)
    requires: Callable[[], None] | None = field(default=None, compare=False, repr=False)  # see DataSource

    def __post_init__(self) -> None:
        missing = [f for f in FORMAT_NAMES if f not in self.formats]
        if missing:
            raise ValueError(f"task {self.name!r}: missing prompt formats {missing}")
        try:
            kind = get_task_type(self.task_type)
        except KeyError as err:
            raise ValueError(f"task {self.name!r}: {err.args[0]}") from None
        if kind.needs_labels and not self.labels:
            raise ValueError(f"task {self.name!r}: a {self.task_type} task needs labels")
        if not any(e.domain == "in" for e in self.eval_sets):
            raise ValueError(f"task {self.name!r}: needs at least one in-domain eval set")

    @property
    def metric(self) -> str:
        return get_task_type(self.task_type).metric

    @property
    def in_domain(self) -> tuple[EvalSet, ...]:
        return tuple(e for e in self.eval_sets if e.domain == "in")

    def eval_set(self, name: str) -> EvalSet:
        for e in self.eval_sets:
            if e.name == name:
                return e
        raise KeyError(f"task {self.name!r} has no eval set {name!r}; it has {[e.name for e in self.eval_sets]}")

    def labels_for(self, eval_set: str) -> tuple[str, ...]:
        return self.eval_set(eval_set).labels or self.labels

    def load(self, request: LoadRequest) -> TaskData:
        data = self.loader(request)
        if self.normalize_whitespace:
            data = TaskData([normalize_whitespace(ex) for ex in data.train],
                            [normalize_whitespace(ex) for ex in data.dev],
                            {name: [normalize_whitespace(ex) for ex in rows] for name, rows in data.eval.items()},
                            data.notes)
        validate_task_data(self, data)
        return data


def validate_task_data(task: Task, data: TaskData) -> None:
    """Refuse data the study must not score: empty splits, missing fields, examples their task type
    refuses (a label outside the label set, an answer outside its choices), demos that are also
    scored items."""
    needed = set().union(*(set(f.fields()) for f in task.formats.values()))
    splits: list[tuple[str, list[Example], tuple[str, ...]]] = [
        ("train", data.train, task.labels),
        ("dev", data.dev, task.labels),
    ]
    for es in task.eval_sets:
        if es.name not in data.eval:
            raise TaskDataError(f"task {task.name!r}: eval set {es.name!r} was not loaded")
        splits.append((es.name, data.eval[es.name], task.labels_for(es.name)))
    check = get_task_type(task.task_type).check_example
    for split, rows, labels in splits:
        if not rows:
            raise TaskDataError(f"task {task.name!r}, split {split!r}: no examples")
        for i, ex in enumerate(rows):
            missing = needed - set(ex.fields)
            if missing:
                raise TaskDataError(
                    f"task {task.name!r}, split {split!r}, row {i} ({ex.uid}): missing field(s) {sorted(missing)}"
                )
            problem = check(ex, labels)
            if problem:
                raise TaskDataError(f"task {task.name!r}, split {split!r}, row {i} ({ex.uid}): {problem}")
    train_ids = {ex.uid for ex in data.train}
    for name, rows in data.eval.items():
        overlap = train_ids.intersection(ex.uid for ex in rows)
        if overlap:
            raise TaskDataError(
                f"task {task.name!r}: {len(overlap)} item(s) of eval set {name!r} are also in train "
                f"(e.g. {sorted(overlap)[0]!r}); demos and training data must not be scored"
            )
