"""LoRA (Hu et al. 2021) through peft: its settings (``finetune.lora`` in a config) and its hooks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ptft.errors import ConfigError
from ptft.training.args import FinetuneArgs, MethodSettings
from ptft.training.methods.full import FinetuneMethod


@dataclass(frozen=True)
class LoraSettings(MethodSettings):
    """W = W0 + (alpha / r) B A on ``target_modules`` (peft's names; ``all-linear`` is every linear
    layer of the blocks, not the output head), the rest frozen."""

    section = "lora"
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"

    def __post_init__(self):
        super().__post_init__()
        key = f"finetune.{self.section}"
        if self.r < 1 or self.alpha <= 0:
            raise ConfigError(f"{key}: r must be at least 1 and alpha positive, got r={self.r}, alpha={self.alpha:g}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{key}.dropout: a probability in [0, 1), got {self.dropout:g}")
        if not self.target_modules:
            raise ConfigError(f"{key}.target_modules: name the modules to adapt (or all-linear)")


class Lora(FinetuneMethod):
    """LoRA given to trl's ``SFTTrainer`` as its ``peft_config``. Kept weights are the adapter alone
    (peft's ``adapter_model.safetensors``); evaluation uses the merged model, whose scores equal
    the unmerged adapter's (tested)."""

    name = "lora"
    settings = LoraSettings

    def trainer_options(self, args: FinetuneArgs) -> dict:
        from peft import LoraConfig

        lora = self.settings_of(args)
        targets = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
        return {"peft_config": LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                          target_modules=targets, bias="none", task_type="CAUSAL_LM")}

    def check_model(self, settings: LoraSettings, architecture: Callable[[], object]) -> None:
        """``target_modules`` must name modules of the series' architecture: peft would otherwise
        fail every LoRA cell, after the pre-training."""
        if settings.target_modules == "all-linear":
            return
        model = architecture()
        if model is None:  # a Hub series out of reach: the cells will tell
            return
        missing = self.unmatched_targets(settings.target_modules, [name for name, _ in model.named_modules() if name])
        if missing:
            import torch

            layers = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                             if isinstance(module, (torch.nn.Linear, torch.nn.Embedding))})
            raise ConfigError(f"finetune.lora.target_modules: {', '.join(missing)} name(s) no module of the "
                              f"series' model ({type(model).__name__}); its linear and embedding layers are "
                              f"{', '.join(layers)}: name some of those, or use all-linear")

    @staticmethod
    def unmatched_targets(targets: str | list[str], module_names: list[str]) -> list[str]:
        """The ``target_modules`` entries that name no module (peft's rule: a name matches a module
        whose dotted name is it or ends with ``.name``; a string other than ``all-linear`` is a
        regular expression over whole names)."""
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
