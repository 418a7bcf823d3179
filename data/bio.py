"""Entity spans <-> BIO (IOB2) tags over word tokens, and the IOB file writer.

Flat BIO holds one entity per token, so nested/overlapping and discontinuous entities must be
flattened. Each way of doing that is a named policy, and every entity it changes or drops is counted
in a `changes` Counter by reason, so that no conversion loses mentions silently:

  discontinuous_policy (applied first, per entity):
    "first_fragment" (default; seed 2's behaviour) keep only the first fragment  -> "discontinuous_first_fragment"
    "span"      cover start..end, gap included                                   -> "discontinuous_spanned"
    "drop"      drop the entity                                                  -> "discontinuous_dropped"
  The default keeps the most correct text: "span" turns "breast and ovarian cancer" into one mention
  that then usually collides with the real "ovarian cancer".

  then every entity is snapped to whole tokens:
    widened to the tokens it touches                          -> "boundary_expanded"
    only surrounding whitespace dropped                       -> "whitespace_trimmed"
    covers no token, or tokens in two sentences: dropped      -> "no_token_dropped", "crosses_sentence_dropped"

  overlap_policy (on the token spans, per sentence):
    "longest_first" (default) keep the entity with the most tokens, then the earliest, then by type name;
                    drop every entity overlapping one already kept (outer mentions survive nesting)
    "first"         keep the earliest start (the longest among equal starts), drop what overlaps it
    either way                                                -> "overlap_dropped"
    the same tokens and type twice is one BIO entity          -> "duplicate_merged"
"""
from __future__ import annotations

import argparse
from bisect import bisect_left, bisect_right
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from data.corpus import Document, Entity, Span
from data.text import segment

OVERLAP_POLICIES = ("longest_first", "first")
DISCONTINUOUS_POLICIES = ("first_fragment", "span", "drop")

# Every reason to_bio counts, as it reads in a report.
CHANGE_REASONS = {
    "overlap_dropped": "overlapping entities dropped",
    "duplicate_merged": "duplicate entities merged",
    "discontinuous_first_fragment": "discontinuous entities cut to their first fragment",
    "discontinuous_spanned": "discontinuous entities widened to one span",
    "discontinuous_dropped": "discontinuous entities dropped",
    "boundary_expanded": "entities widened to token boundaries",
    "whitespace_trimmed": "entities trimmed of surrounding whitespace",
    "no_token_dropped": "entities covering no token dropped",
    "crosses_sentence_dropped": "entities crossing a sentence boundary dropped",
    "relations_dropped": "relations left out (IOB has no place for them)",
}


def sentence_tokens(doc: Document) -> list[list[Span]]:
    """The tokens of each sentence, the sequences BIO tags run over. A token belongs to the sentence its
    first character is in.

    An unsegmented `doc` is segmented here around its gold entities (text.segment); a document a model
    will predict on should be segmented with respect_entities=False first, so its tokens do not leak them.
    """
    segment(doc)
    tokens = sorted(doc.tokens)
    starts = [s for s, _ in tokens]
    return [tokens[bisect_left(starts, s):bisect_left(starts, e)] for s, e in doc.sentences]


def contiguous(ent: Entity, policy: str, changes: Counter) -> Span | None:
    """The one character span that stands for `ent` under a discontinuous policy (in BIO, and in the LLM
    output formats of data/llm/formats), or None if the policy drops it."""
    if not ent.discontinuous:
        return ent.start, ent.end
    if policy == "drop":
        changes["discontinuous_dropped"] += 1
        return None
    if policy == "span":
        changes["discontinuous_spanned"] += 1
        return ent.start, ent.end
    changes["discontinuous_first_fragment"] += 1
    return ent.fragments[0]


def _resolve_overlaps(candidates: list[tuple[int, int, str]], policy: str,
                      changes: Counter) -> list[tuple[int, int, str]]:
    """Keep a non-overlapping subset of (first token, last token, type), in the policy's order."""
    if policy == "longest_first":
        order = sorted(candidates, key=lambda c: (c[0] - c[1], c[0], c[2]))
    else:
        order = sorted(candidates, key=lambda c: (c[0], c[0] - c[1], c[2]))
    kept: set[tuple[int, int, str]] = set()
    taken: set[int] = set()
    for first, last, type_ in order:
        if (first, last, type_) in kept:
            changes["duplicate_merged"] += 1
        elif taken.intersection(range(first, last + 1)):
            changes["overlap_dropped"] += 1
        else:
            kept.add((first, last, type_))
            taken.update(range(first, last + 1))
    return sorted(kept)


def to_bio(doc: Document, overlap_policy: str = "longest_first", discontinuous_policy: str = "first_fragment",
           changes: Counter | None = None) -> list[list[str]]:
    """IOB2 tags for each sentence's tokens (see `sentence_tokens`), flattening entities by the named
    policies (module docstring) and adding what each changed to `changes`."""
    if overlap_policy not in OVERLAP_POLICIES:
        raise ValueError(f"overlap policy {overlap_policy!r} is not one of {OVERLAP_POLICIES}")
    if discontinuous_policy not in DISCONTINUOUS_POLICIES:
        raise ValueError(f"discontinuous policy {discontinuous_policy!r} is not one of {DISCONTINUOUS_POLICIES}")
    changes = Counter() if changes is None else changes
    sentences = sentence_tokens(doc)
    flat = [(si, ti, tok) for si, toks in enumerate(sentences) for ti, tok in enumerate(toks)]
    starts = [tok[0] for _, _, tok in flat]
    ends = [tok[1] for _, _, tok in flat]

    candidates = []
    for ent in doc.entities:
        span = contiguous(ent, discontinuous_policy, changes)
        if span is None:
            continue
        s, e = span
        first, last = bisect_right(ends, s), bisect_left(starts, e) - 1  # tokens that overlap s..e
        if first > last:
            changes["no_token_dropped"] += 1
            continue
        if flat[first][0] != flat[last][0]:
            changes["crosses_sentence_dropped"] += 1
            continue
        tok_start, tok_end = starts[first], ends[last]
        if tok_start < s or tok_end > e:
            changes["boundary_expanded"] += 1
        elif (tok_start, tok_end) != (s, e):
            changes["whitespace_trimmed"] += 1
        candidates.append((first, last, ent.type))

    tags = [["O"] * len(toks) for toks in sentences]
    for first, last, type_ in _resolve_overlaps(candidates, overlap_policy, changes):
        for k in range(first, last + 1):
            si, ti, _ = flat[k]
            tags[si][ti] = ("B-" if k == first else "I-") + type_
    return tags


def from_bio(tokens: Sequence[Span], tags: Sequence[str], text: str, mode: str = "strict",
             changes: Counter | None = None) -> list[Entity]:
    """Entities read off one sequence of BIO tags over `tokens` (character spans into `text`).

    Both modes agree on valid IOB2 and differ only on an I-X that does not continue an entity of type X
    (after O, at the start, or after another type):
      "strict"  (seqeval mode="strict", scheme=IOB2): an entity is B-X I-X*; such an I-X is ignored, as if
                it were O (counted as "inside_ignored"), and it ends the entity before it.
      "lenient" (conlleval, seqeval's default): such an I-X starts a new entity ("inside_opened").
    Anything other than O, B-X or I-X raises ValueError.
    """
    if mode not in ("strict", "lenient"):
        raise ValueError(f"mode must be 'strict' or 'lenient', got {mode!r}")
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    changes = Counter() if changes is None else changes
    runs: list[list] = []  # [type, first token, last token] per entity
    inside = False  # whether runs[-1] may still be continued
    for k, tag in enumerate(tags):
        if tag == "O":
            inside = False
            continue
        prefix, _, type_ = tag.partition("-")
        if prefix not in ("B", "I") or not type_:
            raise ValueError(f"not a BIO tag: {tag!r}")
        if prefix == "I" and inside and runs[-1][0] == type_:
            runs[-1][2] = k
        elif prefix == "B" or mode == "lenient":
            runs.append([type_, k, k])
            inside = True
            if prefix == "I":
                changes["inside_opened"] += 1
        else:
            inside = False
            changes["inside_ignored"] += 1
    spans = [(tokens[first][0], tokens[last][1], type_) for type_, first, last in runs]
    return [Entity.span(s, e, type_, text[s:e]) for s, e, type_ in spans]


def write_iob(docs: Iterable[Document], path: str | Path, overlap_policy: str = "longest_first",
              discontinuous_policy: str = "first_fragment") -> Counter:
    """Write `token<TAB>tag` lines, a blank line after each sentence and `-DOCSTART-<TAB>O` plus a blank
    line before each document (the CoNLL/JNLPBA layout). Returns what flattening changed, and the relations
    left out."""
    changes: Counter = Counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for doc in docs:
            tags = to_bio(doc, overlap_policy, discontinuous_policy, changes)
            changes["relations_dropped"] += len(doc.relations)
            fh.write("-DOCSTART-\tO\n\n")
            for toks, sent_tags in zip(sentence_tokens(doc), tags):
                if not toks:
                    continue
                for (s, e), tag in zip(toks, sent_tags):
                    word = doc.text[s:e]
                    if not word or any(c.isspace() for c in word):
                        raise ValueError(f"document {doc.id!r}: token {s}..{e} {word!r} is empty or has whitespace")
                    fh.write(f"{word}\t{tag}\n")
                fh.write("\n")
    return changes


def describe_changes(changes: Counter) -> str:
    """One line saying what BIO flattening changed, for the converters to print."""
    parts = [f"{CHANGE_REASONS.get(reason, reason)}: {n}" for reason, n in sorted(changes.items()) if n]
    return "BIO flattening changed: " + "; ".join(parts) if parts else "BIO flattening changed no entity"


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The --overlap-policy and --discontinuous-policy options both converters share."""
    parser.add_argument("--overlap-policy", choices=OVERLAP_POLICIES, default="longest_first",
                        help="which of overlapping/nested entities BIO keeps (default: %(default)s)")
    parser.add_argument("--discontinuous-policy", choices=DISCONTINUOUS_POLICIES, default="first_fragment",
                        help="how a discontinuous entity becomes one span (default: %(default)s)")
