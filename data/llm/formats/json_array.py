"""The json format: a JSON array of {"text", "type", "start", "end"} objects, character offsets (seed 1)."""
from __future__ import annotations

import json
from collections import Counter
from typing import Hashable, Sequence

from data.corpus import Entity
from data.llm.formats.base import (DONE, MAX_WORDS, Alternative, Machine, ParseResult, PlacedFormat, Labelled,
                                   alternation, candidates, check_types, contiguous_entities, is_span, json_string,
                                   labelled_parts)
from data.text import tokenize
class JsonFormat(PlacedFormat):
    """A JSON array of {"text", "type", "start", "end"} objects in text order (seed 1).

    Reading: the outermost complete JSON array in the output (prose around it is ignored); failing
    that, every complete {...} object found from left to right (a truncated array keeps its complete
    objects; counted "truncated"). Offsets that point at the mention text are kept ("stated"); missing
    or wrong ones are re-anchored by data.llm.align. Well formed: a complete JSON array was found.
    (Seed 1 instead parsed the slice from the first "[" to the last "]", which fails when prose after
    the array contains a bracket.)
    """

    name = "json"

    def flatten(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        text, entities = labelled_parts(labelled)
        check_types(entities, types)
        return contiguous_entities(text, entities, self.discontinuous_policy,
                                    Counter() if changes is None else changes)

    def serialise(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> str:
        return json.dumps([{"text": e.text, "type": e.type, "start": e.start, "end": e.end}
                           for e in self.flatten(labelled, types, changes)], ensure_ascii=False)

    def parse(self, model_text: str, doc_text: str, types: Sequence[str]) -> ParseResult:
        counts: Counter = Counter()
        array = _outermost_array(model_text)
        elements, unparsed = (array, 0) if array is not None else _loose_objects(model_text, counts)
        raw = []
        for obj in elements:
            mention = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(mention, str) or not mention:
                unparsed += 1
                continue
            stated = (obj.get("start"), obj.get("end"))
            compliant = (all(k in obj for k in ("text", "type", "start", "end")) and is_span(stated)
                         and obj.get("type") in types)
            raw.append((mention, str(obj.get("type")), stated, compliant))
        return self._resolve(doc_text, raw, types, unparsed, array is not None, counts)

    def _explain_format(self, types: Sequence[str]) -> str:
        return ('Answer with a JSON array holding one object per mention, in the order the mentions appear. '
                'Each object has "text" (the mention exactly as written in the text), "type" (its entity '
                'type), "start" and "end" (its character offsets in the text: the first character is 0, and '
                '"end" is one past the last character of the mention). Answer [] if there is no mention.')

    def machine(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> Machine:
        return JsonMachine(text, types, max_words)

    def grammar(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> str:
        """Offsets are any integers here: GBNF cannot tie them to the chosen text."""
        return "\n".join([
            f"m ::= {alternation([json_string(m)[1:-1] for m in candidates(text, max_words)])}",
            f"t ::= {alternation(types)}",
            'int ::= "0" | [1-9] [0-9]*',
            'item ::= "{\\"text\\": \\"" m "\\", \\"type\\": \\"" t "\\", \\"start\\": " int '
            '", \\"end\\": " int "}"',
            'root ::= "[]" | "[" item (", " item)* "]"'])

    def server_options(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> dict:
        """A json_object response format with the answer's schema (llama.cpp's server takes both)."""
        return {"response_format": {"type": "json_object", "schema": json_schema(text, types, max_words)}}


_DECODER = json.JSONDecoder()


def _outermost_array(s: str) -> list | None:
    """The first complete JSON array in `s` that is empty or holds an object (a "[1]" citation in
    prose before it is skipped), or None."""
    i = s.find("[")
    while i >= 0:
        try:
            value, end = _DECODER.raw_decode(s, i)
        except (ValueError, RecursionError):
            i = s.find("[", i + 1)
            continue
        if isinstance(value, list) and (not value or any(isinstance(v, dict) for v in value)):
            return value
        i = s.find("[", end)
    return None


def _loose_objects(s: str, counts: Counter) -> tuple[list[dict], int]:
    """Every complete top-level {...} object, left to right, and how many "{" began nothing readable."""
    objects, failed, i = [], 0, s.find("{")
    while i >= 0:
        try:
            value, end = _DECODER.raw_decode(s, i)
        except (ValueError, RecursionError):
            failed += 1
            i = s.find("{", i + 1)
            continue
        objects.append(value)
        i = s.find("{", end)
    if 0 <= s.find("[") < s.find("{"):
        counts["truncated"] += 1
    return objects, failed + (not objects and not failed and bool(s.strip()))


class JsonMachine(Machine):
    """`[{"text": M, "type": T, "start": S, "end": E}, ...]` (json.dumps of the serialiser) with S, E an
    occurrence of M. Keys: ("items", first?), ("type", M), ("offsets", M)."""

    def __init__(self, text: str, types: Sequence[str], max_words: int):
        self.spans = candidates(text, max_words)
        self.types = list(types)
        self.start = ("items", True)

    def alternatives(self, key: Hashable) -> list[Alternative]:
        if key[0] == "items":
            lead = '[{"text": "' if key[1] else ', {"text": "'
            return [*self.closing(key), *(((lead, json_string(m)[1:-1], '", "type": "'), ("type", m))
                                          for m in self.spans)]
        return self.closing(key)

    def closing(self, key: Hashable) -> list[Alternative]:
        kind, arg = key
        if kind == "items":
            return [("[]" if arg else "]", DONE)]
        if kind == "type":
            return [(t + '", "start":', ("offsets", arg)) for t in self.types]
        return [(f' {s}, "end": {e}}}', ("items", False)) for s, e in self.spans[arg]]


def json_schema(text: str, types: Sequence[str], max_words: int = MAX_WORDS, max_items: int | None = None) -> dict:
    """The JSON schema of the json format's answers for this text: mention texts are an enum of its word
    n-grams, types an enum; at most max_items items (default: the number of words)."""
    return {"type": "array", "maxItems": len(tokenize(text)) if max_items is None else max_items,
            "items": {"type": "object", "additionalProperties": False,
                      "required": ["text", "type", "start", "end"],
                      "properties": {"text": {"type": "string", "enum": list(candidates(text, max_words))},
                                     "type": {"type": "string", "enum": list(types)},
                                     "start": {"type": "integer", "minimum": 0},
                                     "end": {"type": "integer", "minimum": 0}}}}
