"""Study configs are validated up front: each error names the file and the dotted key."""

from __future__ import annotations

import pytest

from ptft.config import load_config, preset_names
from ptft.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_presets_load():
    assert {"smoke", "tiny"} <= set(preset_names())
    for name in ("smoke", "tiny", "small", "tiny-methods"):
        config = load_config(name)
        assert config.checkpoints.source == "pretrain"
        assert config.tasks


@pytest.mark.parametrize("text, message", [
    ("tasks: [{name: sentiment}]\nfinetun: {}\n", "unknown key 'finetun'"),
    ("tasks: [{name: sentiment}]\nfinetune: {epoch: 3}\n", "unknown key 'finetune.epoch'"),
    ("tasks: [{name: sentiment}]\nfinetune: {batch_size: 8.5}\n", "finetune.batch_size: expected an integer, got 8.5"),
    ("tasks: [{name: sentiment, n_eval: many}]\n", "tasks[0].n_eval: expected an integer or null, got 'many'"),
    ("tasks: [{name: no_such_task}]\n", "tasks[0].name: unknown task 'no_such_task'"),
    ("tasks: []\n", "tasks: list at least one task"),
    ("tasks: [{name: sentiment}]\nevaluation: {methods: [beam]}\n", "evaluation.methods[0]: expected one of"),
    ("tasks: [{name: sentiment}]\ncheckpoints: {source: local, local: {paths: [nowhere/step1]}}\n",
     "checkpoints.local.paths[0]: folder nowhere/step1 does not exist"),
    ("tasks: [{name: sentiment}]\nfinetune: {warmup: 3}\n", "finetune.warmup: a fraction"),
    ("tasks: [{name: sentiment, lr: [0.0]}]\n", "tasks[0].lr: learning rates must be positive"),
    ("tasks: [{name: sentiment}]\nlenses: {intruder_k: 0}\n", "lenses.intruder_k: must be at least 1"),
    ("tasks: [{name: sentiment}]\nlenses: {intruder_epsilon: 1.5}\n", "lenses.intruder_epsilon: a cosine"),
    ("tasks: [{name: sentiment}]\nlines: {alpha: high}\n", "lines.alpha: expected a number"),
    ("tasks: [{name: sentiment}]\ngrafting: {top_percent: [1, 150]}\n",
     "grafting.top_percent: shares of the change in percent, in [0, 100], got 150"),
    ("tasks: [{name: sentiment}]\ngrafting: {enabled: true, top_percent: []}\n",
     "grafting.top_percent: give one or more shares"),
    ("tasks: [{name: sentiment}]\ngrafting: {top_percent: [1, 1.0]}\n", "grafting.top_percent: a share is listed twice"),
    ("tasks: [{name: sentiment}]\ntuco: {enabled: maybe}\n", "tuco.enabled: expected"),
    ("- just\n- a list\n", "the top level must be a mapping"),
    ("tasks: [{name: sentiment}\n", "not valid YAML"),
    ("tasks: [{name: sentiment}]\nprobes: {sigma: -0.1}\n", "probes.sigma: a relative noise scale"),
    ("tasks: [{name: sentiment}]\nprobes: {draws: 0}\n", "probes.draws: must be at least 1"),
    ("tasks: [{name: sentiment}]\ncheckpoints: {source: hub, hub: {repo: EleutherAI/pythia-160m}}\n"
     "probes: {text: missing.txt}\n", "probes.text: no text file missing.txt"),
    ("tasks: [{name: sentiment}]\nfinetune: {methods: [full, qlora]}\n",
     "finetune.methods[1]: expected one of 'full', 'lora', 'hft', got 'qlora'"),
    ("tasks: [{name: sentiment}]\nfinetune: {methods: [lora, lora]}\n", "finetune.methods: give one or more distinct"),
    ("tasks: [{name: sentiment}]\nfinetune: {lora: {r: 0}}\n", "finetune.lora: r must be at least 1"),
    ("tasks: [{name: sentiment}]\nfinetune: {lora: {rank: 8}}\n", "unknown key 'finetune.lora.rank'"),
    ("tasks: [{name: sentiment}]\nfinetune: {lora: {learning_rates: [-1]}}\n",
     "finetune.lora.learning_rates: learning rates must be positive"),
    ("tasks: [{name: sentiment}]\nfinetune: {hft: {frozen_share: 1.0}}\n", "finetune.hft.frozen_share: a share"),
])
def test_bad_configs_name_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert message in str(err.value)
    assert "study.yaml" in str(err.value)


def test_probe_text_is_found_beside_the_config(tmp_path):
    (tmp_path / "held.txt").write_text("Some text.\n")
    config = load_config(write(tmp_path, "tasks: [{name: sentiment}]\nprobes: {enabled: true, text: held.txt}\n"
                                         "checkpoints: {source: hub, hub: {repo: EleutherAI/pythia-160m}}\n"))
    assert config.probes.text == str((tmp_path / "held.txt").resolve())
    assert not load_config(write(tmp_path, "tasks: [{name: sentiment}]\n")).probes.enabled


def test_numbers_written_like_2e_5_are_numbers(tmp_path):
    config = load_config(write(tmp_path, "tasks: [{name: sentiment}]\nfinetune: {learning_rates: [2e-5, 2e-6]}\n"))
    assert config.finetune.learning_rates == [2e-5, 2e-6]


def test_overrides_and_hash(tmp_path):
    path = write(tmp_path, "tasks: [{name: sentiment}]\n")
    a, b = load_config(path), load_config(path, {"seed": 7, "finetune.epochs": 1})
    assert (b.seed, b.finetune.epochs) == (7, 1.0)
    assert a.hash() != b.hash() and a.hash() == load_config(path).hash()


def test_missing_file_or_preset():
    with pytest.raises(ConfigError, match="no config file 'nope.yaml' and no preset"):
        load_config("nope.yaml")


def test_instruction_suite_must_be_multiple_choice(tmp_path):
    path = write(tmp_path, "tasks: [{name: sentiment}]\n"
                           "instruction_tuning: {enabled: true, suite: [mc_openbookqa, squad_qg]}\n")
    with pytest.raises(ConfigError, match=r"instruction_tuning.suite\[1\]: 'squad_qg' is a generation task"):
        load_config(path)


def test_validation_reads_the_config_and_loading_resolves_its_files(tmp_path):
    """Checking a config changes nothing; the one explicit normalising step makes a task file named
    relative to the config absolute, so it loads wherever `ptft` is started from."""
    import shutil
    from pathlib import Path

    from ptft.config import StudyConfig, TaskConfig, _check_semantics

    example = Path(__file__).resolve().parents[1] / "examples" / "tasks" / "movie_sentiment"
    shutil.copytree(example, tmp_path / "movie_sentiment")
    path = write(tmp_path, "tasks: [{name: movie_sentiment/task.yaml}]\n")
    config = StudyConfig(tasks=[TaskConfig(name="movie_sentiment/task.yaml")])
    before = config.to_dict()
    _check_semantics(config, path)
    assert config.to_dict() == before
    assert load_config(path).tasks[0].name == str((tmp_path / "movie_sentiment" / "task.yaml").resolve())


SURFACE = {
    "help": "from ptft.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as exit:\n    assert exit.code == 0",
    "plan": "from ptft.cli import main\nassert main(['plan', 'smoke']) == 0",
    "validation": "from ptft.config import load_config\nload_config('tiny')",
    "prepare": "from ptft.cli import main\nassert main(['prepare', 'smoke']) == 0",
}


@pytest.mark.parametrize("command", sorted(SURFACE))
def test_help_plan_and_validation_import_no_torch(command):
    """What a user runs before a study (`ptft --help`, `ptft plan`, loading a config, fetching its
    data with `ptft prepare`) stays fast:
    torch and transformers (over a second to import) are imported only by the work that needs them."""
    import subprocess
    import sys

    code = SURFACE[command] + "\nimport sys\nprint(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"


@pytest.mark.parametrize("key, value, message", [
    ("finetune.eval_at", [0.0, 1.0], r"smoke.yaml: finetune.eval_at: fractions of the training steps in \(0, 1\], "
                                     r"got \[0.0, 1.0\]"),
    ("finetune.eval_at", [], r"finetune.eval_at: fractions of the training steps in \(0, 1\], got \[\]"),
    ("finetune.seeds", [1, 1], r"finetune.seeds: give one or more distinct seeds, got \[1, 1\]"),
    ("finetune.batch_tokens", 100, r"smoke.yaml: finetune.batch_tokens: 100 is below finetune.max_length \(192\); "
                                   r"a packed step holds rows of max_length tokens"),
])
def test_evaluation_points_and_seeds_are_checked(key: str, value: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", {key: value})


def test_a_token_budget_must_hold_a_row_of_what_it_trains():
    """Packed steps hold whole rows: instruction tuning's longer rows need a budget that fits them;
    without packing the budget is not used."""
    with pytest.raises(ConfigError, match=r"tiny-it.yaml: finetune.batch_tokens: 1024 is below "
                                          r"instruction_tuning.max_length \(2048\)"):
        load_config("tiny-it", {"instruction_tuning.max_length": 2048, "checkpoints.pretrain.model.max_seq_len": 2048})
    assert load_config("tiny-it", {"instruction_tuning.max_length": 2048, "finetune.packing": False,
                                   "checkpoints.pretrain.model.max_seq_len": 2048})
    assert load_config("smoke", {"finetune.batch_tokens": 100, "finetune.packing": False})


def test_a_config_can_include_another_and_set_only_what_differs(tmp_path):
    (tmp_path / "base.yaml").write_text("include: smoke\nname: base\nfinetune: {epochs: 2, learning_rates: [0.5]}\n")
    path = write(tmp_path, "include: base.yaml\nfinetune: {epochs: 1}\ntasks: [{name: squad_qg}]\n")
    config, smoke = load_config(path), load_config("smoke")
    # mappings merge key by key, lists and values are replaced whole, through every level
    assert (config.name, config.finetune.epochs, config.finetune.learning_rates) == ("base", 1.0, [0.5])
    assert [t.name for t in config.tasks] == ["squad_qg"]
    assert config.checkpoints == smoke.checkpoints and config.evaluation == smoke.evaluation
    # the presets written this way are their includes plus their own keys
    tiny, methods = load_config("tiny"), load_config("tiny-methods")
    assert methods.checkpoints.pretrain.model == tiny.checkpoints.pretrain.model
    assert methods.finetune.batch_size == tiny.finetune.batch_size and methods.finetune.methods == ["full", "lora", "hft"]


@pytest.mark.parametrize("files, message", [
    ({"study.yaml": "include: study.yaml\ntasks: [{name: sentiment}]\n"}, "include: study.yaml -> study.yaml is a cycle"),
    ({"study.yaml": "include: nothing.yaml\n"}, "include: no config file 'nothing.yaml'"),
    ({"study.yaml": "include: [smoke]\n"}, "include: expected a preset name or a YAML file"),
    ({"study.yaml": "include: other.yaml\n", "other.yaml": "finetune: {epochs: many}\ntasks: [{name: sentiment}]\n"},
     "study.yaml (including other.yaml): finetune.epochs: expected a number"),
])
def test_includes_that_cannot_work_are_refused(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "study.yaml")
    assert message in str(err.value)
