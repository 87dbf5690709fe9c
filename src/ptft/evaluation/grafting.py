"""Grafting (Panigrahi et al. 2023, "Task-Specific Skill Localization in Fine-tuned Language
Models"): how much of what fine-tuning changed a few of its weights carry. The grafted model is
theta0 + gamma * (theta1 - theta0) with gamma a binary mask; ptft's mask keeps the top s % of the
change by magnitude |theta1 - theta0| over every parameter of the model at once (the paper's
magnitude baseline; its optimised mask is not computed). An evaluation-only variant of each
fine-tuned model, like LiNeS: no training, the cell's units scored again (definitions:
docs/method.md, "Grafting").
"""

from __future__ import annotations

from typing import Mapping


def kept_count(total: int, percent: float) -> int:
    """How many entries of ``total`` the top ``percent`` % is (rounded to the nearest; at least one
    for a positive share of a non-empty model, so 0.01 % of a tiny model still grafts something)."""
    if percent <= 0 or total == 0:
        return 0
    return min(total, max(1, round(total * percent / 100)))


def graft_threshold(tuned: Mapping[str, "torch.Tensor"], base: Mapping[str, "torch.Tensor"],
                    percent: float) -> float:
    """The magnitude of the change at or above which an entry is grafted: the k-th largest
    |theta1 - theta0| over all entries, k = :func:`kept_count`; +inf for k = 0. Entries tied with
    it are all grafted (changes computed in float32 on the tuned weights' device)."""
    import torch

    sizes = sum(t.numel() for t in tuned.values())
    k = kept_count(sizes, percent)
    if k == 0:
        return float("inf")
    with torch.no_grad():
        changes = torch.cat([(t.detach().float() - base[n].to(t.device, t.dtype).float()).abs().flatten()
                             for n, t in tuned.items()])
        return float(torch.kthvalue(changes, changes.numel() - k + 1).values)


def apply_graft(model, base: Mapping[str, "torch.Tensor"], tuned: Mapping[str, "torch.Tensor"],
                percent: float) -> int:
    """Set ``model``'s parameters in place to ``tuned`` where the change is among the top
    ``percent`` % and to ``base`` elsewhere (both by parameter name; ``base`` is cast to each
    parameter's dtype, as BASE is evaluated). Returns the count of grafted entries whose change is
    not zero."""
    import torch

    threshold = graft_threshold(tuned, base, percent)
    grafted = 0
    with torch.no_grad():
        for n, p in model.named_parameters():
            start = base[n].to(p.device, p.dtype)
            end = tuned[n].to(p.device, p.dtype)
            change = (end.float() - start.float()).abs()
            mask = change >= threshold
            grafted += int((mask & (change > 0)).sum())
            p.copy_(torch.where(mask, end, start))
    return grafted
