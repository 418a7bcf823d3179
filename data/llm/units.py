"""Units in, spans out: how documents become the inputs of a generating model, and its answers spans.

A generating model reads one unit at a time: a sentence (level "sentence"), or with level "document" a
document, or for a document of more than `max_sentences` sentences a window of that many sentences, a new
window every `stride` sentences (data.text.windows; the last window is aligned to the end, so windows may
overlap and nothing is cut). Sentences are the source's where it marks them, else data.text's. Training
units are split so that no gold entity is cut (a training target must not lose mentions); units to predict
on are cut without looking at the gold (respect_entities=False: gold-aware splitting would leak where the
mentions are), and an entity that then crosses a unit is left out of that unit's answer and counted
("crosses_unit_dropped"). Blank units are skipped and counted ("empty_units_skipped").

A `Unit` carries its text, its gold answer in the output format and the prompt a fine-tuned model reads. A
`UnitSplit` is one split cut into units for one format, with each unit's answer budget: what a method asks
a model, and how the answers come back as document spans (each unit's parsed entities shifted by its
`start`; an entity found by two overlapping windows kept once). eval/answers.py scores them.

Answer budgets (max_new_tokens per unit, `BudgetRule`): at most 1.2 x the longest gold answer (of the
training units or of the units generated), and at most 1.2 x the unit's length times the largest
answer-to-text ratio of the training units, so a model that never stops does not run far past what a
short sentence could need (bio answers grow with the words of the unit). The rule is saved with a trained
model, so inference needs no training data.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, Sequence

from data.corpus import Document, Entity, Span
from data.llm.constraints import Automaton, build
from data.llm.formats import OutputFormat, ParseResult
from data.llm.generation import PredictionStore, answer_end_id, generate, generate_stored
from data.llm.prompts import instruction, prompt
from data.text import split_sentences, windows

LEVELS = ("sentence", "document")


@dataclass(frozen=True)
class Unit:
    """One model input and its gold answer (seed 4's instruction record, plus where it sits).

    `id` is "<doc_id>/<unit number>" (plus "/<type>" per type); `start` the character offset of `input` in
    its document; `entities` the unit's gold entities, offsets relative to `input`, before any flattening;
    `raw_entities` {type: [mention, ...]} as `output` encodes them; `source` the prompt (prompts.prompt).
    """

    id: str
    doc_id: str
    start: int
    input: str
    output: str
    instruction: str
    source: str
    raw_entities: dict[str, list[str]]
    entities: tuple[Entity, ...]

    def to_json(self) -> dict:
        record = asdict(self)
        record["entities"] = [e.to_json() for e in self.entities]
        return record

    def gold(self) -> Document:
        """The unit as a gold document of its own (what the per-unit diagnostics compare with)."""
        return Document(self.id, self.input, list(self.entities))


def unit_spans(doc: Document, level: str = "sentence", max_sentences: int = 10, stride: int | None = None,
               respect_entities: bool = True) -> list[Span]:
    """The character spans of the units a document is cut into (module docstring)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    sentences = doc.sentences or split_sentences(doc.text, doc.entities if respect_entities else ())
    if level == "sentence":
        return list(sentences)
    return [(sentences[a][0], sentences[b - 1][1])
            for a, b in windows(len(sentences), max_sentences, stride or max_sentences)]


def unit_entities(doc: Document, span: Span, changes: Counter) -> list[Entity]:
    """The document's entities inside `span`, with offsets relative to its start; entities crossing its
    edge are counted ("crosses_unit_dropped")."""
    start, end = span
    out = []
    for ent in doc.entities:
        if start <= ent.start and ent.end <= end:
            out.append(Entity(tuple((s - start, e - start) for s, e in ent.fragments), ent.type, ent.text))
        elif ent.start < end and start < ent.end:
            changes["crosses_unit_dropped"] += 1
    return out


def unit_documents(docs: Sequence[Document], level: str = "sentence", max_sentences: int = 10,
                   respect_entities: bool = True, changes: Counter | None = None) -> dict[str, Document]:
    """Every non-blank unit as a document of its own, under the id make_units gives it (entities relative to
    the unit): what example retrieval compares and shows."""
    changes = Counter() if changes is None else changes
    out = {}
    for doc in docs:
        for k, span in enumerate(unit_spans(doc, level, max_sentences, respect_entities=respect_entities)):
            text = doc.text[span[0]:span[1]]
            if text.strip():
                out[f"{doc.id}/{k}"] = Document(f"{doc.id}/{k}", text, unit_entities(doc, span, changes))
    return out


def make_units(docs: Sequence[Document], types: Sequence[str], fmt: OutputFormat, level: str = "sentence",
               per_type: bool = False, max_sentences: int = 10, stride: int | None = None,
               respect_entities: bool = True, changes: Counter | None = None,
               instruction_style: str = "full") -> list[Unit]:
    """Every unit of every document (one per unit and type with `per_type`, as seed 3 asks); what the
    format flattened or the cutting dropped is counted in `changes`. Every gold type must be among `types`
    (seed 4's instruction omitted a type its targets used). `instruction_style`: data/llm/prompts.INSTRUCTIONS."""
    changes = Counter() if changes is None else changes
    unknown = sorted({e.type for doc in docs for e in doc.entities} - set(types))
    if unknown:
        raise ValueError(f"gold entity types {unknown} are not among the types {list(types)}")
    groups = [(t,) for t in types] if per_type else [tuple(types)]
    tasks = {group: instruction(group, fmt, instruction_style) for group in groups}
    units = []
    for doc in docs:
        for k, span in enumerate(unit_spans(doc, level, max_sentences, stride, respect_entities)):
            text = doc.text[span[0]:span[1]]
            if not text.strip():
                changes["empty_units_skipped"] += 1
                continue
            entities = unit_entities(doc, span, changes)
            for group in groups:
                mine = [e for e in entities if e.type in group]
                flat = fmt.flatten((text, mine), group, changes)
                units.append(Unit(
                    id=f"{doc.id}/{k}" + (f"/{group[0]}" if per_type else ""), doc_id=doc.id, start=span[0],
                    input=text, output=fmt.serialise((text, mine), group), instruction=tasks[group],
                    source=prompt(tasks[group], text), raw_entities={t: [e.text for e in flat if e.type == t]
                                                                      for t in group},
                    entities=tuple(sorted(mine))))
    return units


# --------------------------------------------------------------------------- answer budgets
def token_length(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def answer_budget(tokenizer, answers: Iterable[str], slack: float = 1.2) -> int:
    """max_new_tokens from the longest gold answer in tokens (EOS included), times `slack`: long enough
    for any answer like the gold ones, short enough that a model that never stops does not run on."""
    longest = max((token_length(tokenizer, a) for a in answers), default=0)
    return math.ceil(slack * (longest + 1))


@dataclass(frozen=True)
class BudgetRule:
    """What answer budgets are made from (module docstring): the budget of the longest training answer
    and the largest answer-to-text length ratio, in tokens, of the training units."""

    cap: int
    ratio: float | None
    slack: float = 1.2

    @classmethod
    def from_training(cls, tokenizer, train: Sequence[Unit], slack: float = 1.2) -> "BudgetRule":
        ratio = max(((token_length(tokenizer, u.output) + 1) / token_length(tokenizer, u.input)
                     for u in train if u.input.strip()), default=None)
        return cls(answer_budget(tokenizer, [u.output for u in train], slack), ratio, slack)

    def budgets(self, tokenizer, units: Sequence[Unit], fixed: int | None = None) -> list[int]:
        """max_new_tokens per unit: `fixed` for all when given, else at most the budget of the longest gold
        answer, of the training units or of these, and at most the unit's text length times the ratio,
        times the slack (this bound reads no gold of the unit)."""
        if fixed:
            return [fixed] * len(units)
        cap = max(self.cap, answer_budget(tokenizer, [u.output for u in units], self.slack))
        if self.ratio is None:
            return [cap] * len(units)
        return [min(cap, int(self.slack * self.ratio * token_length(tokenizer, u.input)) + 1) for u in units]


# --------------------------------------------------------------------------- a split, asked and answered
@dataclass
class UnitSplit:
    """One split cut into units for one format: the documents, their units, the entity types, each unit's
    answer budget and prompt (by default the unit's `source`; prompting methods pass few-shot or chat
    prompts)."""

    name: str
    docs: list[Document]
    units: list[Unit]
    fmt: OutputFormat
    types: tuple[str, ...]
    budgets: list[int]
    prompts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.types = tuple(self.types)
        if not self.prompts:
            self.prompts = [u.source for u in self.units]
        if not len(self.units) == len(self.budgets) == len(self.prompts):
            raise ValueError("a UnitSplit needs one budget and one prompt per unit")

    @property
    def ids(self) -> list[str]:
        return [u.id for u in self.units]

    def constraints(self, tokenizer, rows: Sequence[int]) -> list[Automaton]:
        """The data/llm/constraints constraint of each unit in `rows`: its answer must parse and may only
        name text of the unit, and ends with the answer's end id (EOS, or [SEP] for BERT-style decoders)."""
        end = answer_end_id(tokenizer)
        return [build(self.fmt, self.units[k].input, self.types, tokenizer, self.budgets[k], eos_token_id=end)
                for k in rows]

    def generate(self, model, tokenizer, batch_size: int, constrained: bool = False,
                 store: PredictionStore | None = None, temperature: float = 0.0, seed: int = 0) -> dict[str, str]:
        """Every unit's raw answer (greedy, or sampled at `temperature` with `seed`: data/llm/generation.py);
        with a store, the answers it holds are reused and the others stored batch by batch (a killed run
        resumes). Constraints are built for the units still to answer only."""
        todo = [k for k, i in enumerate(self.ids) if store is None or i not in store]
        constraints = None
        if constrained:
            constraints = [None] * len(self.units)
            for k, c in zip(todo, self.constraints(tokenizer, todo)):
                constraints[k] = c
        if store is None:
            texts = generate(model, tokenizer, self.prompts, self.budgets, batch_size, constraints, desc=self.name,
                             temperature=temperature, seed=seed)
            return dict(zip(self.ids, texts))
        return generate_stored(model, tokenizer, store, self.ids, self.prompts, self.budgets, batch_size,
                               constraints, desc=self.name, temperature=temperature, seed=seed)

    def documents(self, outputs: Mapping[str, str]) -> tuple[list[Document], dict[str, ParseResult]]:
        """Document-level predictions (each unit's entities moved by its start offset; an entity found by two
        overlapping windows kept once) and every unit's ParseResult. A unit without output reads as ""."""
        found: dict[str, set[Entity]] = {d.id: set() for d in self.docs}
        parsed = {}
        for u in self.units:
            result = parsed[u.id] = self.fmt.parse(outputs.get(u.id, ""), u.input, self.types)
            found[u.doc_id].update(Entity(tuple((s + u.start, e + u.start) for s, e in ent.fragments), ent.type,
                                          ent.text) for ent in result.entities)
        return [Document(d.id, d.text, sorted(found[d.id])) for d in self.docs], parsed
