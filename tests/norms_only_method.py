"""An example fine-tuning method from outside ptft, one module as a method is: train the
normalisation weights alone (LayerNorm tuning, Zhao et al. 2023), with one setting of its own.
`tests/test_methods.py` registers it through the `ptft.methods` entry point group, as another
package would, and trains with it."""

from __future__ import annotations

from dataclasses import dataclass

from ptft.training.args import FinetuneArgs, MethodSettings
from ptft.training.methods.full import FinetuneMethod


@dataclass(frozen=True)
class NormsOnlySettings(MethodSettings):
    section = "norms_only"
    # the final norm, outside the blocks, trains too
    final_norm: bool = True


class NormsOnly(FinetuneMethod):
    name = "norms_only"
    settings = NormsOnlySettings

    def trains(self, name: str, args: FinetuneArgs) -> bool:
        return "norm" in name and (self.settings_of(args).final_norm or ".layers." in name)

    def flops_per_parameter_token(self, args: FinetuneArgs) -> float:
        return 4.0

    def callbacks(self, args: FinetuneArgs) -> list:
        from transformers import TrainerCallback

        method = self

        class FreezeAllButNorms(TrainerCallback):
            def on_train_begin(self, targs, state, control, model=None, **kwargs):
                for name, param in model.named_parameters():
                    param.requires_grad_(method.trains(name, args))

            def on_train_end(self, targs, state, control, model=None, **kwargs):
                for param in model.parameters():
                    param.requires_grad_(True)

        return [FreezeAllButNorms()]
