"""What every output format shares: the parse result, the flattening helpers, the base classes, and the
pieces its constraint machine and grammar are made of (data/llm/constraints.py walks a machine over tokens).

A format owns its whole answer language in one class: `serialise` (gold -> target text), `parse` (model
text -> spans), `machine` (the constrained language for one input, as alternatives per state) and
`grammar` (the same language as GBNF, for a llama.cpp server). Adding a format is one module of
data/llm/formats/ and one line of its registry.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

from data.bio import DISCONTINUOUS_POLICIES, contiguous
from data.corpus import Document, Entity
from data.llm.align import Mention, holds, place
from data.text import tokenize

Labelled = Document | tuple[str, Sequence[Entity]]  # a text and its gold entities
MAX_WORDS = 12  # longest mention candidate of a constraint, in input words
DONE = ("done",)  # the machine key of the complete answer
Alternative = tuple[str | tuple[str, ...], Hashable]  # (text, or pieces tokenised apart; next key)


@dataclass(frozen=True)
class Item:
    """One mention as the model wrote it, and what became of it.

    `placement` is data.llm.align's verdict ("stated", "exact", "normalised", "duplicate", "surplus",
    "hallucinated"); `compliant` whether the item itself follows the format (for JSON: the four keys,
    integer offsets and an allowed type; elsewhere: an allowed type). `stated` is True when the item gave
    integer offsets (JSON only), `stated_ok` when the text at them is the mention.
    """

    text: str
    type: str
    placement: str
    compliant: bool
    stated: bool = False
    stated_ok: bool = False


@dataclass
class ParseResult:
    """The entities read from one model output (offsets into the text it was given), and the tallies."""

    entities: list[Entity]
    unparsed: int
    well_formed: bool
    items: list[Item] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    @property
    def invalid_type(self) -> int:
        return self.counts["invalid_type"]

    @property
    def hallucinated(self) -> int:
        return self.counts["hallucinated"]


# --------------------------------------------------------------------------- shared pieces
def labelled_parts(labelled: Labelled) -> tuple[str, list[Entity]]:
    """(text, entities) of a Document or of a (text, entities) pair."""
    if isinstance(labelled, Document):
        return labelled.text, list(labelled.entities)
    text, entities = labelled
    return text, list(entities)


def check_types(entities: Sequence[Entity], types: Sequence[str]) -> None:
    unknown = sorted({e.type for e in entities} - set(types))
    if unknown:
        raise ValueError(f"entity types {unknown} are not among the requested types {list(types)}")


def contiguous_entities(text: str, entities: Sequence[Entity], policy: str, changes: Counter) -> list[Entity]:
    """Each entity as one span (discontinuous policy), the same span and type only once, in text order."""
    out: set[Entity] = set()
    for ent in entities:
        span = contiguous(ent, policy, changes)
        if span is None:
            continue
        flat = Entity.span(*span, ent.type, text[span[0]:span[1]])
        if flat in out:
            changes["duplicate_merged"] += 1
        out.add(flat)
    return sorted(out)


def is_span(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value))


EXAMPLE_TEXT = "X binds Y in Z cells."


def _example(types: Sequence[str]) -> tuple[str, list[Entity]]:
    """A schematic example for prompts: "X" of the first type and "Z cells" of the second (or first)."""
    second = types[1] if len(types) > 1 else types[0]
    return EXAMPLE_TEXT, [Entity.span(0, 1, types[0], "X"), Entity.span(13, 20, second, "Z cells")]


class OutputFormat:
    """One output format. Subclasses define `flatten`, `serialise`, `parse`, `_explain_format`, `machine`
    and `grammar`."""

    name = ""

    def __init__(self, discontinuous_policy: str = "first_fragment"):
        if discontinuous_policy not in DISCONTINUOUS_POLICIES:
            raise ValueError(f"discontinuous policy {discontinuous_policy!r} is not one of {DISCONTINUOUS_POLICIES}")
        self.discontinuous_policy = discontinuous_policy

    def flatten(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        """The entities this format can represent, as parse(serialise(labelled)) returns them."""
        raise NotImplementedError

    def serialise(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> str:
        """The target text for the gold entities of a text (types must all be among `types`)."""
        raise NotImplementedError

    def parse(self, model_text: str, doc_text: str, types: Sequence[str]) -> ParseResult:
        """Entities (offsets into doc_text) read from a model's output; never raises."""
        raise NotImplementedError

    def explain(self, types: Sequence[str]) -> str:
        """Plain-English description of the answer format, with a tiny example, for prompts."""
        text, entities = _example(types)
        example = self.serialise((text, entities), types)
        mentions = " and ".join(f'"{e.text}" {"is " * (i == 0)}of type {e.type}' for i, e in enumerate(entities))
        return (f"{self._explain_format(types)}\nFor example, for the text \"{text}\", where {mentions}, "
                f"the answer is:\n{example}")

    def _explain_format(self, types: Sequence[str]) -> str:
        raise NotImplementedError

    def machine(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> Machine:
        """The answers a constraint allows for this input text (data/llm/constraints.py)."""
        raise NotImplementedError

    def grammar(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> str:
        """The machine's language as a GBNF grammar (llama.cpp)."""
        raise NotImplementedError

    def server_options(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> dict:
        """Keyword arguments for openai `chat.completions.create` that constrain a llama.cpp server's answer."""
        return {"extra_body": {"grammar": self.grammar(text, types, max_words)}}


class PlacedFormat(OutputFormat):
    """A format whose mentions are placed by data.llm.align (everything but bio).

    `nested`: the corpus nests mentions, so placing should not steer a mention away from the
    occurrences that longer mentions already cover (data.llm.align.place).
    """

    def __init__(self, discontinuous_policy: str = "first_fragment", nested: bool = False):
        super().__init__(discontinuous_policy)
        self.nested = nested

    def _resolve(self, text: str, raw: Sequence[tuple[str, str, Any, bool]], types: Sequence[str],
                 unparsed: int, well_formed: bool, counts: Counter) -> ParseResult:
        """Place raw (mention, type, stated offsets or None, compliant) items and build the ParseResult.

        Mentions with an unknown type are placed too (to tell hallucinated from not), then left out.
        """
        mentions = [Mention(m, t, stated if is_span(stated) else None) for m, t, stated, _ in raw]
        placements = place(text, mentions, self.nested)
        items, found = [], set()
        for (m, t, _, ok), mention, where in zip(raw, mentions, placements):
            items.append(Item(m, t, where.how, ok, mention.stated is not None, holds(text, mention)))
            if t not in types:
                counts["invalid_type"] += 1
            elif where.span is None:
                counts[where.how] += 1
            else:
                ent = Entity.span(*where.span, t, text[where.span[0]:where.span[1]])
                if ent in found:
                    counts["duplicate"] += 1
                found.add(ent)
        return ParseResult(sorted(found), unparsed, well_formed, items, counts)

    def _placed_flatten(self, labelled: Labelled, types: Sequence[str], changes: Counter | None) -> list[Entity]:
        """What a format without offsets gives back: contiguous, deduplicated, re-placed by data.llm.align."""
        changes = Counter() if changes is None else changes
        text, entities = labelled_parts(labelled)
        check_types(entities, types)
        flat = contiguous_entities(text, entities, self.discontinuous_policy, changes)
        placements = place(text, [Mention(e.text, e.type) for e in flat], self.nested)
        out = []
        for ent, where in zip(flat, placements):
            if where.span is None:
                changes["unplaceable_dropped"] += 1
                continue
            if where.span != (ent.start, ent.end):
                changes["occurrence_reassigned"] += 1
            out.append(Entity.span(*where.span, ent.type, text[where.span[0]:where.span[1]]))
        return sorted(out)




# --------------------------------------------------------------------------- constraint pieces
class Machine:
    """A format's constrained language for one input: `alternatives(key)` are the texts that may come next
    in state `key` (with the key after each), `closing(key)` the subset that leads toward the end without
    another item (used for the shortest completion; it must never loop). The answer is complete at DONE."""

    start: Hashable = "start"

    def alternatives(self, key: Hashable) -> list[Alternative]:
        raise NotImplementedError

    def closing(self, key: Hashable) -> list[Alternative]:
        return self.alternatives(key)


def candidates(text: str, max_words: int = MAX_WORDS) -> dict[str, list[tuple[int, int]]]:
    """Every contiguous n-gram of at most max_words words of the text -> its spans, in text order: the
    mentions a constraint lets a model write."""
    words = tokenize(text)
    out: dict[str, list[tuple[int, int]]] = {}
    for i, (s, _) in enumerate(words):
        for _, e in words[i:i + max_words]:
            out.setdefault(text[s:e], []).append((s, e))
    return out


def json_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def gbnf_literal(s: str) -> str:
    """A GBNF string literal for s."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20:
            out.append(f"\\x{ord(c):02X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def alternation(texts: Sequence[str]) -> str:
    """A GBNF alternation of literals ('""' when there is none)."""
    return " | ".join(map(gbnf_literal, texts)) if texts else '""'
