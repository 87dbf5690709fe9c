"""The probes' proxies on the tiny pre-trained model: the held-out loss, its sensitivity to
relative Gaussian weight noise, and the gold completions' per-token log-likelihood."""

from __future__ import annotations

import json

import pytest
import torch

from ptft.evaluation import Evaluator, select_demos
from ptft.evaluation.probes import heldout_loss, sensitivity, text_windows
from ptft.tasks.base import completion_text
from ptft.training.corpus import load_corpus, split_documents


@pytest.fixture(scope="module")
def windows(tiny_lm, toys):
    _, tokenizer = tiny_lm
    return text_windows(tokenizer, toys.sentences, n_windows=6, seq_len=32, batch_size=4, max_length=512)


def test_windows_are_fixed_and_fit_the_text(windows) -> None:
    assert [tuple(b.shape) for b in windows] == [(4, 33), (2, 33)]  # inputs and their next tokens


def test_sensitivity_is_zero_without_noise_and_grows_with_sigma(tiny_lm, windows) -> None:
    model, _ = tiny_lm
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clean = heldout_loss(model, windows)
    assert sensitivity(model, windows, sigma=0.0, draws=2, seed=1) == [0.0, 0.0]
    small = sensitivity(model, windows, sigma=0.02, draws=3, seed=1)
    large = sensitivity(model, windows, sigma=0.3, draws=3, seed=1)
    assert sum(small) / 3 < sum(large) / 3 and min(large) > 0
    assert sensitivity(model, windows, sigma=0.02, draws=3, seed=1) == small  # seeded
    assert sensitivity(model, windows, sigma=0.02, draws=3, seed=2) != small
    # the weights are put back exactly
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert heldout_loss(model, windows) == clean


def test_pretraining_heldout_loss_is_the_one_pre_training_logged(tiny_series) -> None:
    from ptft.checkpoints.loading import load_causal_lm
    from ptft.training.args import PretrainSettings

    folder = tiny_series[max(tiny_series)]
    logged = json.loads((folder / "ptft_checkpoint.json").read_text())
    settings = PretrainSettings(**{k: v for k, v in logged["settings"].items() if k != "model"})
    model, tokenizer = load_causal_lm(folder, device="cpu")
    docs = split_documents(load_corpus(settings.corpus, settings.max_documents), settings.heldout_fraction)[1]
    batches = text_windows(tokenizer, docs, settings.heldout_windows, settings.seq_len, settings.batch_size, 512)
    assert heldout_loss(model, batches) == pytest.approx(logged["heldout_loss"], abs=1e-4)


def test_gold_loglik_is_the_mean_log_probability_of_the_gold_tokens(tiny_lm, toys) -> None:
    model, tokenizer = tiny_lm
    task, data = toys.classification(n_eval=3)
    demos = select_demos(data.train, 2, seed=0)
    values, notes = Evaluator(model, tokenizer, batch_size=2).gold_logliks(task, "test", data.eval["test"],
                                                                           "default", demos)
    assert notes == [] and len(values) == 3
    fmt = task.formats["default"]
    prefix = "".join(fmt.render(d) + completion_text(d.target) + "\n\n" for d in demos)
    for ex, value in zip(data.eval["test"], values):
        context = prefix + fmt.render(ex)
        ctx = tokenizer(context)["input_ids"]
        whole = tokenizer(context + completion_text(ex.target))["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), -1)
        gold = [logp[i - 1, whole[i]].item() for i in range(len(ctx), len(whole))]
        assert value == pytest.approx(sum(gold) / len(gold), abs=1e-4)
