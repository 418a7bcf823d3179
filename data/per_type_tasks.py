"""Seed 3's NER tasks, as it frames them: one entity type per prompt, whole documents, read from our registry
(never from the hub). A task is a registry corpus and the one type it asks for; NCBI-disease's four classes
are read as one "Disease", as BigBio's schema (the seed's source) merges them.

    bc5cdr_chemical  bc5cdr, Chemical        bc5cdr_disease  bc5cdr, Disease
    ncbi_disease     ncbi_disease, Disease (SpecificDisease, DiseaseClass, Modifier, CompositeMention)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from data import registry
from data.corpus import Document, Entity, read_jsonl
from data.llm.units import unit_documents


@dataclass(frozen=True)
class Task:
    corpus: str
    entity_type: str
    merged: tuple[str, ...] = ()  # the corpus's types read as entity_type
    folder: Path | None = None  # a corpus given as train/dev/test.jsonl (--datasets_path), not a registry name

    def documents(self, split: str, changes: Counter | None = None, limit: int | None = None) -> list[Document]:
        """The split's (first `limit`) documents with only this task's entities, typed entity_type (what was
        merged is counted)."""
        changes = Counter() if changes is None else changes
        wanted = self.merged or (self.entity_type,)
        out = []
        source = read_jsonl(self.folder / f"{split}.jsonl") if self.folder else registry.load(self.corpus, split)
        for doc in source[:limit]:
            kept = [Entity(e.fragments, self.entity_type, e.text) for e in doc.entities if e.type in wanted]
            changes["types_merged"] += sum(e.type != self.entity_type for e in doc.entities if e.type in wanted)
            out.append(Document(doc.id, doc.text, kept, doc.sentences, doc.tokens))
        return out


NER_TASKS = {
    "bc5cdr_chemical": Task("bc5cdr", "Chemical"),
    "bc5cdr_disease": Task("bc5cdr", "Disease"),
    "ncbi_disease": Task("ncbi_disease", "Disease", registry.get("ncbi_disease").types),
}
# The seed's other NER datasets are not among our corpora (shared/datasets/SOURCES.md has neither).
NOT_IN_CORPORA = {"chemdner": "CHEMDNER", "nlm_gene": "NLM-Gene"}
# --one_dataset names a corpus; its tasks are the types the seed asks for in it
CORPUS_TASKS = {"bc5cdr": ("bc5cdr_chemical", "bc5cdr_disease"), "ncbi_disease": ("ncbi_disease",)}


def folder_tasks(name: str, folder: Path) -> tuple[str, ...]:
    """A corpus given as a folder (--datasets_path): one task per entity type of its training split, named
    "<name>_<type>" and registered beside the seed's."""
    types = sorted({e.type for d in read_jsonl(Path(folder) / "train.jsonl") for e in d.entities})
    if not types:
        raise SystemExit(f"error: {folder}/train.jsonl has no entities to make tasks of")
    names = tuple(f"{name}_{t.lower()}" for t in types)
    NER_TASKS.update((n, Task(name, t, folder=Path(folder))) for n, t in zip(names, types))
    CORPUS_TASKS[name] = names
    return names


def tasks_of(name: str, folder: Path | None = None) -> tuple[str, ...]:
    """The tasks of a --one_dataset name (a corpus or one task; with `folder`, a corpus in train/dev/test.jsonl
    files), or SystemExit saying why there are none."""
    if folder is not None:
        return folder_tasks(name, folder)
    if name in NER_TASKS:
        return (name,)
    if name in NOT_IN_CORPORA:
        raise SystemExit(f"error: {NOT_IN_CORPORA[name]} ({name}) is one of seed 3's datasets but not in our corpora "
                         f"(shared/datasets/SOURCES.md); available: {', '.join(CORPUS_TASKS)}")
    if name not in CORPUS_TASKS:
        raise SystemExit(f"error: unknown dataset {name!r}; seed 3's NER datasets here: {', '.join(CORPUS_TASKS)} "
                         f"(tasks: {', '.join(NER_TASKS)})")
    return CORPUS_TASKS[name]


def corpus_documents(name: str, split: str, folder: Path | None = None) -> list[Document]:
    """The documents of a --one_dataset name with the entities of all its tasks (each typed as its task asks):
    what example selection compares, the same for every task of the corpus."""
    by_task = [NER_TASKS[t].documents(split) for t in tasks_of(name, folder)]
    return [Document(docs[0].id, docs[0].text, sorted(e for d in docs for e in d.entities), docs[0].sentences,
                     docs[0].tokens) for docs in zip(*by_task)]


UNITS = ("document", "sentence")  # what a prompt reads and what examples are: the seed's documents, or sentences


def units_of(docs: list[Document], unit: str, respect_entities: bool) -> dict[str, Document]:
    """Documents whole (under their own id), or their sentences (data/llm/units.py's ids)."""
    if unit == "document":
        return {d.id: d for d in docs if d.text.strip()}
    return unit_documents(docs, "sentence", respect_entities=respect_entities)
