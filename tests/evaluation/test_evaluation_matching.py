from ptft.evaluation import match_label, normalize
from ptft.evaluation.matching import truncate_at_stop


def test_normalize():
    assert normalize("  Yes.\n") == "yes"
    assert normalize("NOT_entailment!") == "not entailment"


def test_prefix_match_not_substring():
    labels = ("yes", "no")
    assert match_label(" Yes.", labels) == "yes"
    assert match_label("yes, it is", labels) == "yes"
    assert match_label(" No!", labels) == "no"
    assert match_label(" know", labels) is None  # "know" contains "no": never a match
    assert match_label(" I know", labels) is None
    assert match_label("yesterday", labels) is None  # a label must be a whole word of the output
    assert match_label("", labels) is None
    assert match_label("maybe yes", labels) is None  # the output must *start* with the label


def test_longest_label_wins():
    labels = ("entailment", "not_entailment", "not")
    assert match_label(" not_entailment", labels) == "not_entailment"
    assert match_label(" Not entailment.", labels) == "not_entailment"
    assert match_label(" entailment", labels) == "entailment"
    assert match_label(" not sure", labels) == "not"


def test_truncate_at_stop():
    assert truncate_at_stop(" a b\n### Input: x", ["\n", "### Input"]) == (" a b", True)
    assert truncate_at_stop(" a b ### Input: x", ["\n", "### Input"]) == (" a b ", True)
    assert truncate_at_stop(" a b", ["\n"]) == (" a b", False)
