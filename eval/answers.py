"""Scores of a generating model's answers on one split, the same for every generating method.

Each unit's answer is parsed in the split's format (data/llm/formats), its entities are placed in the
documents (data/llm/units.UnitSplit.documents) and the documents are scored with eval/semeval; the
format diagnostics (eval/diagnostics) are computed per unit, since a unit is what the model saw.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from data.corpus import Document
from data.llm.units import UnitSplit
from eval.diagnostics import summarise
from eval.semeval import score


@dataclass
class Scored:
    """Document-level predictions, their eval/semeval JSON and the per-unit diagnostics."""

    predictions: list[Document]
    scores: dict
    diagnostics: dict

    def strict(self) -> dict[str, float]:
        s = self.scores["strict"]
        return {"strict_f1": s["f1"], "strict_precision": s["precision"], "strict_recall": s["recall"]}


def score_answers(split: UnitSplit, outputs: Mapping[str, str]) -> Scored:
    """Parse the answers (a unit without one reads as ""), place them in the documents and score them."""
    predictions, parsed = split.documents(outputs)
    diagnostics = {"level": "unit", **summarise([u.gold() for u in split.units], parsed)}
    return Scored(predictions, score(split.docs, predictions).to_json(), diagnostics)
