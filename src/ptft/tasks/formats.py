"""Task *families*: the three prompt formats, type and labels shared by the BIG-bench and the Hub
variants of a task (:class:`Family`).

Every family has ``default`` (labelled fields and a trailing cue, the fine-tuning format),
``io`` (the raw input fields joined by a space, no cue) and ``instruct`` (a natural-language
instruction around the fields). ``cue`` is the text that starts the next demonstration in that
format; generation stops there (and at a newline). IO has no cue: demonstrations start with
raw text, so only the newline stop applies.

Field names per family (a loader must fill exactly these):

=================  =========================================  ==========================
family             fields                                     target
=================  =========================================  ==========================
nli                premise, hypothesis                        entailment / neutral / ...
paraphrase         sentence1, sentence2                       yes / no
same_speaker       dialogue, sentence1, sentence2             yes / no
sentiment          text                                       positive / negative / ...
rated_sentiment    text                                       positive / negative / neutral
summarisation      document                                   the summary
question_gen       context, answer                            the question
multiple_choice    question                                   the correct choice
mc_reading         context, question                          the correct choice
=================  =========================================  ==========================

No template contains the target: question generation puts the *answer* in the prompt and the
question is the completion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ptft.tasks.base import DataSource, PromptFormat, Task


def _family(default: tuple[str, str], io: str, instruct: tuple[str, str]) -> dict[str, PromptFormat]:
    return {
        "default": PromptFormat("default", default[0], default[1]),
        "io": PromptFormat("io", io, ""),
        "instruct": PromptFormat("instruct", instruct[0], instruct[1]),
    }


def nli() -> dict[str, PromptFormat]:
    return _family(
        ("### Input_1: {premise}\n ### Input_2: {hypothesis}\n ### Inference:", "### Input"),
        "{premise} {hypothesis}",
        ("Consider the following texts: Text 1: {premise} Text 2: {hypothesis} The relation is",
         "Consider the following texts"),
    )


def paraphrase() -> dict[str, PromptFormat]:
    return _family(
        ("### Input_1: {sentence1}\n ### Input_2: {sentence2}\n ### Paraphrase:", "### Input"),
        "{sentence1} {sentence2}",
        ("Do the following two sentences mean the same thing? Sentence 1: {sentence1} "
         "Sentence 2: {sentence2} Answer yes or no:", "Do the following two sentences"),
    )


def same_speaker() -> dict[str, PromptFormat]:
    return _family(
        ("### Dialogue: {dialogue}\n ### Input_1: {sentence1}\n ### Input_2: {sentence2}\n"
         " ### Same speaker:", "### Dialogue"),
        "{dialogue} {sentence1} {sentence2}",
        ("Read the following conversation. Conversation: {dialogue} Were the sentences "
         "\"{sentence1}\" and \"{sentence2}\" said by the same person? Answer yes or no:",
         "Read the following conversation"),
    )


def sentiment() -> dict[str, PromptFormat]:
    return _family(
        ("### Review: {text}\n ### Sentiment:", "### Review"),
        "{text}",
        ("Is the opinion in the following review positive, negative, neutral or ambivalent? Review: {text} "
         "The opinion is", "Is the opinion in the following review"),
    )


def _opinion_of_text(labels: str) -> dict[str, PromptFormat]:
    """Short texts of any kind (reviews, editorials, tweets) with the opinion ``labels`` name."""
    return _family(
        ("### Text: {text}\n ### Sentiment:", "### Text"),
        "{text}",
        (f"Is the opinion in the following text {labels}? Text: {{text}} The opinion is",
         "Is the opinion in the following text"),
    )


def rated_sentiment() -> dict[str, PromptFormat]:
    """A three-way label."""
    return _opinion_of_text("positive, negative or neutral")


def polarity() -> dict[str, PromptFormat]:
    """A two-way label."""
    return _opinion_of_text("positive or negative")


def summarisation() -> dict[str, PromptFormat]:
    return _family(
        ("### Input: {document}\n ### Summary:", "### Input"),
        "{document}",
        ("Summarize the following article in one sentence. Article: {document} Summary:",
         "Summarize the following article"),
    )


def question_generation() -> dict[str, PromptFormat]:
    return _family(
        ("### Input: {context}\n ### Answer: {answer}\n ### Question:", "### Input"),
        "{context} {answer}",
        ("Write a question about the following text that has the given answer. Text: {context} "
         "Answer: {answer} Question:", "Write a question about"),
    )


def multiple_choice() -> dict[str, PromptFormat]:
    return _family(
        ("Question: {question}\nAnswer:", "Question:"),
        "{question}",
        ("Choose the best answer to the following question. Question: {question} Best answer:",
         "Choose the best answer"),
    )


def multiple_choice_reading() -> dict[str, PromptFormat]:
    """Multiple choice over a passage (BoolQ, SciQ): the passage, then the question."""
    return _family(
        ("Passage: {context}\nQuestion: {question}\nAnswer:", "Passage:"),
        "{context} {question}",
        ("Read the text and choose the best answer to the question. Text: {context} Question: {question} "
         "Best answer:", "Read the text and choose"),
    )


@dataclass(frozen=True)
class Family:
    """What every task of a family shares, declared once: a Hub task and its offline BIG-bench
    stand-in differ only in their data (and description)."""

    task_type: str  # a name of ptft.task_types.TASK_TYPES
    formats: Mapping[str, PromptFormat]
    labels: tuple[str, ...] = ()
    max_new_tokens: int = 60
    typical_tokens_per_example: int | None = None

    def task(self, name: str, data: DataSource, description: str, **overrides: Any) -> Task:
        """The family's task over ``data``; ``overrides`` are Task fields this task sets itself."""
        shared = {"task_type": self.task_type, "formats": self.formats, "labels": self.labels,
                  "max_new_tokens": self.max_new_tokens, "typical_tokens_per_example": self.typical_tokens_per_example,
                  "normalize_whitespace": data.normalize_whitespace, "requires": data.requires}
        return Task(name=name, eval_sets=data.eval_sets, loader=data.load, description=description,
                    **{**shared, **overrides})


NLI_LABELS = ("entailment", "neutral", "contradiction")
BINARY_NLI_LABELS = ("entailment", "not_entailment")  # RTE's label set
YES_NO = ("yes", "no")

NLI = Family("classification", nli(), NLI_LABELS, max_new_tokens=5)
PARAPHRASE = Family("classification", paraphrase(), YES_NO, max_new_tokens=5)
SAME_SPEAKER = Family("classification", same_speaker(), YES_NO, max_new_tokens=5)
SENTIMENT = Family("classification", sentiment(), ("positive", "negative", "neutral", "ambivalent"), max_new_tokens=5)
POLARITY = Family("classification", polarity(), ("positive", "negative"), max_new_tokens=5)
RATED_SENTIMENT = Family("classification", rated_sentiment(), ("positive", "negative", "neutral"), max_new_tokens=5)
# typical: a BBC article (~430 words) + one sentence
SUMMARISATION = Family("generation", summarisation(), max_new_tokens=60, typical_tokens_per_example=530)
# typical: a short context + three answers -> a question (SocialIQA)
QUESTION_GENERATION = Family("generation", question_generation(), max_new_tokens=60, typical_tokens_per_example=70)
MULTIPLE_CHOICE = Family("multiple_choice", multiple_choice(), max_new_tokens=0)
MC_READING = Family("multiple_choice", multiple_choice_reading(), max_new_tokens=0)
