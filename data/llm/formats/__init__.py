"""What an LLM writes when it writes entities: gold spans -> target text, and model text -> spans.

decoders/, generative/, rag_icl/ and dfpo/ all train or prompt a model to *write* its entities, in one of
the seeds' output formats. This package is the one place that turns gold entities into the target text
and turns whatever a model wrote back into character spans, so that every method is scored on the same
spans by eval/semeval.py and diagnosed by eval/diagnostics.py.

  "bio"          one `word TAG` line per input word (seeds 0 and 2)
  "json"         a JSON array of {"text", "type", "start", "end"}, character offsets, end exclusive (seed 1)
  "typed"        one `TYPE: a, b` line per entity type, every type (seed 4, full form)
  "typed_short"  the same, only the types that have a mention (seed 4, short form)
  "list"         a Python list of strings for one type, or a dict type -> list for several (seed 3)

Every format has `flatten`, `serialise`, `parse` and `explain`, and owns its constrained language: `machine`
(what data/llm/constraints.py lets a model write) and `grammar` (the same as GBNF, for llama.cpp). Each
lives in a module of this package (base.py holds what they share). Entity types always
appear in the order given (the registry's `Dataset.types`) and spelled exactly as there.

Input words (bio): `data.text.tokenize` of the text, the same words whether serialising or parsing.

What a format cannot represent is flattened by a named policy, and every entity that changes is counted
in a `changes` Counter (as data/bio.py does); `flatten` returns exactly what parse(serialise(x)) gives:
  - discontinuous entities (every format): `data.bio.contiguous` with the format's discontinuous policy
    ("first_fragment" by default)  -> "discontinuous_first_fragment" / "_spanned" / "_dropped";
  - bio: the rest of data.bio.to_bio's policies (overlaps, snapping to words) -> its reasons;
  - json, typed, list: the same span and type twice is one mention -> "duplicate_merged";
  - typed, list (no offsets): the k-th mention of a string is read back as the k-th occurrence of that
    string (data/llm/align.py), so a gold mention that is not at that occurrence (an earlier occurrence is
    not annotated, or is inside another mention, for instance) moves -> "occurrence_reassigned"; one
    that cannot be placed at all is dropped -> "unplaceable_dropped". json, typed and list take
    `nested=True` for corpora that nest mentions (see data.llm.align.place).

Typed lines quoting rule: a mention is written bare unless it contains ", " or a line break, begins with
a double quote, or begins or ends with whitespace; then it is written as a JSON string literal
("a, b" -> `"a, b"`). Bare mentions are separated by ", " exactly (so "2,3-dichloro" needs no quotes).

Parsing never raises on any model text: it returns what it could read (ParseResult) and counts the rest:
  unparsed        pieces of output that could not be read as a mention at all (prose lines, broken or
                  truncated JSON objects, list items that are not strings, bio lines without a tag);
  invalid_type    mentions whose type is not one of `types` (kept out of `entities`, never renamed);
  hallucinated, surplus, duplicate   mentions that could not be placed (data/llm/align.py);
  truncated       a JSON array or list that stops before its closing bracket (its complete items are kept).
`well_formed` says whether the output was a complete answer in the format's syntax (the parse rate of
eval/diagnostics.py); unknown types do not make an answer ill-formed (they are format compliance's
business, eval/diagnostics.py). The definition for each format is in its class docstring.
"""
from __future__ import annotations

from data.llm.formats.base import OutputFormat, ParseResult, PlacedFormat, Labelled
from data.llm.formats.bio import BioFormat
from data.llm.formats.json_array import JsonFormat
from data.llm.formats.lists import ListFormat
from data.llm.formats.typed import TypedLinesFormat

FORMATS: dict[str, tuple[type[OutputFormat], dict]] = {
    "bio": (BioFormat, {}),
    "json": (JsonFormat, {}),
    "typed": (TypedLinesFormat, {"short": False}),
    "typed_short": (TypedLinesFormat, {"short": True}),
    "list": (ListFormat, {}),
}
__all__ = ["FORMATS", "Labelled", "OutputFormat", "ParseResult", "get_format"]


def get_format(name: str, nested: bool = False, **policies) -> OutputFormat:
    """A format by name, with optional policies: discontinuous_policy; for bio also overlap_policy and
    mode. `nested` (the corpus nests mentions, data.corpus.nests) applies to the formats that place
    mentions by their text: json, typed and list."""
    if name not in FORMATS:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    cls, fixed = FORMATS[name]
    if issubclass(cls, PlacedFormat):
        policies["nested"] = nested
    return cls(**fixed, **policies)
