"""data/llm/units.py and data/llm/instructions.py: units cut from documents (sentences, windows, per type), seed 4's
instruction records, the CLI, and placement in corpora that nest mentions."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from conftest import FIXTURE, ROOT, load_split, needs_mirror
from data.corpus import Document, Entity, nests, read_jsonl
from data.llm.formats import FORMATS, get_format
from data.llm.prompts import instruction
from data.llm.units import make_units, unit_spans


def records(*args, **kwargs) -> list[dict]:
    """The units as the instruction records the CLI writes."""
    return [u.to_json() for u in make_units(*args, **kwargs)]


TYPES = ("Chemical", "Disease")
TEXT = "Aspirin eased pain. Cancer was seen. Ibuprofen too. Nothing else. Last one here."
DOC = Document("d1", TEXT, [Entity.span(0, 7, "Chemical", "Aspirin"), Entity.span(14, 18, "Disease", "pain"),
                            Entity.span(20, 26, "Disease", "Cancer"), Entity.span(37, 46, "Chemical", "Ibuprofen")])


def test_sentence_records_have_seed_4s_fields_and_our_offsets():
    recs = list(records([DOC], TYPES, get_format("typed")))
    assert [r["id"] for r in recs] == ["d1/0", "d1/1", "d1/2", "d1/3", "d1/4"]
    first = recs[0]
    assert {"instruction", "input", "output", "source", "raw_entities", "id"} <= set(first)
    assert first["input"] == "Aspirin eased pain." and first["start"] == 0 and first["doc_id"] == "d1"
    assert first["output"] == "Chemical: Aspirin\nDisease: pain"
    assert first["raw_entities"] == {"Chemical": ["Aspirin"], "Disease": ["pain"]}
    assert recs[3]["output"] == "Chemical:\nDisease:" and recs[3]["raw_entities"] == {"Chemical": [], "Disease": []}
    assert recs[2]["start"] == 37 and recs[2]["entities"] == [{"start": 0, "end": 9, "type": "Chemical",
                                                              "text": "Ibuprofen"}]
    assert first["source"].index(first["instruction"]) < first["source"].index(first["input"])


def test_instruction_lists_every_type_in_order_with_the_format():
    text = instruction(("Disease", "Chemical"), get_format("json"))
    assert "Disease, Chemical" in text and '"start"' in text and '"type": "Disease"' in text


def test_per_type_records_ask_for_one_type_each():
    recs = list(records([DOC], TYPES, get_format("list"), per_type=True))
    assert [r["id"] for r in recs[:2]] == ["d1/0/Chemical", "d1/0/Disease"]
    assert recs[0]["output"] == '["Aspirin"]' and recs[1]["output"] == '["pain"]'
    assert "Disease" not in recs[0]["instruction"]


def test_document_windows_cover_every_sentence_and_entity():
    spans = unit_spans(DOC, "document", max_sentences=2, stride=2)
    assert [TEXT[s:e].count(".") for s, e in spans] == [2, 2, 2]  # the last window is aligned to the end
    recs = list(records([DOC], TYPES, get_format("json"), level="document", max_sentences=2, stride=2))
    found = {(r["start"] + e["start"], e["type"]) for r in recs for e in json.loads(r["output"])}
    assert found == {(e.start, e.type) for e in DOC.entities}
    whole = list(records([DOC], TYPES, get_format("json"), level="document"))
    assert len(whole) == 1 and whole[0]["input"] == TEXT


def test_entities_crossing_units_are_kept_whole_or_counted():
    doc = Document("d2", "Breast. Cancer was seen.", [Entity.span(0, 14, "Disease", "Breast. Cancer")])
    kept = list(records([doc], TYPES, get_format("typed")))
    assert len(kept) == 1 and kept[0]["output"] == "Chemical:\nDisease: Breast. Cancer"
    changes = Counter()
    cut = list(records([doc], TYPES, get_format("typed"), respect_entities=False, changes=changes))
    assert len(cut) == 2 and changes["crosses_unit_dropped"] == 2  # counted in each sentence it touches


def test_blank_units_are_skipped_and_counted():
    doc = Document("d3", "Aspirin.  ", [], sentences=[(0, 8), (8, 10)])
    changes = Counter()
    assert len(list(records([doc], TYPES, get_format("bio"), changes=changes))) == 1
    assert changes["empty_units_skipped"] == 1


def test_gold_types_missing_from_the_instruction_are_an_error():
    with pytest.raises(ValueError, match="Disease"):
        list(records([DOC], ("Chemical",), get_format("typed"), per_type=True))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_record_output_parses_back_to_its_flattened_gold(name):
    fmt = get_format(name)
    for rec in records([DOC], TYPES, fmt, level="document", max_sentences=3, stride=1):
        entities = [Entity.span(e["start"], e["end"], e["type"], e["text"]) for e in rec["entities"]]
        parsed = fmt.parse(rec["output"], rec["input"], TYPES)
        assert parsed.well_formed and parsed.entities == fmt.flatten((rec["input"], entities), TYPES)


def run(*args):
    return subprocess.run([sys.executable, "data/llm/instructions.py", *args], cwd=ROOT, capture_output=True,
                          text=True, check=True)


def test_cli_help():
    assert "usage:" in run("--help").stdout


@needs_mirror
def test_cli_writes_records_for_a_registry_split(tmp_path):
    out = tmp_path / "ncbi.jsonl"
    proc = run("ncbi_disease", "--split", "test", "--format", "typed_short", "--out", str(out))
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    docs = load_split("ncbi_disease", "test")
    assert {r["doc_id"] for r in recs} == {d.id for d in docs}
    assert sum(len(r["entities"]) for r in recs) == sum(len(d.entities) for d in docs)
    assert f"wrote {len(recs)} records" in proc.stderr and "changed by the typed_short format" in proc.stderr


def test_a_nested_corpus_places_string_mentions_inside_longer_ones():
    """Without `nested`, the "cancer" nested in "BRCA1-associated breast cancer" is read back at the later,
    unannotated "its cancer cells" (the free occurrence); decoders/ and generative/ pass nests() of the corpus."""
    docs = read_jsonl(FIXTURE / "train.jsonl")
    assert nests(docs) and not nests([Document("d", "a b", [Entity.span(0, 1, "X"), Entity.span(2, 3, "X")])])
    moved = {}
    for nested in (False, True):
        changes: Counter = Counter()
        make_units(docs, ("Chemical", "Disease"), get_format("typed", nested=nested), changes=changes)
        moved[nested] = changes["occurrence_reassigned"]
    assert moved == {False: 1, True: 0}


@needs_mirror
def test_nerel_bio_nests_and_its_dev_mentions_stay_where_they_are():
    from data import registry

    assert registry.nested("nerel_bio") and not registry.nested("ncbi_disease") and not registry.nested("bc5cdr")
    docs, types = load_split("nerel_bio", "dev"), registry.get("nerel_bio").types
    moved = {}
    for nested in (False, True):
        changes: Counter = Counter()
        make_units(docs, types, get_format("typed", nested=nested), changes=changes)
        moved[nested] = changes["occurrence_reassigned"]
    assert moved == {False: 75, True: 18}
