"""Full fine-tuning, every parameter trains (the study's method), and the hooks every method has:
the base class of the others.

The SFT recipe (``ptft.training.finetune``) asks the cell's method for the extra arguments of trl's
``SFTTrainer`` (LoRA's ``peft_config``) and for trainer callbacks (HFT's freezing rounds); after
training, the engine asks it for the trained model as a plain model of the checkpoint's
architecture (LoRA merges its adapters), how to keep its weights and how to load kept ones. Torch,
peft and transformers are imported inside the hooks, so config validation and ``ptft plan`` can
list the methods without them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from ptft.grid import FULL
from ptft.training.args import FinetuneArgs, MethodSettings


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
    # the method's settings, if it has any: a MethodSettings subclass whose ``section`` is ``name``
    # (the config's ``finetune.<name>``), declared in the method's module
    settings: type[MethodSettings] | None = None

    def settings_of(self, args: FinetuneArgs) -> MethodSettings | None:
        """The run's settings for this method: those ``args`` carries, else the defaults."""
        if args.settings is not None or self.settings is None:
            return args.settings
        return self.settings()

    def check_model(self, settings: MethodSettings | None, architecture: Callable[[], object]) -> None:
        """Refuse settings the series' model cannot take (a ConfigError), before any cell runs.
        ``architecture()`` builds the model without weights (None when it cannot be had); call it
        only when the settings need it."""

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
