import pytest

from ptft.errors import PtftError
from ptft.evaluation import DemoError, Evaluator, select_demos


def test_select_demos_seeded_and_distinct(toys):
    _, data = toys.classification(n_train=30)
    a = select_demos(data.train, 4, seed=0)
    assert [d.uid for d in a] == [d.uid for d in select_demos(data.train, 4, seed=0)]
    assert len({d.uid for d in a}) == 4
    assert [d.uid for d in a] != [d.uid for d in select_demos(data.train, 4, seed=1)]
    assert select_demos(data.train, 0, seed=0) == []
    with pytest.raises(DemoError):
        select_demos(data.train, 31, seed=0)
    with pytest.raises(DemoError):
        select_demos(data.train, -1, seed=0)


def test_demos_from_the_scored_set_are_refused(tiny_lm, toys):
    model, tok = tiny_lm
    task, data = toys.classification()
    scored = data.eval["test"]
    ev = Evaluator(model, tok)
    with pytest.raises(DemoError, match="scored set") as err:
        ev.evaluate(task, "test", scored, "default", scored[:2], "tokenprob")
    assert isinstance(err.value, PtftError)
