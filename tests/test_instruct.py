"""Instruction tuning: OLMo's chat layout, loss on assistant turns only, and IT cells end to end."""

from __future__ import annotations

import dataclasses
import logging
import math

import pytest
import torch
import yaml

from ptft.checkpoints.loading import load_causal_lm
from ptft.training.args import InstructArgs
from ptft.training.instruct import (OLMO_CHAT_TEMPLATE, OLMO_TRAINING_TEMPLATE, InstructionData, chat_template_for,
                                    fit_conversation, instruction_tune)

CONVERSATION = [
    {"role": "system", "content": "Answer in a few words."},
    {"role": "user", "content": "Name a long river in Africa."},
    {"role": "assistant", "content": "The Nile, which flows north."},
    {"role": "user", "content": "And the largest city on it?"},
    {"role": "assistant", "content": "Cairo."},
]


@pytest.fixture
def tok(tiny_model_dir):
    return load_causal_lm(tiny_model_dir)[1]


def assistant_spans(text: str, conversation: list[dict], eos: str) -> list[tuple[int, int]]:
    """Character spans of each assistant content + EOS in the rendered text, found independently
    of the template's generation markers."""
    spans, pos = [], 0
    for m in conversation:
        if m["role"] == "assistant":
            piece = "<|assistant|>\n" + m["content"] + eos
            start = text.index(piece, pos) + len("<|assistant|>\n")
            spans.append((start, start + len(m["content"] + eos)))
            pos = start
    return spans


def test_template_is_olmos_layout(tok):
    user_assistant = [m for m in CONVERSATION if m["role"] != "system"]
    ours = tok.apply_chat_template(user_assistant, chat_template=OLMO_TRAINING_TEMPLATE, tokenize=False)
    olmo = tok.apply_chat_template(user_assistant, chat_template=OLMO_CHAT_TEMPLATE, tokenize=False)
    assert ours == olmo == ("<|endoftext|><|user|>\nName a long river in Africa.\n<|assistant|>\n"
                            "The Nile, which flows north.<|endoftext|>\n<|user|>\nAnd the largest city on it?\n"
                            "<|assistant|>\nCairo.<|endoftext|>\n")
    prompt = user_assistant[:1]
    assert (tok.apply_chat_template(prompt, chat_template=OLMO_TRAINING_TEMPLATE, tokenize=False,
                                    add_generation_prompt=True)
            == tok.apply_chat_template(prompt, chat_template=OLMO_CHAT_TEMPLATE, tokenize=False,
                                       add_generation_prompt=True)
            == "<|endoftext|><|user|>\nName a long river in Africa.\n<|assistant|>\n")
    with_system = tok.apply_chat_template(CONVERSATION, chat_template=OLMO_TRAINING_TEMPLATE, tokenize=False)
    assert with_system.startswith("<|endoftext|><|system|>\nAnswer in a few words.\n<|user|>\n")


def test_chat_template_choice(tok, caplog):
    assert tok.chat_template is None
    assert chat_template_for(tok)[0] == OLMO_TRAINING_TEMPLATE
    own = OLMO_TRAINING_TEMPLATE.replace("<|user|>", "<|human|>")
    tok.chat_template = own
    assert chat_template_for(tok) == (own, "tokenizer")
    # a template trl knows how to patch (Qwen2.5's) becomes trl's training variant of it
    import trl.chat_template_utils as trl_templates

    tok.chat_template = trl_templates.qwen2_5_chat_template
    assert chat_template_for(tok) == (trl_templates.qwen2_5_training_chat_template,
                                      "tokenizer (trl's training variant)")
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with caplog.at_level(logging.WARNING, logger="ptft.training.instruct"):
        template, source = chat_template_for(tok)
    assert template == OLMO_TRAINING_TEMPLATE and source.startswith("olmo")
    assert "cannot patch" in caplog.text


def test_labels_are_masked_exactly_outside_assistant_turns(tiny_model_dir, tmp_path):
    """trl's assistant_only_loss with our template: a label is the token id on every token of an
    assistant turn's text and its closing EOS, and -100 on everything else (the leading EOS, role
    headers, system and user text, the newline after each answer)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tok = load_causal_lm(tiny_model_dir)
    tok.chat_template = OLMO_TRAINING_TEMPLATE
    trainer = SFTTrainer(model=model, args=SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[],
                                                     activation_checkpointing=False,
                                                     assistant_only_loss=True, max_length=256),
                         train_dataset=Dataset.from_list([{"messages": CONVERSATION}]), processing_class=tok)
    item = trainer.train_dataset[0]
    text = tok.apply_chat_template(CONVERSATION, tokenize=False)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert item["input_ids"] == enc["input_ids"]
    spans = assistant_spans(text, CONVERSATION, tok.eos_token)
    expected, n_inside = [], 0
    for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]):
        inside = [s <= a and b <= e for s, e in spans]
        straddles = [a < e and b > s and not (s <= a and b <= e) for s, e in spans]
        assert not any(straddles), f"token {tok.decode([tid])!r} crosses an assistant boundary"
        expected.append(tid if any(inside) else -100)
        n_inside += any(inside)
    assert item["labels"] == expected
    assert 0 < n_inside < len(expected)
    # what carries a loss is exactly the two answers, each closed by EOS
    trained = [t for t in item["labels"] if t != -100]
    assert tok.decode(trained) == "The Nile, which flows north.<|endoftext|>Cairo.<|endoftext|>"
    assert item["labels"][0] == -100  # the leading EOS of OLMo's layout


def test_long_conversations_keep_their_last_answer(tok):
    long_user = " ".join(["The river runs past the old city walls."] * 60)
    conv = [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": long_user}, {"role": "assistant", "content": "A river."}]
    fitted = fit_conversation(conv, tok, OLMO_TRAINING_TEMPLATE, max_length=64)
    ids = tok.apply_chat_template(fitted, chat_template=OLMO_TRAINING_TEMPLATE, tokenize=True)["input_ids"]
    assert len(ids) <= 64
    assert [m["role"] for m in fitted] == ["user", "assistant"]  # the first exchange went first
    assert fitted[-1]["content"] == "A river." and long_user.endswith(fitted[0]["content"])
    short = conv[:2]
    assert fit_conversation(short, tok, OLMO_TRAINING_TEMPLATE, max_length=64) is short


def answer_logprob(model, tok, conv: list[dict]) -> float:
    enc = tok.apply_chat_template(conv, chat_template=OLMO_TRAINING_TEMPLATE, tokenize=True,
                                  return_assistant_tokens_mask=True)
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
    return sum(logp[i - 1, ids[i]].item() for i in range(1, len(ids)) if mask[i])


def test_instruction_tuning_learns_the_answers(tiny_model_dir):
    from ptft.config import StudyConfig

    model, tok = load_causal_lm(tiny_model_dir)
    convs = [{"messages": [{"role": "user", "content": f"Which word is number {i % 4}?"},
                           {"role": "assistant", "content": ["river", "city", "music", "island"][i % 4]}]}
             for i in range(40)]
    config = StudyConfig()
    config.instruction_tuning.lr, config.instruction_tuning.epochs = 1e-2, 2
    # steps of 8 conversations, counted by hand below
    config.finetune = dataclasses.replace(config.finetune, max_length=64, packing=False)
    dev = convs[:8]
    before = sum(answer_logprob(model, tok, c["messages"]) for c in dev)
    args = InstructArgs.from_config(config, seed=0)
    _, result = instruction_tune(model, tok, args, progress=False, data=InstructionData(convs[8:], dev))
    after = sum(answer_logprob(model, tok, c["messages"]) for c in dev)
    assert result.steps == 8 and math.isfinite(result.train_loss) and math.isfinite(result.dev_loss)
    assert result.tokens > 0 and result.tokens_per_second > 0
    assert after > before + 5
    # packed (rows of 128 tokens, two a step: conversations of about 63 tokens, two a row) it learns
    # the answers too: the loss stays on them
    config.finetune = dataclasses.replace(config.finetune, packing=True, max_length=128, batch_tokens=256)
    packed_model = load_causal_lm(tiny_model_dir)[0]
    _, packed = instruction_tune(packed_model, tok, InstructArgs.from_config(config, seed=0), progress=False,
                                 data=InstructionData(convs[8:], dev))
    assert packed.examples_per_step > 2 and packed.steps == round(2 * 32 / packed.examples_per_step)
    assert sum(answer_logprob(packed_model, tok, c["messages"]) for c in dev) > before + 5
    # the dev loss is the assistant-token loss: mean -log p over answer tokens and their EOS
    n_tokens = sum(len(tok(c["messages"][1]["content"], add_special_tokens=False).input_ids) + 1 for c in dev)
    assert abs(result.dev_loss - (-after / n_tokens)) < 0.05
    assert tok.chat_template == OLMO_TRAINING_TEMPLATE  # kept weights reload with the template


def test_instruction_tuning_cells_end_to_end(tiny_series, tmp_path):
    """A study with instruction tuning on real natural-instructions conversations: IT cells train
    each checkpoint and evaluate it on the offline multiple-choice suite, next to BASE-MC cells."""
    from ptft.api import run
    from ptft.store import results_frame

    steps = sorted(tiny_series)[-2:]
    study = {
        "name": "it-e2e", "seed": 7, "output_dir": str(tmp_path / "run"),
        "checkpoints": {"source": "local", "local": {"paths": [str(tiny_series[s]) for s in steps]}},
        "tasks": [{"name": "sentiment", "train": False, "n_train": 8, "n_dev": 4, "n_eval": 8}],
        "finetune": {"batch_size": 8, "max_length": 256, "learning_rates": [1e-3], "packing": False},
        "instruction_tuning": {"enabled": True, "mixture": "mixed_instructions", "n_train": 24, "n_dev": 8,
                               "epochs": 1, "lr": 1e-3, "max_length": 256, "n_eval": 12,
                               "suite": ["mc_openbookqa", "mc_piqa"]},
        "evaluation": {"shots": [0], "formats": ["default"], "methods": ["tokenprob"], "n_bootstrap": 50,
                       "out_of_domain": False},
    }
    path = tmp_path / "it.yaml"
    path.write_text(yaml.safe_dump(study))
    result = run(path, progress=False)
    assert not result.failed
    df = results_frame(result.run_dir)
    it = df[df.train_task == "instruct"]
    assert sorted(it.checkpoint.unique()) == sorted(f"step{s}" for s in steps)
    assert set(it.eval_set) == {"mc_openbookqa", "mc_piqa"}
    assert set(it.task_type) == {"multiple_choice"} and (it.lr == 1e-3).all()
    acc = it[it.metric.str.startswith("acc")]
    assert len(acc) and acc.value.between(0, 1).all() and (acc.n == acc.n.iloc[0]).all()
    base_mc = df[(df.train_task == "") & df.eval_set.isin(["mc_openbookqa", "mc_piqa"])]
    assert len(base_mc) == len(it)  # a BASE counterpart for every IT number
    from ptft.store import ResultsStore

    with ResultsStore(result.run_dir / "results.sqlite") as store:
        trainings = store.frame("trainings")
    trainings = trainings[trainings.train_task == "instruct"]
    assert len(trainings) == len(steps)
    assert trainings.train_loss.map(math.isfinite).all() and trainings.dev_loss.map(math.isfinite).all()
    assert (trainings.steps == 3).all()  # 24 conversations, batch 8, one epoch
