"""Registration is explicit: no task module can go missing, clash or register nothing unnoticed."""

import importlib
import pkgutil
from types import SimpleNamespace

import pytest

import ptft.tasks
from ptft.tasks import Task, available, registry
from ptft.tasks.bbutil import row_error as bb_row_error
from ptft.tasks.formats import Family
from ptft.tasks.rows import Row, row_error


def _defines_tasks(module) -> bool:
    for value in vars(module).values():
        values = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else [value]
        if any(isinstance(v, Task) for v in values):
            return True
    return False


def test_every_module_that_defines_a_task_is_listed():
    # the registry holds the registered tasks: it is the one module that has tasks without defining them
    modules = [f"ptft.tasks.{m.name}" for m in pkgutil.iter_modules(ptft.tasks.__path__) if m.name != "registry"]
    defining = {name for name in modules if _defines_tasks(importlib.import_module(name))}
    assert defining == set(registry.BUILTIN_MODULES)
    listed_tasks = {t.name for name in registry.BUILTIN_MODULES for t in importlib.import_module(name).TASKS}
    assert listed_tasks == set(available())


def _fresh_registry(monkeypatch, eps=()):
    monkeypatch.setattr(registry, "_TASKS", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: list(eps) if group == "ptft.tasks" else [])


def _fake_ep(obj, name="extra"):
    return SimpleNamespace(name=name, value=f"thirdparty.{name}", load=lambda: obj)


def test_a_module_that_registers_nothing_or_clashes_raises(monkeypatch):
    _fresh_registry(monkeypatch)
    with pytest.raises(ValueError, match="defines no TASKS"):
        registry.register_all(SimpleNamespace(), "somewhere.tasks")
    with pytest.raises(ValueError, match="defines no TASKS"):
        registry.register_all(SimpleNamespace(TASKS=()), "somewhere.tasks")
    mnli = importlib.import_module("ptft.tasks.hub_mnli")
    registry.register_all(mnli, "ptft.tasks.hub_mnli")
    with pytest.raises(ValueError, match="'mnli' is registered twice"):
        registry.register_all(mnli, "a copy")


def test_entry_point_tasks_are_registered_and_checked(monkeypatch):
    base = importlib.import_module("ptft.tasks.hub_paws").TASKS[0]
    extra = Task(name="third_party_paws", task_type=base.task_type, formats=base.formats,
                 eval_sets=base.eval_sets, loader=base.loader, labels=base.labels)
    _fresh_registry(monkeypatch, [_fake_ep(SimpleNamespace(TASKS=(extra,)))])
    assert "third_party_paws" in available() and "paws" in available()
    _fresh_registry(monkeypatch, [_fake_ep(SimpleNamespace(), "empty")])
    with pytest.raises(ValueError, match="entry point 'empty'"):
        available()


def test_family_declares_what_hub_offline_and_bigbench_variants_share():
    from ptft.tasks import get_task

    for hub, bb in (("xsum", "bb_xsum"), ("socialiqa_qg", "bb_socialiqa_qg"), ("socialiqa_qg", "social_qg"),
                    ("mnli", "bb_vitaminc_nli"), ("arc_easy", "mc_arc_easy"), ("sciq", "mc_sciq")):
        a, b = get_task(hub), get_task(bb)
        assert (a.task_type, a.formats, a.labels, a.max_new_tokens) == (b.task_type, b.formats, b.labels,
                                                                         b.max_new_tokens)
    assert isinstance(importlib.import_module("ptft.tasks.formats").NLI, Family)


def test_one_row_error_for_every_source():
    row = Row({"x": 1}, "d", "train", 4)
    expected = "dataset 'd', split 'train', row 4, field 'x': bad"
    assert str(row.error("x", "bad")) == str(row_error("d", "train", 4, "x", "bad")) == expected
    assert bb_row_error is row_error
