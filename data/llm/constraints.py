"""Constrained decoding: output that always parses and never names a mention absent from the input.

The seeds lose 10-27 % of their outputs to unparseable JSON and 11-15 % of their mentions to
hallucination. With a constraint, every generating script's output is, in every format of
data/llm/formats/:
  1. well formed (`parse(...).well_formed` is True);
  2. made of mentions that are contiguous word n-grams of the input (data.text.tokenize words, at most
     `max_words` of them), written exactly as the format's serialiser writes them, so data/llm/align.py
     always places them (never "hallucinated");
  3. typed only with the allowed types, in the format's type order;
  4. complete within `max_new_tokens`: when the budget left is just enough to close the answer, only
     the tokens of a shortest closing path remain allowed, so an untrained model that would loop is
     closed instead of cut off (this is also what bounds the number of items).
Per format: bio copies every input word and lets the model choose only its tag (O, B-T, or I-T after
B-T / I-T of the same type: strict BIO, as gold answers are); json forces "start" and "end" to an
occurrence of the chosen text (so stated offsets are always right) and writes the keys in the
serialiser's order; typed / typed_short list the types in order (typed: every type); list writes a
list, or a dict of every type, of string literals. Each format defines its language (`machine`,
`grammar`) in its own module of data/llm/formats/; this module walks any of them over tokens.

    from data.llm.constraints import build, ConstrainedLogits
    constraints = [build("json", text, types, tokenizer, max_new_tokens=256) for text in texts]
    model.generate(**batch, max_new_tokens=256, logits_processor=LogitsProcessorList(
        [ConstrainedLogits(constraints, prompt_length=batch["input_ids"].shape[1])]))
    server_options("typed", text, types)   # the same for a llama.cpp server (openai client kwargs)

How: each answer is a path through a small automaton whose states ("keys") offer alternatives (pieces
of text); the alternatives of a state are tokenised once and put in a token trie, so a step costs a
dict lookup and a scan of the allowed children. Pieces are tokenised on their own and concatenated
(with a byte-level BPE such as SmolLM2's this decodes to exactly the concatenated text, non-ASCII and
leading spaces included; the pieces are cut where the pre-tokeniser cuts anyway, before a space-led
word, so the token sequences are mostly the canonical ones). Alternatives may share prefixes across
states (", 2" ending one mention and ",3" continuing "2,3-..."), so the automaton tracks a set of trie
positions. Each trie node knows the fewest tokens needed to finish from it, which is what the budget
check uses.

Why not outlines (installed, 1.3.3): a JSON schema whose "text" is an enum of the input's word n-grams
compiles to an outlines_core Index over SmolLM2's 49k-token vocabulary in 7.9 s for one NCBI-disease
sentence (33 words, 325 candidates, maxItems 8), 36 s with maxItems 32, and 75 s (maxItems 8) to
400 s (maxItems 32) for one abstract (272 words, 3028 candidates): the index is per input, so this is
paid per sentence. A schema also cannot tie offsets to the chosen text, express the typed and bio
formats, or close the answer when the token budget runs out (the regex gives no closing path). The
automaton here builds per sentence in 3-90 ms (tries are built lazily as states are reached), and
its masking costs about 1 % of a SmolLM2 decoding step.

The llama.cpp server cannot take a Python logits processor, so `server_options` gives its schema
(json: `response_format` json_object with a schema) or GBNF grammar (`extra_body`; the others) for the
same language, except what GBNF and schemas cannot say: json offsets are integers, not tied to the
text; and the server has no budget-aware closing (its max_tokens still cuts).
"""
from __future__ import annotations

from typing import Hashable, Protocol, Sequence

import torch
from transformers import LogitsProcessor

from data.llm.formats import OutputFormat, get_format
from data.llm.formats.base import DONE, MAX_WORDS, Alternative, Machine


class Constraint(Protocol):
    """One prompt's constraint, keyed on the ids generated so far (prompt excluded)."""

    def allowed(self, generated: Sequence[int]) -> Sequence[int] | None: ...


# --------------------------------------------------------------------------- the token automaton
class _Node:
    """A token trie node: children by token id, the keys that begin where an alternative ends here, and
    `est`, the fewest tokens that finish the answer from here."""

    __slots__ = ("children", "ends", "est")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.ends: list[Hashable] = []
        self.est = 0


_FINISHED = ()  # the state after the end-of-sequence token


class Automaton:
    """A format's machine over token ids (see the module docstring); one per prompt."""

    def __init__(self, machine: Machine, tokenizer, max_new_tokens: int, eos_token_id: int | None = None):
        self.machine, self.tokenizer, self.max_new_tokens = machine, tokenizer, max_new_tokens
        self.eos = tokenizer.eos_token_id if eos_token_id is None else eos_token_id
        if self.eos is None:
            raise ValueError("the tokenizer has no eos token; pass eos_token_id")
        self._ids_of: dict[str, tuple[int, ...]] = {"": ()}
        self._alts: dict[Hashable, list[tuple[tuple[int, ...], Hashable]]] = {}
        self._close: dict[Hashable, int] = {DONE: 0}
        self._tries: dict[Hashable, _Node] = {}
        self.min_tokens = self.close(machine.start)
        if self.min_tokens > max_new_tokens:
            kind = type(machine).__name__.removesuffix("Machine").lower()
            raise ValueError(f"the shortest {kind} answer for this text takes {self.min_tokens} tokens, more than "
                             f"max_new_tokens={max_new_tokens}")
        self._gen: list[int] = []
        self._states: list[tuple[_Node, ...]] = [(self.trie(machine.start),)]

    # ----------------------------------------------------------------- building, lazily per key
    def _tokens(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        todo = list(dict.fromkeys(t for t in texts if t not in self._ids_of))
        if todo:
            ids = self.tokenizer(todo, add_special_tokens=False)["input_ids"]
            self._ids_of.update(zip(todo, map(tuple, ids)))
        return [self._ids_of[t] for t in texts]

    def _tokenised(self, alts: list[Alternative]) -> list[tuple[tuple[int, ...], Hashable]]:
        pieces = [(t,) if isinstance(t, str) else t for t, _ in alts]
        ids = iter(self._tokens([p for ps in pieces for p in ps]))
        return [(sum((next(ids) for _ in ps), ()), k) for ps, (_, k) in zip(pieces, alts)]

    def close(self, key: Hashable) -> int:
        """The fewest tokens that finish the answer from the start of `key`, along closing alternatives."""
        stack = [key]
        while stack:
            k = stack[-1]
            if k in self._close:
                stack.pop()
                continue
            alts = self._tokenised(self.machine.closing(k))
            missing = [n for _, n in alts if n not in self._close]
            if missing:
                stack.extend(missing)
                continue
            self._close[k] = min(len(ids) + self._close[n] for ids, n in alts)
            stack.pop()
        return self._close[key]

    def trie(self, key: Hashable) -> _Node:
        """The token trie of the alternatives of `key`, with every node's `est`."""
        if key in self._tries:
            return self._tries[key]
        if key not in self._alts:
            self._alts[key] = self._tokenised(self.machine.alternatives(key))
        root, order = _Node(), []
        for ids, nxt in self._alts[key]:
            node = root
            for t in ids:
                child = node.children.get(t)
                if child is None:
                    child = node.children[t] = _Node()
                    order.append(child)
                node = child
            node.ends.append(nxt)
        for node in reversed([root, *order]):  # children come after their parents in `order`
            ests = [1 + c.est for c in node.children.values()] + [self.close(k) for k in node.ends]
            node.est = min(ests)
        self._tries[key] = root
        return root

    # ----------------------------------------------------------------- walking
    def _expand(self, state: tuple[_Node, ...]) -> tuple[list[_Node], bool]:
        """The state's trie positions plus the roots of the keys that begin there, and whether the answer
        may end here."""
        out, done, stack, seen = [], False, list(state), set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            out.append(node)
            for k in node.ends:
                if k == DONE:
                    done = True
                else:
                    stack.append(self.trie(k))
        return out, done

    def step(self, state: tuple[_Node, ...], token: int) -> tuple[_Node, ...]:
        """The state after `token` (ValueError if the token is not allowed at all)."""
        if state == _FINISHED:
            return _FINISHED
        nodes, done = self._expand(state)
        if done and token == self.eos:
            return _FINISHED
        nxt = {id(c): c for n in nodes if (c := n.children.get(token)) is not None}
        if not nxt:
            raise ValueError(f"token {token} ({self.tokenizer.decode([token])!r}) is not allowed here")
        return tuple(nxt.values())

    def options(self, state: tuple[_Node, ...], remaining: int) -> list[int]:
        """The tokens allowed in `state` with `remaining` tokens of budget left."""
        if state == _FINISHED:
            return [self.eos]
        nodes, done = self._expand(state)
        allowed = {t for n in nodes for t, c in n.children.items() if c.est < remaining}
        if done:
            allowed.add(self.eos)
        if not allowed:  # cannot happen: est is always reachable (a bug if it does)
            raise RuntimeError(f"no token fits the remaining budget of {remaining}")
        return sorted(allowed)

    def allowed(self, generated: Sequence[int]) -> list[int]:
        """The token ids allowed next, given the ids generated so far (the walk is cached per prefix)."""
        generated = list(generated)
        k = min(len(generated), len(self._gen))
        if generated[:k] != self._gen[:k]:
            k = next(i for i, (a, b) in enumerate(zip(generated, self._gen)) if a != b)
        del self._gen[k:], self._states[k + 1:]
        for t in generated[k:]:
            self._states.append(self.step(self._states[-1], t))
            self._gen.append(t)
        return self.options(self._states[-1], self.max_new_tokens - len(generated))


def build(fmt: str | OutputFormat, text: str, types: Sequence[str], tokenizer, max_new_tokens: int,
          max_words: int = MAX_WORDS, eos_token_id: int | None = None) -> Automaton:
    """The constraint for one input text in one output format (every format of data/llm/formats/).

    Raises ValueError when even the shortest answer (bio: all words tagged O) needs more than
    max_new_tokens tokens; `Automaton.min_tokens` tells how many it needs.
    """
    return Automaton(_format(fmt, types).machine(text, types, max_words), tokenizer, max_new_tokens, eos_token_id)


class ConstrainedLogits(LogitsProcessor):
    """Masks each row's scores to what its constraint allows (None: that row is free).

    `prompt_length` is the width of the (left-padded) prompt batch: row i's generated ids are
    input_ids[i, prompt_length:]. One constraint per row, so no beams or multiple return sequences.
    """

    def __init__(self, constraints: Sequence[Constraint | None], prompt_length: int):
        self.constraints, self.prompt_length = list(constraints), prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != len(self.constraints):
            raise ValueError(f"{input_ids.shape[0]} rows but {len(self.constraints)} constraints "
                             "(constrained decoding takes one sequence per prompt)")
        return restrict(scores, self.constraints, input_ids[:, self.prompt_length:].tolist())


def restrict(scores: torch.Tensor, constraints: Sequence[Constraint | None],
             generated: Sequence[Sequence[int]]) -> torch.Tensor:
    """Scores (rows x vocabulary) with every token row i's constraint forbids, given the ids it has
    generated so far, set to -inf (a None constraint leaves its row as it is)."""
    rows, cols, free = [], [], []
    for i, (constraint, ids) in enumerate(zip(constraints, generated)):
        allowed = None if constraint is None else constraint.allowed(ids)
        if allowed is None:
            free.append(i)
            continue
        rows += [i] * len(allowed)
        cols += allowed
    out = torch.full_like(scores, float("-inf"))
    r, c = torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)
    out[r, c] = scores[r, c]
    out[free] = scores[free]
    return out


# --------------------------------------------------------------------------- llama.cpp server
def grammar(fmt: str | OutputFormat, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> str:
    """A GBNF grammar (llama.cpp) of the format's constrained language, as build() accepts it (json:
    offsets are any integers here, not tied to the text)."""
    return _format(fmt, types).grammar(text, types, max_words)


def server_options(fmt: str | OutputFormat, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> dict:
    """Keyword arguments for openai `client.chat.completions.create(**kwargs)` against a llama.cpp server:
    a json_object response format with the schema for json, a GBNF grammar (extra_body) for the others."""
    return _format(fmt, types).server_options(text, types, max_words)


def _format(fmt: str | OutputFormat, types: Sequence[str]) -> OutputFormat:
    if not types:
        raise ValueError("a constraint needs at least one entity type")
    return get_format(fmt) if isinstance(fmt, str) else fmt
