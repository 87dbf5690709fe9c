"""Instruction tuning (IT): a checkpoint trained on a conversational mixture, loss on assistant turns.

The data are ``{"messages": [{"role", "content"}, ...]}`` rows (the Tulu v2 SFT mixture's schema;
roles ``system``, ``user``, ``assistant``) from :mod:`ptft.tasks.instructions`. Each conversation is
rendered with a chat template and trained with trl's ``SFTTrainer(assistant_only_loss=True)``: trl
asks the tokenizer for the character spans the template wraps in ``{% generation %} …
{% endgeneration %}`` and sets the label of every token outside them to -100, so only the text of
the assistant turns (and the end-of-turn token that closes each) carries a loss.

The chat template is the tokenizer's own when it has one that marks assistant text (or one trl knows
how to patch); otherwise it is OLMo's layout, the one the OLMo Instruct models and Tulu were trained
with (``allenai/OLMo-7B-Instruct``'s ``tokenizer_config.json``)::

    <|endoftext|><|user|>
    {user}
    <|assistant|>
    {assistant}<|endoftext|>
    <|user|>
    ...

reproduced in :data:`OLMO_TRAINING_TEMPLATE` with generation markers around ``{assistant}{eos}``
(a ``system`` turn renders as ``<|system|>\\n{content}\\n``, as in open-instruct's Tulu template).
The template is attached to the tokenizer, so kept weights reload with it.

Recipe: the study's IT hyperparameters (``instruction_tuning``: 5 epochs, lr 2e-6) with the SFT
settings of ``finetune`` (AdamW, linear schedule, warm-up, batch size, bf16). ``n_dev``
conversations of the sampled mixture are held out (seeded) for the dev loss. A conversation longer
than the maximum length first loses its earliest exchanges, then the start of the user turn before
its last answer (the same rule as SFT prompts), so the answers it keeps are never cut off.
"""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass, field

from ptft.errors import DataError
from ptft.tasks.instructions import load_instructions
from ptft.training.args import InstructArgs
from ptft.training.finetune import FinetuneResult, sft_train

log = logging.getLogger("ptft.training.instruct")

#: The chat template of allenai/OLMo-7B-Instruct (tokenizer_config.json), for reference and tests.
OLMO_CHAT_TEMPLATE = (
    "{{ eos_token }}{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}"
)

#: The same layout with ``{% generation %}`` markers (what trl's assistant masks need) and a system turn.
OLMO_TRAINING_TEMPLATE = (
    "{{ eos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' }}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
    "{% endfor %}"
)


def chat_template_for(tokenizer) -> tuple[str, str]:
    """(template, where it came from) for assistant-only training with this tokenizer."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    own = tokenizer.chat_template
    if isinstance(own, dict):
        own = own.get("default")
    if not own:
        return OLMO_TRAINING_TEMPLATE, "olmo (the tokenizer has no chat template)"
    if has_generation_markers(own):
        return own, "tokenizer"
    try:
        patched = get_training_chat_template(tokenizer)
    except Exception:  # ValueError for templates trl does not know; template errors for broken ones
        log.warning("the tokenizer's chat template does not mark assistant turns ({%% generation %%}) and trl "
                    "cannot patch it; instruction tuning uses OLMo's chat layout instead")
        return OLMO_TRAINING_TEMPLATE, "olmo (the tokenizer's template cannot mask assistant turns)"
    return (patched or own), "tokenizer (trl's training variant)"


@dataclass
class InstructionData:
    train: list[dict]
    dev: list[dict]
    notes: dict = field(default_factory=dict)


def instruction_data(args: InstructArgs) -> InstructionData:
    """The study's IT conversations: ``n_train + n_dev`` drawn from the mixture with the data seed
    (the same for every checkpoint), ``n_dev`` of them held out (seeded shuffle) for the dev loss."""
    n = None if args.n_train is None else args.n_train + args.n_dev
    rows = _mixture(args.mixture, args.data_seed, n, args.data_dir)
    if len(rows) <= args.n_dev:
        raise DataError(f"instruction data {args.mixture!r}: {len(rows)} conversation(s), fewer than "
                        f"n_dev={args.n_dev} + 1; lower instruction_tuning.n_dev")
    order = list(range(len(rows)))
    random.Random(f"{args.data_seed}:instruct-dev").shuffle(order)
    dev = [rows[i] for i in sorted(order[:args.n_dev])]
    train = [rows[i] for i in sorted(order[args.n_dev:])]
    return InstructionData(train, dev, dict(getattr(rows, "notes", {}) or {}))


@functools.lru_cache(maxsize=4)
def _mixture(name: str, seed: int, n: int | None, data_dir: str | None):
    """The sampled mixture, loaded once per process (every checkpoint's IT cell reads the same)."""
    return load_instructions(name, seed=seed, n=n, data_dir=data_dir)


def _length(tokenizer, messages: list[dict], template: str) -> int:
    ids = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True)
    return len(ids["input_ids"])


def fit_conversation(messages: list[dict], tokenizer, template: str, max_length: int) -> list[dict]:
    """The conversation, shortened to ``max_length`` tokens if it is longer: whole exchanges are
    dropped from the start while more than one answer remains, then the user turn before the last
    answer loses its start. An answer itself longer than the budget is left to the trainer's
    truncation (which keeps its start)."""
    if _length(tokenizer, messages, template) <= max_length:
        return messages
    msgs = [dict(m) for m in messages]
    system = [m for m in msgs if m["role"] == "system"][:1] if msgs and msgs[0]["role"] == "system" else []
    body = msgs[len(system):]
    while sum(m["role"] == "assistant" for m in body) > 1 and _length(tokenizer, system + body, template) > max_length:
        first_answer = next(i for i, m in enumerate(body) if m["role"] == "assistant")
        body = body[first_answer + 1:]
    msgs = system + body
    last_answer = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    prompt_turns = [i for i in range(last_answer) if msgs[i]["role"] != "assistant"]
    for _ in range(3):  # token counts shift slightly when text is cut at a token boundary
        over = _length(tokenizer, msgs, template) - max_length
        if over <= 0 or not prompt_turns:
            break
        j = prompt_turns[-1]
        ids = tokenizer(msgs[j]["content"], add_special_tokens=False)["input_ids"]
        keep = max(len(ids) - over - 2, 1)
        msgs[j]["content"] = tokenizer.decode(ids[len(ids) - keep:]).lstrip()
    return msgs


def training_rows(rows: list[dict], tokenizer, template: str, max_length: int) -> tuple[list[dict], int]:
    """(rows fitted to ``max_length``, how many were shortened)."""
    out, shortened = [], 0
    for row in rows:
        fitted = fit_conversation(row["messages"], tokenizer, template, max_length)
        shortened += fitted is not row["messages"]
        out.append({"messages": fitted})
    return out, shortened


def instruction_tune(model, tokenizer, args: InstructArgs, progress: bool = True,
                     data: InstructionData | None = None, report=None) -> tuple[object, FinetuneResult]:
    """Instruction-tune ``model`` in place on the mixture and return it with the losses (dev loss:
    the assistant-token loss on the held-out conversations)."""
    data = data or instruction_data(args)
    template, source = chat_template_for(tokenizer)
    tokenizer.chat_template = template
    max_length = args.sft.max_length
    train, short_train = training_rows(data.train, tokenizer, template, max_length)
    dev, short_dev = training_rows(data.dev, tokenizer, template, max_length)
    log.info("instruction tuning on %s: %d train / %d dev conversations (%d / %d shortened to %d tokens), "
             "chat template: %s", args.mixture, len(train), len(dev), short_train, short_dev, max_length, source)
    return sft_train(model, tokenizer, train, dev, args.sft, loss="assistant", progress=progress, report=report)
