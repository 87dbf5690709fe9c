"""requirements.lock (``make lock``) agrees with pyproject.toml's ranges and with this environment:
the lock is what ``make install`` and CI install, so a stale one is a broken install."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate():
                continue
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = _pins()
    for req in _declared():
        name = canonicalize_name(req.name)
        if name == "torch":  # installed first by the Makefile, from $(TORCH)
            continue
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject.toml's {req}: run `make lock`"


def test_the_lock_leaves_torch_to_the_makefile_and_has_no_cuda_wheels():
    pins = _pins()
    assert "torch" not in pins
    assert not [n for n in pins if n.startswith("nvidia-") or n == "triton"]


def test_the_environment_is_the_locked_one():
    """Run in the venv `make install` built, every locked package is installed at its pin."""
    wrong = {}
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed versions differ from requirements.lock (locked, installed): {wrong}"
