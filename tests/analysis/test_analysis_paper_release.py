"""ptft's verdicts on the paper's own released results, checked against what the paper reports.

The release (tests/data/amuro_char) is converted by paper_release.py. The paper (Sun & Dredze
2024) reports, for OLMo-1B at its 4-shot headline setting: (1) pre-training improves the model in
a latent way that shows after fine-tuning; (2) the sets the BASE model has not learned gain much
more from fine-tuning than those it has; (3) classification fine-tuning destroys generation,
while generation fine-tuning barely moves classification; (4) format sensitivity after fine-tuning
falls with more pre-training. ptft's statistic for each is recomputed here from the raw released
CSV files along the paper's notebook (analysis/gen_paper_figs.ipynb of the release: its model ids,
learning rates and dataset pairs), not through the converter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paper_release import IT_TABLE, SFT_TABLE, official_rows, release_table
from ptft.analysis.findings import findings
from ptft.analysis.forgetting import mrc, mrc_totals
from ptft.analysis.groups import groups
from ptft.analysis.slices import Slice
from ptft.analysis.table import load_table

approx = pytest.approx
PAPER = Slice(shots=4)
CKPTS = ["1000", "18000", "342000", "424000", "505000", "592000", "738000", "main"]
LRS = {"mnli": "2e-6", "paws": "2e-6", "xsum": "2e-7", "socialiqa": "2e-6"}
# Each training task's own in-domain sets, as the release names them.
OWN = {"mnli": ["mnli_matched", "mnli_mismatched"], "paws": ["paws"], "xsum": ["xsum"], "socialiqa": ["socialiqa"]}
MC = ["arc_challenge", "arc_easy", "boolq", "hellaswag", "openbookqa", "sciq"]
SFT = pd.read_csv(SFT_TABLE, index_col=0).set_index(["model_id", "eval dataset"])["Performance"]
IT = pd.read_csv(IT_TABLE, index_col=0).set_index(["model_id", "eval dataset"])["Performance"]


def base(ckpt: str, eval_set: str) -> float:
    return SFT[("olmo1b_original_hf_4shots" if ckpt == "main" else f"olmo1b_checkpoint-{ckpt}_original_hf_4shots",
                eval_set)]


def ft(ckpt: str, task: str, eval_set: str) -> float:
    name = "main" if ckpt == "main" else f"ckpt{ckpt}"
    return SFT[(f"olmo1b_hf_{name}_{task}_3epoch_{LRS[task]}_4shots", eval_set)]


def it_gain(ckpt: str, eval_set: str) -> float:
    name = "main" if ckpt == "main" else f"ckpt{ckpt}"
    return (IT[(f"olmo1b_hf_{name}_tulu_5epoch_2e-6", eval_set)]
            - IT[("olmo1b_original_hf" if ckpt == "main" else f"checkpoint-{ckpt}", eval_set)])


def test_release_converts_to_a_valid_results_table() -> None:
    table = load_table(release_table())
    # Release row 0: the SocialIQA question-generation model of checkpoint 424000 on MNLI matched.
    first = table.iloc[0]
    assert first[["checkpoint", "step", "train_task", "eval_set", "eval_task", "task_type", "domain", "format",
                  "shots", "metric", "method", "lr"]].tolist() == [
        "step424000", 424000, "socialiqa_qg", "mnli_matched", "mnli", "classification", "in", "default", 4,
        "accuracy", "tokenprob", 2e-6]
    assert first["value"] == approx(0.33560876209882834)
    assert first["ci_high"] - first["ci_low"] == approx(2 * 1.959964 * 0.0047747151036286965)
    main = table[(table["checkpoint"] == "main")]
    assert main["step"].isna().all()
    # The instruction-tuned model of checkpoint 424000 on ARC-Challenge: 115 of 299 validation items.
    arc = table[(table["train_task"] == "instruct") & (table["checkpoint"] == "step424000")
                & (table["eval_set"] == "arc_challenge")].iloc[0]
    assert (arc["value"], arc["n"], arc["shots"], pd.isna(arc["ci_low"])) == (approx(115 / 299), 299, 4, True)
    # The paper's grid at 4 shots is complete: 8 checkpoints for BASE and each task on its own sets
    # in all three formats, and for BASE and instruction tuning on the six multiple-choice sets.
    own = table[(table["shots"] == 4) & (table["domain"] == "in") & (table["task_type"] != "multiple_choice")]
    counts = own.groupby(["eval_set", "train_task", "format"])["checkpoint"].nunique()
    for task, sets in OWN.items():
        ptft_task = "socialiqa_qg" if task == "socialiqa" else task
        for eval_set in sets:
            name = "socialiqa_qg" if eval_set == "socialiqa" else eval_set
            for fmt in ("default", "io", "instruct"):
                assert counts[(name, "", fmt)] == 8 and counts[(name, ptft_task, fmt)] == 8, (name, fmt)
    mc = table[table["task_type"] == "multiple_choice"].groupby(["eval_set", "train_task"])["checkpoint"].nunique()
    assert mc.to_dict() == {(s, t): 8 for s in MC for t in ("", "instruct")}
    # Hidden-label GLUE test splits and LLMBar stay out.
    assert not table["eval_set"].str.contains("qqp|stsb|llmbar").any()


def test_a_multiple_choice_size_that_does_not_fit_the_accuracies_fails(tmp_path) -> None:
    bad = tmp_path / "official_eval_table.csv"
    bad.write_text(",model_id,eval dataset,Performance\n0,checkpoint-1000,arc_challenge,0.5\n")
    with pytest.raises(ValueError, match="not a count out of 299"):
        official_rows(bad)


def test_findings_on_the_release_agree_with_the_paper() -> None:
    table = release_table()
    f = findings(table, PAPER).set_index("finding")
    assert f["verdict"].to_dict() == {1: "supported", 2: "supported", 3: "supported", 4: "supported"}

    # Groups: a set is learned in pre-training when its BASE rise (main - step1000) is clearly
    # above 0. MNLI falls (.354 -> .327) and PAWS and XSum stay flat: learned in fine-tuning. Every
    # multiple-choice set rises, and so does SocialIQA question generation (Rouge-L .018 -> .069).
    # The paper puts SocialIQA and BoolQ among the sets that do not improve; ptft's rule does not.
    g = groups(table, PAPER)
    member = g[g["eval_set"] != ""].groupby("group")["eval_set"].apply(sorted).to_dict()
    assert member == {"fine-tuning": ["mnli_matched", "mnli_mismatched", "paws", "xsum"],
                      "pre-training": sorted(MC + ["socialiqa_qg"])}
    assert base("main", "socialiqa") - base("1000", "socialiqa") == approx(0.051014, abs=1e-6)

    # 1: FT at main minus FT at step1000 on the sets learned in fine-tuning, +.319.
    rises = [ft("main", task, s) - ft("1000", task, s)
             for task, s in (("mnli", "mnli_matched"), ("mnli", "mnli_mismatched"), ("paws", "paws"),
                             ("xsum", "xsum"))]
    assert f.loc[1, "value"] == approx(np.mean(rises)) and f.loc[1, "value"] == approx(0.3194, abs=1e-4)

    # 2: mean gain of the fine-tuning group minus that of the pre-training group, +.171.
    def mean_gain(task: str, eval_set: str) -> float:
        return np.mean([ft(c, task, eval_set) - base(c, eval_set) for c in CKPTS])

    learned_in_ft = [mean_gain("mnli", "mnli_matched"), mean_gain("mnli", "mnli_mismatched"),
                     mean_gain("paws", "paws"), mean_gain("xsum", "xsum")]
    learned_in_pt = [np.mean([it_gain(c, s) for c in CKPTS]) for s in MC] + [mean_gain("socialiqa", "socialiqa")]
    assert f.loc[2, "value"] == approx(np.mean(learned_in_ft) - np.mean(learned_in_pt))
    assert f.loc[2, "value"] == approx(0.1714, abs=1e-4)

    # 3: the notebook's cross-task pairs are ptft's MRC pairs; classification -> generation -61.5 %,
    # generation -> classification +0.3 % (its CI holds 0).
    def ratios(pairs: list[tuple[str, str]]) -> list[float]:
        return [(ft(c, task, s) - base(c, s)) / base(c, s) for s, task in pairs for c in CKPTS]

    cg = ratios([("xsum", "mnli"), ("socialiqa", "mnli"), ("xsum", "paws"), ("socialiqa", "paws")])
    gc = ratios([("paws", "xsum"), ("mnli_matched", "xsum"), ("mnli_matched", "socialiqa"), ("paws", "socialiqa")])
    totals = mrc_totals(mrc(table, PAPER)).set_index("direction")
    assert f.loc[3, "value"] == approx(100 * np.mean(cg)) and f.loc[3, "value"] == approx(-61.46, abs=0.01)
    assert f.loc[3, "ci_high"] < 0
    gen_to_cls = totals.loc["generation->classification"]
    assert gen_to_cls["mrc_percent"] == approx(100 * np.mean(gc))
    assert gen_to_cls["mrc_percent"] == approx(0.31, abs=0.01)
    assert gen_to_cls["ci_low"] < 0 < gen_to_cls["ci_high"]

    # 4: FT spread (max - min over the three formats) on the own sets, late half (505000 ... main)
    # minus early half (1000 ... 424000): -.012. Small against spreads near .2, and not uniform:
    # SocialIQA's spread falls from .34-.51 to .13-.19 while MNLI's grows from near 0 at step1000.
    def spread(ckpt: str, task: str, eval_set: str) -> float:
        values = [ft(ckpt, task, eval_set + suffix) for suffix in ("", "_inputoutput", "_instruct")]
        return max(values) - min(values)

    own = [(task, s) for task, sets in OWN.items() for s in sets]
    early, late = ([np.mean([spread(c, t, s) for t, s in own]) for c in half] for half in (CKPTS[:4], CKPTS[4:]))
    assert f.loc[4, "value"] == approx(np.mean(late) - np.mean(early))
    assert f.loc[4, "value"] == approx(-0.0125, abs=1e-4) and f.loc[4, "ci_high"] < 0


def test_default_slice_uses_the_shot_count_that_covers_the_series() -> None:
    """The release has 7-shot rows at `main` only; the headline slice must not pick them (every
    finding would then be untestable with one checkpoint) but the 4 shots scored at all eight."""
    table = release_table()
    assert sorted(table.loc[table["shots"] == 7, "checkpoint"].unique()) == ["main"]
    assert findings(table, Slice())["verdict"].tolist() == findings(table, PAPER)["verdict"].tolist()
