"""The fine-tuning methods: which parameters a fine-tuning run trains, and how.

A method is one module of this package: a :class:`FinetuneMethod` subclass with its hooks and, if
it has settings, the :class:`~ptft.training.args.MethodSettings` subclass that declares them
beside it. Registering it (``BUILTIN`` here, or another package's ``ptft.methods`` entry point,
loaded before the config schema is built) is all: the config's ``finetune`` section gets a
``finetune.<name>`` section of its settings, and validation, the grid, ``ptft plan``,
learning-rate selection and the analyses take the method. Cells hash the settings of methods
other than full only, so adding one changes no existing cell id.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ptft.registry import Registry
from ptft.training.methods.full import FinetuneMethod
from ptft.training.methods.hft import HalfFinetuning
from ptft.training.methods.lora import Lora

ENTRY_POINT_GROUP = "ptft.methods"

METHODS: Registry[FinetuneMethod] = Registry("fine-tuning method")


def register_method(method: FinetuneMethod) -> FinetuneMethod:
    """Make ``method`` known by its name. A method registered after ``ptft.config`` was imported
    gets no config section: register through the entry point group instead."""
    if method.settings is not None and method.settings.section != method.name:
        raise ValueError(f"method {method.name!r}: its settings' section is {method.settings.section!r}; "
                         "name it like the method (finetune.<name> in a config)")
    return METHODS.register(method.name, method)


def get_method(name: str) -> FinetuneMethod:
    return METHODS.lookup(name)


BUILTIN = (FinetuneMethod(), Lora(), HalfFinetuning())
for _method in BUILTIN:
    register_method(_method)
for _entry in entry_points(group=ENTRY_POINT_GROUP):
    try:
        register_method(_entry.load()())
    except ValueError as err:  # a name another method has: say which package brought it
        raise ValueError(f"{ENTRY_POINT_GROUP} entry point {_entry.name!r} of {_entry.value}: {err}") from None
