"""Cell identities: a content hash over exactly what determines a cell's result, so a changed
setting reruns only the cells it touches (planning only: nothing is trained here)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ptft.config import load_config
from ptft.engine.study import plan_cells


def ids(cells, kind=None, task=None):
    return {c.cell_id for c in cells if (kind is None or c.kind == kind)
            and (task is None or c.train_task == task or (c.kind == "base" and c.units[0].eval_task == task))}


def test_grid_shape_and_stable_ids(small_config_factory, tmp_path: Path) -> None:
    cells = plan_cells(small_config_factory(), tmp_path)
    assert [c.kind for c in cells].count("base") == 4  # 2 checkpoints x 2 eval tasks
    assert [c.kind for c in cells].count("finetune") == 4  # 2 checkpoints x 2 tasks x 1 lr x 1 seed
    assert len({c.cell_id for c in cells}) == len(cells) == 8
    again = plan_cells(small_config_factory(), tmp_path / "elsewhere")  # local checkpoints: run dir is no input
    assert [c.cell_id for c in again] == [c.cell_id for c in cells]
    assert all(c.training_hash for c in cells if c.kind == "finetune")


def test_one_task_eval_size_touches_only_that_tasks_cells(small_config_factory, tmp_path: Path) -> None:
    before = plan_cells(small_config_factory(), tmp_path)
    tasks = [{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16},
             {"name": "social_qg", "n_train": 16, "n_dev": 4, "n_eval": 6}]
    after = plan_cells(small_config_factory(tasks=tasks), tmp_path)
    changed = {c.cell_id for c in before} - {c.cell_id for c in after}
    assert changed == ids(before, task="social_qg") and len(changed) == 4
    # the fine-tuned weights of the changed FT cells are the same (only their evaluation changed)
    assert {c.training_hash for c in before if c.kind == "finetune"} == \
           {c.training_hash for c in after if c.kind == "finetune"}


def test_cross_task_evaluation_makes_other_tasks_cells_depend_on_the_eval_set(small_config_factory,
                                                                               tmp_path: Path) -> None:
    tasks = [{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16},
             {"name": "social_qg", "n_train": 16, "n_dev": 4, "n_eval": 6}]
    before = plan_cells(small_config_factory(**{"evaluation.cross_task": True}), tmp_path)
    after = plan_cells(small_config_factory(tasks=tasks, **{"evaluation.cross_task": True}), tmp_path)
    changed = {c.cell_id for c in before} - {c.cell_id for c in after}
    # every FT cell scores socialiqa's in-domain set now, but vitaminc's BASE cells do not
    assert changed == ids(before, task="social_qg") | ids(before, kind="finetune")
    assert not ids(before, kind="base", task="sentiment") & changed


def test_training_data_changes_training_hash(small_config_factory, tmp_path: Path) -> None:
    before = plan_cells(small_config_factory(), tmp_path)
    tasks = [{"name": "sentiment", "n_train": 24, "n_dev": 8, "n_eval": 16},
             {"name": "social_qg", "n_train": 16, "n_dev": 4, "n_eval": 4}]
    after = plan_cells(small_config_factory(tasks=tasks), tmp_path)
    changed = {c.cell_id for c in before} - {c.cell_id for c in after}
    # n_train changes the fine-tuning data and the demonstrations drawn for vitaminc's BASE cells
    assert changed == ids(before, task="sentiment")
    old = {c.training_hash for c in before if c.train_task == "sentiment"}
    assert not old & {c.training_hash for c in after if c.train_task == "sentiment"}


def test_adding_a_learning_rate_or_seed_keeps_every_existing_cell(small_config_factory, tmp_path: Path) -> None:
    before = plan_cells(small_config_factory(), tmp_path)
    more_lr = plan_cells(small_config_factory(**{"finetune.learning_rates": [0.001, 0.01]}), tmp_path)
    assert {c.cell_id for c in before} < {c.cell_id for c in more_lr}
    new = [c for c in more_lr if c.cell_id not in ids(before)]
    assert len(new) == 4 and {c.lr for c in new} == {0.01}
    more_seeds = plan_cells(small_config_factory(**{"finetune.seeds": [0, 1]}), tmp_path)
    assert {c.cell_id for c in before} < {c.cell_id for c in more_seeds}
    assert len(more_seeds) == len({c.cell_id for c in more_seeds}) == 12


def test_execution_settings_change_no_cell(small_config_factory, tmp_path: Path) -> None:
    before = [c.cell_id for c in plan_cells(small_config_factory(), tmp_path)]
    for overrides in ({"finetune.keep_weights": True}, {"executor.workers": 2}, {"executor.kind": "ray"},
                      {"executor.num_cpus": 2}, {"device": "cpu"}, {"name": "renamed"},
                      {"output_dir": "elsewhere"}):
        assert [c.cell_id for c in plan_cells(small_config_factory(**overrides), tmp_path)] == before, overrides


def test_fine_tuning_and_evaluation_settings(small_config_factory, tmp_path: Path) -> None:
    before = plan_cells(small_config_factory(), tmp_path)
    epochs = plan_cells(small_config_factory(**{"finetune.epochs": 2}), tmp_path)
    changed = ids(before) - ids(epochs)
    assert changed == ids(before, kind="finetune")  # BASE cells do not fine-tune
    boot = plan_cells(small_config_factory(**{"evaluation.n_bootstrap": 50}), tmp_path)
    assert not ids(before) & ids(boot)  # every evaluation changed ...
    assert [c.training_hash for c in before] == [c.training_hash for c in boot]  # ... no training did


def test_pretraining_settings_reach_every_cell(tmp_path: Path) -> None:
    """Pre-trained checkpoints live at the same paths whatever the settings, so the pre-training
    cell's id must be part of every cell built on them."""
    a = plan_cells(load_config("smoke"), tmp_path)
    b = plan_cells(load_config("smoke", {"checkpoints.pretrain.lr": 0.002}), tmp_path)
    assert a[0].kind == "pretrain" and all(c.depends_on == [a[0].cell_id] for c in a[1:])
    assert not ids(a) & ids(b)


def test_run_directory_spelling_and_location_change_no_cell(tmp_path: Path, monkeypatch) -> None:
    """`cd X && ptft run smoke` and `ptft run smoke --out X/runs/smoke` are the same run, and so is
    the directory after a move: the pre-trained checkpoints inside it are known by the
    pre-training cell that makes them, not by their path."""
    config = load_config("smoke")
    monkeypatch.chdir(tmp_path)
    relative = plan_cells(config, Path("runs/smoke"))
    absolute = plan_cells(config, tmp_path / "runs" / "smoke")
    moved = plan_cells(config, tmp_path / "elsewhere" / "deeper" / "moved")
    assert ids(relative) == ids(absolute) == ids(moved)
    assert [c.training_hash for c in relative] == [c.training_hash for c in moved]
    # ... while the cells still load the checkpoints from the run directory they are given
    assert moved[1].checkpoint.path == str(tmp_path / "elsewhere" / "deeper" / "moved" / "checkpoints" / "step3")


def test_thread_counts_are_part_of_every_cells_identity(small_config_factory, tmp_path: Path) -> None:
    """A CPU's float sums depend on the thread count, so a changed thread count is a new cell,
    never a silent mix of numbers computed two ways."""
    before = plan_cells(small_config_factory(), tmp_path)
    two = plan_cells(small_config_factory(**{"executor.threads": 2}), tmp_path)
    assert not ids(before) & ids(two)
    pre = plan_cells(load_config("smoke"), tmp_path)
    pre4 = plan_cells(load_config("smoke", {"executor.pretrain_threads": 4}), tmp_path)
    assert not ids(pre) & ids(pre4)


def test_evaluating_during_fine_tuning_changes_only_the_fine_tuning_cells(tmp_path: Path) -> None:
    """``finetune.eval_at`` at its default, or listing only the final model, keeps every cell id
    of the presets; intermediate points change the FT cells' ids but not what they train."""
    # (points during training need every rate evaluated: tiny evaluates the selected one alone)
    for preset, base in (("tiny", {"finetune.evaluate": "all"}), ("smoke", {})):
        before = plan_cells(load_config(preset, base), tmp_path)
        assert [c.cell_id for c in plan_cells(load_config(preset, {**base, "finetune.eval_at": [1.0]}), tmp_path)] \
            == [c.cell_id for c in before]
        during = plan_cells(load_config(preset, {**base, "finetune.eval_at": [0.5, 1.0]}), tmp_path)
        assert ids(before) - ids(during) == ids(before, kind="finetune") != set()
        assert [c.training_hash for c in during] == [c.training_hash for c in before]
        # the final model is evaluated anyway: leaving it out of the list names the same cells
        assert ids(plan_cells(load_config(preset, {**base, "finetune.eval_at": [0.5]}), tmp_path)) == ids(during)


# Every cell id of the tiny (since it evaluates the selected rate alone) and smoke presets (since
# their fine-tuning packs its batches); ptft's version is part of each id: a version bump changes them all, and these
# with it.
_PRESET_IDS = {"tiny": (25, "9abc7c54681e9467", "1c1bd7cf722faa90", "b3d7afc99fd35715"),
               "smoke": (9, "b13bf29816eac730", "1d41020885893557", "7e8ce80de1dc0ea9")}
# The presets as they were before packing (and, for tiny, before float32 pre-training and review
# polarity): `packing: false` and those settings give a run directory of that time its very cells back.
_BEFORE_PACKING = {
    "tiny": ({"finetune.packing": False, "finetune.group_by_length": True, "checkpoints.pretrain.bf16": True,
              "finetune.evaluate": "all",
              "tasks": [{"name": "sentiment", "n_train": 2000, "n_dev": 100, "n_eval": 300,
                         "formats": ["default", "io", "instruct"]},
                        {"name": "squad_qg", "n_train": 80, "n_dev": 32, "n_eval": 48}]},
             (19, "4691a6e32342c584", "7f7212a1f1c08140", "f23d3cda8a867de9")),
    "smoke": ({"finetune.packing": False}, (9, "fdf2abb8f885be3c", "8edad979259e9449", "5d4885de74870c5f"))}
# The same presets with the BIG-bench tasks they used before the package index stopped serving
# BIG-bench: a user who provides the archive gets the very same cells as before.
_BIGBENCH_TASKS = {
    "tiny": {"tasks": [{"name": "bb_multiemo_sentiment", "n_train": 2000, "n_dev": 100, "n_eval": 300,
                        "formats": ["default", "io", "instruct"]},
                       {"name": "bb_squad_qg", "n_train": 200, "n_dev": 32, "n_eval": 48}],
             "finetune.epochs": 3.0, "finetune.selection_metric": "loss",
             "checkpoints.pretrain.num_checkpoints": 4, **_BEFORE_PACKING["tiny"][0]},
    "smoke": {"tasks": [{"name": "bb_vitaminc_nli", "n_train": 160, "n_dev": 16, "n_eval": 48},
                        {"name": "bb_socialiqa_qg", "n_train": 48, "n_dev": 8, "n_eval": 12}],
              **_BEFORE_PACKING["smoke"][0]}}
_BIGBENCH_IDS = {"tiny": (25, "57521187f33e3da7", "06b10e6d4e0c0fdd", "fd9fe9b1d1e9db9e"),
                 "smoke": (9, "89972315cfd33184", "6493cdacad17c542", "ab60ad623cd0253e")}


def _id_digest(cells) -> str:
    return hashlib.sha256(" ".join(c.cell_id for c in cells).encode()).hexdigest()[:16]


@pytest.mark.parametrize("preset", sorted(_PRESET_IDS))
def test_lens_and_lines_defaults_keep_every_preset_cell_id(preset: str, tmp_path: Path) -> None:
    cells = plan_cells(load_config(preset), tmp_path)
    ft = next(c for c in cells if c.kind == "finetune")
    assert (len(cells), _id_digest(cells), ft.cell_id, ft.training_hash) == _PRESET_IDS[preset]
    # lenses off: the same cells (they only add an output)
    assert ids(plan_cells(load_config(preset, {"lenses.enabled": False}), tmp_path)) == ids(cells)


# Every cell id and training hash of every preset that plans offline, and of two presets with
# the optional axes on (LiNeS and a lens setting; probes and evaluation during fine-tuning): what a
# refactor of the planner must leave digest for digest (the paper presets read Hub data to plan).
_TINY_TASKS_BEFORE_SELECTED = [
    {"name": "review_polarity", "n_train": 1800, "n_dev": 100, "n_eval": 900, "formats": ["default", "io", "instruct"]},
    {"name": "squad_qg", "n_train": 80, "n_dev": 32, "n_eval": 48}]
_ALL_PRESETS = {
    "small": (("small", {}), (46, "dead96c95f17f183", "70e93ed6032695f2")),
    "smoke": (("smoke", {}), (9, "b13bf29816eac730", "cc7da57de82c7d7e")),
    "tiny": (("tiny", {}), (25, "9abc7c54681e9467", "beddd2d145ce1fe3")),
    # as tiny was before it evaluated the selected rate alone and its out-of-domain sets in one format
    "tiny-before-selected": (("tiny", {"finetune.evaluate": "all", "tasks": _TINY_TASKS_BEFORE_SELECTED}),
                             (19, "af9d5b6b371ce8d7", "cf5e97e86e788210")),
    "tiny-it": (("tiny-it", {}), (29, "dae9e3e651c1bb75", "a162303b09a32ba2")),
    "tiny-methods": (("tiny-methods", {}), (25, "4895ad9fd738d327", "6936fc10952fea50")),
    "tiny-methods+lines": (("tiny-methods", {"lines.enabled": True, "lenses.intruder_k": 5}),
                           (25, "c9777c935174780d", "6936fc10952fea50")),
    # its three probe cells changed when they began measuring RankMe and alpha-ReQ (and hashing
    # probes.representation_tokens); every other cell kept its id
    "tiny+probes+eval_at": (("tiny", {"probes.enabled": True, "finetune.eval_at": [0.5, 1.0],
                                      "finetune.evaluate": "all", "tasks": _TINY_TASKS_BEFORE_SELECTED}),
                            (22, "75386bfd119dfce6", "70301cccac5f8b6a")),
    # grafting adds rows to the fine-tuning cells (new ids), not to their training; TuCo is in no id
    "tiny+grafting": (("tiny", {"grafting.enabled": True}), (25, "3e239299ba320fe9", "beddd2d145ce1fe3")),
    "tiny+tuco+cka": (("tiny", {"tuco.enabled": True, "cka.enabled": True}),
                      (25, "9abc7c54681e9467", "beddd2d145ce1fe3")),
    "tiny-lenses": (("tiny-lenses", {}), (22, "5d2f4c0c77996026", "70301cccac5f8b6a")),
    "tiny-forgetting": (("tiny-forgetting", {}), (13, "77cc961895f8c65d", "8b24adbf19697270")),
}


@pytest.mark.parametrize("case", sorted(_ALL_PRESETS))
def test_every_preset_keeps_its_cell_ids_and_training_hashes(case: str, tmp_path: Path) -> None:
    (preset, overrides), pinned = _ALL_PRESETS[case]
    cells = plan_cells(load_config(preset, overrides), tmp_path)
    trainings = hashlib.sha256(" ".join(c.training_hash for c in cells).encode()).hexdigest()[:16]
    assert (len(cells), _id_digest(cells), trainings) == pinned


@pytest.mark.parametrize("preset", sorted(_BEFORE_PACKING))
def test_without_packing_the_presets_keep_their_cell_ids(preset: str, tmp_path: Path) -> None:
    overrides, pinned = _BEFORE_PACKING[preset]
    cells = plan_cells(load_config(preset, overrides), tmp_path)
    ft = next(c for c in cells if c.kind == "finetune")
    assert (len(cells), _id_digest(cells), ft.cell_id, ft.training_hash) == pinned
    # the token budget means nothing unpacked: not part of any id
    assert ids(plan_cells(load_config(preset, {**overrides, "finetune.batch_tokens": 8192}), tmp_path)) == ids(cells)


@pytest.mark.parametrize("preset", sorted(_BIGBENCH_IDS))
def test_bigbench_tasks_keep_their_cell_ids_with_the_users_archive(preset: str, tmp_path: Path) -> None:
    from ptft import sources

    try:
        sources.bigbench_archive()
    except sources.SourceError:
        pytest.skip("no BIG-bench archive (set PTFT_BIGBENCH_ARCHIVE)")
    cells = plan_cells(load_config(preset, _BIGBENCH_TASKS[preset]), tmp_path)
    ft = next(c for c in cells if c.kind == "finetune")
    assert (len(cells), _id_digest(cells), ft.cell_id, ft.training_hash) == _BIGBENCH_IDS[preset]


def test_lens_settings_lines_and_grafting_change_only_fine_tuning_cells_not_their_training(
        small_config_factory, tmp_path: Path) -> None:
    before = plan_cells(small_config_factory(), tmp_path)
    for overrides in ({"lenses.intruder_k": 5}, {"lenses.intruder_epsilon": 0.6}, {"lines.enabled": True},
                      {"grafting.enabled": True}, {"grafting.enabled": True, "grafting.top_percent": [1.0]}):
        after = plan_cells(small_config_factory(**overrides), tmp_path)
        assert ids(before) - ids(after) == ids(before, kind="finetune"), overrides
        assert [c.training_hash for c in before] == [c.training_hash for c in after]
    # LiNeS settings matter only when it is on
    assert ids(plan_cells(small_config_factory(**{"lines.alpha": 0.3}), tmp_path)) == ids(before)
    a = plan_cells(small_config_factory(**{"lines.enabled": True}), tmp_path)
    b = plan_cells(small_config_factory(**{"lines.enabled": True, "lines.alpha": 0.3}), tmp_path)
    assert ids(a, kind="finetune").isdisjoint(ids(b, kind="finetune"))
    # so do grafting's shares; TuCo and CKA, outputs with no setting, are in no id
    assert ids(plan_cells(small_config_factory(**{"grafting.top_percent": [1.0]}), tmp_path)) == ids(before)
    # the shares are a set: their order in the config changes no id
    on = {"grafting.enabled": True}
    assert ids(plan_cells(small_config_factory(**on, **{"grafting.top_percent": [1.0, 0.1]}), tmp_path)) == ids(
        plan_cells(small_config_factory(**on, **{"grafting.top_percent": [0.1, 1.0]}), tmp_path))
    assert ids(plan_cells(small_config_factory(**{"tuco.enabled": True, "cka.enabled": True}), tmp_path)) == ids(before)


def test_every_cell_kind_is_one_module_of_the_registry():
    from ptft.engine.kinds import KINDS
    from ptft.grid import CellKind

    assert list(KINDS) == list(CellKind)
    assert all(type(kind).__module__ == f"ptft.engine.kinds.{kind.kind}" for kind in KINDS.values())


def test_an_added_input_left_as_it_was_adds_nothing_to_a_hash():
    """The one rule behind every pinned id above: an input the grid gained later is hashed only
    where it differs from what cells hashed before it existed; an input must say what that was."""
    from ptft.engine.cells import added_inputs

    assert added_inputs(ft_method="full", method_settings={}, eval_at=[], packed_batch_tokens=None, lines=None) == {}
    assert added_inputs(ft_method="lora", method_settings={}, eval_at=[0.5], packed_batch_tokens=4096) == \
        {"ft_method": "lora", "eval_at": [0.5], "packed_batch_tokens": 4096}
    with pytest.raises(KeyError):
        added_inputs(data_mixture="a")


def test_a_kind_is_one_module_registered_beside_the_others(small_config_factory, tmp_path: Path, monkeypatch):
    """`tests/engine/weight_norm_kind.py` is all a new kind of cell is: registered, the grid makes
    its cells after each checkpoint's others without changing theirs, and a study runs them and
    keeps what they measured (here the norm of every weight, checked against the file's tensors)."""
    from safetensors.torch import load_file
    from weight_norm_kind import WeightNorm

    from ptft.engine.kinds import KINDS
    from ptft.engine.study import run_study
    from ptft.store import results_frame

    config = small_config_factory(tasks=[{"name": "sentiment", "n_train": 8, "n_dev": 4, "n_eval": 8,
                                          "train": False}])
    before = plan_cells(config, tmp_path / "run")
    monkeypatch.setitem(KINDS, "weight_norm", WeightNorm())
    cells = plan_cells(config, tmp_path / "run")
    assert [c.kind for c in cells] == ["base", "weight_norm", "base", "weight_norm"]
    assert [c.cell_id for c in cells if c.kind == "base"] == [c.cell_id for c in before]

    result = run_study(config, run_dir=tmp_path / "run", workers=1, progress=False)
    assert not result.failed and result.ran == 4
    norms = results_frame(tmp_path / "run").query("metric == 'weight_norm'")
    for cell in cells[1::2]:
        tensors = load_file(str(Path(cell.checkpoint.path) / "model.safetensors"))
        by_hand = sum(float((t.double() ** 2).sum()) for t in tensors.values()) ** 0.5
        assert norms.set_index("checkpoint").loc[cell.checkpoint.label, "value"] == pytest.approx(by_hand, rel=1e-9)


def test_a_local_series_is_its_weights(small_config_factory, tiny_series, tmp_path: Path) -> None:
    """A local checkpoint's identity is its weights' fingerprint: the folder moved elsewhere keeps
    its cells, weights changed under the same name rerun exactly that checkpoint's cells, and a
    series holding the same weights twice, or steps out of order, is refused before anything runs."""
    import shutil

    from safetensors.torch import load_file, save_file

    from ptft.errors import ConfigError

    steps = sorted(tiny_series)[-2:]
    moved = {s: shutil.copytree(tiny_series[s], tmp_path / "moved" / f"step{s}") for s in steps}

    def local(paths, labels=None, run_steps=None):
        return small_config_factory(**{"checkpoints.local": {"paths": [str(p) for p in paths],
                                                             "labels": labels or [f"step{s}" for s in steps],
                                                             "steps": run_steps or steps}})

    before = plan_cells(local([tiny_series[s] for s in steps]), tmp_path / "run")
    assert ids(plan_cells(local([moved[s] for s in steps]), tmp_path / "run")) == ids(before)
    # `ptft plan` shows each checkpoint's weights
    from ptft.api import plan
    from ptft.engine.plan import format_plan

    shown = plan(local([moved[s] for s in steps]), tmp_path / "run")
    fingerprints = [c.fingerprint for c in shown.checkpoints]
    assert len(set(fingerprints)) == 2 and all(f in format_plan(shown) for f in fingerprints)
    weights = moved[steps[0]] / "model.safetensors"
    tensors = load_file(str(weights))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] * 2
    save_file(tensors, str(weights))
    after = plan_cells(local([moved[s] for s in steps]), tmp_path / "run")
    assert {c.cell_id for c in after if c.checkpoint.label != f"step{steps[0]}"} == \
        {c.cell_id for c in before if c.checkpoint.label != f"step{steps[0]}"}
    assert ids(after).isdisjoint({c.cell_id for c in before if c.checkpoint.label == f"step{steps[0]}"})
    twice = shutil.copytree(tiny_series[steps[1]], tmp_path / "twice")
    with pytest.raises(ConfigError, match=r"checkpoints.local.paths: late \(.*twice\) holds the same weights as "
                                          r"early \(.*step\d+\), fingerprint [0-9a-f]{16}"):
        plan_cells(local([tiny_series[steps[1]], twice], labels=["early", "late"]), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"step8 \(step 8\) comes after step60 \(step 60\)"):
        plan_cells(local([tiny_series[s] for s in reversed(steps)], labels=[f"step{s}" for s in reversed(steps)],
                         run_steps=list(reversed(steps))), tmp_path / "run")


def test_a_tasks_out_of_domain_sets_can_have_formats_of_their_own(tmp_path: Path) -> None:
    """tiny scores review polarity's in-domain set in three formats and its out-of-domain sets in
    the Default format; left empty, the out-of-domain sets take the in-domain sets' formats."""
    def formats(cells) -> dict[str, list[str]]:
        base = next(c for c in cells if c.kind == "base" and c.label.endswith("review_polarity"))
        by_set: dict[str, list[str]] = {}
        for unit in base.units:
            by_set.setdefault(unit.eval_set, []).append(unit.format)
        return by_set

    three = ["default", "io", "instruct"]
    assert formats(plan_cells(load_config("tiny"), tmp_path)) == {
        "review_polarity": three, "polarity_movies": ["default"], "polarity_products": ["default"],
        "polarity_tweets": ["default"]}
    every = [{"name": "review_polarity", "n_train": 1800, "n_dev": 100, "n_eval": 900, "formats": three},
             {"name": "squad_qg", "n_train": 80, "n_dev": 32, "n_eval": 48}]
    assert set(map(tuple, formats(plan_cells(load_config("tiny", {"tasks": every}), tmp_path)).values())) == \
        {tuple(three)}
