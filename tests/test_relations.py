"""Relations (issue 19): the corpus model and its JSONL."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from data.corpus import NEGATIVE, Document, Entity, FormatError, Relation, read_jsonl, write_jsonl


# --------------------------------------------------------------------------- the shared harness
def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def raises_at(path: Path, where: int | str, match: str):
    """Expect a FormatError naming this file and line (or record)."""
    return pytest.raises(FormatError, match=rf"^{re.escape(str(path))}:{re.escape(str(where))}: .*{match}")


def n_relations(docs: list[Document], negatives: bool = True) -> int:
    return sum(negatives or r.type != NEGATIVE for d in docs for r in d.relations)


def relation_types(docs: list[Document]) -> Counter:
    return Counter(r.type for d in docs for r in d.relations)


def as_tuples(doc: Document) -> list[tuple]:
    """A document's relations as (type, argument, argument, novel), arguments as (fragments, type) or ids."""
    def arg(a):
        return (a.fragments, a.type) if isinstance(a, Entity) else a
    return sorted((r.type, arg(r.arg1), arg(r.arg2), r.novel) for r in doc.relations)


# --------------------------------------------------------------------------- the corpus model and its JSONL
ASPIRIN = Entity.span(0, 7, "Chemical", "Aspirin", ("D001241",))
PAIN = Entity.span(25, 39, "Disease", "pain and fever", ("D010146", "D005334"))
LEFT_KNEE = Entity(((47, 51), (62, 66)), "ANATOMY", "left knee")
TEXT = "Aspirin helps.\nIt treats pain and fever in the left and right knee."


def test_concept_ids_take_no_part_in_entity_equality():
    assert ASPIRIN == Entity.span(0, 7, "Chemical") and hash(ASPIRIN) == hash(Entity.span(0, 7, "Chemical"))
    assert ASPIRIN.to_json()["concepts"] == ["D001241"] and "concepts" not in Entity.span(0, 7, "X").to_json()


def test_documents_with_relations_round_trip_and_old_files_still_read(tmp_path):
    doc = Document("11", TEXT, [ASPIRIN, PAIN, LEFT_KNEE], relations=[
        Relation("Association", "D001241", "D010146", novel=True),
        Relation("Located", PAIN, LEFT_KNEE),
        Relation(NEGATIVE, ASPIRIN, PAIN)])
    path = tmp_path / "docs.jsonl"
    write_jsonl([doc, Document("12", "No relation here.")], path)
    first, second = read_jsonl(path)
    assert as_tuples(first) == as_tuples(doc) and sorted(first.entities) == sorted(doc.entities)
    assert [e.concepts for e in sorted(first.entities)] == [e.concepts for e in sorted(doc.entities)]
    located = next(r for r in first.relations if r.type == "Located")
    assert located.arg1.concepts == PAIN.concepts  # an argument is the document's entity, concept ids included
    assert "relations" not in json.loads(path.read_text().splitlines()[1])  # documents without relations: as before
    old = write(tmp_path, "old.jsonl", json.dumps({"id": "1", "text": "Aspirin.", "entities": [
        {"start": 0, "end": 7, "type": "Chemical", "text": "Aspirin"}]}) + "\n")
    (read,) = read_jsonl(old)
    assert read.relations == [] and read.entities[0].concepts == ()


GOOD_ARG = {"start": 0, "end": 7, "type": "Chemical"}


@pytest.mark.parametrize("relation, match", [
    ({"type": "CID", "arg1": GOOD_ARG, "arg2": {"start": 0, "end": 7, "type": "Disease"}},
     "names arg2 .* not among the document's entities"),
    ({"type": "CID", "arg1": GOOD_ARG, "arg2": {"start": 8, "end": 12, "type": "Chemical"}},
     "not among the document's entities"),
    ({"type": "", "arg1": GOOD_ARG, "arg2": {"concept": "D1"}}, "relation type '' is not a non-empty string"),
    ({"type": "CID", "arg1": GOOD_ARG, "arg2": {"concept": 7}}, "neither an entity nor a concept id"),
    ({"type": "CID", "arg1": GOOD_ARG, "arg2": {"concept": "D1"}, "novel": "yes"}, "novel 'yes'"),
    ({"type": "CID", "arg1": GOOD_ARG}, "expected an object with 'type' and the objects 'arg1' and 'arg2'"),
    ({"type": "CID", "arg1": GOOD_ARG, "arg2": {"start": 0, "end": "7", "type": "X"}}, "bad entity"),
])
def test_bad_relations_name_file_and_line(tmp_path, relation, match):
    record = {"id": "1", "text": "Aspirin helps.", "entities": [GOOD_ARG], "relations": [relation]}
    path = write(tmp_path, "docs.jsonl", json.dumps({"id": "0", "text": ""}) + "\n" + json.dumps(record) + "\n")
    with raises_at(path, 2, match):
        read_jsonl(path)


def test_relations_must_be_a_list(tmp_path):
    path = write(tmp_path, "docs.jsonl", json.dumps({"id": "0", "text": "", "relations": {}}) + "\n")
    with raises_at(path, 1, "'relations' list"):
        read_jsonl(path)
