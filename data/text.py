"""Sentences, word tokens and windows, all as character or item offsets (never as copied strings).

Every method reads the same segmentation: BIO taggers tag `Document.tokens` within `Document.sentences`,
LLM prompts are built from sentence windows, encoders window their sub-words. Offsets are end-exclusive
character offsets into `Document.text`, as in data/corpus.py.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from typing import Iterable, Sequence, TypeVar

from data.corpus import Document, Entity, Span

T = TypeVar("T")

# A token is a run of letters/digits (any script) or one other non-space character, the biomedical
# style of the MTL IOB files: "Parkinson ' s disease", "KH - domain", "IL - 2", "C / EBP".
_TOKEN = re.compile(r"[^\W_]+|\S")
_WHITESPACE = re.compile(r"\s+")
_DOTTED = re.compile(r"(?:\w\.)+\w")  # e.g, i.e, U.S (the final period already stripped)
_OPENERS = "([{\"'“‘«"
_CLOSERS = ")]}\"'”’»"
# Lower-cased words that are usually followed by a period without ending the sentence.
ABBREVIATIONS = frozenset("""
    al approx ca cf co dr eq eqs fig figs inc jr ltd mr mrs ms no nos pp prof ref refs resp sp spp
    st subsp suppl tab var vol vs
""".split())


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Word and punctuation tokens of text[start:end], as offsets into `text`.

    Tokens never contain whitespace, and together they cover every non-space character exactly once.
    """
    return [m.span() for m in _TOKEN.finditer(text, start, len(text) if end is None else end)]


def _ends_sentence(before: str, next_char: str) -> bool:
    """Whether whitespace between the word `before` and `next_char` is a sentence boundary."""
    core = before.rstrip(_CLOSERS)
    if not core or core[-1] not in ".?!":
        return False
    if not (next_char.isupper() or next_char.isdigit() or next_char in _OPENERS):
        return False
    if core[-1] != ".":
        return True
    word = core.rstrip(".").lstrip(_OPENERS)
    is_initial = len(word) == 1 and word.isupper()  # "J. Smith", "E. coli"
    split_decimal = next_char.isdigit() and not word[-1:].isalpha()  # "0. 02", "q11. 2", "P =. 01" (NCBI)
    return not (is_initial or split_decimal or word.lower() in ABBREVIATIONS or _DOTTED.fullmatch(word))


def _protected(entities: Iterable[Entity]) -> list[Span]:
    """The union of the entities' start..end extents, as sorted disjoint spans."""
    merged: list[list[int]] = []
    for s, e in sorted((ent.start, ent.end) for ent in entities):
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def split_sentences(text: str, avoid: Iterable[Entity] = ()) -> list[Span]:
    """Sentence spans (no leading or trailing whitespace) covering every non-space character.

    A sentence ends at a line break, or at `.?!` (plus closing quotes/brackets) followed by whitespace and
    an upper-case letter, a digit or an opening bracket, unless the period ends an abbreviation ("et al.",
    "e.g.", "Fig.", a single capital initial) or is likely a decimal point (not after a letter and before
    a digit: "0. 02", "q11. 2", "P =. 01", as the NCBI-disease texts write them).
    A boundary that would cut one of the `avoid` entities (anywhere between its start and end, so
    discontinuous ones too) is skipped: the two sentences stay one, because a mention split across
    sentences can be neither tagged nor prompted for.
    """
    protected = _protected(avoid)
    protected_starts = [s for s, _ in protected]
    content_start, content_end = len(text) - len(text.lstrip()), len(text.rstrip())
    if content_end == 0:
        return []
    spans, start, prev_end = [], content_start, content_start
    for m in _WHITESPACE.finditer(text, content_start, content_end):
        gap_start, gap_end = m.span()
        word, prev_end = text[prev_end:gap_start], gap_end
        line_break = "\n" in m.group() or "\r" in m.group()
        if not (line_break or _ends_sentence(word, text[gap_end])):
            continue
        k = bisect_left(protected_starts, gap_end) - 1  # the last protected span starting before the gap ends
        if k >= 0 and protected[k][1] > gap_start:
            continue
        spans.append((start, gap_start))
        start = gap_end
    spans.append((start, content_end))
    return spans


def count_sentences(docs: Iterable[Document]) -> int:
    """Sentences the source marks, or for sources that mark none (PubTator, brat, BioC) those of
    split_sentences: one count for corpus statistics and every method's sentences per second."""
    return sum(len(d.sentences) if d.sentences else len(split_sentences(d.text)) for d in docs)


def first_sentences(docs: Sequence[Document], n: int | None, changes: Counter) -> list[Document]:
    """Each document cut after its first `n` sentences (None: uncut), for evaluation caps on small
    machines: a prefix scores like a shorter document. The cut is where prediction units are cut (no gold
    consulted); the entities before it stay, one across it is dropped and counted ("crosses_cap_dropped")."""
    if n is None:
        return list(docs)
    out = []
    for doc in docs:
        sentences = doc.sentences or split_sentences(doc.text)
        if len(sentences) <= n:
            out.append(doc)
            continue
        end = sentences[n - 1][1]
        changes["crosses_cap_dropped"] += sum(e.start < end < e.end for e in doc.entities)
        out.append(Document(doc.id, doc.text[:end], [e for e in doc.entities if e.end <= end],
                            list(doc.sentences[:n]), [t for t in doc.tokens if t[1] <= end]))
    return out


def _split_at(token: Span, cuts: Sequence[int]) -> list[Span]:
    """The token cut at every offset in sorted `cuts` that falls strictly inside it."""
    s, e = token
    inside = cuts[bisect_right(cuts, s):bisect_left(cuts, e)]
    bounds = [s, *inside, e]
    return list(zip(bounds, bounds[1:]))


def segment(doc: Document, respect_entities: bool = True) -> Document:
    """Fill in `doc.sentences` and `doc.tokens` where they are empty (in place; returns `doc`).

    With `respect_entities`, no sentence boundary cuts an entity and tokens are also cut at every
    entity fragment boundary, so that every gold span is a token span (needed to train on BIO).
    Use respect_entities=False for documents a model predicts on: gold-aware segmentation would leak
    where the gold boundaries are. Existing sentences and tokens are left exactly as they are.
    """
    entities = doc.entities if respect_entities else []
    if not doc.sentences:
        doc.sentences = split_sentences(doc.text, entities)
    if not doc.tokens:
        cuts = sorted({b for ent in entities for frag in ent.fragments for b in frag})
        doc.tokens = [piece for s, e in doc.sentences for tok in tokenize(doc.text, s, e)
                      for piece in _split_at(tok, cuts)]
    return doc


def windows(n_items: int, max_len: int, stride: int) -> list[tuple[int, int]]:
    """Windows [start, end) of at most `max_len` items, starting every `stride` items, covering all items.

    `stride` is the step between window starts (overlap = max_len - stride), not Hugging Face's overlap.
    The last window is aligned to the end, so every window is full length and nothing is cut off.
    Items can be sub-words (encoders) or sentences (LLM prompts).
    """
    if max_len < 1 or not 1 <= stride <= max_len:
        raise ValueError(f"need 1 <= stride <= max_len, got stride={stride}, max_len={max_len}")
    if n_items <= max_len:
        return [(0, n_items)] if n_items > 0 else []
    starts = [*range(0, n_items - max_len, stride), n_items - max_len]
    return [(s, s + max_len) for s in starts]


def merge_windows(spans: Sequence[tuple[int, int]], predictions: Sequence[Sequence[T]], n_items: int) -> list[T]:
    """Per-item predictions from overlapping windows: each item taken from the window where it is most
    central (farthest from either edge, so it saw the most context); ties go to the earlier window."""
    if len(spans) != len(predictions):
        raise ValueError(f"{len(spans)} windows but {len(predictions)} predictions")
    merged: list = [None] * n_items
    margin = [-1] * n_items
    for (s, e), pred in zip(spans, predictions):
        if len(pred) != e - s:
            raise ValueError(f"window {s}..{e} has {len(pred)} predictions, expected {e - s}")
        for i in range(s, e):
            m = min(i - s, e - 1 - i)
            if m > margin[i]:
                margin[i], merged[i] = m, pred[i - s]
    if -1 in margin:
        raise ValueError(f"item {margin.index(-1)} is in no window")
    return merged
