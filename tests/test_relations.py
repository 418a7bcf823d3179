"""Relations end to end (issue 19, first part): the corpus model and its JSONL, every relation reader on small
inline files (each error and counted policy), the real corpora against shared/datasets/SOURCES.md, and
eval/relations.py's views, cross-checked with scikit-learn on the classification framing of the same pairs."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sklearn.metrics import precision_recall_fscore_support

from conftest import MIRROR, ROOT, load_split, needs_mirror
from data.corpus import NEGATIVE, Document, Entity, FormatError, Relation, read_jsonl, write_jsonl
from data.readers import CPR_GROUPS, read_chemprot_pure
from data.readers.standoff import (ARGUMENT_MISSING, ARGUMENT_NOT_ENTITY, FRAGMENTS_REORDERED, ROLE_CASE,
                                   UNTYPED_POSITIVE, read_bioc, read_brat, read_ddi_xml, read_pubtator)
from data.registry import BIORED_RELATIONS, DDI_RELATIONS, NEREL_RELATIONS, RAREDIS_RELATIONS
from eval.relations import CPR_TYPES, DDI_TYPES, score


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


# --------------------------------------------------------------------------- PubTator and BioC: concept pairs
PUBTATOR = ("11|t|Aspirin helps.\n"
            "11|a|It treats pain and fever.\n"
            "11\tCID\tD001241\tD005334\n"  # before the mentions it names
            "11\t0\t7\tAspirin\tChemical\tD001241\n"
            "11\t25\t39\tpain and fever\tDisease\tD010146|D005334\tpain|fever\n"
            "\n"
            "12|t|Fever.\n"
            "12|a|\n"
            "12\t0\t5\tFever\tDisease\t-1\n")


def test_pubtator_reads_concepts_and_concept_relations(tmp_path):
    path = write(tmp_path, "c.txt", PUBTATOR)
    first, second = read_pubtator(path, relation_types=("CID",))
    assert [e.concepts for e in first.entities] == [("D001241",), ("D010146", "D005334")]
    assert second.entities[0].concepts == ()  # -1: no concept fits
    assert as_tuples(first) == [("CID", "D001241", "D005334", None)] and second.relations == []
    assert read_pubtator(path)[0].relations == []  # an NER reader by default: relation lines skipped
    biored = write(tmp_path, "b.txt", "1|t|BRCA1 and cancer.\n1|a|\n1\t0\t5\tBRCA1\tGene\t672,675\n"
                                      "1\t10\t16\tcancer\tDisease\tD009369\n1\tAssociation\t675\tD009369\tNovel\n")
    (doc,) = read_pubtator(biored, concept_separator=",", relation_types=BIORED_RELATIONS)
    assert doc.entities[0].concepts == ("672", "675") and as_tuples(doc) == [("Association", "675", "D009369", True)]


@pytest.mark.parametrize("line, match", [
    ("11\tCIDX\tD001241\tD010146", "unknown relation type 'CIDX'"),
    ("11\tCID\tD001241\tD999999", "names concept 'D999999', which no mention of document '11' carries"),
    ("11\tCID\tD001241\tD010146\tMaybe", "novelty 'Maybe'"),
    ("12\tCID\tD001241\tD010146", "line of document '12' inside document '11'"),  # a pair across documents
])
def test_pubtator_bad_relations_name_file_and_line(tmp_path, line, match):
    path = write(tmp_path, "c.txt", "11|t|Aspirin helps.\n11|a|It treats pain and fever.\n"
                                    "11\t0\t7\tAspirin\tChemical\tD001241\n"
                                    "11\t25\t39\tpain and fever\tDisease\tD010146\n" + line + "\n")
    with raises_at(path, 5, match):
        read_pubtator(path, relation_types=("CID",))


def bioc(relation: str) -> str:
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<collection><source>test</source>
<document><id>21</id>
<passage><offset>0</offset><text>Aspirin helps.</text>
<annotation id="0"><infon key="type">Chemical</infon><infon key="MESH">D001241</infon>
<location offset="0" length="7"/><text>Aspirin</text></annotation></passage>
<passage><offset>15</offset><text>Ocular and auditory toxicity.</text>
<annotation id="1"><infon key="type">Disease</infon><infon key="MESH">D014786|D006311</infon>
<location offset="15" length="28"/><text>Ocular and auditory toxicity</text></annotation></passage>
{relation}
</document></collection>
"""


def test_bioc_reads_bc5cdr_and_biored_relations(tmp_path):
    cid = '<relation id="R0"><infon key="relation">CID</infon><infon key="Chemical">D001241</infon>' \
          '<infon key="Disease">D006311</infon></relation>'
    (doc,) = read_bioc(write(tmp_path, "c.xml", bioc(cid)), relation_types=("CID",))
    assert [e.concepts for e in doc.entities] == [("D001241",), ("D014786", "D006311")]
    assert as_tuples(doc) == [("CID", "D001241", "D006311", None)]
    biored = '<relation id="R0"><infon key="entity1">D001241</infon><infon key="entity2">D014786</infon>' \
             '<infon key="type">Bind</infon><infon key="novel">No</infon></relation>'
    (doc,) = read_bioc(write(tmp_path, "b.xml", bioc(biored)), concept_separator="|",
                       relation_types=BIORED_RELATIONS)
    assert as_tuples(doc) == [("Bind", "D001241", "D014786", False)]


@pytest.mark.parametrize("relation, match", [
    ('<relation id="R0"><infon key="relation">CID</infon></relation>', "relation without its two arguments"),
    ('<relation id="R0"><infon key="relation">CID</infon><infon key="Chemical">D1</infon>'
     '<infon key="Disease">D006311</infon></relation>', "names concept 'D1'"),
    ('<relation id="R0"><infon key="relation">XYZ</infon><infon key="Chemical">D001241</infon>'
     '<infon key="Disease">D006311</infon></relation>', "unknown relation type 'XYZ'"),
])
def test_bioc_bad_relations_name_the_record(tmp_path, relation, match):
    path = write(tmp_path, "c.xml", bioc(relation))
    with raises_at(path, "document 21, relation R0", match):
        read_bioc(path, relation_types=("CID",))


# --------------------------------------------------------------------------- DDI 2013 XML: sentence pairs
def ddi(pairs: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<document id="DDI-DrugBank.d1">
    <sentence id="DDI-DrugBank.d1.s0" text="Aspirin raises warfarin levels; avoid ibuprofen.">
        <entity id="DDI-DrugBank.d1.s0.e0" charOffset="0-6" type="drug" text="Aspirin"/>
        <entity id="DDI-DrugBank.d1.s0.e1" charOffset="15-22" type="drug" text="warfarin"/>
        <entity id="DDI-DrugBank.d1.s0.e2" charOffset="38-46" type="drug" text="ibuprofen"/>
        {pairs}
    </sentence>
    <sentence id="DDI-DrugBank.d1.s1" text="Heparin too.">
        <entity id="DDI-DrugBank.d1.s1.e0" charOffset="0-6" type="brand" text="Heparin"/>
    </sentence>
</document>
"""


def pair(n: int, e1: str, e2: str, attrs: str) -> str:
    return f'<pair id="DDI-DrugBank.d1.s0.p{n}" e1="DDI-DrugBank.d1.s{e1}" e2="DDI-DrugBank.d1.s{e2}" {attrs}/>'


def test_ddi_reads_typed_and_negative_pairs_and_counts_an_untyped_positive(tmp_path):
    pairs = (pair(0, "0.e0", "0.e1", 'ddi="true" type="mechanism"') + pair(1, "0.e0", "0.e2", 'ddi="false"')
             + pair(2, "0.e1", "0.e2", 'ddi="true"'))
    quirks: Counter = Counter()
    (doc,) = read_ddi_xml(write(tmp_path, "d.xml", ddi(pairs)), quirks=quirks, relation_types=DDI_RELATIONS)
    assert as_tuples(doc) == [("mechanism", (((0, 7),), "drug"), (((15, 23),), "drug"), None),
                              (NEGATIVE, (((0, 7),), "drug"), (((38, 47),), "drug"), None)]
    assert quirks == Counter({UNTYPED_POSITIVE: 1})
    assert read_ddi_xml(tmp_path / "d.xml")[0].relations == []  # pairs read only when asked for


@pytest.mark.parametrize("attrs, e2, match", [
    ('ddi="true" type="synergy"', "0.e1", "unknown relation type 'synergy'"),
    ('ddi="maybe"', "0.e1", "ddi='maybe' is neither"),
    ('ddi="false"', "1.e0", "e2='DDI-DrugBank.d1.s1.e0' names no entity of this pair's sentence"),
    ('ddi="false"', "0.e9", "e2='DDI-DrugBank.d1.s0.e9' names no entity"),
])
def test_ddi_bad_pairs_name_the_pair(tmp_path, attrs, e2, match):
    path = write(tmp_path, "d.xml", ddi(pair(0, "0.e0", e2, attrs)))
    with raises_at(path, "pair DDI-DrugBank.d1.s0.p0", match):
        read_ddi_xml(path, relation_types=DDI_RELATIONS)


def test_ddi_pair_naming_another_document_is_refused(tmp_path):
    other = ddi('<pair id="DDI-DrugBank.d1.s0.p0" e1="DDI-DrugBank.d1.s0.e0" e2="DDI-DrugBank.d2.s0.e1" ddi="false"/>')
    path = write(tmp_path, "d.xml", other)
    with raises_at(path, "pair DDI-DrugBank.d1.s0.p0", "names no entity of this pair's sentence"):
        read_ddi_xml(path, relation_types=DDI_RELATIONS)


# --------------------------------------------------------------------------- brat R lines
BRAT_TEXT = "Severe pain in the left and right knee.\nNo fever."
BRAT_ANN = ("R1\tLocated Arg2:T3 Arg1:T1\t\n"  # before its entities, roles in reverse order
            "T1\tSIGN 0 11\tSevere pain\n"
            "T3\tANATOMY 19 23;34 38\tleft knee\n"
            "T4\tANATOMY 34 38;28 33\tknee right\n"
            "R2\tLocated Arg1:T1 ARG2:T4\n"
            "E1\tSIGN:T1\n"
            "R3\tCauses Arg1:E1 Arg2:T3\n"
            "A1\tNegated T1\n")


def test_brat_reads_relations_and_counts_what_it_cannot_hold(tmp_path):
    write(tmp_path, "doc1.txt", BRAT_TEXT)
    write(tmp_path, "doc1.ann", BRAT_ANN)
    quirks: Counter = Counter()
    (doc,) = read_brat(tmp_path, quirks=quirks, relation_types=("Located", "Causes"))
    sign, left = (((0, 11),), "SIGN"), (((19, 23), (34, 38)), "ANATOMY")
    assert as_tuples(doc) == [("Located", sign, left, None), ("Located", sign, (((28, 33), (34, 38)), "ANATOMY"), None)]
    assert quirks == Counter({FRAGMENTS_REORDERED: 1, ROLE_CASE: 1, ARGUMENT_NOT_ENTITY: 1})
    assert read_brat(tmp_path)[0].relations == []  # R lines read only when asked for


@pytest.mark.parametrize("line, match", [
    ("R9\tLocated Arg1:T1 Arg2:T7", "relation 'Located': arg2 'T7' names no entity of this file"),
    ("R9\tTouches Arg1:T1 Arg2:T3", "unknown relation type 'Touches'"),
    ("R9\tLocated Arg1:T1", "expected an R line"),
    ("R9\tLocated Arg1:T1 Arg1:T3", "expected one 'Arg1:<id>' and one 'Arg2:<id>'"),
    ("R9\tLocated From:T1 To:T3", "expected one 'Arg1:<id>' and one 'Arg2:<id>'"),
])
def test_brat_bad_relations_name_file_and_line(tmp_path, line, match):
    write(tmp_path, "d.txt", BRAT_TEXT)
    path = write(tmp_path, "d.ann", "T1\tSIGN 0 11\tSevere pain\nT3\tANATOMY 19 23\tleft\n" + line + "\n")
    with raises_at(path, 3, match):
        read_brat(tmp_path, relation_types=("Located",))


def test_brat_missing_arguments_can_be_dropped_and_counted(tmp_path):
    write(tmp_path, "d.txt", BRAT_TEXT)
    write(tmp_path, "d.ann", "T1\tSIGN 0 11\tSevere pain\nR1\tLocated Arg1:T1 Arg2:T10\n")
    quirks: Counter = Counter()
    (doc,) = read_brat(tmp_path, quirks=quirks, relation_types=("Located",), missing_arguments="drop")
    assert doc.relations == [] and quirks == Counter({ARGUMENT_MISSING: 1})


# --------------------------------------------------------------------------- ChemProt PURE JSON
def chemprot(relations: list, ner: list | None = None) -> str:
    return json.dumps({"doc_key": "1", "sentences": [["Aspirin", "inhibits", "COX-1", "."], ["Fine", "."]],
                       "ner": [ner or [[0, 0, "CHEMICAL"], [2, 2, "GENE"]], []],
                       "relations": [relations, []]}) + "\n"


def test_chemprot_maps_labels_to_cpr_groups_and_types_arguments_by_role(tmp_path):
    (doc,) = read_chemprot_pure(write(tmp_path, "c.json", chemprot([[0, 0, 2, 2, "INHIBITOR"]])), CPR_GROUPS)
    assert as_tuples(doc) == [("CPR:4", (((0, 7),), "CHEMICAL"), (((17, 22),), "GENE"), None)]
    both = [[0, 0, "CHEMICAL"], [2, 2, "CHEMICAL"], [2, 2, "GENE"]]  # "COX-1" is both
    changes: Counter = Counter()
    (doc,) = read_chemprot_pure(write(tmp_path, "b.json", chemprot([[0, 0, 2, 2, "CPR:9"]], both)), CPR_GROUPS,
                                changes=changes)
    assert as_tuples(doc)[0][2] == (((17, 22),), "GENE") and changes == Counter({"chemprot_argument_typed_by_role": 1})
    assert read_chemprot_pure(tmp_path / "c.json")[0].relations == []


@pytest.mark.parametrize("relations, match", [
    ([[0, 0, 2, 2, "CPR:1"]], "unknown relation type 'CPR:1'"),
    ([[0, 0, 1, 1, "CPR:4"]], r"tokens \(1, 1\) are not one mention of this sentence"),
    ([[0, 0, 4, 4, "CPR:4"]], r"tokens \(4, 4\) are not one mention"),  # a pair across sentences
    ([[0, 0, 2, "CPR:4"]], "expected \\[start, end, start, end, label\\]"),
])
def test_chemprot_bad_relations_name_file_and_line(tmp_path, relations, match):
    path = write(tmp_path, "c.json", chemprot(relations))
    with raises_at(path, 1, match):
        read_chemprot_pure(path, CPR_GROUPS)


# --------------------------------------------------------------------------- the real corpora against SOURCES.md
@needs_mirror
@pytest.mark.parametrize("name, counts", [
    ("bc5cdr", {"train": 1038, "dev": 1012, "test": 1066}),
    ("bc5cdr_bioc", {"train": 1038, "dev": 1012, "test": 1066}),
    ("biored", {"train": 4178, "dev": 1162, "test": 1163}),
    ("chemprot", {"dev": 1373, "test": 3424}),
    ("nerel_bio", {"train": 43578, "dev": 4501, "test": 4132}),
])
def test_relation_counts_equal_sources_md(name, counts):
    assert {split: n_relations(load_split(name, split)) for split in counts} == counts


@needs_mirror
def test_bc5cdr_pubtator_and_bioc_relations_agree_and_biored_novelty():
    for split in ("train", "test"):
        pubtator, bioc_docs = load_split("bc5cdr", split), load_split("bc5cdr_bioc", split)
        assert [as_tuples(d) for d in pubtator] == [as_tuples(d) for d in bioc_docs]
    train = load_split("biored", "train")
    assert Counter(r.novel for d in train for r in d.relations) == {True: 2838, False: 1340}
    assert set(relation_types(train)) == set(BIORED_RELATIONS)
    assert [as_tuples(d) for d in train] == [as_tuples(d) for d in load_split("biored_bioc", "train")]


@needs_mirror
@pytest.mark.parametrize("folder, pairs, positive, untyped", [
    ("Train/DrugBank", 26005, 3789, 1),
    ("Train/MedLine", 1787, 232, 0),
    ("Test/Test for DDI Extraction task/DrugBank", 5265, 884, 0),
    ("Test/Test for DDI Extraction task/MedLine", 451, 95, 0),
])
def test_ddi_pairs_equal_sources_md(folder, pairs, positive, untyped):
    quirks: Counter = Counter()
    docs = read_ddi_xml(MIRROR / "ddi/xml_original" / folder, quirks=quirks, relation_types=DDI_RELATIONS)
    # SOURCES.md counts the positive pair without a type (Dextroamphetamine, d236.s29.p0), which is dropped
    assert (n_relations(docs) + untyped, n_relations(docs, negatives=False) + untyped) == (pairs, positive)
    assert quirks[UNTYPED_POSITIVE] == untyped


@needs_mirror
def test_ddi_brat_relations_are_the_xml_positives():
    for split, xml_split, untyped in [("train", "train", 1), ("test", "test_ddi", 0)]:
        positives = relation_types(load_split("ddi", xml_split))
        del positives[NEGATIVE]
        brat = Counter({t.lower(): n for t, n in relation_types(load_split("ddi_brat", split)).items()})
        assert brat == positives + Counter({"int": untyped})  # the brat conversion types the untyped positive INT


@needs_mirror
def test_nerel_bio_and_raredis_relations():
    quirks: Counter = Counter()
    docs = read_brat(MIRROR / "nerel_bio/train", quirks=quirks, relation_types=NEREL_RELATIONS)
    assert n_relations(docs) == 43578 and quirks[ROLE_CASE] == 11  # "ARG2:" for "Arg2:"
    used = set().union(*(relation_types(load_split("nerel_bio", s)) for s in ("train", "dev", "test")))
    assert used == set(NEREL_RELATIONS) and len(used) == 49  # as SOURCES.md says
    for split, stated, dropped in [("train", 6347, 561), ("dev", 867, 80), ("test", 1741, 132)]:
        quirks = Counter()
        docs = read_brat(MIRROR / "raredis_annotations_only" / split, require_text=False, quirks=quirks,
                         relation_types=RAREDIS_RELATIONS, missing_arguments="drop")
        # arguments such as T160 in a file whose entities end at T27: defined nowhere, so counted and dropped
        assert (n_relations(docs) + dropped, quirks) == (stated, Counter({ARGUMENT_MISSING: dropped}))


# --------------------------------------------------------------------------- eval/relations.py
def doc_with(relations: list[Relation], entities: list[Entity] = (ASPIRIN, PAIN, LEFT_KNEE)) -> Document:
    return Document("11", TEXT, list(entities), relations=relations)


def test_views_on_a_hand_made_example():
    gold = [doc_with([Relation("Located", PAIN, LEFT_KNEE), Relation("Treats", ASPIRIN, PAIN),
                      Relation("Treats", ASPIRIN, PAIN)])]  # stated twice: one key
    pred = [doc_with([Relation("Located", LEFT_KNEE, PAIN), Relation("Treats", ASPIRIN, PAIN),
                      Relation("Causes", ASPIRIN, LEFT_KNEE), Relation(NEGATIVE, ASPIRIN, LEFT_KNEE)])]
    mention = score(gold, pred, "mention")
    assert {t: (c.tp, c.fp, c.fn) for t, c in mention.per_type.items()} == {
        "Causes": (0, 1, 0), "Located": (0, 1, 1), "Treats": (1, 0, 0)}  # the mention view reads the order
    assert mention.set_aside == {"gold": {"repeated": 1}, "pred": {"negative": 1}}
    assert (mention.micro.tp, mention.micro.fp, mention.micro.fn) == (1, 2, 1)
    assert mention.macro["f1"] == pytest.approx((0 + 0 + 1) / 3)
    strings = score(gold, pred, "strings")  # unordered: the reversed Located pair counts
    assert (strings.micro.tp, strings.micro.fp, strings.micro.fn) == (2, 1, 0)
    concept = score(gold, pred, "concept")  # LEFT_KNEE has no concept id
    assert (concept.micro.tp, concept.micro.fp, concept.micro.fn) == (2, 0, 0)
    assert concept.set_aside["gold"]["argument_without_concept"] == 1


def test_concept_view_expands_composite_mentions_and_compares_to_concept_predictions():
    gold = [doc_with([Relation("CID", "D001241", "D005334")])]
    by_mention = [doc_with([Relation("CID", ASPIRIN, PAIN)])]  # PAIN is D010146 and D005334
    result = score(gold, by_mention, "concept")
    assert (result.micro.tp, result.micro.fp, result.micro.fn) == (1, 1, 0)
    assert score(gold, [doc_with([Relation("CID", "D005334", "D001241")])], "concept").micro.f1 == 1.0


def test_ddi_and_chemprot_views_score_only_their_types():
    drug_a, drug_b = Entity.span(0, 7, "DRUG"), Entity.span(25, 29, "DRUG")
    gold = [doc_with([Relation("EFFECT", drug_a, drug_b), Relation("CPR:4", drug_a, drug_b)], [drug_a, drug_b])]
    pred = [doc_with([Relation("effect", drug_b, drug_a), Relation("CPR:1", drug_a, drug_b)], [drug_a, drug_b])]
    ddi = score(gold, pred, "ddi")
    assert ddi.micro.f1 == 1.0 and ddi.macro_types == DDI_TYPES
    assert ddi.macro["f1"] == pytest.approx(1 / 4)  # over the four types, as the official macro
    chemprot = score(gold, pred, "chemprot")
    assert (chemprot.micro.tp, chemprot.micro.fn) == (0, 1) and chemprot.set_aside["pred"] == {"type_not_scored": 2}


def test_views_that_need_mentions_refuse_concept_relations():
    from data.corpus import InputError
    with pytest.raises(InputError, match="score it with --view concept"):
        score([doc_with([Relation("CID", "D001241", "D005334")])], [], "mention")


def framing(gold: dict, pred: dict, labels: tuple[str, ...], none: str = "none") -> dict:
    """scikit-learn's precision_recall_fscore_support over candidate pairs, each with one label per side."""
    pairs = sorted(gold.keys() | pred.keys(), key=repr)
    y_true, y_pred = [gold.get(p, none) for p in pairs], [pred.get(p, none) for p in pairs]
    out = {}
    for average in (None, "micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), average=average,
                                                     zero_division=0)
        out[average] = (p, r, f)
    return out


def assert_same(result, expected: dict, labels: tuple[str, ...]) -> None:
    for i, label in enumerate(labels):
        c = result.per_type.get(label)
        got = (c.precision, c.recall, c.f1) if c else (0.0, 0.0, 0.0)
        assert got == pytest.approx(tuple(x[i] for x in expected[None])), label
    micro = result.micro
    assert (micro.precision, micro.recall, micro.f1) == pytest.approx(expected["micro"])
    assert tuple(result.macro[k] for k in ("precision", "recall", "f1")) == pytest.approx(expected["macro"])


@needs_mirror
def test_ddi_view_equals_sklearn_on_the_classification_framing():
    """Every DDI test pair, its label kept or redrawn among the four types and negative, its arguments
    sometimes swapped (the DDI view is unordered)."""
    rng = random.Random(0)
    gold_docs = load_split("ddi", "test_ddi")
    gold, pred, pred_docs = {}, {}, []
    for doc in gold_docs:
        relations = []
        for rel in doc.relations:
            label = rel.type if rng.random() < 0.6 else rng.choice(DDI_TYPES + (NEGATIVE,))
            args = (rel.arg2, rel.arg1) if rng.random() < 0.5 else (rel.arg1, rel.arg2)
            relations.append(Relation(label, *args))
            pair = (doc.id, frozenset((rel.arg1.fragments, rel.arg2.fragments)))
            gold[pair], pred[pair] = rel.type, label
        pred_docs.append(Document(doc.id, "", doc.entities, relations=relations))
    result = score(gold_docs, pred_docs, "ddi")
    assert_same(result, framing(gold, pred, DDI_TYPES, NEGATIVE), DDI_TYPES)
    assert 0.3 < result.micro.f1 < 0.9 and result.micro.tp + result.micro.fn == 979


@needs_mirror
def test_chemprot_view_equals_sklearn_on_the_classification_framing():
    """ChemProt test relations dropped, relabelled and joined by spurious chemical-gene pairs."""
    rng = random.Random(1)
    gold_docs = load_split("chemprot", "test")
    gold, pred, pred_docs = {}, {}, []
    for doc in gold_docs:
        relations = []
        for rel in doc.relations:
            gold[(doc.id, rel.arg1, rel.arg2)] = rel.type
            if rng.random() < 0.2:
                continue
            label = rel.type if rng.random() < 0.8 else rng.choice(CPR_TYPES)
            relations.append(Relation(label, rel.arg1, rel.arg2))
            pred[(doc.id, rel.arg1, rel.arg2)] = label
        chemicals = [e for e in doc.entities if e.type == "CHEMICAL"]
        genes = [e for e in doc.entities if e.type == "GENE"]
        for _ in range(2 if chemicals and genes else 0):
            spurious = (doc.id, rng.choice(chemicals), rng.choice(genes))
            if spurious not in gold and spurious not in pred:
                pred[spurious] = rng.choice(CPR_TYPES)
                relations.append(Relation(pred[spurious], *spurious[1:]))
        pred_docs.append(Document(doc.id, "", doc.entities, relations=relations))
    result = score(gold_docs, pred_docs, "chemprot")
    assert_same(result, framing(gold, pred, CPR_TYPES), CPR_TYPES)
    assert result.micro.tp + result.micro.fn == 3424


@needs_mirror
def test_concept_view_is_the_bc5cdr_cid_measure_and_equals_sklearn():
    """Unique (chemical, disease) MeSH pairs per abstract: gold against itself, then pairs dropped and
    spurious pairs of the abstract's own chemical and disease ids added."""
    rng = random.Random(2)
    gold_docs = load_split("bc5cdr", "test")
    assert score(gold_docs, gold_docs, "concept").micro.to_json()["gold"] == 1066
    gold, pred, pred_docs = {}, {}, []
    for doc in gold_docs:
        relations = []
        for rel in doc.relations:
            gold[(doc.id, rel.arg1, rel.arg2)] = "CID"
            if rng.random() < 0.7:
                relations.append(rel)
                pred[(doc.id, rel.arg1, rel.arg2)] = "CID"
        chemicals = sorted({c for e in doc.entities if e.type == "Chemical" for c in e.concepts})
        diseases = sorted({c for e in doc.entities if e.type == "Disease" for c in e.concepts})
        if chemicals and diseases and rng.random() < 0.5:
            spurious = (doc.id, rng.choice(chemicals), rng.choice(diseases))
            if spurious not in pred:
                pred[spurious] = "CID"
                relations.append(Relation("CID", *spurious[1:]))
        pred_docs.append(Document(doc.id, "", relations=relations))
    result = score(gold_docs, pred_docs, "concept")
    assert_same(result, framing(gold, pred, ("CID",)), ("CID",))
    low, high = result.f1_interval()
    assert low < result.micro.f1 < high


# --------------------------------------------------------------------------- the command line
def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "eval/relations.py", *args], cwd=ROOT, capture_output=True, text=True)


def test_cli_scores_views_into_json_and_refuses_bad_input_in_one_line(tmp_path):
    gold = doc_with([Relation("Treats", ASPIRIN, PAIN), Relation("Located", PAIN, LEFT_KNEE)])
    pred = Document("11", "", [ASPIRIN, PAIN], relations=[Relation("Treats", ASPIRIN, PAIN)])
    write_jsonl([gold], tmp_path / "gold.jsonl")
    write_jsonl([pred], tmp_path / "pred.jsonl", with_text=False)
    done = run("--gold", str(tmp_path / "gold.jsonl"), "--pred", str(tmp_path / "pred.jsonl"),
               "--view", "mention", "concept", "--json", str(tmp_path / "scores.json"))
    assert done.returncode == 0, done.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["mention"]["micro"]["f1"] == pytest.approx(2 / 3) and scores["mention"]["view"] == "mention"
    assert scores["concept"]["set_aside"]["gold"] == {"argument_without_concept": 1}
    assert "| micro | 1.0000 | 0.5000 | 0.6667 | 1 | 0 | 1 |" in done.stdout
    bad = write(tmp_path, "bad.jsonl", json.dumps({"id": "11", "entities": [], "relations": [
        {"type": "Treats", "arg1": ASPIRIN.reference(), "arg2": PAIN.reference()}]}) + "\n")
    done = run("--gold", str(tmp_path / "gold.jsonl"), "--pred", str(bad))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"{bad}:1: document '11': relation 'Treats' names arg1" in done.stderr
