"""One registry type for every "name -> extension" table whose entries other packages may add to
(the task types, the fine-tuning methods): registering a name twice and asking for an unknown one
fail the same way everywhere."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """A dict from name to entry, in registration order; ``what`` names an entry in messages."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, name: str, entry: T) -> T:
        if name in self:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = entry
        return entry

    def lookup(self, name: str) -> T:
        try:
            return self[name]
        except KeyError:
            raise KeyError(f"unknown {self.what} {name!r} (known: {', '.join(self)})") from None
