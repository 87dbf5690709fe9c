"""A Hub series is fingerprinted before any cell runs: from the Hub's metadata (one request per
revision, no download) or, offline, from the Hugging Face cache, with the same value either way.
The Hub here is a real HTTP server on 127.0.0.1 (tests/local_hub.py) that huggingface_hub's own
client talks to."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants
from local_hub import LocalHub

from ptft.checkpoints.fingerprint import NotFingerprinted, hub_weights
from ptft.checkpoints.series import resolve_series
from ptft.config import load_config
from ptft.engine.study import plan_cells
from ptft.errors import CheckpointError, ConfigError

REPO = "org/series"
CONFIG = b'{"model_type": "llama"}'
WEIGHTS = {s: f"weights of step {s}".encode() * 100 for s in (0, 1, 2, 3)}


def hub_fingerprint(repo: str, revision: str, network: bool = True) -> str | None:
    weights = hub_weights(repo, revision, network=network)
    return weights and weights.fingerprint


def by_hand(pairs: dict[str, bytes]) -> str:
    """The definition (docs/config.md): sha256 over "name|sha256 of the file" lines in name order."""
    lines = "".join(f"{name}|{hashlib.sha256(content).hexdigest()}\n" for name, content in sorted(pairs.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The local Hub with a Pythia-like series: step0 and step1 serve the same weights (as
    Pythia's do), main is step3 under its alias; an empty Hugging Face cache."""
    local = LocalHub()
    # what HF_ENDPOINT sets when huggingface_hub is imported
    monkeypatch.setattr(constants, "ENDPOINT", local.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", local.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    for name, step in (("step0", 0), ("step1", 0), ("step2", 2), ("step3", 3), ("main", 3)):
        local.put(REPO, name, {"config.json": CONFIG, "README.md": b"# a model", "model.safetensors": WEIGHTS[step],
                               "optimizer.bin" if step == 2 else "training_args.bin": b"not weights"})
    yield local
    local.close()


def series_config(tmp_path: Path, **hub) -> object:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{"name": "review_polarity"}],
                                    "checkpoints": {"source": "hub", "hub": {"repo": REPO, **hub}}}))
    return load_config(path)


def test_a_revision_is_its_weight_files_sha256(hub):
    value = hub_fingerprint(REPO, "step2")
    assert value == by_hand({"model.safetensors": WEIGHTS[2]})  # config, README, optimizer.bin not counted
    # one metadata request, nothing downloaded (the client may ask the Hub other things of its own)
    assert [r for r in hub.requests if "/models/" in r or "/resolve/" in r] == [f"/api/models/{REPO}/revision/step2"]
    assert hub_fingerprint(REPO, "step0") == hub_fingerprint(REPO, "step1") != value
    assert hub_weights(REPO, "step2").commit == hub.commit(REPO, "step2")  # the commit cells load
    # pytorch_model.bin when there is no safetensors file
    hub.put("org/old", "main", {"pytorch_model.bin": b"pickled weights", "config.json": CONFIG})
    assert hub_fingerprint("org/old", "main") == by_hand({"pytorch_model.bin": b"pickled weights"})


def test_a_sharded_revision_is_the_shards_its_index_names(hub, monkeypatch):
    """Online the index is read from the Hub (a few kB) and offline from the cache: a shard the index
    does not name (left over from an older upload) counts in neither, so both give one value."""
    shards = {"model-00001-of-00002.safetensors": b"first half", "model-00002-of-00002.safetensors": b"second"}
    index = json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                       "b": "model-00002-of-00002.safetensors"}}).encode()
    hub.put("org/sharded", "main", {"model.safetensors.index.json": index, "consolidated.pt": b"other",
                                    "model-00001-of-00003.safetensors": b"stale", **shards})
    online = hub_fingerprint("org/sharded", "main")
    assert online == by_hand(shards)
    assert hub_fingerprint("org/sharded", "main", network=False) is None  # only the index is in the cache
    hub.download("org/sharded", "main", ["model-00001-of-00002.safetensors"])
    assert hub_fingerprint("org/sharded", "main", network=False) is None  # a shard short: it would be another value
    hub.download("org/sharded", "main", ["model-00002-of-00002.safetensors"])
    assert hub_fingerprint("org/sharded", "main", network=False) == online
    # an index naming a file the revision lacks is no fingerprint, and the message says so
    hub.put("org/broken", "main", {"model.safetensors.index.json": index, "model-00001-of-00002.safetensors": b"x"})
    with pytest.raises(NotFingerprinted, match=r"names files the revision lacks \(model-00002-of-00002.safetensors\)"):
        hub_weights("org/broken", "main")


def test_the_cache_gives_the_same_fingerprint_offline(hub, monkeypatch):
    online = hub_weights(REPO, "step2")
    assert hub_weights(REPO, "step2", network=False) is None  # nothing downloaded yet
    hub.download(REPO, "step2")  # huggingface_hub lays the cache out itself
    requests = list(hub.requests)
    assert hub_weights(REPO, "step2", network=False) == online  # the same fingerprint and commit
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub_weights(REPO, "step2") == online and hub.requests == requests
    with pytest.raises(NotFingerprinted, match=r"cannot fingerprint org/series@step3: Hugging Face is offline"):
        hub_weights(REPO, "step3")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.close()  # a Hub that does not answer is read from the cache too
    assert hub_weights(REPO, "step2") == online
    with pytest.raises(NotFingerprinted, match=r"cannot fingerprint org/series@step3: the Hub did not answer \(\w+"):
        hub_weights(REPO, "step3")


def test_a_missing_revision_or_repository_is_named(hub):
    with pytest.raises(CheckpointError, match=r"org/series has no revision 'step5'"):
        hub_fingerprint(REPO, "step5")
    with pytest.raises(CheckpointError, match=r"org/nothing: no such model repository"):
        hub_fingerprint("org/nothing", "main")


def test_a_hub_series_is_checked_and_identified_by_its_weights(hub, tmp_path):
    series = resolve_series(series_config(tmp_path, revisions=["step2", "step3"]), tmp_path)
    # main serves step3's weights: the alias is not a checkpoint of its own
    assert [c.label for c in series] == ["step2", "step3"]
    assert [c.identity for c in series] == [f"weights/{by_hand({'model.safetensors': WEIGHTS[s]})}" for s in (2, 3)]
    with pytest.raises(ConfigError, match=r"checkpoints.hub: step1 \(org/series@step1\) holds the same weights as "
                                          r"step0 \(org/series@step0\), fingerprint [0-9a-f]{16}"):
        resolve_series(series_config(tmp_path, revisions=["step0", "step1", "step2"]), tmp_path)
    with pytest.raises(ConfigError, match=r"checkpoints.hub: org/series has no revision 'step5'"):
        resolve_series(series_config(tmp_path, revisions=["step2", "step5"]), tmp_path)
    with pytest.raises(ConfigError, match=r"step2 \(step 2\) comes after step3 \(step 3\)"):
        resolve_series(series_config(tmp_path, revisions=["step3", "step2"], include_main=False), tmp_path)
    # weights pushed again under the same name: a new identity, so that checkpoint's cells run again
    hub.put(REPO, "step2", {"model.safetensors": b"retrained", "config.json": CONFIG})
    again = resolve_series(series_config(tmp_path, revisions=["step2", "step3"]), tmp_path)
    assert again[0].identity != series[0].identity and again[1].identity == series[1].identity


def test_a_series_that_cannot_be_fingerprinted_is_refused_before_it_runs(hub, tmp_path):
    config = series_config(tmp_path, revisions=["step2", "step3"])
    hub.close()
    with pytest.raises(ConfigError, match=r"checkpoints.hub: cannot fingerprint org/series@step2: the Hub did not "
                                          r"answer \(\w+.*\(hf download org/series --revision step2\) and run with "
                                          r"HF_HUB_OFFLINE=1$"):
        resolve_series(config, tmp_path)
    # `ptft plan` asks only the cache: without it a checkpoint keeps its name as identity
    planned = resolve_series(config, tmp_path, network=False)
    assert [(c.fingerprint, c.identity) for c in planned] == [(None, f"{REPO}@step2"), (None, f"{REPO}@step3"),
                                                              (None, f"{REPO}@main")]


def test_main_is_an_alias_or_left_out(hub, tmp_path, monkeypatch):
    """`main` added by include_main is dropped when it holds the last checkpoint's weights, refused
    when it holds an earlier one's, and a `main` the cache lacks offline says it can be left out."""
    config = series_config(tmp_path, revisions=["step2", "step3"])
    for revision in ("step2", "step3"):
        hub.download(REPO, revision)
    hub.put(REPO, "main", {"model.safetensors": WEIGHTS[2]})
    with pytest.raises(ConfigError, match=r"main holds the same weights as step2 \(org/series@step2\), which is not "
                                          r"the last of the series; set checkpoints.hub.include_main: false"):
        resolve_series(config, tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match=r"cannot fingerprint org/series@main: .*; or leave main out "
                                          r"\(checkpoints.hub.include_main: false\)$"):
        resolve_series(config, tmp_path)
    offline = resolve_series(series_config(tmp_path, revisions=["step2", "step3"], include_main=False), tmp_path)
    assert [(c.label, c.load_revision) for c in offline] == [(s, hub.commit(REPO, s)) for s in ("step2", "step3")]


def test_a_study_started_online_keeps_its_cells_offline(hub, tmp_path, monkeypatch):
    config = series_config(tmp_path, revisions=["step2", "step3"])
    online = plan_cells(config, tmp_path / "run")
    # each cell records its checkpoint's fingerprint (the cells table keeps the spec)
    assert {c.spec()["checkpoint"]["fingerprint"] for c in online if c.checkpoint} == \
        {by_hand({"model.safetensors": WEIGHTS[s]}) for s in (2, 3)}
    for revision in ("step2", "step3", "main"):
        hub.download(REPO, revision)
    hub.close()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert [c.cell_id for c in plan_cells(config, tmp_path / "run")] == [c.cell_id for c in online]


def test_the_plan_shows_cached_fingerprints_without_the_network(hub, tmp_path):
    from ptft.api import plan
    from ptft.engine.plan import format_plan

    hub.download(REPO, "step2")
    shown = format_plan(plan(series_config(tmp_path, revisions=["step2", "step3"]), tmp_path / "run"))
    assert not [r for r in hub.requests if r.startswith("/api/models/")]
    rows = {line.split()[0]: line.split()[-1] for line in shown.splitlines() if line.strip().startswith("step")}
    assert rows == {"step2": by_hand({"model.safetensors": WEIGHTS[2]}), "step3": "-"}
    assert "fingerprinted from the Hugging Face cache only" in shown
