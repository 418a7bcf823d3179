"""The typed formats: `TYPE: mention, mention` lines, every type (typed) or only those with a mention
(typed_short) (seed 4)."""
from __future__ import annotations

import json
from collections import Counter
from typing import Hashable, Sequence

from data.corpus import Entity
from data.llm.formats.base import (DONE, MAX_WORDS, Alternative, Machine, ParseResult, PlacedFormat, Labelled,
                                   alternation, candidates, gbnf_literal)

_DECODER = json.JSONDecoder()
class TypedLinesFormat(PlacedFormat):
    """`TYPE: mention, mention` lines in the given type order (seed 4), with the quoting rule of the
    module docstring. Full form lists every type (empty ones as `TYPE:`), short form (`short=True`) only
    the types that have a mention; both read either form. A line repeating a type adds to it.

    Well formed: every non-blank line is `LABEL: items`, every item is readable (quotes closed, none
    empty) and every label-only line names a type. A line whose label is not a type counts its items as
    invalid_type, or itself as unparsed if it has none (prose such as "Here are the entities:").
    """

    def __init__(self, discontinuous_policy: str = "first_fragment", nested: bool = False, short: bool = False):
        super().__init__(discontinuous_policy, nested)
        self.short = short
        self.name = "typed_short" if short else "typed"

    def flatten(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        return self._placed_flatten(labelled, types, changes)

    def serialise(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> str:
        entities = self.flatten(labelled, types, changes)
        lines = []
        for t in types:
            mentions = [e.text for e in entities if e.type == t]
            if mentions or not self.short:
                lines.append(f"{t}: {', '.join(map(quote, mentions))}".rstrip())
        return "\n".join(lines)

    def parse(self, model_text: str, doc_text: str, types: Sequence[str]) -> ParseResult:
        counts: Counter = Counter()
        raw, unparsed = [], 0
        for line in model_text.split("\n"):
            if not line.strip():
                continue
            label, colon, rest = line.partition(":")
            label = label.strip()
            mentions, bad = _split_mentions(rest) if colon else ([], 1)
            unparsed += bad
            if colon and label not in types and not mentions:
                unparsed += 1
            raw += [(m, label, None, label in types) for m in mentions]
        return self._resolve(doc_text, raw, types, unparsed, unparsed == 0, counts)

    def _explain_format(self, types: Sequence[str]) -> str:
        which = ("one line for each entity type that has a mention, in the order listed above (write "
                 "nothing at all if there is no mention)" if self.short else
                 "one line for every entity type, in the order listed above, even when it has no mention")
        return (f"Write {which}: the type name, a colon, a space, then its mentions exactly as written in "
                "the text, in the order they appear, separated by a comma and a space. Repeat a mention each "
                "time it occurs. Put a mention in double quotes if it contains a comma followed by a space.")

    def machine(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> Machine:
        return TypedMachine(text, types, max_words, self.short)

    def grammar(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> str:
        rules = [f"m ::= {alternation([quote(m) for m in candidates(text, max_words)])}"]
        if not self.short:
            rules += ['items ::= (" " m (", " m)*)?',
                      "root ::= " + ' "\\n" '.join(f"{gbnf_literal(t + ':')} items" for t in types)]
            return "\n".join(rules)
        rules.append('items ::= " " m (", " m)*')
        for i, t in enumerate(types):  # from<i>: the lines of types i.., at least one
            line = f"{gbnf_literal(t + ':')} items" + (f' ("\\n" from{i + 1})?' if i + 1 < len(types) else "")
            rules.append(f"from{i} ::= {line}" + (f" | from{i + 1}" if i + 1 < len(types) else ""))
        rules.append("root ::= from0?")
        return "\n".join(rules)


def quote(mention: str) -> str:
    plain = (", " not in mention and "\n" not in mention and "\r" not in mention
             and not mention.startswith('"') and mention == mention.strip())
    return mention if plain else json.dumps(mention, ensure_ascii=False)


def _split_mentions(rest: str) -> tuple[list[str], int]:
    """The mentions after `TYPE:`, and how many pieces could not be read (an unclosed quote, an empty
    item)."""
    mentions, bad, i = [], 0, 0
    rest = rest.rstrip("\r")
    while i < len(rest):
        while i < len(rest) and rest[i] == " ":
            i += 1
        if i == len(rest):
            break
        if rest[i] == '"':
            try:
                value, i = _DECODER.raw_decode(rest, i)
                mentions.append(value)
            except ValueError:
                bad += 1
                break
            nxt = rest.find(", ", i)
            if rest[i:nxt if nxt >= 0 else len(rest)].strip():
                bad += 1  # text between a closing quote and the next separator
            i = len(rest) if nxt < 0 else nxt + 2
            continue
        nxt = rest.find(", ", i)
        item = rest[i:nxt if nxt >= 0 else len(rest)].strip()
        if item:
            mentions.append(item)
        else:
            bad += 1
        i = len(rest) if nxt < 0 else nxt + 2
    return mentions, bad


class TypedMachine(Machine):
    """`TYPE: m, m` lines (the quoting rule of `quote`). Keys: ("items", i, first?) after "TYPE_i:"; the full
    form writes every type in order, the short form (key "start", ("first", i) after "TYPE_i:") only types
    with a mention, in order."""

    def __init__(self, text: str, types: Sequence[str], max_words: int, short: bool):
        self.mentions = [quote(m) for m in candidates(text, max_words)]
        self.types, self.short = list(types), short

    def alternatives(self, key: Hashable) -> list[Alternative]:
        if key == "start":
            return self.closing(key)
        i, first = (key[1], True) if key[0] == "first" else key[1:]
        return [*self.closing(key), *((self._item(m, first), ("items", i, False)) for m in self.mentions)]

    @staticmethod
    def _item(mention: str, first: bool) -> str | tuple[str, ...]:
        """The space before a mention goes with it (" At|axia", as the pre-tokeniser cuts), never alone."""
        return " " + mention if first else (",", " " + mention)

    def closing(self, key: Hashable) -> list[Alternative]:
        if key == "start":
            if self.short:
                return [("", DONE), *((t + ":", ("first", j)) for j, t in enumerate(self.types))]
            return [(self.types[0] + ":", ("items", 0, True))]
        if key[0] == "first":  # a short-form line has at least one mention
            return [(self._item(m, True), ("items", key[1], False)) for m in self.mentions]
        i = key[1]
        if self.short:
            return [("", DONE), *((f"\n{t}:", ("first", j)) for j, t in enumerate(self.types) if j > i)]
        if i == len(self.types) - 1:
            return [("", DONE)]
        return [(f"\n{self.types[i + 1]}:", ("items", i + 1, True))]
