"""The fine-tuning methods: which parameters a fine-tuning run trains, and how.

A method is one entry of :data:`METHODS`. The SFT recipe (``ptft.training.finetune``) asks the
cell's method for the extra arguments of trl's ``SFTTrainer`` (LoRA's ``peft_config``) and for
trainer callbacks (HFT's freezing rounds); after training, the engine asks it for the trained model
as a plain model of the checkpoint's architecture (LoRA merges its adapters), how to keep its
weights and how to load kept ones. Torch, peft and transformers are imported inside the methods,
so config validation and ``ptft plan`` can list the methods without them.

To add a method: a subclass with its ``name``, its settings (a frozen dataclass in
``training/args.py``, a field of ``FinetuneArgs`` and of the config's ``finetune`` section named
like the method) and the hooks it changes; its entry in :data:`METHODS`. Cells hash the settings
of non-full methods only, so adding one changes no existing cell id.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from ptft.checkpoints.names import split_block
from ptft.grid import FULL
from ptft.training.args import FinetuneArgs


def save_model(model, tokenizer, path: Path) -> None:
    """Write a model and its tokenizer to ``path`` whole or not at all (through a sibling folder)."""
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


class FinetuneMethod:
    """Full fine-tuning: every parameter trains (the study's method). Other methods override."""

    name = FULL
    # the FinetuneArgs field (and ``finetune.<name>`` config section) holding the settings, if any
    has_settings = False

    def flops_per_parameter_token(self, args: FinetuneArgs) -> float:
        """Training FLOPs per model parameter and token, for ``ptft plan``'s estimate: 2 forward, 2
        backward through the activations, 2 for the weight gradients of what trains."""
        return 6.0

    def trainer_options(self, args: FinetuneArgs) -> dict:
        """Extra keyword arguments of ``SFTTrainer``."""
        return {}

    def callbacks(self, args: FinetuneArgs) -> list:
        """Trainer callbacks the method needs while training (run before ptft's own)."""
        return []

    def merged(self, model):
        """The trained model as a plain model of the checkpoint's architecture, parameters named as
        in the checkpoint (what evaluation, the weight lenses and LiNeS read)."""
        return model

    def save(self, model, tokenizer, path: Path) -> None:
        """Keep the trained weights in ``path`` (``model`` as training returned it: a peft model
        saves its adapter only)."""
        save_model(model, tokenizer, path)

    def load(self, path: Path, load_model: Callable[[str | None], tuple]) -> tuple:
        """The (merged model, tokenizer) of weights kept by :meth:`save`. ``load_model(folder)``
        loads a model the way the engine evaluates it; ``load_model(None)`` loads the BASE
        checkpoint, for a method that keeps only what it adds to it."""
        return load_model(str(path))


class Lora(FinetuneMethod):
    """LoRA through peft, given to trl's ``SFTTrainer`` as its ``peft_config``. Kept weights are
    the adapter alone (peft's ``adapter_model.safetensors``); evaluation uses the merged model,
    whose scores equal the unmerged adapter's (tested)."""

    name = "lora"
    has_settings = True

    def trainer_options(self, args: FinetuneArgs) -> dict:
        from peft import LoraConfig

        lora = args.lora
        targets = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
        return {"peft_config": LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                          target_modules=targets, bias="none", task_type="CAUSAL_LM")}

    @staticmethod
    def unmatched_targets(targets: str | list[str], module_names: list[str]) -> list[str]:
        """The ``target_modules`` entries that name no module (peft's rule: a name matches a module
        whose dotted name is it or ends with ``.name``; a string other than ``all-linear`` is a
        regular expression over whole names)."""
        import re

        if targets == "all-linear":
            return []
        if isinstance(targets, str):
            return [] if any(re.fullmatch(targets, n) for n in module_names) else [targets]
        return [t for t in targets if not any(n == t or n.endswith("." + t) for n in module_names)]

    def flops_per_parameter_token(self, args: FinetuneArgs) -> float:
        return 4.0  # no weight gradients for the frozen matrices (the adapters' are negligible)

    def merged(self, model):
        from peft import PeftModel

        return model.merge_and_unload() if isinstance(model, PeftModel) else model

    def load(self, path: Path, load_model: Callable[[str | None], tuple]) -> tuple:
        from peft import PeftModel

        base, tokenizer = load_model(None)
        return PeftModel.from_pretrained(base, str(path)).merge_and_unload(), tokenizer


class HalfFinetuning(FinetuneMethod):
    """HFT: freezes ``frozen_share`` of every category of every block, drawn with the seed and the
    round's number (:func:`hft_frozen`). The whole run is one round (the paper's stage) unless
    ``redraw_every_epoch`` makes each epoch a round. A frozen parameter gets no gradient, so AdamW
    leaves it exactly as it is, weight decay included (torch skips parameters without a gradient);
    with redraws its optimizer state waits for the next round in which it trains."""

    name = "hft"
    has_settings = True

    def flops_per_parameter_token(self, args: FinetuneArgs) -> float:
        return 4.0 + 2.0 * (1.0 - args.hft.frozen_share)

    def callbacks(self, args: FinetuneArgs) -> list:
        from transformers import TrainerCallback

        share, seed, redraw = args.hft.frozen_share, args.seed, args.hft.redraw_every_epoch

        class FreezeHalf(TrainerCallback):
            def on_epoch_begin(self, targs, state, control, model=None, **kwargs):
                names = [n for n, _ in model.named_parameters()]
                frozen = hft_frozen(names, share, seed, round(state.epoch or 0) if redraw else 0)
                for name, param in model.named_parameters():
                    param.requires_grad_(name not in frozen)

            def on_train_end(self, targs, state, control, model=None, **kwargs):
                for param in model.parameters():  # the freezing ends with the training
                    param.requires_grad_(True)

        return [FreezeHalf()]


METHODS: dict[str, FinetuneMethod] = {m.name: m for m in (FinetuneMethod(), Lora(), HalfFinetuning())}


def get_method(name: str) -> FinetuneMethod:
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown fine-tuning method {name!r} (known: {', '.join(METHODS)})") from None


# -- HFT's parameter categories ------------------------------------------------------------------

OUTSIDE = "outside"
# a block's module path -> its category: the first whose test any part of the path passes (norms
# first: ``post_attention_layernorm`` is a norm)
_CATEGORIES = (("norm", lambda part: "norm" in part or part.startswith("ln")),
               ("attention", lambda part: "attn" in part or "attention" in part),
               ("mlp", lambda part: "mlp" in part or "feed_forward" in part or "ffn" in part))


def _category(path: str) -> str:
    parts = path.lower().split(".")
    return next((name for name, test in _CATEGORIES if any(test(p) for p in parts)), "other")


def hft_units(names: list[str]) -> dict[tuple[int, str], list[str]]:
    """Parameters grouped into HFT's freezing units (a module: its weight and bias freeze
    together), by (block, category): category ``attention``, ``mlp`` or ``norm`` (else ``other``)
    inside 1-based block ``b``, and ``(0, 'outside')`` for what lies outside the blocks
    (embeddings, the final norm, an untied head). Returns {(block, category): [module, ...]}, in
    the order of ``names``."""
    groups: dict[tuple[int, str], list[str]] = {}
    for name in names:
        module = name.rsplit(".", 1)[0]
        block, inside = split_block(name)
        key = (block, _category(inside.rsplit(".", 1)[0])) if block else (0, OUTSIDE)
        units = groups.setdefault(key, [])
        if module not in units:
            units.append(module)
    return groups


def hft_frozen(names: list[str], frozen_share: float, seed: int, round_index: int) -> set[str]:
    """The parameters HFT freezes in round ``round_index``. In every (block, category) of
    :func:`hft_units` with n modules, floor or ceil of ``frozen_share`` x n modules are drawn
    uniformly; across the blocks of a category the ceil goes to as many blocks (drawn too) as make
    the category's frozen total round(``frozen_share`` x its modules). A pure function of its
    arguments: the draw uses its own generator, never the training's random state."""
    import numpy as np

    rng = np.random.default_rng([seed, round_index])
    groups = hft_units(names)
    by_category: dict[str, list[tuple[int, str]]] = {}
    for key in groups:
        by_category.setdefault(key[1], []).append(key)
    frozen_modules: set[str] = set()
    for category, keys in by_category.items():
        sizes = np.array([len(groups[k]) for k in keys])
        floors = np.floor(frozen_share * sizes).astype(int)
        extra = int(round(frozen_share * sizes.sum())) - int(floors.sum())
        can = np.flatnonzero(floors < sizes)
        ceil = set(rng.choice(can, size=min(max(extra, 0), len(can)), replace=False).tolist())
        for i, key in enumerate(keys):
            count = floors[i] + (1 if i in ceil else 0)
            units = groups[key]
            frozen_modules.update(units[j] for j in rng.choice(len(units), size=count, replace=False))
    return {n for n in names if n.rsplit(".", 1)[0] in frozen_modules}
