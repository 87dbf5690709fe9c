"""``bb_vitaminc_nli``: offline NLI (entailment / neutral / contradiction) from BIG-bench.

Train/dev/in-domain test: ``vitaminc_fact_verification/task.json`` (54,668 Wikipedia evidence +
claim items). Each input is ``"<page title>: <evidence>\\nClaim: <claim>"``; the evidence (with its
page title) is the premise, the claim without the ``Claim:`` prefix the hypothesis. Label mapping:
True -> entailment, Neither -> neutral, False -> contradiction.

Split 80/10/10 by a stable hash of the *Wikipedia page title*: VitaminC holds contrastive pairs
(one claim against two revisions of a page, several claims against one revision), so all items of
a page share a split and no near-duplicate of a test item is trained on.

Out-of-domain eval sets (whole files, eval only):

- ``bb_presuppositions_nli`` — ``presuppositions_as_nli`` (735; same three labels).
- ``bb_epistemic_reasoning`` — ``epistemic_reasoning`` (2,000; ``Premise: … Hypothesis: …``),
  labels entailment / not_entailment (``non-entailment`` renamed as in RTE).
- ``bb_analytic_entailment`` — ``analytic_entailment`` (70; ``A. So B.`` / ``A. Therefore B.``),
  labels entailment / not_entailment (``no-entailment`` renamed).

``entailed_polarity`` is not used: its second text is a yes/no question, not a hypothesis.
"""

from __future__ import annotations

import re

from ptft.tasks.base import Example
from ptft.tasks.bbutil import bigbench_examples, bigbench_source, gold_choice, map_label, need, text_field
from ptft.tasks.pools import OutOfDomain, Pool, make_pool
from ptft.tasks.formats import BINARY_NLI_LABELS, NLI, NLI_LABELS
from ptft.tasks.rows import row_error
from ptft.tasks.splits import BIG

VITAMINC_LABELS = {"True": "entailment", "Neither": "neutral", "False": "contradiction"}
PRESUP_LABELS = {k: k for k in NLI_LABELS}
BINARY_MAP = {"entailment": "entailment", "non-entailment": "not_entailment",
              "no-entailment": "not_entailment"}

_CLAIM = "\nClaim:"
_PRESUP = re.compile(r"^Sentence 1:(.*)\nSentence 2:(.*?)\n\nThe answer is:\s*$", re.S)
_EPISTEMIC = re.compile(r"^Premise:(.*?)\s*Hypothesis:(.*)$", re.S)
_ANALYTIC = re.compile(r"^(.*?[.!?])\s+(?:So|Therefore)\b,?\s*(.*)$", re.S)

need("vitaminc_fact_verification/task.json", "presuppositions_as_nli/task.json",
     "epistemic_reasoning/task.json", "analytic_entailment/task.json")


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def vitaminc_pool(name: str) -> Pool:
    rows = bigbench_examples("vitaminc_fact_verification/task.json")
    out = []
    for i, row in enumerate(rows):
        text = text_field(row, "input", name, "all", i)
        if _CLAIM not in text:
            raise row_error(name, "all", i, "input", "no 'Claim:' line after the evidence")
        evidence, claim = text.rsplit(_CLAIM, 1)
        evidence, claim = evidence.strip(), claim.strip()
        if not evidence or not claim:
            raise row_error(name, "all", i, "input", "empty evidence or claim")
        gold, _ = gold_choice(row, name, "all", i)
        label = map_label(gold, VITAMINC_LABELS, name, "all", i)
        title = evidence.split(":", 1)[0]
        out.append((title, Example(f"{name}:{i}", {"premise": evidence, "hypothesis": claim}, label)))
    return make_pool(out, BIG, salt=name)


def _pairs(name: str, relpath: str, pattern: re.Pattern, mapping: dict[str, str],
           fix=lambda s: s) -> list[Example]:
    out = []
    for i, row in enumerate(bigbench_examples(relpath)):
        text = text_field(row, "input", name, "test", i)
        m = pattern.match(text)
        if not m or not m.group(1).strip() or not m.group(2).strip():
            raise row_error(name, "test", i, "input", f"cannot split into premise and hypothesis: {text[:80]!r}")
        gold, _ = gold_choice(row, name, "test", i)
        label = map_label(gold, mapping, name, "test", i)
        out.append(Example(f"{name}:{i}", {"premise": m.group(1).strip(), "hypothesis": fix(m.group(2).strip())},
                           label))
    return out


TASKS = (NLI.task(
    "bb_vitaminc_nli",
    bigbench_source("bb_vitaminc", vitaminc_pool, [
        OutOfDomain("bb_presuppositions_nli",
                    lambda name: _pairs(name, "presuppositions_as_nli/task.json", _PRESUP, PRESUP_LABELS)),
        OutOfDomain("bb_epistemic_reasoning",
                    lambda name: _pairs(name, "epistemic_reasoning/task.json", _EPISTEMIC, BINARY_MAP),
                    BINARY_NLI_LABELS),
        OutOfDomain("bb_analytic_entailment",
                    lambda name: _pairs(name, "analytic_entailment/task.json", _ANALYTIC, BINARY_MAP,
                                        fix=_capitalise),
                    BINARY_NLI_LABELS),
    ]),
    "NLI from BIG-bench VitaminC (evidence + claim -> entailment/neutral/contradiction)",
    typical_tokens_per_example=80,  # evidence + claim + a label word
),)
