"""Constrained decoding (data/llm/constraints.py): every walk through a constraint parses, with no
hallucinated mention and no invalid type, in every format and on a sentence of every dataset; the
same holds for greedy generation by the untrained SmolLM2; the server grammars accept the same texts."""
from __future__ import annotations

import random
import re
from functools import lru_cache

import pytest

from conftest import load_split, needs_mirror
from data.llm.constraints import ConstrainedLogits, build, grammar, server_options
from data.llm.formats.base import candidates
from data.corpus import Entity
from data.llm.formats import FORMATS, get_format
from data.registry import DATASETS
from data.text import split_sentences, tokenize

TEXT = 'Naïve "BRCA1" mutations, 2,3-dichloro cause breast cancer, and breast cancer in Болезнь (x) , ok.'
TYPES = ("Disease", "Chemical")
WITH_TEXTS = [name for name in DATASETS if name != "raredis"]  # raredis ships annotations only


@lru_cache(maxsize=None)
def tokenizer():
    from transformers import AutoTokenizer
    from data.llm.models import resolve
    return AutoTokenizer.from_pretrained(resolve("smollm2"), padding_side="left")


@lru_cache(maxsize=None)
def sentence(name: str, max_words: int = 25) -> str:
    """The first sentence of 5 to max_words words in the dataset's test split (or its first split)."""
    ds = DATASETS[name]
    for doc in load_split(name, "test" if "test" in ds.splits else next(iter(ds.splits))):
        for s, e in split_sentences(doc.text):
            if 5 <= len(tokenize(doc.text, s, e)) <= max_words:
                return doc.text[s:e]
    raise AssertionError(f"{name}: no sentence of 5 to {max_words} words")


def walk(constraint, rng: random.Random, eos: int, p_end: float = 0.15) -> list[int]:
    """A random walk over the allowed tokens; the end token is taken with probability p_end when allowed."""
    ids: list[int] = []
    while len(ids) < constraint.max_new_tokens:
        allowed = constraint.allowed(ids)
        rest = [t for t in allowed if t != eos]
        if not rest or (eos in allowed and rng.random() < p_end):
            break
        ids.append(rng.choice(rest))
    return ids


def check(fmt: str, output: str, text: str, types) -> None:
    result = get_format(fmt).parse(output, text, types)
    assert result.well_formed, (fmt, output)
    assert not result.hallucinated and not result.invalid_type and not result.unparsed, (fmt, output, result.counts)
    assert all(item.placement != "hallucinated" for item in result.items)
    if fmt == "json":
        assert all(item.stated_ok for item in result.items), output


# --------------------------------------------------------------------------- a GBNF matcher for the tests
_GBNF_TOKEN = re.compile(r'\s*(?:(?P<lit>"(?:[^"\\]|\\.)*")|(?P<cls>\[[^\]]*\])|(?P<name>[A-Za-z0-9-]+)|(?P<op>[()|?*]))')


def _unescape(body: str) -> str:
    return re.sub(r"\\(x[0-9A-Fa-f]{2}|.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(
        m[1], chr(int(m[1][1:], 16)) if m[1][0] == "x" and len(m[1]) == 3 else m[1]), body)


def parse_gbnf(text: str) -> dict:
    """The subset of GBNF that data/llm/constraints.py writes: literals, [a-b] classes, rules, ( ) | ? *."""
    rules = {}
    for line in text.split("\n"):
        name, sep, body = line.partition(" ::= ")
        assert sep, line
        tokens = [(m.lastgroup, m[m.lastgroup]) for m in _GBNF_TOKEN.finditer(body)]
        rules[name], rest = _alt(tokens, 0)
        assert rest == len(tokens), line
    return rules


def _alt(tokens, i):
    seqs, seq = [], []
    while i < len(tokens) and tokens[i] != ("op", ")"):
        kind, value = tokens[i]
        if (kind, value) == ("op", "|"):
            seqs.append(seq)
            seq = []
            i += 1
            continue
        if (kind, value) == ("op", "("):
            node, i = _alt(tokens, i + 1)
            i += 1  # ")"
        elif kind == "lit":
            node, i = ("lit", _unescape(value[1:-1])), i + 1
        elif kind == "cls":
            node, i = ("cls", re.compile(value)), i + 1
        else:
            node, i = ("ref", value), i + 1
        while i < len(tokens) and tokens[i][1] in ("?", "*"):
            node, i = ("opt" if tokens[i][1] == "?" else "star", node), i + 1
        seq.append(node)
    seqs.append(seq)
    return ("alt", seqs), i


def gbnf_accepts(rules: dict, s: str) -> bool:
    memo: dict = {}

    def ends(node, pos) -> frozenset:
        kind = node[0]
        if kind == "lit":
            return frozenset([pos + len(node[1])]) if s.startswith(node[1], pos) else frozenset()
        if kind == "cls":
            return frozenset([pos + 1]) if pos < len(s) and node[1].fullmatch(s[pos]) else frozenset()
        if kind == "ref":
            key = (node[1], pos)
            if key not in memo:
                memo[key] = ends(rules[node[1]], pos)
            return memo[key]
        if kind == "opt":
            return frozenset([pos]) | ends(node[1], pos)
        if kind == "star":
            out, frontier = {pos}, {pos}
            while frontier:
                frontier = {e for p in frontier for e in ends(node[1], p)} - out
                out |= frontier
            return frozenset(out)
        out = set()
        for seq in node[1]:
            here = {pos}
            for item in seq:
                here = {e for p in here for e in ends(item, p)}
            out |= here
        return frozenset(out)

    return len(s) in ends(("ref", "root"), 0)


# --------------------------------------------------------------------------- without a model
def test_candidates_are_word_ngrams():
    spans = candidates("IL - 2 binds", max_words=2)
    assert list(spans) == ["IL", "IL -", "-", "- 2", "2", "2 binds", "binds"]
    assert candidates("a b a")["a"] == [(0, 1), (4, 5)]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_random_walks_parse(fmt):
    """Any walk through the constraint, to the end or to the budget, parses with nothing hallucinated."""
    tok, rng = tokenizer(), random.Random(0)
    for budget in (12, 40, 400):
        for _ in range(8):
            try:
                constraint = build(fmt, TEXT, TYPES, tok, budget)
            except ValueError:
                assert fmt in ("bio", "typed") and budget < 100  # these answers have a fixed minimum
                continue
            ids = walk(constraint, rng, tok.eos_token_id)
            assert len(ids) <= budget
            check(fmt, tok.decode(ids), TEXT, TYPES)
            assert gbnf_accepts(parse_gbnf(grammar(fmt, TEXT, TYPES)), tok.decode(ids)) or fmt == "json"


def test_budget_closes_the_answer():
    """With a budget just above the shortest answer, walks that never choose to stop are closed in time."""
    tok, rng = tokenizer(), random.Random(1)
    for fmt in FORMATS:
        shortest = build(fmt, TEXT, TYPES, tok, 1000).min_tokens
        for _ in range(5):
            constraint = build(fmt, TEXT, TYPES, tok, shortest + 7)
            ids = walk(constraint, rng, tok.eos_token_id, p_end=0.0)
            assert len(ids) <= shortest + 7
            check(fmt, tok.decode(ids), TEXT, TYPES)
    with pytest.raises(ValueError, match="max_new_tokens"):
        build("bio", TEXT, TYPES, tok, 10)


def test_gold_answers_are_in_the_language():
    """The serialised gold answer can be written through the constraint (a depth-first walk that
    follows its text) and is accepted by the server grammar."""
    tok = tokenizer()
    text = "Breast cancer and ovarian cancer, in BRCA1 carriers; cancer again."
    gold = [Entity.span(0, 13, "Disease", "Breast cancer"), Entity.span(18, 32, "Disease", "ovarian cancer"),
            Entity.span(37, 42, "Chemical", "BRCA1"), Entity.span(53, 59, "Disease", "cancer")]
    for fmt in FORMATS:
        answer = get_format(fmt).serialise((text, gold), TYPES)
        constraint = build(fmt, text, TYPES, tok, 300)

        def follow(ids: list[int], done: str) -> bool:
            allowed = constraint.allowed(ids)
            if done == answer:
                return tok.eos_token_id in allowed
            for t in allowed:
                piece = tok.decode([t]) if t != tok.eos_token_id else None
                if piece and answer.startswith(done + piece) and follow(ids + [t], done + piece):
                    return True
            return False

        assert follow([], ""), (fmt, answer)
        if fmt != "json":
            assert gbnf_accepts(parse_gbnf(grammar(fmt, text, TYPES)), answer), fmt
            assert not gbnf_accepts(parse_gbnf(grammar(fmt, text, TYPES)), answer.replace("BRCA1", "BRCA2"))


@needs_mirror
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_random_walks_on_every_dataset(fmt):
    """The 'on every dataset' property: walks on a sentence of each dataset parse, nothing hallucinated."""
    tok, rng = tokenizer(), random.Random(2)
    for name in WITH_TEXTS:
        text, types = sentence(name), DATASETS[name].types
        shortest = build(fmt, text, types, tok, 10_000).min_tokens
        rules = parse_gbnf(grammar(fmt, text, types)) if fmt != "json" else None
        for budget in (shortest + 5, shortest + 60):
            constraint = build(fmt, text, types, tok, budget)
            output = tok.decode(walk(constraint, rng, tok.eos_token_id, p_end=0.05))
            check(fmt, output, text, types)
            assert rules is None or gbnf_accepts(rules, output), (name, output)


def test_server_options():
    options = server_options("json", TEXT, TYPES)
    schema = options["response_format"]["schema"]
    assert options["response_format"]["type"] == "json_object"
    assert "breast cancer" in schema["items"]["properties"]["text"]["enum"]
    assert schema["items"]["properties"]["type"]["enum"] == list(TYPES)
    for fmt in ("bio", "typed", "typed_short", "list"):
        rules = parse_gbnf(server_options(fmt, TEXT, TYPES)["extra_body"]["grammar"])
        referenced = set(re.findall(r"\('ref', '([^']+)'\)", repr(rules.values())))
        assert referenced <= set(rules) and "root" in rules, fmt


# --------------------------------------------------------------------------- with the untrained SmolLM2
@needs_mirror
def test_constrained_generation_on_every_dataset():
    """Greedy generation by the untrained SmolLM2, one batch per format over a sentence of every dataset
    (short ones, and at most three of its types, to keep it fast: the walks above cover every type),
    with each row's budget a few tokens above its shortest answer (so the closing path is used)."""
    import torch
    from transformers import AutoModelForCausalLM, LogitsProcessorList
    from data.llm.models import resolve

    tok = tokenizer()
    model = AutoModelForCausalLM.from_pretrained(resolve("smollm2")).eval()
    units = list(dict.fromkeys((sentence(name, 12), DATASETS[name].types[:3]) for name in WITH_TEXTS))
    texts, types = [t for t, _ in units], [ty for _, ty in units]  # corpora that share a sentence once
    for fmt in FORMATS:
        budgets = [build(fmt, t, ty, tok, 10_000).min_tokens + 6 for t, ty in zip(texts, types)]
        constraints = [build(fmt, t, ty, tok, b) for t, ty, b in zip(texts, types, budgets)]
        prompts = [tok.apply_chat_template([{"role": "user", "content": f"Entities ({', '.join(ty)}) in: {t}"}],
                                           tokenize=False, add_generation_prompt=True) for t, ty in zip(texts, types)]
        batch = tok(prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max(budgets), do_sample=False,
                                 pad_token_id=tok.pad_token_id, logits_processor=LogitsProcessorList(
                                     [ConstrainedLogits(constraints, batch["input_ids"].shape[1])]))
        outputs = tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        for text, ty, output in zip(texts, types, outputs):
            check(fmt, output, text, ty)
