"""How well a generating model keeps to its output format: seed 1's diagnostics, for every format.

Scores (eval/semeval.py) say how right the entities are; these say how the raw text behaved, which is
where generating methods fail in their own ways (unparseable answers, invented mentions, wrong offsets).
Seed 1 reported four of them for its JSON answers; here they are defined for every format of
data/llm/formats, per mention and micro-averaged over all documents:

  parse_rate          share of documents whose output is well formed in its format (ParseResult.well_formed;
                      for JSON: a complete JSON array was found)
  hallucination_rate  share of predicted mentions whose text is not in the input, even ignoring case and
                      whitespace (data/llm/align.py "hallucinated"); the mentions are the items the model wrote,
                      whatever their type
  normalised_rate     share of predicted mentions found only that way (case or whitespace differ)
  boundary_accuracy   among located predictions whose (text, type) equals some gold (text, type) of the
                      document, the share whose offsets equal those of such a gold entity (matched one to
                      one: two predictions cannot both claim one gold entity)
  format_compliance   share of the output's pieces (mentions and unreadable pieces) that follow the format:
                      for JSON an object with the four keys, integer offsets and an allowed type; elsewhere a
                      mention with an allowed type. An empty answer has no pieces, so it is never
                      non-compliant (seed 1 counted an empty list as non-compliant)
  offset_accuracy     JSON only: among mentions with integer offsets, the share whose offsets point at the
                      mention text (None for formats without offsets)

`per_document` has seed 1's variants, averaged per document so they can sit beside its table:
hallucination and boundary accuracy over the documents where they are defined (seed 1 scored a document
with nothing to measure as 0; here it is left out and `averaged_over` says how many documents count),
and format compliance over the well-formed documents, an empty answer counting 1.
A rate with nothing to measure is None.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from typing import Mapping, Sequence

from data.corpus import Document, Entity
from data.llm.formats import OutputFormat, ParseResult, get_format


@dataclass
class Tally:
    """The counts of one document that the diagnostics are ratios of."""

    well_formed: bool
    pieces: int = 0
    compliant: int = 0
    mentions: int = 0
    hallucinated: int = 0
    normalised: int = 0
    comparable: int = 0  # located predictions whose (text, type) is a gold (text, type)
    same_offsets: int = 0
    stated: int = 0
    stated_ok: int = 0


def diagnose(gold: Sequence[Document], outputs: Mapping[str, str], fmt: str | OutputFormat,
             types: Sequence[str]) -> dict:
    """Parse each document's raw output (a missing one reads as "") and diagnose the results."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    unknown = sorted(set(outputs) - {d.id for d in gold})
    if unknown:
        raise ValueError(f"outputs for {len(unknown)} unknown document(s), e.g. {unknown[:3]}")
    parsed = {d.id: fmt.parse(outputs.get(d.id, ""), d.text, types) for d in gold}
    return {"format": fmt.name, "missing_outputs": sum(d.id not in outputs for d in gold),
            **summarise(gold, parsed)}


def summarise(gold: Sequence[Document], parsed: Mapping[str, ParseResult]) -> dict:
    """The diagnostics (module docstring) of already parsed outputs, one per gold document."""
    tallies = [tally(doc, parsed[doc.id]) for doc in gold]
    counts: Counter = Counter()
    for doc in gold:
        counts.update(parsed[doc.id].counts)
        counts["unparsed"] += parsed[doc.id].unparsed
    total = {f.name: sum(getattr(t, f.name) for t in tallies) for f in fields(Tally)}
    return {
        "documents": len(gold),
        "parse_rate": rate(total["well_formed"], len(tallies)),
        "mentions": total["mentions"],
        "hallucination_rate": rate(total["hallucinated"], total["mentions"]),
        "normalised_rate": rate(total["normalised"], total["mentions"]),
        "boundary_accuracy": rate(total["same_offsets"], total["comparable"]),
        "format_compliance": rate(total["compliant"], total["pieces"]),
        "offset_accuracy": rate(total["stated_ok"], total["stated"]),
        "counts": dict(sorted(counts.items())),
        "per_document": per_document(tallies),
    }


def tally(doc: Document, result: ParseResult) -> Tally:
    """One document's counts."""
    t = Tally(well_formed=result.well_formed, pieces=len(result.items) + result.unparsed,
              compliant=sum(i.compliant for i in result.items), mentions=len(result.items),
              hallucinated=sum(i.placement == "hallucinated" for i in result.items),
              normalised=sum(i.placement == "normalised" for i in result.items),
              stated=sum(i.stated for i in result.items), stated_ok=sum(i.stated_ok for i in result.items))
    t.comparable, t.same_offsets = boundary_counts(doc, result.entities)
    return t


def boundary_counts(doc: Document, predicted: Sequence[Entity]) -> tuple[int, int]:
    """(predictions whose (text, type) is a gold (text, type), those of them at a gold entity's offsets)."""
    gold_spans: dict[tuple[str, str], Counter] = {}
    for e in doc.entities:
        gold_spans.setdefault((e.surface(doc.text), e.type), Counter())[e.fragments] += 1
    pred_spans: dict[tuple[str, str], Counter] = {}
    for e in predicted:
        key = (e.surface(doc.text), e.type)
        if key in gold_spans:
            pred_spans.setdefault(key, Counter())[e.fragments] += 1
    comparable = sum(sum(c.values()) for c in pred_spans.values())
    same = sum(sum((c & gold_spans[key]).values()) for key, c in pred_spans.items())
    return comparable, same


def per_document(tallies: Sequence[Tally]) -> dict:
    """Seed 1's per-document averages (module docstring)."""
    halluc = [rate(t.hallucinated, t.mentions) for t in tallies if t.mentions]
    bound = [rate(t.same_offsets, t.comparable) for t in tallies if t.comparable]
    comply = [rate(t.compliant, t.pieces) if t.pieces else 1.0 for t in tallies if t.well_formed]
    return {"hallucination_rate": mean(halluc), "boundary_accuracy": mean(bound),
            "format_compliance": mean(comply),
            "averaged_over": {"hallucination_rate": len(halluc), "boundary_accuracy": len(bound),
                              "format_compliance": len(comply)}}


def rate(num: float, den: float) -> float | None:
    return num / den if den else None


def mean(values: Sequence[float | None]) -> float | None:
    return sum(values) / len(values) if values else None  # type: ignore[arg-type]
