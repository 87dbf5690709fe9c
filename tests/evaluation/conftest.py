"""Small tasks built directly from ``Task``/``Example`` objects, over plain English text that the
tiny test model (pre-trained on Wikipedia extracts) has seen the like of."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from ptft.tasks.base import EvalSet, Example, PromptFormat, Task, TaskData

SENTENCES = [
    "The river flows through the city.",
    "Paris is the capital of France.",
    "He was born in a small village in the north of England and later moved to London, where he "
    "studied law at the university before becoming a writer of novels and plays.",
    "The band released its first album in 1998.",
    "It is a species of flowering plant in the family Asteraceae.",
    "The station is served by trains to the airport.",
    "She won the election.",
    "The film was directed by an American director and received mixed reviews from critics, who "
    "praised the acting but found the story too long, and it earned little at the box office.",
    "The church was built in the twelfth century.",
    "The team plays its home games at the stadium in the centre of the town.",
    "Football is a popular sport.",
    "The company was founded in 1901 and is based in Germany.",
    "The island has a population of about two thousand people, most of whom live in the main town "
    "on the east coast, and its economy depends on fishing and tourism.",
    "The album reached number one in the charts.",
    "He played for the national team.",
    "The village lies on the road between the two largest cities of the province.",
    "The novel was translated into many languages.",
    "It was the largest ship of its time.",
    "The school has about five hundred students.",
    "The mountain is the highest point in the region and is covered by snow for most of the year.",
    "The song was written by the singer and her brother.",
    "The park opened to the public in 1950.",
    "The language is spoken by a few thousand people.",
    "The bridge crosses the river near the old castle.",
]


def _rows(seed: int, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(rng.choice(SENTENCES), rng.choice(SENTENCES)) for _ in range(n)]


FORMATS = {
    "default": PromptFormat("default", "### Input_1: {premise}\n ### Input_2: {hypothesis}\n ### Inference:",
                            "### Input"),
    "io": PromptFormat("io", "{premise} {hypothesis}"),
    "instruct": PromptFormat("instruct", "Consider the following texts: Text 1: {premise} Text 2: {hypothesis} "
                                         "The relation is"),
}


def make_classification_task(labels=("yes", "no"), n_train=12, n_eval=24, name="toy_cls") -> tuple[Task, TaskData]:
    def build(prefix: str, seed: int, n: int) -> list[Example]:
        rng = random.Random(seed + 1)
        return [Example(f"{prefix}{i}", {"premise": a, "hypothesis": b}, rng.choice(labels))
                for i, (a, b) in enumerate(_rows(seed, n))]

    data = TaskData(train=build("train", 0, n_train), dev=build("dev", 1, 4), eval={"test": build("test", 2, n_eval)})
    task = Task(name, "classification", FORMATS, (EvalSet("test", "in"),), loader=lambda req: data, labels=tuple(labels))
    return task, data


GEN_FORMATS = {
    "default": PromptFormat("default", "### Input: {document}\n ### Summary:", "### Input"),
    "io": PromptFormat("io", "{document}"),
    "instruct": PromptFormat("instruct", "Summarise the following text: {document} Summary:"),
}


def make_generation_task(n_eval=8, max_new_tokens=12) -> tuple[Task, TaskData]:
    def build(prefix: str, seed: int, n: int) -> list[Example]:
        return [Example(f"{prefix}{i}", {"document": a + " " + b}, a) for i, (a, b) in enumerate(_rows(seed, n))]

    data = TaskData(train=build("train", 3, 6), dev=build("dev", 4, 2), eval={"test": build("test", 5, n_eval)})
    task = Task("toy_gen", "generation", GEN_FORMATS, (EvalSet("test", "in"),), loader=lambda req: data,
                max_new_tokens=max_new_tokens)
    return task, data


MC_FORMATS = {
    "default": PromptFormat("default", "### Question: {question}\n ### Answer:", "### Question"),
    "io": PromptFormat("io", "{question}"),
    "instruct": PromptFormat("instruct", "Complete the sentence: {question}"),
}


def make_mc_examples(n: int, seed: int = 7, prefix: str = "mc") -> list[Example]:
    """Sentence completion: the start of a sentence, its true ending and endings of other sentences
    (choices of very different lengths)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = rng.choice(SENTENCES)
        words = s.split()
        cut = max(1, len(words) // 3)
        question, ending = " ".join(words[:cut]), " ".join(words[cut:])
        others = []
        while len(others) < 3:
            o = rng.choice(SENTENCES)
            ow = o.split()
            cand = " ".join(ow[max(1, len(ow) // 3):])
            if cand != ending and cand not in others:
                others.append(cand)
        choices = others[:]
        choices.insert(rng.randrange(4), ending)
        out.append(Example(f"{prefix}{i}", {"question": question}, ending, tuple(choices)))
    return out


def make_mc_task(n_eval=12) -> tuple[Task, TaskData]:
    data = TaskData(train=make_mc_examples(6, seed=11, prefix="mctrain"), dev=make_mc_examples(2, seed=12, prefix="mcdev"),
                    eval={"test": make_mc_examples(n_eval)})
    task = Task("toy_mc", "multiple_choice", MC_FORMATS, (EvalSet("test", "in"),), loader=lambda req: data)
    return task, data


@pytest.fixture(scope="session")
def toys():
    """The task factories of this file (test modules take them as a fixture, not an import)."""
    return SimpleNamespace(classification=make_classification_task, generation=make_generation_task,
                           mc=make_mc_task, mc_examples=make_mc_examples, sentences=SENTENCES)


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir):
    from ptft.checkpoints.loading import load_causal_lm

    return load_causal_lm(tiny_model_dir, device="cpu")

