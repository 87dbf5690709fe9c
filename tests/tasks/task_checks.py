"""What every pooled task must satisfy, shared by the tests of the shipped and the BIG-bench tasks."""

from __future__ import annotations

import dataclasses

from ptft.tasks import LoadRequest, build_prompt, completion_text
from ptft.tasks.base import FORMAT_NAMES


def check_pools_disjoint(task) -> None:
    """Train, dev and the in-domain eval set share no item, nor a prompt."""
    data = task.load(LoadRequest(None, 0))
    in_domain = data.eval[task.in_domain[0].name]
    train, dev, test = ({ex.uid for ex in rows} for rows in (data.train, data.dev, in_domain))
    assert train and dev and test
    assert not (train & dev) and not (train & test) and not (dev & test)
    fmt = task.formats["default"]
    train_prompts = {fmt.render(ex) for ex in data.train}
    assert not any(fmt.render(ex) in train_prompts for ex in in_domain)


def check_seeded(task, data, request: LoadRequest) -> None:
    """The same request gives the same data; another seed another sample, from the same split."""
    again = task.load(request)
    assert [e.uid for e in again.train] == [e.uid for e in data.train]
    assert again.split_fingerprints() == data.split_fingerprints()
    other = task.load(dataclasses.replace(request, seed=request.seed + 1))
    assert {e.uid for e in other.train} != {e.uid for e in data.train}
    # the split does not depend on the seed: the other seed's training items are never this one's eval items
    assert not {e.uid for e in data.eval[task.in_domain[0].name]} & {e.uid for e in other.train}


def check_formats(task, data, per_set: int = 20) -> None:
    """Every format renders without a trailing space and, for generation, without the target."""
    assert set(task.formats) == set(FORMAT_NAMES)
    for rows in [data.train[:per_set], *[r[:per_set] for r in data.eval.values()]]:
        for ex in rows:
            for fmt in task.formats.values():
                text = build_prompt(fmt, ex, data.train[:2] if ex not in data.train else ())
                assert not text.endswith((" ", "\t"))
                if task.task_type == "generation":
                    assert ex.target not in fmt.render(ex), (task.name, fmt.name, ex.uid)
                assert completion_text(ex.target).startswith(" ")
    assert task.formats["io"].cue == ""
    assert task.formats["default"].cue and task.formats["default"].template.startswith(task.formats["default"].cue)
    assert task.formats["instruct"].template.startswith(task.formats["instruct"].cue)
