"""What an LLM writes when it writes entities: gold spans -> target text, and model text -> spans.

decoders/, generative/, rag_icl/ and dfpo/ all train or prompt a model to *write* its entities, in one of
the seeds' output formats. This module is the one place that turns gold entities into the target text
and turns whatever a model wrote back into character spans, so that every method is scored on the same
spans by eval/semeval.py and diagnosed by eval/diagnostics.py.

  "bio"          one `word TAG` line per input word (seeds 0 and 2)
  "json"         a JSON array of {"text", "type", "start", "end"}, character offsets, end exclusive (seed 1)
  "typed"        one `TYPE: a, b` line per entity type, every type (seed 4, full form)
  "typed_short"  the same, only the types that have a mention (seed 4, short form)
  "list"         a Python list of strings for one type, or a dict type -> list for several (seed 3)

Every format has `flatten`, `serialise`, `parse` and `explain` (see `OutputFormat`). Entity types always
appear in the order given (the registry's `Dataset.types`) and spelled exactly as there.

Input words (bio): `data.text.tokenize` of the text, the same words whether serialising or parsing.

What a format cannot represent is flattened by a named policy, and every entity that changes is counted
in a `changes` Counter (as data/bio.py does); `flatten` returns exactly what parse(serialise(x)) gives:
  - discontinuous entities (every format): `data.bio.contiguous` with the format's discontinuous policy
    ("first_fragment" by default)  -> "discontinuous_first_fragment" / "_spanned" / "_dropped";
  - bio: the rest of data.bio.to_bio's policies (overlaps, snapping to words) -> its reasons;
  - json, typed, list: the same span and type twice is one mention -> "duplicate_merged";
  - typed, list (no offsets): the k-th mention of a string is read back as the k-th occurrence of that
    string (data/align.py), so a gold mention that is not at that occurrence (an earlier occurrence is
    not annotated, or is inside another mention, for instance) moves -> "occurrence_reassigned"; one
    that cannot be placed at all is dropped -> "unplaceable_dropped". json, typed and list take
    `nested=True` for corpora that nest mentions (see data.align.place).

Typed lines quoting rule: a mention is written bare unless it contains ", " or a line break, begins with
a double quote, or begins or ends with whitespace; then it is written as a JSON string literal
("a, b" -> `"a, b"`). Bare mentions are separated by ", " exactly (so "2,3-dichloro" needs no quotes).

Parsing never raises on any model text: it returns what it could read (ParseResult) and counts the rest:
  unparsed        pieces of output that could not be read as a mention at all (prose lines, broken or
                  truncated JSON objects, list items that are not strings, bio lines without a tag);
  invalid_type    mentions whose type is not one of `types` (kept out of `entities`, never renamed);
  hallucinated, surplus, duplicate   mentions that could not be placed (data/align.py);
  truncated       a JSON array or list that stops before its closing bracket (its complete items are kept).
`well_formed` says whether the output was a complete answer in the format's syntax (the parse rate of
eval/diagnostics.py); unknown types do not make an answer ill-formed (they are format compliance's
business, eval/diagnostics.py). The definition for each format is in its class docstring.
"""
from __future__ import annotations

import ast
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Sequence

from data.align import Mention, holds, place
from data.bio import DISCONTINUOUS_POLICIES, OVERLAP_POLICIES, contiguous, from_bio, to_bio
from data.corpus import Document, Entity
from data.text import tokenize

Unit = Document | tuple[str, Sequence[Entity]]


@dataclass(frozen=True)
class Item:
    """One mention as the model wrote it, and what became of it.

    `placement` is data.align's verdict ("stated", "exact", "normalised", "duplicate", "surplus",
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
def unit_parts(unit: Unit) -> tuple[str, list[Entity]]:
    """(text, entities) of a Document or of a (text, entities) pair."""
    if isinstance(unit, Document):
        return unit.text, list(unit.entities)
    text, entities = unit
    return text, list(entities)


def _check_types(entities: Sequence[Entity], types: Sequence[str]) -> None:
    unknown = sorted({e.type for e in entities} - set(types))
    if unknown:
        raise ValueError(f"entity types {unknown} are not among the requested types {list(types)}")


def _contiguous_entities(text: str, entities: Sequence[Entity], policy: str, changes: Counter) -> list[Entity]:
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


def _is_span(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value))


EXAMPLE_TEXT = "X binds Y in Z cells."


def _example(types: Sequence[str]) -> tuple[str, list[Entity]]:
    """A schematic example for prompts: "X" of the first type and "Z cells" of the second (or first)."""
    second = types[1] if len(types) > 1 else types[0]
    return EXAMPLE_TEXT, [Entity.span(0, 1, types[0], "X"), Entity.span(13, 20, second, "Z cells")]


class OutputFormat:
    """One output format. Subclasses define `flatten`, `serialise`, `parse` and `_explain_format`."""

    name = ""

    def __init__(self, discontinuous_policy: str = "first_fragment"):
        if discontinuous_policy not in DISCONTINUOUS_POLICIES:
            raise ValueError(f"discontinuous policy {discontinuous_policy!r} is not one of {DISCONTINUOUS_POLICIES}")
        self.discontinuous_policy = discontinuous_policy

    def flatten(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        """The entities this format can represent, as parse(serialise(unit)) returns them."""
        raise NotImplementedError

    def serialise(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> str:
        """The target text for the unit's gold entities (types must all be among `types`)."""
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


class PlacedFormat(OutputFormat):
    """A format whose mentions are placed by data.align (everything but bio).

    `nested`: the corpus nests mentions, so placing should not steer a mention away from the
    occurrences that longer mentions already cover (data.align.place).
    """

    def __init__(self, discontinuous_policy: str = "first_fragment", nested: bool = False):
        super().__init__(discontinuous_policy)
        self.nested = nested

    def _resolve(self, text: str, raw: Sequence[tuple[str, str, Any, bool]], types: Sequence[str],
                 unparsed: int, well_formed: bool, counts: Counter) -> ParseResult:
        """Place raw (mention, type, stated offsets or None, compliant) items and build the ParseResult.

        Mentions with an unknown type are placed too (to tell hallucinated from not), then left out.
        """
        mentions = [Mention(m, t, stated if _is_span(stated) else None) for m, t, stated, _ in raw]
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

    def _placed_flatten(self, unit: Unit, types: Sequence[str], changes: Counter | None) -> list[Entity]:
        """What a format without offsets gives back: contiguous, deduplicated, re-placed by data.align."""
        changes = Counter() if changes is None else changes
        text, entities = unit_parts(unit)
        _check_types(entities, types)
        flat = _contiguous_entities(text, entities, self.discontinuous_policy, changes)
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


# --------------------------------------------------------------------------- bio
_BIO_LINE = re.compile(r"(?P<word>.+?)(?:\s*:\s*|\s+)(?P<tag>[^\s:]+)")


class BioFormat(OutputFormat):
    """One `word TAG` line per input word (separator: a space; on reading, the last run of spaces or
    colons, so `word:TAG` and `word : TAG` are read too, and the word ":" survives).

    Parsing aligns the predicted words to the input words with a sequence matcher; input words left
    unmatched are O, predicted words left unmatched are counted ("unaligned_words"). Tags are decoded by
    data.bio.from_bio in `mode` (default "lenient": a stray I- opens an entity, counted "inside_opened").
    A predicted mention (a B/I run over the predicted words) is "hallucinated" if any of its words was
    not aligned. Well formed: every non-blank line is a word and a B-/I-/O tag, and the words are
    exactly the input words.
    """

    name = "bio"

    def __init__(self, discontinuous_policy: str = "first_fragment", overlap_policy: str = "longest_first",
                 mode: str = "lenient"):
        super().__init__(discontinuous_policy)
        if overlap_policy not in OVERLAP_POLICIES:
            raise ValueError(f"overlap policy {overlap_policy!r} is not one of {OVERLAP_POLICIES}")
        if mode not in ("strict", "lenient"):
            raise ValueError(f"mode must be 'strict' or 'lenient', got {mode!r}")
        self.overlap_policy, self.mode = overlap_policy, mode

    def _tags(self, unit: Unit, types: Sequence[str], changes: Counter | None) -> tuple[str, list, list[str]]:
        text, entities = unit_parts(unit)
        _check_types(entities, types)
        words = tokenize(text)
        doc = Document("unit", text, entities, sentences=[(0, len(text))] if words else [], tokens=words)
        tags = to_bio(doc, self.overlap_policy, self.discontinuous_policy, changes)
        return text, words, tags[0] if words else []

    def flatten(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        text, words, tags = self._tags(unit, types, changes)
        return sorted(from_bio(words, tags, text))

    def serialise(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> str:
        text, words, tags = self._tags(unit, types, changes)
        return "\n".join(f"{text[s:e]} {tag}" for (s, e), tag in zip(words, tags))

    def parse(self, model_text: str, doc_text: str, types: Sequence[str]) -> ParseResult:
        counts: Counter = Counter()
        lines = [line.strip() for line in model_text.split("\n") if line.strip()]
        pred_words, pred_tags = [], []  # tags: None (unreadable), "O", or (prefix, type)
        for line in lines:
            m = _BIO_LINE.fullmatch(line)
            word, tag = (m["word"].strip(), _read_tag(m["tag"])) if m else (line, None)
            pred_words.append(word)
            pred_tags.append(tag)
        unparsed = pred_tags.count(None)
        words = tokenize(doc_text)
        input_words = [doc_text[s:e] for s, e in words]
        matcher = SequenceMatcher(None, input_words, pred_words, autojunk=False)
        aligned: dict[int, int] = {}  # predicted word -> input word
        for a, b, size in matcher.get_matching_blocks():
            aligned.update((b + k, a + k) for k in range(size))
        counts["unaligned_words"] = len(pred_words) - len(aligned)
        items = self._items(pred_words, pred_tags, aligned, types, counts)
        tags = ["O"] * len(words)
        for j, i in aligned.items():
            tag = pred_tags[j]
            if isinstance(tag, tuple) and tag[1] in types:
                tags[i] = f"{tag[0]}-{tag[1]}"
        entities = from_bio(words, tags, doc_text, self.mode, counts)
        well_formed = unparsed == 0 and pred_words == input_words
        return ParseResult(sorted(entities), unparsed, well_formed, items, +counts)

    @staticmethod
    def _items(pred_words: list[str], pred_tags: list, aligned: dict[int, int], types: Sequence[str],
               counts: Counter) -> list[Item]:
        """The predicted mentions as written: B/I runs of one type (a stray I- opens one)."""
        runs: list[list] = []  # [type, first word, last word]
        for j, tag in enumerate(pred_tags):
            if not isinstance(tag, tuple):
                continue
            prefix, type_ = tag
            if prefix == "I" and runs and runs[-1][0] == type_ and runs[-1][2] == j - 1:
                runs[-1][2] = j
            else:
                runs.append([type_, j, j])
        items = []
        for type_, first, last in runs:
            in_text = all(j in aligned for j in range(first, last + 1))
            items.append(Item(" ".join(pred_words[first:last + 1]), type_,
                              "exact" if in_text else "hallucinated", type_ in types))
            if type_ not in types:
                counts["invalid_type"] += 1
            elif not in_text:
                counts["hallucinated"] += 1
        return items

    def _explain_format(self, types: Sequence[str]) -> str:
        return ("Write one line for each word of the text, in order: the word, a space, then its tag. Every "
                "punctuation mark is a word of its own. The tag is B-TYPE on the first word of a mention, "
                "I-TYPE on each further word of the same mention, and O on every other word.")


def _read_tag(tag: str) -> str | tuple[str, str] | None:
    """"O", (prefix, type) for B-/I- tags of any type, or None if it is no tag at all."""
    if tag == "O":
        return "O"
    prefix, dash, type_ = tag.partition("-")
    return (prefix, type_) if dash and prefix in ("B", "I") and type_ else None


# --------------------------------------------------------------------------- json
class JsonFormat(PlacedFormat):
    """A JSON array of {"text", "type", "start", "end"} objects in text order (seed 1).

    Reading: the outermost complete JSON array in the output (prose around it is ignored); failing
    that, every complete {...} object found from left to right (a truncated array keeps its complete
    objects; counted "truncated"). Offsets that point at the mention text are kept ("stated"); missing
    or wrong ones are re-anchored by data.align. Well formed: a complete JSON array was found.
    (Seed 1 instead parsed the slice from the first "[" to the last "]", which fails when prose after
    the array contains a bracket.)
    """

    name = "json"

    def flatten(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        text, entities = unit_parts(unit)
        _check_types(entities, types)
        return _contiguous_entities(text, entities, self.discontinuous_policy,
                                    Counter() if changes is None else changes)

    def serialise(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> str:
        return json.dumps([{"text": e.text, "type": e.type, "start": e.start, "end": e.end}
                           for e in self.flatten(unit, types, changes)], ensure_ascii=False)

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
            compliant = (all(k in obj for k in ("text", "type", "start", "end")) and _is_span(stated)
                         and obj.get("type") in types)
            raw.append((mention, str(obj.get("type")), stated, compliant))
        return self._resolve(doc_text, raw, types, unparsed, array is not None, counts)

    def _explain_format(self, types: Sequence[str]) -> str:
        return ('Answer with a JSON array holding one object per mention, in the order the mentions appear. '
                'Each object has "text" (the mention exactly as written in the text), "type" (its entity '
                'type), "start" and "end" (its character offsets in the text: the first character is 0, and '
                '"end" is one past the last character of the mention). Answer [] if there is no mention.')


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


# --------------------------------------------------------------------------- typed lines
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

    def flatten(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        return self._placed_flatten(unit, types, changes)

    def serialise(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> str:
        entities = self.flatten(unit, types, changes)
        lines = []
        for t in types:
            mentions = [e.text for e in entities if e.type == t]
            if mentions or not self.short:
                lines.append(f"{t}: {', '.join(map(_quote, mentions))}".rstrip())
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


def _quote(mention: str) -> str:
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


# --------------------------------------------------------------------------- python lists
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

    def flatten(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        return self._placed_flatten(unit, types, changes)

    def serialise(self, unit: Unit, types: Sequence[str], changes: Counter | None = None) -> str:
        entities = self.flatten(unit, types, changes)
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


# --------------------------------------------------------------------------- registry
FORMATS: dict[str, tuple[type[OutputFormat], dict]] = {
    "bio": (BioFormat, {}),
    "json": (JsonFormat, {}),
    "typed": (TypedLinesFormat, {"short": False}),
    "typed_short": (TypedLinesFormat, {"short": True}),
    "list": (ListFormat, {}),
}


def get_format(name: str, **policies: str) -> OutputFormat:
    """A format by name, with optional policies: discontinuous_policy; for bio also overlap_policy and
    mode; for json, typed and list also nested."""
    if name not in FORMATS:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    cls, fixed = FORMATS[name]
    return cls(**fixed, **policies)
