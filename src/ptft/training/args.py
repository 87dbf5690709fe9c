"""The arguments of every kind of training, as frozen dataclasses validated when they are made.

Torch-free on purpose: the config schema is made of :class:`PretrainSettings`, :class:`SftRecipe`
and the methods' :class:`MethodSettings`, and ``ptft plan`` and config validation must not pay for
importing torch. The engine builds :class:`FinetuneArgs` and :class:`InstructArgs` from the study
config and passes them whole, so a new setting is a field here, which is its config key as well,
and its use in the one consumer.
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


# A setting declared with this metadata is not an input of a fine-tuning run's hash (see
# ptft.config.training_inputs): the grid's axes (hashed by the cells they make), a method's settings
# (hashed by that method's cells alone), a setting with a rule of its own (packing:
# ``ptft.engine.cells.packing_inputs``; evaluation points: part of the FT cells' ids, not of the
# training), or an execution detail that cannot change a number (activation checkpointing recomputes
# the same activations, as test_finetune checks; kept weights; the selection rule, applied after
# training).
NOT_HASHED = {"training_input": False}


@dataclass(frozen=True)
class MethodSettings:
    """The settings of a fine-tuning method that has some (``finetune.<method>`` in a config),
    declared in the method's own module. ``learning_rates``: the method's own (LoRA usually needs
    about 10x those of full fine-tuning); empty: the same as full fine-tuning's."""

    learning_rates: list[float] = field(default_factory=list)

    def __post_init__(self):
        check_rates(f"finetune.{self.section}.learning_rates", self.learning_rates)

    # the method's name: its key under ``finetune`` in a config and in error messages
    section = ""


def check_rates(key: str, rates: list[float]) -> None:
    if any(lr <= 0 for lr in rates):
        raise ConfigError(f"{key}: learning rates must be positive, got {rates}")


@dataclass(frozen=True)
class SftRecipe:
    """The study's SFT recipe, declared once: the config's ``finetune`` section
    (``ptft.config.FinetuneConfig``) and each training run's :class:`FinetuneArgs` are this plus
    what each adds. AdamW, linear schedule with ``warmup`` as a fraction of the steps (transformers
    reads a ``warmup_steps`` below 1 as that fraction)."""

    epochs: float = 3.0
    batch_size: int = 8
    grad_accum: int = 1
    warmup: float = 0.03
    weight_decay: float = 0.0
    max_length: int = 512
    bf16: bool = False
    # batches of similar lengths (transformers' LengthGroupedSampler, still seeded): much less
    # padding, a different batch composition from the plain shuffle the paper used
    group_by_length: bool = False
    # trl's default: activations recomputed in the backward pass, which saves memory on large
    # models and costs about 15 % of the time on small ones; the numbers are the same either way
    activation_checkpointing: bool = field(default=True, metadata=NOT_HASHED)
    # examples packed whole into rows of max_length tokens, each attending only to itself, and
    # batch_tokens tokens per optimizer step (rows = batch_tokens // max_length): the steps hold as
    # many examples as fit, not batch_size (see ptft.training.packing). Used where the model's
    # attention keeps packed examples apart (checked on the model); batch_size and group_by_length
    # then set the dev-loss batches only
    packing: bool = field(default=True, metadata=NOT_HASHED)
    batch_tokens: int = field(default=4096, metadata=NOT_HASHED)

    def __post_init__(self):
        for name in ("batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"finetune.{name}: must be at least 1, got {getattr(self, name)}")
        if self.packing and self.batch_tokens < self.max_length:
            raise ConfigError(f"finetune.batch_tokens: {self.batch_tokens} is below finetune.max_length "
                              f"({self.max_length}); a packed step holds rows of max_length tokens: raise "
                              "batch_tokens, lower max_length or set finetune.packing: false")
        if self.epochs <= 0:
            raise ConfigError(f"finetune.epochs: must be positive, got {self.epochs}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"finetune.warmup: a fraction of the training steps in [0, 1), got {self.warmup}")


@dataclass(frozen=True, kw_only=True)
class FinetuneArgs(SftRecipe):
    """One training run (task fine-tuning and instruction tuning alike): the recipe at ``lr``,
    batch order fixed by ``seed``, the parameters ``method`` (a name of
    ``ptft.training.methods.METHODS``) trains, with ``settings``, that method's settings (None:
    its defaults)."""

    lr: float
    seed: int
    method: str = FULL
    settings: MethodSettings | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.lr <= 0:
            raise ConfigError(f"fine-tuning lr: must be positive, got {self.lr}")
        if self.settings is not None and self.settings.section != self.method:
            raise ConfigError(f"fine-tuning settings: {type(self.settings).__name__} are finetune."
                              f"{self.settings.section}'s, not those of method {self.method!r}")

    @classmethod
    def from_settings(cls, recipe: SftRecipe, **given) -> FinetuneArgs:
        """The recipe's settings taken from ``recipe`` (the config's ``finetune`` section), the rest
        (at least ``lr`` and ``seed``) from ``given``, which wins."""
        taken = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(SftRecipe) if f.name not in given}
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
