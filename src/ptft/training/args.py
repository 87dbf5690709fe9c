"""The arguments of every kind of training, as frozen dataclasses validated when they are made.

Torch-free on purpose: the config schema holds :class:`PretrainSettings`, and ``ptft plan`` and
config validation must not pay for importing torch. The engine builds :class:`FinetuneArgs` and
:class:`InstructArgs` from the study config and passes them whole, so a new setting is a field
here (plus its config key when users set it) and its use in the one consumer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ptft.errors import ConfigError
from ptft.grid import FULL

_PRETRAIN = "checkpoints.pretrain"


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    vocab_size: int = 4096
    # the context: at least finetune.max_length (default 512), which the config checks
    max_seq_len: int = 512

    def __post_init__(self):
        key = f"{_PRETRAIN}.model"
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "vocab_size", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}: must be at least 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"{key}.hidden_size: {self.hidden_size} is not divisible by {key}.num_heads "
                              f"({self.num_heads}); each head gets hidden_size / num_heads dimensions")
        if (self.hidden_size // self.num_heads) % 2:
            raise ConfigError(f"{key}: hidden_size / num_heads = {self.hidden_size // self.num_heads} must be "
                              "even (rotary position embeddings rotate pairs of dimensions)")


@dataclass(frozen=True)
class PretrainSettings:
    corpus: list[str] = field(default_factory=lambda: ["wiki"])
    model: ModelShape = field(default_factory=ModelShape)
    steps: int = 600
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.1
    heldout_fraction: float = 0.02
    heldout_windows: int = 64
    bf16: bool = False
    save_steps: list[int] = field(default_factory=list)
    num_checkpoints: int = 4
    first_step: int = 0
    early_checkpoints: int = 1
    max_documents: int | None = None

    def __post_init__(self):
        key = _PRETRAIN
        for name in ("steps", "batch_size", "seq_len", "heldout_windows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}: must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise ConfigError(f"{key}: lr must be positive, warmup_steps and weight_decay non-negative")
        if not 0 < self.heldout_fraction < 1:
            raise ConfigError(f"{key}.heldout_fraction: must lie strictly between 0 and 1, "
                              f"got {self.heldout_fraction}")
        if self.model.max_seq_len < self.seq_len:
            raise ConfigError(f"{key}.model.max_seq_len: {self.model.max_seq_len} is below {key}.seq_len "
                              f"({self.seq_len}), the length of the pre-training windows; raise max_seq_len")
        bad = [s for s in self.save_steps if not 0 < s <= self.steps]
        if bad:
            raise ConfigError(f"{key}.save_steps: {bad[0]} is outside 1..{key}.steps ({self.steps})")
        self.schedule()

    def schedule(self) -> list[int]:
        """The steps at which checkpoints are saved: ``save_steps``, else :func:`checkpoint_schedule`."""
        if self.save_steps:
            return list(self.save_steps)
        try:
            return checkpoint_schedule(self.steps, self.num_checkpoints, self.first_step, self.early_checkpoints)
        except ConfigError as err:
            raise ConfigError(f"checkpoints.{err}") from None


def checkpoint_schedule(total: int, num: int, first: int = 0, early: int = 1) -> list[int]:
    """Steps at which to save: ``first`` (default ~2 % of training), ``early`` more spaced
    geometrically in the first fifth (where the loss falls fastest), the rest evenly spaced up to
    ``total``, which is always the last."""
    if num < 2:
        raise ConfigError(f"pretrain.num_checkpoints must be at least 2 (first and final), got {num}")
    first = first or max(1, round(total * 0.02))
    early = min(early, num - 2)
    late = num - 2 - early
    steps = [first]
    fifth = max(first + 1, round(total * 0.2))
    if early:
        steps += [round(x) for x in np.geomspace(first, fifth, early + 2)[1:-1]] if late else \
                 [round(x) for x in np.geomspace(first, total, early + 2)[1:-1]]
    if late:
        steps += [round(x) for x in np.linspace(fifth, total, late + 1)[:-1]]
    steps.append(total)
    out = sorted(set(s for s in steps if 0 < s <= total))
    if len(out) < num:
        raise ConfigError(f"pretrain: cannot place {num} distinct checkpoints in {total} steps; "
                          "raise pretrain.steps or lower pretrain.num_checkpoints")
    return out


@dataclass(frozen=True)
class LoraSettings:
    """LoRA (Hu et al. 2021) through peft: W = W0 + (alpha / r) B A on ``target_modules`` (peft's
    names; ``all-linear`` is every linear layer of the blocks, not the output head), the rest
    frozen. ``learning_rates``: LoRA's own (it usually needs about 10x those of full fine-tuning);
    empty: the same as full fine-tuning's."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    learning_rates: list[float] = field(default_factory=list)

    def __post_init__(self):
        key = "finetune.lora"
        if self.r < 1 or self.alpha <= 0:
            raise ConfigError(f"{key}: r must be at least 1 and alpha positive, got r={self.r}, alpha={self.alpha:g}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{key}.dropout: a probability in [0, 1), got {self.dropout:g}")
        if not self.target_modules:
            raise ConfigError(f"{key}.target_modules: name the modules to adapt (or all-linear)")
        _check_rates(f"{key}.learning_rates", self.learning_rates)


@dataclass(frozen=True)
class HftSettings:
    """Half Fine-Tuning (Hui et al. 2024): inside each transformer block and for each category of
    parameters (attention matrices, MLP matrices, norms; the parameters outside the blocks form one
    more category), ``frozen_share`` of the category's parameters are frozen and the rest train,
    drawn at random with the seed once for the training run, a stage in the paper's words ("In each
    stage, we selectively freeze half of the parameters", Fig. 2). ``redraw_every_epoch`` draws
    again at every epoch instead (ptft's behaviour before it followed the paper; over 3 epochs only
    about an eighth of the modules then stays untrained). ``learning_rates``: as for LoRA."""

    frozen_share: float = 0.5
    redraw_every_epoch: bool = False
    learning_rates: list[float] = field(default_factory=list)

    def __post_init__(self):
        if not 0 < self.frozen_share < 1:
            raise ConfigError(f"finetune.hft.frozen_share: a share in (0, 1), got {self.frozen_share:g}")
        _check_rates("finetune.hft.learning_rates", self.learning_rates)


def _check_rates(key: str, rates: list[float]) -> None:
    if any(lr <= 0 for lr in rates):
        raise ConfigError(f"{key}: learning rates must be positive, got {rates}")


@dataclass(frozen=True)
class FinetuneArgs:
    """The study's SFT recipe for one training run (task fine-tuning and instruction tuning alike):
    AdamW at ``lr``, linear schedule, ``warmup`` as a fraction of the steps, batch order fixed by
    ``seed``, the parameters ``method`` trains."""

    lr: float
    seed: int
    epochs: float = 3.0
    batch_size: int = 8
    grad_accum: int = 1
    warmup: float = 0.03
    weight_decay: float = 0.0
    max_length: int = 512
    bf16: bool = False
    # batches of similar lengths (transformers' LengthGroupedSampler, still seeded)
    group_by_length: bool = False
    # recompute activations in the backward pass (trl's default): memory for compute, same numbers
    activation_checkpointing: bool = True
    # whole examples packed into rows of max_length tokens, batch_tokens of them per step (see
    # ptft.training.packing); batch_size and group_by_length then apply to unpacked batches only
    packing: bool = True
    batch_tokens: int = 4096
    # how: a name of ptft.training.methods.METHODS, with the settings of the method that has some
    method: str = FULL
    lora: LoraSettings = field(default_factory=LoraSettings)
    hft: HftSettings = field(default_factory=HftSettings)

    def __post_init__(self):
        for name in ("batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"fine-tuning {name}: must be at least 1, got {getattr(self, name)}")
        if self.packing and self.batch_tokens < self.max_length:
            raise ValueError(f"fine-tuning batch_tokens ({self.batch_tokens}) is below max_length "
                             f"({self.max_length}): "
                             "a step must hold at least one row of max_length tokens")
        if self.lr <= 0 or self.epochs <= 0:
            raise ValueError(f"fine-tuning lr and epochs must be positive, got lr={self.lr}, epochs={self.epochs}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"fine-tuning warmup: a fraction of the training steps in [0, 1), got {self.warmup}")

    @classmethod
    def from_settings(cls, settings, **given) -> FinetuneArgs:
        """The arguments named like a field of ``settings`` (the config's ``finetune`` section)
        taken from it, the rest (at least ``lr`` and ``seed``) from ``given``, which wins."""
        fields = {f.name for f in dataclasses.fields(cls)}
        taken = {name: getattr(settings, name) for name in fields - set(given) if hasattr(settings, name)}
        return cls(**taken, **given)


@dataclass(frozen=True)
class InstructArgs:
    """Instruction tuning: ``n_train + n_dev`` conversations of ``mixture`` drawn with
    ``data_seed`` (the same for every checkpoint), ``n_dev`` held out for the dev loss, trained
    with the SFT recipe ``sft`` (assistant-token loss)."""

    mixture: str
    n_train: int | None
    n_dev: int
    data_seed: int
    data_dir: str | None
    sft: FinetuneArgs

    def __post_init__(self):
        if self.n_dev < 1:
            raise ConfigError("instruction_tuning.n_dev: hold out at least one conversation for the dev loss")

    @classmethod
    def from_config(cls, config, seed: int) -> InstructArgs:
        """The IT hyperparameters of ``config`` (a ``ptft.config.StudyConfig``; its
        ``instruction_tuning``: epochs, lr, max_length) with the other SFT settings of ``finetune``;
        ``seed`` orders the batches."""
        it, ft = config.instruction_tuning, config.finetune
        sft = FinetuneArgs.from_settings(ft, lr=it.lr, epochs=it.epochs, max_length=it.max_length or ft.max_length,
                                         seed=seed)
        return cls(mixture=it.mixture, n_train=it.n_train, n_dev=it.n_dev, data_seed=config.seed,
                   data_dir=config.data_dir, sft=sft)
