"""Half Fine-Tuning (Hui et al. 2024): its settings (``finetune.hft`` in a config), its hooks, and
how it groups a model's parameters into the units it freezes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptft.checkpoints.names import split_block
from ptft.errors import ConfigError
from ptft.training.args import FinetuneArgs, MethodSettings
from ptft.training.methods.full import FinetuneMethod


@dataclass(frozen=True)
class HftSettings(MethodSettings):
    """Inside each transformer block and for each category of parameters (attention matrices, MLP
    matrices, norms; the parameters outside the blocks form one more category), ``frozen_share`` of
    the category's parameters are frozen and the rest train, drawn at random with the seed once for
    the training run, a stage in the paper's words ("In each stage, we selectively freeze half of
    the parameters", Fig. 2). ``redraw_every_epoch`` draws again at every epoch instead (ptft's
    behaviour before it followed the paper; over 3 epochs only about an eighth of the modules then
    stays untrained)."""

    section = "hft"
    frozen_share: float = 0.5
    redraw_every_epoch: bool = False

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.frozen_share < 1:
            raise ConfigError(f"finetune.hft.frozen_share: a share in (0, 1), got {self.frozen_share:g}")


class HalfFinetuning(FinetuneMethod):
    """HFT: freezes ``frozen_share`` of every category of every block, drawn with the seed and the
    round's number (:func:`hft_frozen`). The whole run is one round (the paper's stage) unless
    ``redraw_every_epoch`` makes each epoch a round. A frozen parameter gets no gradient, so AdamW
    leaves it exactly as it is, weight decay included (torch skips parameters without a gradient);
    with redraws its optimizer state waits for the next round in which it trains."""

    name = "hft"
    settings = HftSettings

    def flops_per_parameter_token(self, args: FinetuneArgs) -> float:
        return 4.0 + 2.0 * (1.0 - self.settings_of(args).frozen_share)

    def callbacks(self, args: FinetuneArgs) -> list:
        from transformers import TrainerCallback

        hft = self.settings_of(args)
        share, seed, redraw = hft.frozen_share, args.seed, hft.redraw_every_epoch

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
