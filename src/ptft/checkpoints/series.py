"""A series of pre-training checkpoints, whatever its source.

- ``pretrain``: folders that :mod:`ptft.training.pretrain` writes into the run directory;
- ``local``: checkpoint folders the user lists;
- ``hub``: revisions of one Hub repository, given explicitly, by step, or chosen by the selection
  rule (first + final + k evenly spaced) over the repository's branch names.

Every source resolves to :class:`Checkpoint` objects that load through the same code path.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ptft.checkpoints.fingerprint import HubWeights, NotFingerprinted, fingerprint, hub_weights
from ptft.errors import CheckpointError, ConfigError

log = logging.getLogger("ptft.checkpoints")

_OLMO = re.compile(r"^step(\d+)-tokens(\d+)B$")
_PYTHIA = re.compile(r"^step(\d+)$")

#: Parameters of published model series (the Pythia and OLMo model cards), for the cost estimate of
#: `ptft plan`.
PUBLISHED_PARAMETERS = {
    "allenai/OLMo-1B-hf": 1_176_764_416, "allenai/OLMo-1B": 1_176_764_416,
    "allenai/OLMo-1B-0724-hf": 1_279_787_008, "allenai/OLMo-7B-hf": 6_888_095_744,
    "allenai/OLMo-7B": 6_888_095_744, "allenai/OLMo-7B-0424-hf": 6_888_095_744,
    "allenai/OLMo-7B-0724-hf": 6_888_095_744,
    "EleutherAI/pythia-70m": 70_426_624, "EleutherAI/pythia-160m": 162_322_944,
    "EleutherAI/pythia-410m": 405_334_016, "EleutherAI/pythia-1b": 1_011_781_632,
    "EleutherAI/pythia-1.4b": 1_414_647_808, "EleutherAI/pythia-2.8b": 2_775_208_960,
    "EleutherAI/pythia-6.9b": 6_857_302_016, "EleutherAI/pythia-12b": 11_846_072_320,
}


@dataclass(frozen=True)
class Checkpoint:
    label: str
    step: int | None
    path: str
    revision: str | None = None
    # set for a series ptft pre-trains into the run directory: the weights are determined by the
    # pre-training cell (hashed as the cells' upstream), not by where the run directory lies
    pretrained: bool = False
    # the hash of a local folder's weights, or of a Hub revision's weight files
    # (ptft.checkpoints.fingerprint); None where it could not be had
    fingerprint: str | None = None
    # the Hub commit the revision named when it was fingerprinted, which cells load
    commit: str | None = None

    @property
    def load_revision(self) -> str | None:
        return self.commit or self.revision

    @property
    def identity(self) -> str:
        """What determines the weights: part of every cell hash. Never the run directory's path,
        so a run directory spelled another way or moved keeps its cells; the weights' fingerprint
        where there is one, so weights changed under the same name (a folder written again, a Hub
        branch pushed to) run their cells again and a folder moved elsewhere keeps them."""
        if self.pretrained:
            return f"pretrained/{self.label}"
        if self.fingerprint:
            return f"weights/{self.fingerprint}"
        return f"{self.path}@{self.revision}" if self.revision else self.path


@dataclass(frozen=True)
class Revision:
    name: str
    step: int
    tokens_b: int | None = None


def parse_revision(name: str) -> Revision | None:
    """OLMo ``step{N}-tokens{M}B`` or Pythia ``step{N}``; None for anything else (``main``, ``v1``...)."""
    m = _OLMO.match(name)
    if m:
        return Revision(name, int(m.group(1)), int(m.group(2)))
    m = _PYTHIA.match(name)
    if m:
        return Revision(name, int(m.group(1)))
    return None


def parse_revisions(names: Iterable[str]) -> list[Revision]:
    """Step-named revisions sorted by step. Several names for one step (OLMo republishes some)
    keep the first seen, so the choice never depends on set ordering."""
    by_step: dict[int, Revision] = {}
    for name in names:
        rev = parse_revision(name)
        if rev is not None:
            by_step.setdefault(rev.step, rev)
    return [by_step[s] for s in sorted(by_step)]


def select_evenly(revisions: list[Revision], k: int) -> list[Revision]:
    """First, final, and ``k`` more spaced uniformly in step between them (the nearest revision to
    each target step, never the same one twice)."""
    if len(revisions) <= k + 2:
        return list(revisions)
    steps = np.array([r.step for r in revisions])
    chosen = {0, len(revisions) - 1}
    for target in np.linspace(steps[0], steps[-1], k + 2)[1:-1]:
        order = np.argsort(np.abs(steps - target), kind="stable")
        chosen.add(next(int(i) for i in order if int(i) not in chosen))
    return [revisions[i] for i in sorted(chosen)]


def misnamed(revisions: list[Revision]) -> list[Revision]:
    """Revisions whose name disagrees with the rest of the series. OLMo names carry the tokens seen
    (``tokens{M}B``, rounded to the billion), which grow with the step at the series' tokens per
    step (its median over names of 10B tokens or more, where the rounding is small); a name off
    that by more than the rounding and 5 % is misnamed, or the series changed its batch size there."""
    rates = [r.tokens_b / r.step for r in revisions if r.tokens_b is not None and r.tokens_b >= 10 and r.step > 0]
    if len(rates) < 3:
        return []
    rate = float(np.median(rates))
    return [r for r in revisions
            if r.tokens_b is not None and abs(r.tokens_b - r.step * rate) > 1 + 0.05 * r.step * rate]


def revisions_for_steps(revisions: list[Revision], steps: list[int]) -> list[Revision]:
    by_step = {r.step: r for r in revisions}
    missing = [s for s in steps if s not in by_step]
    if missing:
        near = ", ".join(r.name for r in revisions[:3])
        raise ConfigError(f"checkpoints.hub.steps: no revision for step(s) {missing} (revisions look like {near}, ...)")
    return [by_step[s] for s in steps]


def list_hub_revisions(repo: str) -> list[str]:
    from huggingface_hub import list_repo_refs

    try:
        refs = list_repo_refs(repo)
    except Exception as err:  # network and auth errors come in many types
        raise CheckpointError(
            f"cannot list the revisions of {repo} ({err}); offline, list them in checkpoints.hub.revision_names "
            "or give checkpoints.hub.revisions explicitly") from err
    return [b.name for b in refs.branches]


def resolve_series(config, run_dir: Path, *, network: bool = True) -> list[Checkpoint]:
    """The study's checkpoints, in pre-training order, each with its fingerprint. Pre-trained ones
    are the folders the pretrain cell writes (they need not exist yet). A Hub series asks the Hub
    for its fingerprints (one request per revision) unless ``network`` is false, when only the
    Hugging Face cache answers and a revision it lacks stays without one; with the network, a
    revision that gets no fingerprint is refused, since its cells' ids could not stay the same."""
    ck = config.checkpoints
    if ck.source == "pretrain":
        return [Checkpoint(f"step{s}", s, str(run_dir / "checkpoints" / f"step{s}"), pretrained=True)
                for s in ck.pretrain.schedule()]
    if ck.source == "local":
        labels = ck.local.labels or [Path(p).name for p in ck.local.paths]
        steps = ck.local.steps or [_step_from_name(Path(p).name) for p in ck.local.paths]
        series = [Checkpoint(lbl, st, str(Path(p).resolve()), fingerprint=fingerprint(p))
                  for lbl, st, p in zip(labels, steps, ck.local.paths)]
        check_series(series, "checkpoints.local.paths", "remove one or point it at the folder it should be")
        return series
    hub = ck.hub
    if hub.revisions:
        chosen = [parse_revision(r) or Revision(r, -1) for r in hub.revisions]
        revisions = [r for r in chosen if r.step >= 0]
    else:
        names = hub.revision_names or list_hub_revisions(hub.repo)
        revisions = parse_revisions(names)
        if not revisions:
            raise ConfigError(f"checkpoints.hub: {hub.repo} has no step-named revisions among {names[:5]}")
        if hub.steps:
            chosen = revisions_for_steps(revisions, hub.steps)
        else:
            chosen = select_evenly(revisions, hub.select if hub.select is not None else 6)
    for r in (r for r in misnamed(revisions) if r in chosen):
        log.warning("checkpoints.hub: %s names %sB tokens at step %d, unlike the rest of %s's branches: a "
                    "misnamed branch, or the batch size changed there; check it before trusting its step",
                    r.name, r.tokens_b, r.step, hub.repo)
    named = [(r.name, r.step if r.step >= 0 else None) for r in chosen]
    main_added = hub.include_main and "main" not in {name for name, _ in named}
    if main_added:
        named.append(("main", hub.main_step))
    series = []
    for name, step in named:
        weights = _hub_weights(hub.repo, name, network, main_added and name == "main")
        series.append(Checkpoint(name, step, hub.repo, name, fingerprint=weights and weights.fingerprint,
                                 commit=weights and weights.commit))
    if main_added and series[-1].fingerprint:
        earlier = [c for c in series[:-1] if c.fingerprint == series[-1].fingerprint]
        if earlier and earlier[0] is series[-2]:
            # `main` is the final step's branch under its usual alias (Pythia's main is step143000)
            log.info("checkpoints.hub: main holds the same weights as %s; it is not a checkpoint of its own",
                     series[-2].label)
            series.pop()
        elif earlier:
            raise ConfigError(f"checkpoints.hub: main holds the same weights as {_named(earlier[0])}, which is not "
                              "the last of the series; set checkpoints.hub.include_main: false")
    check_series(series, "checkpoints.hub", "list the revisions to use in checkpoints.hub.revisions (or steps)")
    return series


def _hub_weights(repo: str, revision: str, network: bool, added_main: bool) -> HubWeights | None:
    try:
        return hub_weights(repo, revision, network=network)
    except NotFingerprinted as err:
        # a series is fingerprinted before any cell runs, so that its cells keep their ids
        raise ConfigError(f"checkpoints.hub: {err}" + ("; or leave main out (checkpoints.hub.include_main: false)"
                                                        if added_main else "")) from None
    except CheckpointError as err:
        raise ConfigError(f"checkpoints.hub: {err}") from None


def check_series(series: list[Checkpoint], key: str, remedy: str) -> None:
    """A series is distinct checkpoints in pre-training order: refuse two that hold the same weights
    under different names (published series have served final weights under early step names), and
    steps that repeat or go back. ``remedy`` says how to change the series."""
    first: dict[str, int] = {}
    for i, ck in enumerate(series):
        if ck.fingerprint is None:
            continue
        if ck.fingerprint in first:
            j = first[ck.fingerprint]
            raise ConfigError(f"{key}: {_named(ck)} holds the same weights as {_named(series[j])}, fingerprint "
                              f"{ck.fingerprint}: a series must hold distinct checkpoints; {remedy}")
        first[ck.fingerprint] = i
    steps = [(ck.label, ck.step) for ck in series if ck.step is not None]
    for (before, a), (label, b) in zip(steps, steps[1:]):
        if b <= a:
            raise ConfigError(f"{key}: {label} (step {b}) comes after {before} (step {a}); list the checkpoints in "
                              "pre-training order, each step once (a file listing sorts step1000 before step200)")


def _named(ck: Checkpoint) -> str:
    return f"{ck.label} ({ck.path}@{ck.revision})" if ck.revision else f"{ck.label} ({ck.path})"


def _step_from_name(name: str) -> int | None:
    m = re.search(r"step(\d+)", name)
    return int(m.group(1)) if m else None
