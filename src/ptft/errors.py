"""Errors a user can fix. The CLI prints them as one clear line (no traceback) and exits 2."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from types import FrameType
from typing import Iterator


class PtftError(Exception):
    """Base class: the message says which file, which field, and what to do."""


class ConfigError(PtftError):
    """A study config is invalid (unknown key, wrong type, missing file)."""


class DataError(PtftError, ValueError):
    """Task data the study must not use (hidden labels, unknown label, missing field, empty split)."""


class CheckpointError(PtftError):
    """A checkpoint folder or revision cannot be used."""


class StoreError(PtftError):
    """A run's results store cannot be used (damaged, full disk, read-only)."""


class Terminated(SystemExit):
    """SIGTERM (a scheduler's time limit, `kill`): ends the program like Ctrl-C does. A SystemExit,
    so ``except Exception`` in library code does not swallow it."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


def stop_exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def raise_stop(signum: int, frame: FrameType | None) -> None:
    """The body of a SIGINT/SIGTERM handler: raise the stop. Python prints and drops an exception
    raised inside a ``__del__`` ("Exception ignored in ..."), so a signal landing in a finaliser
    is delivered again a moment later, when the finaliser has returned."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
            return
        frame = frame.f_back
    raise stop_exception(signum)


# errno values a user causes or meets (a full disk, a read-only or mistyped path), with what to do
_OS_ADVICE = {
    errno.ENOSPC: "no space left on the device; free some space (or choose another location) and run the "
                  "command again: work already finished is kept",
    errno.EDQUOT: "no space left: the disk quota is exceeded; free some space (or choose another location) "
                  "and run the command again: work already finished is kept",
    errno.EROFS: "the file system is read-only; choose a writable location (--out)",
    errno.EACCES: "permission denied; choose a location you may write to (--out) or fix its permissions",
    errno.EPERM: "operation not permitted; choose a location you may write to (--out) or fix its permissions",
    errno.ENOTDIR: "a part of this path is a file, not a folder; choose another path",
    errno.EISDIR: "this is a folder; give the path of a file",
    errno.EEXIST: "a file of this name already exists where a folder is needed; choose another path",
}


def describe_os_error(err: OSError) -> str | None:
    """One line for an OSError a user can fix (which path, what happened, what to do), or None for
    one that points to a bug."""
    advice = _OS_ADVICE.get(err.errno)
    if advice is None:
        return None
    where = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    return f"{where + ': ' if where else ''}{advice}"


@contextlib.contextmanager
def naming(path) -> Iterator[None]:
    """Give OSErrors raised inside the path they concern: a write that fails on a full disk
    carries no file name of its own."""
    try:
        yield
    except OSError as err:
        if err.filename is None:
            err.filename = str(path)
        raise


def yaml_problem(err: Exception) -> str:
    """A YAML error in one line, with the line and column an editor shows."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(f"{problem}{f' ({context})' if context else ''}".split())
