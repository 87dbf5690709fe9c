"""Instruction-tuning mixtures in the *messages* format.

Every dataset returns a list of ``{"messages": [{"role": ..., "content": ...}, ...]}`` dicts (roles
``system``, ``user``, ``assistant``), the format trl's ``SFTTrainer`` takes for conversational data
(loss on the assistant turns only).

Registered datasets (:func:`available_instructions`):

``mixed_instructions`` (offline, shipped; the default)
    Real examples of four tasks, each phrased as an instruction the way Natural Instructions
    phrases its subtasks (the task's definition, a blank line, the input; the assistant turn is the
    example's real answer): ``word_definitions`` (WordNet: a word and its part of speech -> its
    definition), ``synonyms`` (WordNet: one lemma of a synset -> another), ``review_polarity`` (UCI
    Sentiment Labelled Sentences: an IMDb, Yelp or Amazon review sentence -> positive / negative)
    and ``yes_no_questions`` (BoolQ validation: a passage of at most 100 words and a question ->
    yes / no; longer passages would not fit a small model's context). A sample of size ``n`` is
    spread evenly over the subtasks, as for ``bb_natural_instructions``. None of it overlaps the
    offline multiple-choice suite (``mc_*``) it is evaluated on.

``bb_natural_instructions`` (needs the user's BIG-bench archive, see :mod:`ptft.sources`)
    BIG-bench ``natural_instructions/subtask*/task.json``: 61 Natural-Instructions v1 subtasks,
    193,250 examples. User turn = the subtask's ``task_prefix`` (its crowdsourcing definition,
    "Definition: … Prompt: …"), a blank line, then the example's ``input``; assistant turn = the
    first of the example's ``target`` references. A sample of size ``n`` is spread evenly over the
    subtasks (equal quotas, a subtask smaller than its quota gives all it has and the rest is
    shared among the others), drawn with ``random.Random(f"{seed}:{subtask}")`` and shuffled with
    ``seed``. Examples without a non-empty target are skipped and counted.

``tulu_v2``
    ``allenai/tulu-v2-sft-mixture`` (train split, columns ``dataset``, ``id``, ``messages``) via
    ``datasets.load_dataset`` — this needs the Hub. Offline: put the rows in
    ``<data_dir>/tulu_v2/train.jsonl`` (or ``.json`` / ``.parquet``) and pass ``data_dir``.

A path to a local ``.json``/``.jsonl``/``.parquet`` file (or a folder of them) is read directly; its
rows need a ``messages`` column in the format above.

Validation: a row without a ``messages`` list, a message that is not a dict, a role outside the
three, content that is not a string, or a conversation with no assistant turn raises
:class:`~ptft.errors.DataError` naming the source, the row and the field (``messages[2].role``).
Conversations whose assistant turns are all empty are skipped and counted (``result.notes``).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ptft import sources
from ptft.errors import DataError
from ptft.tasks import bbutil
from ptft.tasks.rows import read_local
from ptft.tasks.splits import subsample

log = logging.getLogger("ptft.tasks")

ROLES = ("system", "user", "assistant")
TULU_HUB_ID = "allenai/tulu-v2-sft-mixture"


class InstructionSet(list):
    """A list of ``{"messages": [...]}`` dicts with ``notes`` (skipped counts, per-source sizes)."""

    def __init__(self, rows: Iterable[dict] = (), notes: dict[str, Any] | None = None):
        super().__init__(rows)
        self.notes: dict[str, Any] = notes or {}


# ---------------------------------------------------------------------------------------- checks

def validate_messages(row: Any, source: str, index: int,
                      locate: Callable[[int], str] | None = None) -> list[dict[str, str]]:
    """The row's messages, checked; raises DataError naming source, row and field (``locate``:
    index -> where an editor shows the row, for local files)."""
    def error(field: str, problem: str) -> DataError:
        place = locate(index) if locate else f"row {index}"
        return DataError(f"instruction data {source!r}, {place}, field {field!r}: {problem}")

    if not isinstance(row, dict) or "messages" not in row:
        raise error("messages", "missing (each row needs a 'messages' list)")
    messages = row["messages"]
    if hasattr(messages, "tolist"):  # numpy array from parquet
        messages = messages.tolist()
    if not isinstance(messages, list) or not messages:
        raise error("messages", f"expected a non-empty list, got {type(messages).__name__}")
    out = []
    for j, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise error(f"messages[{j}]", "expected a dict with role and content")
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            raise error(f"messages[{j}].role", f"{role!r} is not one of {list(ROLES)}")
        if not isinstance(content, str):
            raise error(f"messages[{j}].content", f"expected text, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in out):
        raise error("messages", "no assistant turn (nothing to train on)")
    return out


def _clean(rows: Iterable[Any], source: str, locate: Callable[[int], str] | None = None) -> InstructionSet:
    kept, skipped = [], Counter()
    for i, row in enumerate(rows):
        messages = validate_messages(row, source, i, locate)
        if not any(m["content"].strip() for m in messages if m["role"] == "assistant"):
            skipped["empty assistant turns"] += 1
            continue
        kept.append({"messages": messages})
    if skipped:
        log.warning("instruction data %s: skipped %d row(s): %s", source, sum(skipped.values()), dict(skipped))
    return InstructionSet(kept, {"skipped": dict(skipped)} if skipped else {})


# ----------------------------------------------------------------------------------- BIG-bench NI

_NI_NAMES = [
    "quoref_question_generation", "quoref_answer_generation", "mctaco_question_generation_event_duration",
    "mctaco_answer_generation_event_duration", "mctaco_wrong_answer_generation_event_duration",
    "mctaco_question_generation_transient_stationary", "mctaco_answer_generation_transient_stationary",
    "mctaco_wrong_answer_generation_transient_stationary", "mctaco_question_generation_event_ordering",
    "mctaco_answer_generation_event_ordering", "mctaco_wrong_answer_generation_event_ordering",
    "mctaco_question_generation_absolute_timepoint", "mctaco_answer_generation_absolute_timepoint",
    "mctaco_wrong_answer_generation_absolute_timepoint", "mctaco_question_generation_frequency",
    "mctaco_answer_generation_frequency", "mctaco_wrong_answer_generation_frequency",
    "mctaco_temporal_reasoning_presence", "mctaco_temporal_reasoning_category", "mctaco_span_based_question",
    "mctaco_grammatical_logical", "cosmosqa_passage_inappropriate_binary", "cosmosqa_question_generation",
    "cosmosqa_answer_generation", "cosmosqa_incorrect_answer_generation", "drop_question_generation",
    "drop_answer_type_generation", "drop_answer_generation", "winogrande_full_object", "winogrande_full_person",
    "winogrande_question_generation_object", "winogrande_question_generation_person",
    "winogrande_answer_generation", "winogrande_question_modification_object",
    "winogrande_question_modification_person", "qasc_topic_word_to_generate_related_fact",
    "qasc_generate_related_fact", "qasc_combined_fact", "qasc_find_overlapping_words",
    "qasc_question_generation", "qasc_answer_generation", "qasc_incorrect_option_generation",
    "essential_terms_answering_incomplete_questions", "essential_terms_identifying_essential_words",
    "miscellaneous_sentence_paraphrasing", "miscellaenous_question_typing", "misc_answering_science_questions",
    "multirc_question_generation", "multirc_questions_needed_to_answer", "multirc_answerability",
    "multirc_correct_answer_single_sentence", "multirc_identify_bad_question", "multirc_correct_bad_question",
    "multirc_write_correct_answer", "multirc_write_incorrect_answer", "multirc_classify_correct_answer",
    "multirc_classify_incorrect_answer", "multirc_question_answering", "ropes_story_generation",
    "ropes_question_generation", "ropes_answer_generation",
]
_NI_FILES = [f"natural_instructions/subtask{i:03d}_{name}/task.json" for i, name in enumerate(_NI_NAMES, 1)]
# Not declared with need(): 160 MB, extracted only when the mixture is first asked for.


def ni_subtask(relpath: str) -> tuple[str, list[dict], Counter]:
    """(subtask name, messages rows, skipped) of one Natural-Instructions subtask file (not kept
    in memory after the call: the 61 files hold 160 MB of JSON)."""
    bbutil._ensure_extracted(relpath)
    data = sources.bigbench_task(relpath)
    name = data.get("name") or relpath.split("/")[1]
    source = f"bb_natural_instructions/{name}"
    instruction = data.get("task_prefix") or data.get("description")
    if not isinstance(instruction, str) or not instruction.strip():
        raise DataError(f"instruction data {source!r}, field 'task_prefix': missing")
    rows, skipped = [], Counter()
    for i, ex in enumerate(data.get("examples") or []):
        text = ex.get("input")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"instruction data {source!r}, row {i}, field 'input': missing or empty")
        target = ex.get("target")
        targets = target if isinstance(target, list) else [target]
        targets = [t.strip() for t in targets if isinstance(t, str) and t.strip()]
        if not targets:
            skipped["no non-empty target"] += 1
            continue
        rows.append({"messages": [
            {"role": "user", "content": f"{instruction.strip()}\n\n{text.strip()}"},
            {"role": "assistant", "content": targets[0]},
        ]})
    if not rows:
        raise DataError(f"instruction data {source!r}: no usable examples")
    return name, rows, skipped


def quotas(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Spread ``n`` evenly over pools of the given sizes (water-filling; deterministic)."""
    quota = {k: 0 for k in sizes}
    open_ = sorted(k for k in sizes if sizes[k] > 0)
    left = min(n, sum(sizes.values()))
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        for j, k in enumerate(open_):
            give = min(share + (1 if j < extra else 0), sizes[k] - quota[k])
            quota[k] += give
            left -= give
        open_ = [k for k in open_ if quota[k] < sizes[k]]
    return quota


def load_natural_instructions(seed: int, n: int | None) -> InstructionSet:
    bbutil.need(*_NI_FILES)  # one pass over the sdist for all 61 files on a cold cache
    pools, skipped = {}, Counter()
    for relpath in _NI_FILES:
        name, rows, sk = ni_subtask(relpath)
        pools[name] = rows
        skipped.update(sk)
    if skipped:
        log.warning("instruction data bb_natural_instructions: skipped %d example(s): %s",
                    sum(skipped.values()), dict(skipped))
    return _sample_mixture(pools, seed, n, {"skipped": dict(skipped)} if skipped else {})


# ----------------------------------------------------------------------------- shipped mixture

BOOLQ_MAX_WORDS = 100
_MIXED: dict[str, str] = {
    "word_definitions": "Write a short dictionary definition of the given word.",
    "synonyms": "Give a word or phrase that means the same as the given one.",
    "review_polarity": "Is the following review sentence positive or negative? Answer with one word.",
    "yes_no_questions": "Read the passage, then answer the question with yes or no.",
}


def _conversation(subtask: str, text: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": f"{_MIXED[subtask]}\n\n{text}"},
                         {"role": "assistant", "content": answer}]}


def mixed_subtasks() -> dict[str, list[dict]]:
    """Every conversation of each subtask of ``mixed_instructions``, in the shipped files' order."""
    wordnet = sources.shipped_rows("wordnet")
    return {
        "word_definitions": [_conversation("word_definitions", f"{r['words'][0]} ({r['pos']})", r["definition"])
                             for r in wordnet if r["definition"]],
        "synonyms": [_conversation("synonyms", r["words"][0], r["words"][1])
                     for r in wordnet if len(r["words"]) > 1],
        "review_polarity": [_conversation("review_polarity", r["text"], "positive" if r["label"] == 1 else "negative")
                            for r in sources.shipped_rows("uci_sentences")],
        "yes_no_questions": [
            _conversation("yes_no_questions", f"Passage: {r['passage']}\nQuestion: {r['question'].rstrip('?')}?",
                          "yes" if r["answer"] else "no")
            for r in sources.shipped_rows("boolq") if len(r["passage"].split()) <= BOOLQ_MAX_WORDS],
    }


def load_mixed_instructions(seed: int, n: int | None) -> InstructionSet:
    pools = mixed_subtasks()
    return _sample_mixture(pools, seed, n, {})


def _sample_mixture(pools: dict[str, list[dict]], seed: int, n: int | None, notes: dict) -> InstructionSet:
    """``n`` conversations spread evenly over the subtasks (:func:`quotas`), each subtask's drawn
    with its own seeded stream, then shuffled together."""
    want = quotas({k: len(v) for k, v in pools.items()}, n if n is not None else sum(map(len, pools.values())))
    chosen = []
    for name in sorted(pools):
        chosen.extend(subsample(pools[name], want[name], seed, name))
    random.Random(f"{seed}:mixture").shuffle(chosen)
    return InstructionSet(chosen, {"per_subtask": dict(want), "subtasks": len(pools), **notes})


# ------------------------------------------------------------------------------ local files, Hub

FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


def load_local(path: Path, seed: int, n: int | None) -> InstructionSet:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in FILE_SUFFIXES)
        if not files:
            raise DataError(f"{path}: no {'/'.join(FILE_SUFFIXES)} files in this folder")
    elif path.exists():
        files = [path]
    else:
        raise DataError(f"instruction data {str(path)!r}: no such file or folder")
    parts = [read_local(f) for f in files]
    rows = [row for part in parts for row in part]
    if not rows:
        raise DataError(f"instruction data {str(path)!r}: no rows")

    def locate(index: int) -> str:  # an index into the files' rows, one file after another
        for part in parts:
            if index < len(part):
                return part.place(index)
            index -= len(part)
        return f"row {index}"

    data = _clean(rows, str(path), locate)
    return InstructionSet(subsample(data, n, seed, path.name), data.notes)


def load_tulu(seed: int, n: int | None, data_dir: str | None) -> InstructionSet:
    if data_dir is not None:
        folder = Path(data_dir) / "tulu_v2"
        for suffix in FILE_SUFFIXES:
            f = folder / f"train{suffix}"
            if f.exists():
                return load_local(f, seed, n)
        raise DataError(f"tulu_v2: no {folder}/train.jsonl (or .json/.parquet); data_dir={data_dir!r}")
    import datasets  # the Hub: only here, never at import time

    ds = datasets.load_dataset(TULU_HUB_ID, split="train")
    total = len(ds)
    if n is not None and n < total:
        ds = ds.select(subsample(range(total), n, seed, "tulu_v2"))
    data = _clean(ds, TULU_HUB_ID)
    data.notes["hub_rows"] = total
    return data


MixtureLoader = Callable[[int, int | None, str | None], InstructionSet]  # (seed, n, data_dir)


@dataclass(frozen=True)
class Mixture:
    """A registered instruction mixture: how to load it, and what `ptft plan` estimates its
    training cost from (None: unknown)."""

    name: str
    load: MixtureLoader
    size: int | None = None  # conversations in the whole mixture (when instruction_tuning.n_train is null)
    typical_tokens_per_conversation: int | None = None  # chat template included (GPT-NeoX / OLMo BPE)
    requires: Callable[[], None] | None = None  # raises when its data cannot be had (see DataSource)


_REGISTRY: dict[str, Mixture] = {m.name: m for m in (
    Mixture("mixed_instructions", lambda seed, n, data_dir: load_mixed_instructions(seed, n),
            size=22_108, typical_tokens_per_conversation=70),
    Mixture("bb_natural_instructions", lambda seed, n, data_dir: load_natural_instructions(seed, n),
            size=193_250, typical_tokens_per_conversation=380, requires=sources.require_bigbench),
    Mixture("tulu_v2", load_tulu, size=326_154, typical_tokens_per_conversation=1000),
)}


def registered_mixture(name: str) -> Mixture | None:
    """The registered mixture of this name; None for a local file or folder."""
    return _REGISTRY.get(name)


def available_instructions() -> list[str]:
    return sorted(_REGISTRY)


def load_instructions(name_or_path: str, *, seed: int, n: int | None = None,
                      data_dir: str | None = None) -> InstructionSet:
    """An instruction mixture in the messages format: a registered name or a local file/folder."""
    if name_or_path in _REGISTRY:
        return _REGISTRY[name_or_path].load(seed, n, data_dir)
    path = Path(name_or_path)
    if path.suffix in FILE_SUFFIXES or path.is_dir():
        return load_local(path, seed, n)
    raise DataError(f"unknown instruction dataset {name_or_path!r}; registered: "
                    f"{', '.join(available_instructions())} (or give a .json/.jsonl/.parquet path)")
