"""Errors a user can fix. The CLI prints them as one clear line (no traceback) and exits 2."""


class PtftError(Exception):
    """Base class: the message says which file, which field, and what to do."""


class ConfigError(PtftError):
    """A study config is invalid (unknown key, wrong type, missing file)."""


class DataError(PtftError, ValueError):
    """Task data the study must not use (hidden labels, unknown label, missing field, empty split)."""


class CheckpointError(PtftError):
    """A checkpoint folder or revision cannot be used."""
