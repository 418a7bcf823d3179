"""The list format: a Python list of mention strings for one type, or a dict type -> list for several
(seed 3, one type per prompt)."""
from __future__ import annotations

import ast
import json
import re
from collections import Counter
from typing import Any, Hashable, Sequence

from data.corpus import Entity
from data.llm.formats.base import (DONE, MAX_WORDS, Alternative, Machine, ParseResult, PlacedFormat, Labelled,
                                   alternation, candidates, gbnf_literal, json_string)
_STRING_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')
_DICT_ENTRY = re.compile(r'(["\'])(?P<key>[^"\'\n]*)\1\s*:\s*\[(?P<body>[^\]]*)\]?')


class ListFormat(PlacedFormat):
    """A Python list of mention strings when one type is asked for (seed 3, one type per prompt), or a
    dict mapping every type (in order, empty ones too) to such a list when several are.

    Reading: ast.literal_eval of the bracketed part (first "[" or "{" to the last "]" or "}"); failing
    that, the tolerant reading: every quoted string literal (in the dict case, inside `"TYPE": [...]`
    entries), so truncated or slightly broken lists still give their complete strings ("truncated" when
    the opening bracket is never closed). Well formed: the literal evaluated to a list of non-empty
    strings (a dict of such lists).
    """

    name = "list"

    def flatten(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        return self._placed_flatten(labelled, types, changes)

    def serialise(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> str:
        entities = self.flatten(labelled, types, changes)
        by_type = {t: [e.text for e in entities if e.type == t] for t in types}
        return json.dumps(by_type[types[0]] if len(types) == 1 else by_type, ensure_ascii=False)

    def parse(self, model_text: str, doc_text: str, types: Sequence[str]) -> ParseResult:
        counts: Counter = Counter()
        one = len(types) == 1
        brackets = "[]" if one else "{}"
        strict = _as_mapping(_literal(model_text, brackets), types[0] if one else None)
        if strict is not None:
            pairs, unparsed = strict
            well_formed = unparsed == 0
        else:
            pairs, unparsed = (_loose_list(model_text, types[0]) if one else _loose_dict(model_text))
            well_formed = False
            if model_text.strip() and not pairs:
                unparsed = max(unparsed, 1)
            if _unclosed(model_text, brackets):
                counts["truncated"] += 1
        raw = [(m, t, None, t in types) for t, m in pairs]
        return self._resolve(doc_text, raw, types, unparsed, well_formed, counts)

    def _explain_format(self, types: Sequence[str]) -> str:
        if len(types) == 1:
            return (f"Answer with a Python list of strings: every mention of {types[0]} exactly as written in "
                    "the text, in the order they appear, repeated each time it occurs. Answer [] if there is "
                    "none.")
        return ("Answer with a Python dict that maps every entity type, in the order listed above, to the list "
                "of its mentions exactly as written in the text, in the order they appear, repeated each time "
                "they occur (an empty list when a type has none).")

    def machine(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> Machine:
        return ListMachine(text, types, max_words)

    def grammar(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> str:
        rules = [f"m ::= {alternation([json_string(m) for m in candidates(text, max_words)])}",
                 'list ::= "[" (m (", " m)*)? "]"']
        rules.append("root ::= list" if len(types) == 1 else
                     'root ::= "{" ' + ' ", " '.join(f"{gbnf_literal(json_string(t) + ': ')} list" for t in types)
                     + ' "}"')
        return "\n".join(rules)


def _literal(s: str, brackets: str) -> Any:
    """ast.literal_eval of s from the first opening to the last closing bracket, or None."""
    i, j = s.find(brackets[0]), s.rfind(brackets[1])
    if i < 0 or j < i:
        return None
    try:
        return ast.literal_eval(s[i:j + 1])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _unclosed(s: str, brackets: str) -> bool:
    """Whether s opens the bracket and never closes it after that."""
    i = s.find(brackets[0])
    return i >= 0 and s.rfind(brackets[1]) < i


def _as_mapping(value: Any, single_type: str | None) -> tuple[list[tuple[str, str]], int] | None:
    """(type, mention) pairs from an evaluated literal, and how many values were not strings; None when
    the literal has the wrong shape (a list where a dict is expected, or the reverse)."""
    if single_type is not None:
        if not isinstance(value, (list, tuple)):
            return None
        value = {single_type: value}
    if not isinstance(value, dict):
        return None
    pairs, bad = [], 0
    for t, mentions in value.items():
        if not isinstance(mentions, (list, tuple)):
            bad += 1
            continue
        for m in mentions:
            if isinstance(m, str) and m:
                pairs.append((str(t), m))
            else:
                bad += 1
    return pairs, bad


def _strings(s: str) -> tuple[list[str], int]:
    """The string literals in s, and how many could not be evaluated."""
    out, bad = [], 0
    for lit in _STRING_LITERAL.findall(s):
        try:
            value = ast.literal_eval(lit)
        except (ValueError, SyntaxError):
            bad += 1
            continue
        if value:
            out.append(value)
    return out, bad


def _loose_list(s: str, type_: str) -> tuple[list[tuple[str, str]], int]:
    start = s.find("[")
    strings, bad = _strings(s[start:] if start >= 0 else s)
    return [(type_, m) for m in strings], bad


def _loose_dict(s: str) -> tuple[list[tuple[str, str]], int]:
    pairs, bad = [], 0
    for m in _DICT_ENTRY.finditer(s):
        strings, n_bad = _strings(m["body"])
        pairs += [(m["key"], x) for x in strings]
        bad += n_bad
    return pairs, bad


class ListMachine(Machine):
    """A JSON-style list of string literals (one type), or a dict mapping every type in order to one
    (several); keys ("items", i, first?), "first" meaning that type's "[" is not written yet."""

    def __init__(self, text: str, types: Sequence[str], max_words: int):
        self.mentions = [json_string(m) for m in candidates(text, max_words)]
        self.types = list(types)
        self.start = ("items", 0, True)
        self.open = ["["] if len(types) == 1 else [("{" if i == 0 else ", ") + json_string(t) + ": ["
                                                     for i, t in enumerate(types)]

    def alternatives(self, key: Hashable) -> list[Alternative]:
        _, i, first = key
        # After a comma the space goes with the literal (' "At|axia"', as the pre-tokeniser cuts), never alone.
        items = [((self.open[i], m) if first else (",", " " + m), ("items", i, False)) for m in self.mentions]
        return [*self.closing(key), *items]

    def closing(self, key: Hashable) -> list[Alternative]:
        _, i, first = key
        close = (self.open[i] if first else "") + "]"
        if i < len(self.open) - 1:
            return [(close, ("items", i + 1, True))]
        return [(close + ("" if len(self.types) == 1 else "}"), DONE)]
