"""Probe cells on the engine's small real study: one per checkpoint, content-hashed, resumed and
run by the executors like every other cell, their proxies stored as rows of the results table."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import KEYS, assert_same_numbers

from ptft.config import load_config
from ptft.engine.plan import plan_study
from ptft.engine.study import plan_cells, run_study
from ptft.grid import PROBE_METHOD
from ptft.store import layers_frame, results_frame

PROBES = {"probes.enabled": True, "probes.draws": 2, "probes.windows": 4, "probes.seq_len": 64}


def ids(cells, kind=None) -> set[str]:
    return {c.cell_id for c in cells if kind is None or c.kind == kind}


def test_probe_cells_are_off_by_default_and_add_to_the_grid_only(small_config_factory, tmp_path: Path) -> None:
    plain = plan_cells(small_config_factory(), tmp_path)
    # settings of disabled probes are no input of any cell
    assert ids(plan_cells(small_config_factory(**{"probes.sigma": 0.3}), tmp_path)) == ids(plain)
    probed = plan_cells(small_config_factory(**PROBES), tmp_path)
    assert ids(probed) - ids(probed, "probe") == ids(plain)
    probes = [c for c in probed if c.kind == "probe"]
    assert [c.label for c in probes] == ["PROBE step8", "PROBE step60"]
    assert [c.model_id for c in probes] == ["probe/step8", "probe/step60"]
    # one gold log-likelihood unit per in-domain set and shot count of the study's tasks
    assert [(u.eval_task, u.eval_set, u.shots, u.method) for u in probes[0].units] == [
        ("sentiment", "sentiment_movies", 1, PROBE_METHOD),
        ("social_qg", "social_qg", 1, PROBE_METHOD)]
    # a probe setting reruns the probe cells only
    other = plan_cells(small_config_factory(**PROBES, **{"probes.sigma": 0.2}), tmp_path)
    assert ids(other) - ids(probed) and ids(other) - ids(other, "probe") == ids(plain)
    assert ids(other, "probe").isdisjoint(ids(probed, "probe"))


@pytest.mark.parametrize("preset", ["tiny", "smoke"])
def test_presets_keep_their_ids_with_probes_enabled(preset: str, tmp_path: Path) -> None:
    plain = plan_study(load_config(preset), tmp_path)
    probed = plan_study(load_config(preset, {"probes.enabled": True}), tmp_path)
    assert ids(probed.cells) - ids(probed.cells, "probe") == ids(plain.cells)
    assert probed.count("probe") == len(plain.checkpoints)


def test_probe_text_file_is_hashed_by_content(small_config_factory, tmp_path: Path) -> None:
    text = tmp_path / "held.txt"
    text.write_text("First paragraph of held-out text.\n\nSecond one.\n")
    first = ids(plan_cells(small_config_factory(**PROBES, **{"probes.text": str(text)}), tmp_path), "probe")
    assert first.isdisjoint(ids(plan_cells(small_config_factory(**PROBES), tmp_path), "probe"))
    text.write_text("Other text.\n")
    assert ids(plan_cells(small_config_factory(**PROBES, **{"probes.text": str(text)}), tmp_path),
               "probe").isdisjoint(first)


def test_probe_cells_run_resume_and_store_proxy_rows(reference_run, small_config_factory, tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    config = small_config_factory(**PROBES)
    result = run_study(config, run_dir=run, workers=2, progress=False)  # on the local worker pool
    assert (result.ran, result.skipped, result.failed) == (2, 8, [])  # only the probe cells were new
    df = results_frame(run)
    proxies = df[df.method == PROBE_METHOD]
    assert_same_numbers(df[df.method != PROBE_METHOD], reference_run.frame)
    assert sorted(zip(proxies.checkpoint, proxies.metric, proxies.eval_set)) == sorted(
        (c, m, s) for c in ("step8", "step60") for m, s in (
            ("heldout_loss", ""), ("sensitivity", ""), ("rankme", ""), ("alpha_req", ""),
            ("gold_loglik", "sentiment_movies"), ("gold_loglik", "social_qg")))
    assert (proxies.train_task == "").all() and proxies.selected.all()
    loss = proxies[proxies.metric == "heldout_loss"].set_index("checkpoint")
    assert set(loss.eval_task) == {"train_prompts"}  # local checkpoints, no probes.text
    assert loss.loc["step60", "value"] < loss.loc["step8", "value"]  # more pre-training, lower loss
    assert (proxies[proxies.metric == "gold_loglik"].value < 0).all()
    sens = proxies[proxies.metric == "sensitivity"]
    assert (sens.n == 2).all() and (sens.ci_low <= sens.value).all() and (sens.value <= sens.ci_high).all()
    # the geometry of the tiny model's 64-dimensional final hidden states, on every token of the
    # windows (fewer than probes.representation_tokens)
    geometry = proxies[proxies.metric.isin(["rankme", "alpha_req"])]
    assert (geometry.n == geometry.n.iloc[0]).all() and geometry.n.iloc[0] < 4096
    assert ((geometry.metric != "rankme") | geometry.value.between(1, 64)).all()
    assert ((geometry.metric != "alpha_req") | (geometry.value > 0)).all()
    # per block, the same positions' residual stream after it (the tiny model has 2 blocks)
    layers = layers_frame(run)
    assert sorted(zip(layers.checkpoint, layers.layer, layers.measure)) == sorted(
        (c, layer, m) for c in ("step8", "step60") for layer in (1, 2) for m in ("rankme", "alpha_req"))
    assert (layers.n == geometry.n.iloc[0]).all() and (layers.train_task == "").all()
    assert layers[layers.measure == "rankme"].value.between(1, 64).all()
    again = run_study(config, run_dir=run, progress=False)
    assert (again.ran, again.skipped) == (0, 10)
    assert_same_numbers(results_frame(run), df)
    # an interrupted probe cell is pending again and reruns to the very same numbers
    from ptft.store import ResultsStore

    probe_id = next(c.cell_id for c in result.cells if c.kind == "probe")
    with ResultsStore(run / "results.sqlite") as store:
        store.mark_cell(probe_id, "running")
        store.reset_running()
    resumed = run_study(config, run_dir=run, progress=False)
    assert (resumed.ran, resumed.skipped) == (1, 9)
    assert_same_numbers(results_frame(run), df)


def test_ptft_analyze_reads_the_proxies_of_a_run(reference_run, small_config_factory, tmp_path: Path) -> None:
    from ptft.analysis import prediction

    run = reference_run.copy_to(tmp_path / "run")
    run_study(small_config_factory(**PROBES), run_dir=run, progress=False)
    rows, points = prediction.evaluate(run)
    # two own in-domain sets x six proxies x two targets, over the two checkpoints (one pair)
    assert len(rows) == 24 and set(rows.n_checkpoints) == {2}
    assert set(rows.proxy) == {"base", "heldout_loss", "sensitivity", "rankme", "alpha_req", "gold_loglik"}
    assert set(rows.pairwise_accuracy) <= {0.0, 0.5, 1.0}
    assert len(points) == 2 * 6 * 2
    from ptft.report import write_report

    page = write_report(run, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Could we have predicted it?" in page
    assert "the best checkpoint to fine-tune is" in page or "no single checkpoint to pick" in page


@pytest.fixture
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_probe_cells_on_ray_give_the_local_numbers(reference_run, small_config_factory, ray_cluster,
                                                   tmp_path: Path) -> None:
    config = small_config_factory(**PROBES)
    local, remote = reference_run.copy_to(tmp_path / "local"), reference_run.copy_to(tmp_path / "ray")
    run_study(config, run_dir=local, progress=False)
    result = run_study(config, run_dir=remote, executor="ray", progress=False)
    assert (result.ran, result.failed) == (2, [])
    a, b = results_frame(local), results_frame(remote)
    assert_same_numbers(a[a.method == PROBE_METHOD], b[b.method == PROBE_METHOD])
    assert not a.duplicated(KEYS).any()
