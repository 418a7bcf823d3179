"""Where in the text a generated mention is: occurrence by occurrence, never the first find.

LLMs that write entities as strings (typed lines, Python lists, JSON with missing or wrong offsets) say
*what* they found but not *where*. Seed 1 re-anchored every mention to the first `str.find`, so a disease
named three times became three predictions of the first occurrence. Here the n-th copy of a string that
the model writes (under one type) takes the n-th occurrence of it in the text (in the order of preference
below: for plain repeated mentions, simply the n-th in the text), and a mention that is not
in the text is reported as hallucinated instead of receiving invented offsets. Every string format in
data/llm/formats places its mentions with `place`.

Candidate occurrences of a mention, best first:
  1. "exact" before "normalised": the mention verbatim, before the fallback that ignores case and all
     whitespace (so "il-2" finds "IL - 2" of a tokenised text, and "IL-2" finds "IL -2");
  2. free before overlapping: an occurrence that overlaps a mention placed already (other than at the
     very same span, which another type may share) comes last, so "cancer" does not take the "cancer"
     of a placed "breast cancer". Longer mentions are placed first for this reason, then groups in a
     fixed order (type, text), so the order in which the output lists its types does not matter.
     With nested=True (corpora that nest mentions, such as NEREL-BIO) this preference is off;
  3. whole-word before inside a word: "IL" prefers "IL-2" to "FIL" (a whole-word occurrence cuts no
     run of letters or digits);
  4. text order.
Occurrences of one string never overlap each other (a left-to-right scan). Copies are counted per
(type, mention with the fallback's normalisation): "Aspirin" and "aspirin" under one type share their
occurrences, so two such copies take two different places.

A mention with stated offsets (the JSON format) keeps them when the text there is exactly the mention
("stated"); those places are claimed first, and mentions whose offsets are missing or wrong are then
placed copy by copy among the places not yet claimed. What each mention became (`Placement.how`):
  "stated", "exact", "normalised"  placed;
  "duplicate"     its stated place was already claimed by an identical mention;
  "surplus"       the mention is in the text, but every occurrence is taken by earlier copies;
  "hallucinated"  the mention is nowhere in the text, even by the fallback (or it is blank).
"""
from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from data.corpus import Span


@dataclass(frozen=True)
class Mention:
    """A generated mention: its text, the key its copies are counted under (the type), stated offsets."""

    text: str
    key: str = ""
    stated: Span | None = None


@dataclass(frozen=True)
class Placement:
    """Where a mention went: `span` is None unless `how` is "stated", "exact" or "normalised"."""

    span: Span | None
    how: str


def normalise(s: str) -> str:
    """The fallback's view of a string: lower case (where that keeps one character), no whitespace."""
    return "".join(_lower(c) for c in s if not c.isspace())


def _lower(c: str) -> str:
    low = c.lower()
    return low if len(low) == 1 else c


def whole_word(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] cuts no run of letters/digits at either end."""
    cuts_left = 0 < start and text[start - 1].isalnum() and text[start].isalnum()
    cuts_right = end < len(text) and text[end - 1].isalnum() and text[end].isalnum()
    return not (cuts_left or cuts_right)


def _scan(haystack: str, needle: str) -> list[int]:
    """Start positions of the non-overlapping occurrences of `needle`, left to right."""
    starts, i = [], haystack.find(needle)
    while needle and i >= 0:
        starts.append(i)
        i = haystack.find(needle, i + len(needle))
    return starts


class Occurrences:
    """The candidate places of mentions in one text, computed once per mention string."""

    def __init__(self, text: str):
        self.text = text
        self._cache: dict[str, list[tuple[Span, str, bool]]] = {}
        self._normal: tuple[str, list[int]] | None = None

    def candidates(self, mention: str) -> list[tuple[Span, str, bool]]:
        """(span, "exact" | "normalised", whole word?) for every occurrence, exact ones first."""
        if mention not in self._cache:
            exact = [(s, s + len(mention)) for s in _scan(self.text, mention)] if mention.strip() else []
            seen = set(exact)
            normalised = [span for span in self._normalised(mention) if span not in seen]
            self._cache[mention] = [(span, how, whole_word(self.text, *span))
                                    for spans, how in ((exact, "exact"), (normalised, "normalised"))
                                    for span in spans]
        return self._cache[mention]

    def _normalised(self, mention: str) -> list[Span]:
        needle = normalise(mention)
        if not needle:
            return []
        if self._normal is None:
            kept = [i for i, c in enumerate(self.text) if not c.isspace()]
            self._normal = "".join(_lower(self.text[i]) for i in kept), kept
        norm_text, origin = self._normal
        return [(origin[k], origin[k + len(needle) - 1] + 1) for k in _scan(norm_text, needle)]


def place(text: str, mentions: Sequence[Mention], nested: bool = False) -> list[Placement]:
    """Place every mention (module docstring); one Placement per mention, in the same order."""
    index = Occurrences(text)
    claimed: dict[tuple[str, str], set[Span]] = defaultdict(set)
    placed = _Placed(active=not nested)
    out: list[Placement | None] = [None] * len(mentions)
    for i, m in enumerate(mentions):
        if m.stated is not None and holds(text, m):
            taken = claimed[m.key, normalise(m.text)]
            out[i] = Placement(None, "duplicate") if m.stated in taken else Placement(m.stated, "stated")
            taken.add(m.stated)
            placed.add(m.stated)
    rest = sorted((i for i in range(len(mentions)) if out[i] is None), key=lambda i: _order(mentions[i]))
    for i in rest:
        m = mentions[i]
        out[i] = _best_free(index.candidates(m.text), claimed[m.key, normalise(m.text)], placed)
    return out  # type: ignore[return-value]


def _order(m: Mention) -> tuple[int, str, str]:
    """Longer mentions first, then a fixed order of the groups, so the result does not depend on how
    the output interleaves its groups (sorting is stable: the copies of one group keep their order)."""
    norm = normalise(m.text)
    return -len(norm), m.key, norm


def holds(text: str, m: Mention) -> bool:
    """Whether the mention's stated offsets point at exactly its text."""
    if m.stated is None:
        return False
    s, e = m.stated
    return 0 <= s < e <= len(text) and text[s:e] == m.text


class _Placed:
    """The spans placed so far, to tell whether a candidate overlaps one other than itself (only when
    `active`)."""

    def __init__(self, active: bool):
        self.active, self.spans, self.longest = active, [], 0

    def add(self, span: Span) -> None:
        if self.active:
            insort(self.spans, span)
            self.longest = max(self.longest, span[1] - span[0])

    def overlaps(self, span: Span) -> bool:
        s, e = span
        lo = bisect_left(self.spans, (s - self.longest + 1, 0))  # nothing starting earlier reaches s
        hi = bisect_left(self.spans, (e, 0))
        return any(pe > s and (ps, pe) != span for ps, pe in self.spans[lo:hi])


def _best_free(candidates: list[tuple[Span, str, bool]], taken: set[Span], placed: _Placed) -> Placement:
    """The best candidate not yet taken (module docstring), claimed; or why there is none."""
    free = [(how == "normalised", placed.overlaps(span), not whole, span, how)
            for span, how, whole in candidates if span not in taken]
    if not free:
        return Placement(None, "surplus" if candidates else "hallucinated")
    *_, span, how = min(free)
    taken.add(span)
    placed.add(span)
    return Placement(span, how)
