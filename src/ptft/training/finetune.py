"""Supervised fine-tuning of one checkpoint on one task, with trl's SFTTrainer.

The training set is prompt/completion pairs in the task's Default format: trl masks the prompt
tokens (labels -100) and appends EOS to the completion. AdamW, linear schedule, warm-up as a
fraction of the steps, no weight decay by default: the study's recipe, with every parameter
trained (full fine-tuning, the study's) or those a method of ``ptft.training.methods`` chooses.
After training, the completion-only loss on the task's dev split is what learning-rate selection
compares.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import torch

from ptft.checkpoints.loading import fine_tuning_attention
from ptft.tasks import Example, PromptFormat, completion_text
from ptft.tracking import TrainingReport
from ptft.training.args import FinetuneArgs
from ptft.training.methods import get_method

log = logging.getLogger("ptft.training")
# fewer optimizer steps than this are worth a warning: with warm-up the first has learning rate 0
FEW_STEPS = 10


@dataclass
class FinetuneResult:
    train_loss: float
    dev_loss: float
    steps: int
    tokens: int
    seconds: float
    # parameters the optimizer updated, averaged over rounds (HFT redrawn every epoch trains a
    # different half each)
    trainable_parameters: int = 0
    # MiB: torch's peak allocation on a GPU; on a CPU, the rise of the process's resident memory
    # during training (None where the platform tells neither)
    peak_memory_mb: float | None = None
    # training examples per optimizer step, on average: batch_size unpacked, more when packed
    examples_per_step: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class NonFiniteLoss(FloatingPointError):
    pass


# Called during training with the model, the fraction of the training steps done and the step.
EvaluateDuring = Callable[[object, float, int], None]


def steps_at(fractions: Sequence[float], total: int) -> dict[float, int]:
    """The optimizer step at which each fraction of ``total`` steps is done: the nearest, at
    least the first (so a point exists however short the run)."""
    return {f: min(total, max(1, round(f * total))) for f in fractions}


def distinct_steps(fractions: Sequence[float], total: int) -> tuple[dict[float, int], list[float]]:
    """The intermediate points to evaluate, one per distinct step: a point that lands on the step
    of a smaller one, or on the last step (the final model is evaluated anyway, as point 1.0), is
    merged into it and returned apart, so no model is scored twice under two names."""
    kept, merged, taken = {}, [], {total}
    for fraction, step in sorted(steps_at(fractions, total).items()):
        if step in taken:
            merged.append(fraction)
        else:
            kept[fraction] = step
            taken.add(step)
    return kept, merged


@contextlib.contextmanager
def rng_preserved() -> Iterator[None]:
    """Whatever runs inside leaves the random state of Python, numpy and torch (CPU and every CUDA
    device) as it found it: an evaluation during training must not change what the training draws
    next (dropout masks; the batch order has its own generator)."""
    import random

    import numpy as np

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def prompt_completion_rows(examples: list[Example], fmt: PromptFormat, tokenizer, max_length: int) -> list[dict]:
    """The SFT rows. A prompt too long for ``max_length`` loses its *start*, so the cue and the
    completion (the only part with a loss) always survive truncation."""
    rows = []
    for ex in examples:
        prompt, completion = fmt.render(ex), completion_text(ex.target)
        budget = max_length - len(tokenizer(completion, add_special_tokens=False)["input_ids"]) - 2
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) > budget:
            prompt = tokenizer.decode(ids[len(ids) - max(budget, 1):]).lstrip(" ")
        rows.append({"prompt": prompt, "completion": completion})
    return rows


def completion_loss(model, inputs: dict, num_items_in_batch=None) -> torch.Tensor:
    """The summed cross-entropy of the tokens that have a label (the completion; -100 elsewhere),
    divided by ``num_items_in_batch`` (the Trainer's count over a gradient-accumulation step) or by
    their number: the loss trl computes, with the logits computed only at the positions that
    predict a labelled token. Fine-tuning examples are mostly prompt, so the vocabulary projection
    of every other position (trl's fused head computes it everywhere on devices without Triton:
    about 40 % of a `tiny` training step on a CPU) is skipped. A position is kept if any row of
    the batch has a label after it; other rows' labels there are -100 and count for nothing."""
    labels = inputs["labels"]
    targets = labels[:, 1:]
    wrapped = model.get_base_model() if hasattr(model, "get_base_model") else model
    rest = {k: v for k, v in inputs.items() if k != "labels"}
    # the class's own forward: trl replaces the instance's with a wrapper taking **kwargs
    if "logits_to_keep" in inspect.signature(type(wrapped).forward).parameters:
        kept = (targets != -100).any(dim=0).nonzero().squeeze(1)
        logits, targets = model(**rest, logits_to_keep=kept).logits, targets[:, kept]
    else:
        logits = model(**rest).logits[:, :-1]
    total = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100,
                                              reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum()
    return total / torch.as_tensor(count, device=total.device).clamp(min=1)


def finetune(model, tokenizer, train: list[Example], dev: list[Example], fmt: PromptFormat, args: FinetuneArgs, *,
             progress: bool = True, report: TrainingReport | None = None, during: Sequence[float] = (),
             evaluate: EvaluateDuring | None = None) -> tuple[object, FinetuneResult]:
    """Fine-tune ``model`` with ``args.method`` and return the trained model and the losses (see
    :func:`sft_train`). The batch order is fixed by ``args.seed``. ``evaluate(model, fraction,
    step)`` runs at each fraction of the steps in ``during``."""
    return sft_train(model, tokenizer, prompt_completion_rows(train, fmt, tokenizer, args.max_length),
                     prompt_completion_rows(dev, fmt, tokenizer, args.max_length), args, loss="completion",
                     progress=progress, report=report, during=during, evaluate=evaluate)


def sft_train(model, tokenizer, train_rows: list[dict], dev_rows: list[dict], args: FinetuneArgs, *,
              loss: Literal["completion", "assistant"], progress: bool = True,
              report: TrainingReport | None = None, during: Sequence[float] = (),
              evaluate: EvaluateDuring | None = None) -> tuple[object, FinetuneResult]:
    """The study's SFT recipe with trl's ``SFTTrainer``, shared by task fine-tuning and instruction
    tuning. ``args.method`` (``ptft.training.methods``) says what trains: ``model`` itself is
    trained in place, and the model returned is the one the trainer trained (the same object, or a
    peft model wrapping it for LoRA: ``get_method(args.method).merged`` makes it plain again).
    ``loss="completion"``: rows are ``{"prompt", "completion"}`` and only completion tokens (plus
    the EOS trl appends) carry a loss. ``loss="assistant"``: rows are ``{"messages": [...]}``
    rendered with the tokenizer's chat template, which must mark assistant text with
    ``{% generation %}``; only those tokens carry a loss. Trains ``model`` in place. ``report``
    (``ptft.tracking``) sends the training curves to TensorBoard / W&B through trl's ``report_to``.
    ``evaluate(model, fraction, step)`` is called after the optimizer step at which each fraction
    in ``during`` of the training steps is done, with the model in eval mode and the random state
    kept, so the training goes on exactly as it would have without it."""
    import datasets
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig, SFTTrainer

    # imports trl too: deferred with it, for the start-up time of everything that never trains
    from ptft.training.packing import PackedCollator, keeps_examples_apart, pack_rows

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    train_ds = Dataset.from_list(train_rows)
    dev_ds = Dataset.from_list(dev_rows)
    on_cpu = next(model.parameters()).device.type == "cpu"

    class QuietProgress(ProgressCallback):
        """The step bar without a printed dict per logging step."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.training_bar is not None and logs and "loss" in logs:
                self.training_bar.set_postfix(loss=logs["loss"])

    class CompletionLossTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = completion_loss(model, inputs, num_items_in_batch)
            return (loss, None) if return_outputs else loss

    class StopOnNonFinite(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                raise NonFiniteLoss(f"fine-tuning loss became {loss} at step {state.global_step}; lower the learning rate")

    class CountTrainable(TrainerCallback):
        """What the optimizer updates, counted at the first step of every round (after a method's
        own callbacks, which run first, have chosen it)."""

        def __init__(self):
            self.counts: list[int] = []
            self.epoch = None

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            if self.epoch != int(state.epoch or 0):
                self.epoch = int(state.epoch or 0)
                self.counts.append(sum(p.numel() for p in model.parameters() if p.requires_grad))

    class EvaluateAt(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.steps, merged = distinct_steps(during, state.max_steps)
            if merged:
                log.warning("finetune.eval_at: %s land on the step of an earlier point or on the last of %d "
                            "steps; evaluated once there", ", ".join(f"{f:g}" for f in merged), state.max_steps)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            for fraction, step in self.steps.items():
                if step == state.global_step:
                    was_training = model.training
                    model.eval()
                    with rng_preserved(), torch.no_grad():
                        evaluate(model, fraction, step)
                    model.train(was_training)

    masking = {"completion_only_loss": True} if loss == "completion" else \
        {"assistant_only_loss": True, "completion_only_loss": False}
    # spelt as transformers names it now: trl sets the deprecated `gradient_checkpointing`, which
    # warns unless the new field is given
    checkpointing = {"activation_checkpointing": args.activation_checkpointing} \
        if "activation_checkpointing" in {f.name for f in dataclasses.fields(SFTConfig)} \
        else {"gradient_checkpointing": args.activation_checkpointing}
    reporting = report.environment() if report else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="ptft-sft-") as tmp, reporting, \
            training_attention(model, args.bf16) as attention:
        packed = args.packing and keeps_examples_apart(model, args.bf16)
        if args.packing and not packed:
            log.warning("finetune.packing: the attention of %s does not keep packed examples apart; training on "
                        "padded batches of finetune.batch_size examples instead", type(model).__name__)
        sft_config = SFTConfig(
            output_dir=tmp, num_train_epochs=args.epochs, learning_rate=args.lr,
            per_device_train_batch_size=max(1, args.batch_tokens // args.max_length) if packed else args.batch_size,
            per_device_eval_batch_size=args.batch_size,
            # transformers reads a warmup_steps below 1 as a fraction of the training steps
            gradient_accumulation_steps=args.grad_accum, lr_scheduler_type="linear", warmup_steps=args.warmup,
            weight_decay=args.weight_decay, optim="adamw_torch", max_length=args.max_length, packing=False,
            seed=args.seed, data_seed=args.seed,
            train_sampling_strategy="group_by_length" if args.group_by_length and not packed else "random",
            bf16=args.bf16, use_cpu=on_cpu, save_strategy="no", eval_strategy="no",
            report_to=list(report.report_to) if report else [], run_name=report.run_name if report else None,
            logging_steps=5, disable_tqdm=not progress, dataset_num_proc=None, remove_unused_columns=True,
            prediction_loss_only=True,
            **masking, **checkpointing,
        )
        method = get_method(args.method)
        counter = CountTrainable()
        collator = None
        if packed:
            # trl's own choice of pad token, which it makes only when it builds the collator itself
            tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
            collator = PackedCollator(pad_token_id=tokenizer.pad_token_id, padding_free=attention.startswith("flash"))
        trainer = CompletionLossTrainer(model=model, args=sft_config, train_dataset=train_ds, eval_dataset=dev_ds,
                             processing_class=tokenizer, data_collator=collator, **method.trainer_options(args),
                             callbacks=method.callbacks(args) + [counter, StopOnNonFinite()]
                             + ([EvaluateAt()] if during and evaluate else []))
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        if progress:
            trainer.add_callback(QuietProgress())
        examples = len(trainer.train_dataset)
        if packed:
            # after trl's tokenization and labelling, which packing must not redo
            trainer.train_dataset = pack_rows(trainer.train_dataset, args.max_length)
        tokens = sum(len(r) for r in trainer.train_dataset["input_ids"])
        batches = math.ceil(len(trainer.train_dataset) / sft_config.per_device_train_batch_size)
        steps = math.ceil(batches / args.grad_accum * args.epochs)
        if steps < FEW_STEPS:
            rows = f", packed into {len(trainer.train_dataset)} rows" if packed else ""
            log.warning("fine-tuning takes only %d optimizer step(s) (%d examples%s): the warm-up and the linear "
                        "decay leave little to learn; lower finetune.batch_tokens (or batch_size) for more, smaller "
                        "steps", steps, len(train_rows), rows)
        start = time.perf_counter()
        with peak_memory(on_cpu) as peak:
            out = trainer.train()
        seconds = time.perf_counter() - start
        dev_loss = trainer.evaluate()["eval_loss"]
        trained = trainer.model
    if not math.isfinite(out.training_loss):
        raise NonFiniteLoss(f"fine-tuning loss became {out.training_loss}; lower the learning rate")
    trained.eval()
    return trained, FinetuneResult(train_loss=float(out.training_loss), dev_loss=float(dev_loss),
                                   steps=out.global_step, tokens=int(tokens * args.epochs), seconds=seconds,
                                   trainable_parameters=round(sum(counter.counts) / max(len(counter.counts), 1)),
                                   peak_memory_mb=peak.get("mb"),
                                   examples_per_step=examples * args.epochs / max(out.global_step, 1))


@contextlib.contextmanager
def training_attention(model, bf16: bool) -> Iterator[str]:
    """The model on the attention kernels fine-tuning runs with (:func:`fine_tuning_attention`,
    FlashAttention 2 where a GPU has it), and back on its own afterwards: evaluation stays on SDPA."""
    first = next(model.parameters())
    own = model.config._attn_implementation
    wanted = fine_tuning_attention(str(first.device), bf16 or first.dtype != torch.float32)
    if wanted != own:
        try:
            model.set_attn_implementation(wanted)
        except (ImportError, ValueError) as err:
            # the run's numerics already name these kernels: training on others would mislabel them
            raise RuntimeError(f"flash-attn is installed but transformers cannot use it ({err}); repair or "
                               "uninstall flash-attn") from err
    try:
        yield wanted
    finally:
        if wanted != own:
            model.set_attn_implementation(own)


@contextlib.contextmanager
def peak_memory(on_cpu: bool) -> Iterator[dict]:
    """The peak memory of what runs inside, in MiB, put in the yielded dict as ``mb``: on a GPU,
    torch's peak allocation (weights included); on a CPU, how far the process's resident memory
    rose above what it held on entry (optimizer state, gradients, activations: what training adds),
    measured by resetting Linux's high-water mark (``/proc/self/clear_refs``) and reading
    ``VmHWM``. Where neither is available nothing is put."""
    found: dict = {}
    if not on_cpu and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        yield found
        found["mb"] = torch.cuda.max_memory_allocated() / 2**20
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
        start = _status_kib("VmRSS")
    except (OSError, KeyError):
        yield found
        return
    yield found
    found["mb"] = (_status_kib("VmHWM") - start) / 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
