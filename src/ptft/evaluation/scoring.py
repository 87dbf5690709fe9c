"""The model side of evaluation: exact, batch-invariant log-likelihoods and greedy decoding, with the
shared few-shot prefix encoded once and its KV cache reused.

Tokenization (identical to lm-evaluation-harness's ``HFLM``)
    A context is tokenized on its own, with the tokenizer's special tokens (BOS where the
    tokenizer adds one); a continuation's tokens are those of ``tokenize(context + continuation)``
    after the first ``len(tokenize(context))`` tokens. The model input is ``context + continuation``
    tokens. Nothing in the cache machinery below changes these token ids: it only avoids
    recomputing some of them.

Shared prefix (KV reuse)
    The token ids of all contexts of one call are compared and their longest common prefix
    (capped so every context keeps at least one token of its own) is run through the model once;
    its KV cache is expanded to each batch. With few-shot demos this prefix is the demonstrations
    (up to the last token boundary that all prompts share, so a BPE merge across the "\\n\\n"
    separator can never make the cached tokens differ from the full prompt's); with 0 shots it is
    whatever the prompts share (a BOS, a template's first words) or nothing. Because the prefix is
    found on token ids, the scores with the cache are the scores without it, up to float rounding.

Batching (right padding, explicit positions, masks)
    Contexts are batched longest first and right-padded; the prefix cache is expanded to the
    batch (a view: the forward pass's concatenation is its only copy); ``position_ids`` are given
    explicitly, so every real token sits at its own position and attends to exactly its own
    sequence, whatever else is in the batch: scores do not depend on batching.

    Log-likelihoods, one pass (the default, for "sdpa"/"eager" attention and plain full-attention
    caches): each row is ``context suffix + cont_1[:-1] + cont_2[:-1] + ...`` with an additive
    4-D mask: a context token sees the prefix and the context before it; a continuation token sees
    the prefix, its whole context and the earlier tokens of its own continuation; positions
    restart at the context length for each continuation. A context is run once however many
    continuations (labels, choices) it has, and there is no per-continuation copy of the cache.
    Logits are computed only where a continuation token is predicted (``logits_to_keep``).

    Log-likelihoods, two stages (any other model): stage A runs the context suffixes with a 2-D
    mask ``[prefix ones | suffix mask]`` and keeps the last real token's logits; stage B feeds
    the continuation tokens (all but the last; none when every continuation is one token) on
    copies of their rows of stage A's cache: the pads of shorter contexts sit between context
    and continuation, the 2-D mask zeroes them, positions continue at each row's context length.

    Next-token scores (TokenProb) are stage A alone; greedy decoding is stage A, then one token
    per step appended the same way, rows leaving the batch as they stop.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from ptft.evaluation.matching import truncate_at_stop

_HUGE_LENGTH = 1_000_000


def infer_max_length(model, tokenizer, default: int = 2048) -> int:
    """The model's context window, found the way lm-evaluation-harness finds it."""
    config = getattr(model, "config", None)
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < _HUGE_LENGTH:
        return value
    return default


class _TreeUnsupported(RuntimeError):
    pass


def _plain_dynamic_layers(model) -> bool:
    """Whether the model's DynamicCache is made of plain full-attention layers only."""
    try:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)
    except Exception:  # noqa: BLE001 - an unusual config: take the general path
        return False


@dataclass
class _Prefix:
    ids: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None  # per layer (1, heads, P, head_dim)


@dataclass
class _StageA:
    """A batch of contexts after its forward pass."""

    cache: object  # transformers DynamicCache with rows (B, heads, P + L, head_dim)
    attention_mask: torch.Tensor  # (B, P + L) long
    context_lengths: torch.Tensor  # (B,) full context length (prefix + own suffix)
    next_logprobs: torch.Tensor  # (B, V) float32 log-softmax after each context


class LMScorer:
    """Batched scoring primitives over one causal LM and its tokenizer."""

    def __init__(self, model, tokenizer, batch_size: int = 16, max_length: int | None = None,
                 reuse_prefix: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or infer_max_length(model, tokenizer)
        self.reuse_prefix = reuse_prefix
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # a peft model (LoRA, unmerged: during its training) passes these arguments on to the model
        # it wraps, whose forward names them
        wrapped = model.get_base_model() if hasattr(model, "get_base_model") else model
        forward_params = inspect.signature(wrapped.forward).parameters
        self._keep_arg = "logits_to_keep" in forward_params
        # transformers 5 (5.24 here) names forward's KV cache `cache`; `past_key_values` warns and
        # goes in 5.40; models and releases without the rename take the old name
        self._cache_arg = "cache" if "cache" in forward_params else "past_key_values"
        self._plain_cache = _plain_dynamic_layers(model)
        # one forward pass per batch for contexts *and* their continuations needs an additive 4-D
        # mask, which "sdpa" and "eager" attention take as given (not flash attention, and not
        # sliding-window layers, whose own masks a 4-D mask would override)
        attn = getattr(model.config, "_attn_implementation", None)
        self.tree = self._plain_cache and self._keep_arg and attn in ("sdpa", "eager")
        # stage B takes up to this many continuations per example of a stage-A batch in one pass
        # (all choices of a 4-way multiple-choice batch); its KV memory is that many times stage A's
        self.rows_per_example = 4
        self.last_prefix_len = 0  # tokens of the shared prefix in the latest call (for notes/tests)

    # ------------------------------------------------------------------ tokenization
    def _backend(self):
        """The fast tokenizer's Rust backend when calling it directly gives exactly what
        ``tokenizer(texts)`` gives: no padding or truncation configured on it (another caller may
        have left some) and the same special-token splitting."""
        tok = self.tokenizer
        backend = getattr(tok, "backend_tokenizer", None)
        if backend is None or backend.padding is not None or backend.truncation is not None:
            return None
        split = getattr(tok, "split_special_tokens", False)
        if getattr(backend, "encode_special_tokens", split) != split:
            return None
        return backend

    @property
    def prefix_token_id(self) -> int:
        """What conditions an empty context: BOS, else EOS (lm-evaluation-harness's choice)."""
        tok = self.tokenizer
        return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def encode(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
        """Token ids of each text; an empty context becomes ``[prefix_token_id]``."""
        if not texts:
            return []
        backend = self._backend()
        if backend is not None:  # what tokenizer(texts) runs, without building Python dicts
            ids = [enc.ids for enc in backend.encode_batch(list(texts), add_special_tokens=add_special_tokens)]
        else:
            enc = self.tokenizer(list(texts), add_special_tokens=add_special_tokens, verbose=False)
            ids = [list(x) for x in enc["input_ids"]]
        if add_special_tokens:
            ids = [x if x else [self.prefix_token_id] for x in ids]
        return ids

    def encode_pairs(self, contexts: Sequence[str], continuations: Sequence[Sequence[str]]
                     ) -> tuple[list[list[int]], list[list[list[int]]]]:
        """Context ids and, per context, the ids of each continuation (lm-eval's split)."""
        ctx_texts, wholes, owners = [], [], []
        for i, (ctx, conts) in enumerate(zip(contexts, continuations, strict=True)):
            n_spaces = len(ctx) - len(ctx.rstrip())
            head, moved = (ctx[:-n_spaces], ctx[-n_spaces:]) if n_spaces else (ctx, "")
            ctx_texts.append(head)
            for cont in conts:
                wholes.append(head + moved + cont)
                owners.append(i)
        ctx_ids = self.encode(ctx_texts)
        whole_ids = self.encode(wholes)
        cont_ids: list[list[list[int]]] = [[] for _ in contexts]
        for owner, whole, text in zip(owners, whole_ids, wholes):
            if ctx_texts[owner]:
                cont_ids[owner].append(whole[len(ctx_ids[owner]):])
            else:  # empty context: [prefix token] + the continuation's own tokens, as lm-eval does
                cont_ids[owner].append(self.encode([text], add_special_tokens=False)[0])
        return ctx_ids, cont_ids

    # ------------------------------------------------------------------ model calls
    def _forward(self, input_ids, attention_mask, position_ids, cache, keep: torch.Tensor | None = None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
                  self._cache_arg: cache, "use_cache": True}
        if keep is not None and self._keep_arg:
            kwargs["logits_to_keep"] = keep.view(-1, 1)
        logits = self.model(**kwargs).logits
        if keep is not None and "logits_to_keep" in kwargs and (logits.dim() != 3 or logits.shape[0] != keep.numel()):
            raise RuntimeError(f"{type(self.model).__name__} does not take per-row logits_to_keep")
        if keep is not None:
            if logits.shape[1] != 1 or not self._keep_arg:
                logits = logits[torch.arange(logits.shape[0], device=logits.device), keep]
            else:
                logits = logits[:, 0]
        return logits

    def _new_cache(self, kv: list[tuple[torch.Tensor, torch.Tensor]] | None):
        """A DynamicCache holding ``kv``. With plain full-attention layers the tensors (possibly
        expanded views of the one prefix) are installed as they are, so the forward pass's own
        concatenation is their only copy; other layer kinds get them through ``update``."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        if not kv:
            return cache
        if self._plain_cache:
            for layer, (k, v) in zip(cache.layers, kv):
                layer.lazy_initialization(k, v)
                layer.keys, layer.values = k, v
            return cache
        return DynamicCache(ddp_cache_data=[(k.contiguous(), v.contiguous()) for k, v in kv],
                            config=self.model.config)

    @staticmethod
    def _cache_tensors(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(layer.keys, layer.values) for layer in cache.layers]

    @torch.inference_mode()
    def _prefix(self, contexts: Sequence[Sequence[int]]) -> _Prefix:
        if not self.reuse_prefix or not contexts:
            self.last_prefix_len = 0
            return _Prefix([], None)
        first = contexts[0]
        n = min(len(c) for c in contexts) - 1  # every context keeps >= 1 token of its own
        for c in contexts[1:]:
            i = 0
            limit = min(n, len(c))
            while i < limit and c[i] == first[i]:
                i += 1
            n = i
            if n == 0:
                break
        self.last_prefix_len = max(n, 0)
        if n <= 0:
            return _Prefix([], None)
        ids = list(first[:n])
        input_ids = torch.tensor([ids], device=self.device)
        cache = self._new_cache(None)
        keep = torch.tensor([n - 1], device=self.device)
        self._forward(input_ids, torch.ones_like(input_ids), torch.arange(n, device=self.device)[None],
                      cache, keep=keep)
        return _Prefix(ids, self._cache_tensors(cache))

    @torch.inference_mode()
    def _stage_a(self, prefix: _Prefix, contexts: Sequence[Sequence[int]]) -> _StageA:
        P = len(prefix.ids)
        B = len(contexts)
        suffixes = [c[P:] for c in contexts]
        lens = [len(s) for s in suffixes]
        L = max(lens)
        input_ids = torch.full((B, L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((B, P + L), dtype=torch.long)
        mask[:, :P] = 1
        for i, s in enumerate(suffixes):
            input_ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, P : P + len(s)] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (P + torch.arange(L, device=self.device)).expand(B, L)
        kv = None
        if prefix.kv:
            kv = [(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in prefix.kv]
        cache = self._new_cache(kv)
        last = torch.tensor(lens, device=self.device) - 1
        logits = self._forward(input_ids, mask, positions, cache, keep=last)
        return _StageA(cache, mask, P + last + 1, torch.log_softmax(logits.float(), dim=-1))

    def _batches(self, contexts: Sequence[Sequence[int]], sizes: Sequence[int] | None = None) -> Iterator[list[int]]:
        """Indices in batches, longest first (less padding, OOM shows up at once)."""
        sizes = sizes if sizes is not None else [len(c) for c in contexts]
        order = sorted(range(len(contexts)), key=lambda i: (-sizes[i], i))
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    # ------------------------------------------------------------------ public primitives
    @torch.inference_mode()
    def next_token_logprobs(self, contexts: Sequence[Sequence[int]], token_ids: Sequence[Sequence[int]]
                            ) -> list[np.ndarray]:
        """Per context, the log-probabilities of the given next-token ids (one forward pass)."""
        prefix = self._prefix(contexts)
        out: list[np.ndarray] = [np.empty(0)] * len(contexts)
        for batch in self._batches(contexts):
            state = self._stage_a(prefix, [contexts[i] for i in batch])
            lp = state.next_logprobs.cpu()
            for row, i in enumerate(batch):
                out[i] = lp[row, list(token_ids[i])].numpy().astype(np.float64)
        return out

    @torch.inference_mode()
    def _tree_batch(self, prefix: _Prefix, contexts: Sequence[Sequence[int]],
                    continuations: Sequence[Sequence[Sequence[int]]]) -> list[list[tuple[float, bool, int]]]:
        """Contexts and all their continuations in one forward pass.

        Row i holds ``suffix_i + cont_i1[:-1] + cont_i2[:-1] + ...``. An additive 4-D mask lets a
        context token see the prefix and the context before it, and a continuation token see the
        prefix, the whole context and the earlier tokens of *its own* continuation; position ids
        restart at the context length for every continuation. Each continuation is thereby scored
        exactly as if it alone followed its context."""
        P = len(prefix.ids)
        B = len(contexts)
        toks, segs, poss, spans = [], [], [], []
        for ctx, conts in zip(contexts, continuations):
            suffix = list(ctx[P:])
            row, seg = suffix[:], [0] * len(suffix)
            pos = list(range(P, P + len(suffix)))
            ctx_len = P + len(suffix)
            row_spans = []
            for j, cont in enumerate(conts):
                start = len(row)
                row += cont[:-1]
                seg += [j + 1] * (len(cont) - 1)
                pos += range(ctx_len, ctx_len + len(cont) - 1)
                # the query index that predicts each token of this continuation
                row_spans.append([len(suffix) - 1] + list(range(start, start + len(cont) - 1)))
            toks.append(row)
            segs.append(seg)
            poss.append(pos)
            spans.append(row_spans)
        Lq = max(len(r) for r in toks)
        input_ids = torch.full((B, Lq), self.pad_id, dtype=torch.long)
        seg_t = torch.full((B, Lq), -1, dtype=torch.long)
        pos_t = torch.zeros((B, Lq), dtype=torch.long)
        for i in range(B):
            n = len(toks[i])
            input_ids[i, :n] = torch.tensor(toks[i], dtype=torch.long)
            seg_t[i, :n] = torch.tensor(segs[i], dtype=torch.long)
            pos_t[i, :n] = torch.tensor(poss[i], dtype=torch.long)
            pos_t[i, n:] = poss[i][-1] + 1
        q = torch.arange(Lq)
        causal = q[None, :] <= q[:, None]  # (q, k)
        sq, sk = seg_t[:, :, None], seg_t[:, None, :]
        allowed = causal[None] & ((sk == 0) | ((sk == sq) & (sq > 0)))
        allowed = torch.cat([torch.ones((B, Lq, P), dtype=torch.bool), allowed], dim=-1)
        dtype = next(self.model.parameters()).dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]

        # positions whose logits are needed, per row (padded to the same count with a repeat)
        needed = [sorted({qi for sp in row for qi in sp}) for row in spans]
        K = max(len(n) for n in needed)
        keep = torch.tensor([n + [n[0]] * (K - len(n)) for n in needed], dtype=torch.long)
        col = [{qi: c for c, qi in enumerate(n)} for n in needed]

        kv = None
        if prefix.kv:
            kv = [(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in prefix.kv]
        logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                            position_ids=pos_t.to(self.device), use_cache=True,
                            logits_to_keep=keep.to(self.device), **{self._cache_arg: self._new_cache(kv)}).logits
        if logits.dim() != 3 or tuple(logits.shape[:2]) != (B, K):
            raise _TreeUnsupported("the model does not take per-row logits_to_keep")
        lps = torch.log_softmax(logits.float(), dim=-1)
        best = lps.argmax(-1).cpu()
        r_idx, c_idx, t_idx, owner = [], [], [], []
        flat_owner = []
        for i, (row_spans, conts) in enumerate(zip(spans, continuations)):
            for j, (sp, cont) in enumerate(zip(row_spans, conts)):
                flat_owner.append((i, j))
                for qi, t in zip(sp, cont):
                    r_idx.append(i)
                    c_idx.append(col[i][qi])
                    t_idx.append(t)
                    owner.append(len(flat_owner) - 1)
        r_t, c_t, t_t = torch.tensor(r_idx), torch.tensor(c_idx), torch.tensor(t_idx)
        tok_lp = lps[r_t.to(self.device), c_t.to(self.device), t_t.to(self.device)].double().cpu()
        tok_greedy = (best[r_t, c_t] == t_t).long()
        own = torch.tensor(owner)
        totals = torch.zeros(len(flat_owner), dtype=torch.float64).index_add_(0, own, tok_lp)
        misses = torch.zeros(len(flat_owner), dtype=torch.long).index_add_(0, own, 1 - tok_greedy)
        out: list[list[tuple[float, bool, int]]] = [[] for _ in range(B)]
        for k, (i, j) in enumerate(flat_owner):
            out[i].append((float(totals[k]), bool(misses[k] == 0), len(continuations[i][j])))
        return out

    @torch.inference_mode()
    def loglikelihoods(self, contexts: Sequence[Sequence[int]], continuations: Sequence[Sequence[Sequence[int]]]
                       ) -> list[list[tuple[float, bool, int]]]:
        """Per context, per continuation: (sum of log-probs of its tokens, greedy?, token count)."""
        for i, conts in enumerate(continuations):
            for cont in conts:
                if not cont:
                    raise ValueError(f"context {i}: a continuation has no tokens")
        prefix = self._prefix(contexts)
        out: list[list[tuple[float, bool, int]]] = [[] for _ in contexts]
        if self.tree:
            sizes = [len(c) + sum(len(x) - 1 for x in conts) for c, conts in zip(contexts, continuations)]
            try:
                for batch in self._batches(contexts, sizes):
                    scored = self._tree_batch(prefix, [contexts[i] for i in batch], [continuations[i] for i in batch])
                    for i, res in zip(batch, scored):
                        out[i] = res
                return out
            except _TreeUnsupported:
                self.tree = False  # this model needs the two-stage path; nothing was kept
        for batch in self._batches(contexts):
            state = self._stage_a(prefix, [contexts[i] for i in batch])
            rows = [(row, j) for row, i in enumerate(batch) for j in range(len(continuations[i]))]
            results: dict[tuple[int, int], tuple[float, bool, int]] = {}
            step = self.batch_size * self.rows_per_example
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                conts = [list(continuations[batch[row]][j]) for row, j in chunk]
                for (row, j), lp in zip(chunk, self._score_chunk(state, [r for r, _ in chunk], conts)):
                    results[(row, j)] = lp
            for row, i in enumerate(batch):
                out[i] = [results[(row, j)] for j in range(len(continuations[i]))]
        return out

    def _score_chunk(self, state: _StageA, rows: list[int], conts: list[list[int]]) -> list[tuple[float, bool, int]]:
        first_lp = state.next_logprobs[rows]  # (R, V)
        first_tok = torch.tensor([c[0] for c in conts], device=first_lp.device)
        r_idx = torch.arange(len(rows), device=first_lp.device)
        totals = first_lp[r_idx, first_tok].double()
        greedy = first_lp.argmax(-1) == first_tok
        Lb = max(len(c) for c in conts) - 1
        if Lb > 0:
            R = len(rows)
            idx = torch.tensor(rows, device=self.device)
            inputs = torch.full((R, Lb), self.pad_id, dtype=torch.long)
            targets = torch.zeros((R, Lb), dtype=torch.long)
            cmask = torch.zeros((R, Lb), dtype=torch.long)
            for r, c in enumerate(conts):
                n = len(c) - 1
                if n:
                    inputs[r, :n] = torch.tensor(c[:-1])
                    targets[r, :n] = torch.tensor(c[1:])
                    cmask[r, :n] = 1
            inputs, targets, cmask = inputs.to(self.device), targets.to(self.device), cmask.to(self.device)
            kv = [(k[idx], v[idx]) for k, v in self._cache_tensors(state.cache)]
            mask = torch.cat([state.attention_mask[idx], cmask], dim=1)
            positions = state.context_lengths[idx][:, None] + torch.arange(Lb, device=self.device)[None]
            logits = self._forward(inputs, mask, positions, self._new_cache(kv))
            lps = torch.log_softmax(logits.float(), dim=-1)
            tok_lp = lps.gather(-1, targets[..., None])[..., 0] * cmask
            tok_greedy = (lps.argmax(-1) == targets) | (cmask == 0)
            totals = totals + tok_lp.double().sum(-1)
            greedy = greedy & tok_greedy.all(-1)
        return [(float(t), bool(g), len(c)) for t, g, c in zip(totals.tolist(), greedy.tolist(), conts)]

    @torch.inference_mode()
    def generate(self, contexts: Sequence[Sequence[int]], max_new_tokens: int, stops: Sequence[str] = (),
                 eos_ids: Sequence[int] = ()) -> list[tuple[str, bool]]:
        """Greedy continuation of each context: (text cut at the first stop sequence, stopped?).

        A row leaves the batch as soon as it produces an EOS token or its text contains a stop
        sequence; the batch ends when no row is left or after ``max_new_tokens`` tokens."""
        eos = set(int(e) for e in eos_ids)
        stops = [s for s in stops if s]
        prefix = self._prefix(contexts)
        out: list[tuple[str, bool]] = [("", False)] * len(contexts)
        for batch in self._batches(contexts):
            state = self._stage_a(prefix, [contexts[i] for i in batch])
            tokens: list[list[int]] = [[] for _ in batch]
            finished: dict[int, tuple[str, bool]] = {}
            active = list(range(len(batch)))  # rows of ``batch`` still generating, in cache order
            next_tok = state.next_logprobs.argmax(-1).tolist()
            cache, mask, positions = state.cache, state.attention_mask, state.context_lengths.clone()
            for step in range(max_new_tokens):
                keep_rows = []
                for pos_in_cache, row in enumerate(active):
                    tok = next_tok[pos_in_cache]
                    if tok in eos:
                        finished[row] = (self.tokenizer.decode(tokens[row], skip_special_tokens=True), True)
                        continue
                    tokens[row].append(tok)
                    text = self.tokenizer.decode(tokens[row], skip_special_tokens=True)
                    cut, hit = truncate_at_stop(text, stops)
                    if hit or step == max_new_tokens - 1:
                        finished[row] = (cut, hit)
                        continue
                    keep_rows.append(pos_in_cache)
                if not keep_rows:
                    break
                if len(keep_rows) < len(active):
                    sel = torch.tensor(keep_rows, device=self.device)
                    cache.batch_select_indices(sel)
                    mask, positions = mask[sel], positions[sel]
                    next_tok = [next_tok[p] for p in keep_rows]
                    active = [active[p] for p in keep_rows]
                inputs = torch.tensor(next_tok, device=self.device)[:, None]
                mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=self.device)], dim=1)
                logits = self._forward(inputs, mask, positions[:, None], cache,
                                       keep=torch.zeros(len(active), dtype=torch.long, device=self.device))
                positions = positions + 1
                next_tok = logits.argmax(-1).tolist()
            for row, i in enumerate(batch):
                out[i] = finished.get(row, (self.tokenizer.decode(tokens[row], skip_special_tokens=True), False))
        return out
