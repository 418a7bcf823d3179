"""Score a predictions JSONL against a gold documents JSONL (SemEval-2013 task 9.1 on character spans).

    python eval/evaluate.py --gold test.jsonl --pred predictions.jsonl [--json scores.json] [--views]

Predictions use the documents format with `text` optional. They are refused (naming the file and
line) if a document id is not in the gold file, a span runs past the gold text, or a `text` field
disagrees with the gold text. Gold documents without predictions count as predicted empty.
Gold entities repeated within a document (same fragments and type) are kept once and repeated predictions
scored as spurious, both counted on stderr and under "duplicates" in --json.
Prints Markdown tables; --json writes one object per schema (strict, exact, partial, type) with
precision, recall, f1 and the counts, plus per_type and macro; --views adds the token-level IOB and
string-level views the source papers used, each under its own key.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


from data.corpus import Document, FormatError, exit_on_format_error, iter_documents, read_jsonl, script_parser
from eval.semeval import SCHEMAS, Counts, Result, score
from eval.views import all_views, views_markdown

ROW_HEADER = "| P | R | F1 | COR | INC | PAR | MIS | SPU |"


def load_predictions(path: str | Path, gold: list[Document]) -> list[Document]:
    """Read predictions and check them against the gold documents, naming the line of each mistake."""
    docs = []
    texts = {d.id: d.text for d in gold}
    for line, doc in iter_documents(path, require_text=False):
        if doc.id not in texts:
            raise FormatError(path, line, f"document {doc.id!r} is not in the gold file")
        text = texts[doc.id]
        if doc.text and doc.text != text:
            raise FormatError(path, line, f"document {doc.id!r}: 'text' differs from the gold text")
        for ent in doc.entities:
            if ent.end > len(text):
                raise FormatError(path, line, f"document {doc.id!r}: entity {ent.to_json()} ends past "
                                              f"the gold text (length {len(text)})")
            if ent.text and ent.text != ent.surface(text):
                raise FormatError(path, line, f"document {doc.id!r}: entity text {ent.text!r} does not match "
                                              f"the gold text at its offsets {ent.surface(text)!r}")
        docs.append(doc)
    return docs


def duplicates(docs: list[Document]) -> int:
    """Entities repeated within a document (same fragments and type)."""
    return sum(len(d.entities) - len(set(d.entities)) for d in docs)


def merge_duplicates(gold: list[Document]) -> tuple[list[Document], int]:
    """Gold documents with repeated entities kept once, and how many were dropped: an entity annotated twice
    would need two identical predictions to be recalled in full (a named policy, reported, never silent).
    Repeated predictions stay: a system that says the same thing twice is scored for it (spurious)."""
    count = duplicates(gold)
    if not count:
        return gold, 0
    return [Document(d.id, d.text, list(dict.fromkeys(d.entities)), d.sentences, d.tokens) for d in gold], count


def markdown(result: Result) -> str:
    """Overall, per-type and macro tables."""
    out = ["| schema " + ROW_HEADER, "|---" * 9 + "|"]
    out += [f"| {s} | {_row(result.overall[s])}" for s in SCHEMAS]
    out += ["", "| type | schema " + ROW_HEADER, "|---" * 10 + "|"]
    out += [f"| {t} | {s} | {_row(c)}" for t, by in result.per_type.items() for s, c in by.items()]
    out += ["", "| macro | P | R | F1 |", "|---|---|---|---|"]
    out += [f"| {s} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} |"
            for s, m in result.macro.items()]
    return "\n".join(out)


def _row(c: Counts) -> str:
    return (f"{c.precision:.4f} | {c.recall:.4f} | {c.f1:.4f} | "
            f"{c.correct} | {c.incorrect} | {c.partial} | {c.missed} | {c.spurious} |")


def main(argv: list[str] | None = None) -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--gold", required=True, help="gold documents JSONL (with text)")
    parser.add_argument("--pred", required=True, help="predictions JSONL (text optional)")
    parser.add_argument("--json", help="write the scores to this JSON file")
    parser.add_argument("--views", action="store_true",
                        help="also compute the token-level and string-level views")
    args = parser.parse_args(argv)
    gold = read_jsonl(args.gold)
    pred = load_predictions(args.pred, gold)
    gold, merged = merge_duplicates(gold)
    if merged:
        print(f"{args.gold}: {merged} duplicate gold entities (same fragments and type in one document) kept once",
              file=sys.stderr)
    repeated = duplicates(pred)
    if repeated:
        print(f"{args.pred}: {repeated} duplicate predictions (same fragments and type in one document) scored as "
              "spurious", file=sys.stderr)
    missing = len({d.id for d in gold} - {d.id for d in pred})
    if missing:
        print(f"{missing} of {len(gold)} gold documents have no predictions: scored as predicted empty",
              file=sys.stderr)
    result = score(gold, pred)
    report = result.to_json()
    report["duplicates"] = {"gold_kept_once": merged, "predicted_scored_spurious": repeated}
    print(markdown(result))
    if args.views:
        extra = all_views(gold, pred, result)
        report.update(extra)
        print("\n" + views_markdown(extra))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    exit_on_format_error(main)
