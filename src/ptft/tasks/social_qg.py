"""``social_qg``: question generation on SocialIQA (situation + the three answers -> question).

Data (shipped): SocialIQA's 1,954 validation items (Sap et al. 2019), the study's question
generation material: a short social situation, the question asked about it and three candidate
answers. Converted as the Hub task ``socialiqa_qg`` converts them: ``context`` the situation,
``answer`` the three answers joined by ``; ``; target: the question.

- train/dev/in-domain eval set ``social_qg``: split 80/10/10 by a stable hash of the situation
  (SocialIQA asks several questions about one situation).
- out-of-domain eval set ``sciq_options_qg``: SciQ's validation questions, support paragraph +
  the four options (sorted) -> question, as the Hub task's SciQ set (rows without a support
  paragraph are skipped and counted).

It stands in for the study's SocialIQA question-generation task, offline; the Hub task
``socialiqa_qg`` trains on SocialIQA's much larger train split instead.
"""

from __future__ import annotations

from ptft.tasks.formats import QUESTION_GENERATION
from ptft.tasks.hub_socialiqa_qg import sciq_row, socialiqa_row
from ptft.tasks.pools import pooled_source
from ptft.tasks.shipped import shipped_eval_set, shipped_pool

TASKS = (QUESTION_GENERATION.task(
    "social_qg",
    pooled_source("social_qg", shipped_pool("socialiqa", socialiqa_row, lambda ex: ex.fields["context"]),
                  [shipped_eval_set("sciq_options_qg", "sciq", sciq_row)]),
    "Question generation: SocialIQA situation + answers -> question; OOD SciQ",
),)
