"""Stand-off readers (PubTator, BioC, brat, DDI XML, BC2GM, LINNAEUS): tiny fixtures for every error and
repair path, then the real corpora against the counts in shared/datasets/SOURCES.md."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import MIRROR, needs_mirror
from data.corpus import Document, FormatError, type_counts
from data.readers.standoff import (DUPLICATE_ID, FRAGMENTS_REORDERED, INDIVIDUAL_MENTIONS, SHIFTED_OFFSETS,
                                   WHITESPACE_MISMATCH, read_bc2gm, read_bioc, read_brat, read_ddi_xml,
                                   read_linnaeus, read_pubtator)


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def spans(doc: Document) -> list[tuple[tuple[tuple[int, int], ...], str, str]]:
    return [(e.fragments, e.type, e.text) for e in doc.entities]


def raises_at(path: Path, where: int | str, match: str):
    """Expect a FormatError naming this file and line (or record)."""
    return pytest.raises(FormatError, match=rf"^{re.escape(str(path))}:{re.escape(str(where))}: .*{match}")


def n_entities(docs: list[Document]) -> int:
    return sum(len(d.entities) for d in docs)


def n_discontinuous(docs: list[Document]) -> int:
    return sum(e.discontinuous for d in docs for e in d.entities)


def overlapping_pairs(doc: Document) -> int:
    """Pairs of entities that share a character."""
    ents, n = sorted(doc.entities), 0
    for i, a in enumerate(ents):
        for b in ents[i + 1:]:
            if b.start >= a.end:
                break
            n += a.overlaps(b)
    return n


# --------------------------------------------------------------------------- PubTator
PUBTATOR = ("\n"
            "11|t|Aspirin helps.\n"
            "11|a|It treats pain and fever.\n"
            "11\t0\t7\tAspirin\tChemical\tD001241\n"
            "11\t25\t39\tpain and fever\tDisease\tD010146|D005334\tpain|fever\n"
            "11\tCID\tD001241\tD010146\n"
            "11\tAssociation\tD001241\tD010146\tNovel\n"
            "\n"
            "12|t|Nothing here.\n"
            "12|a|\n")


def test_pubtator_text_is_title_newline_abstract_and_relations_are_skipped(tmp_path):
    docs = read_pubtator(write(tmp_path, "c.txt", PUBTATOR))
    assert [d.id for d in docs] == ["11", "12"]
    assert docs[0].text == "Aspirin helps.\nIt treats pain and fever."
    assert spans(docs[0]) == [(((0, 7),), "Chemical", "Aspirin"), (((25, 39),), "Disease", "pain and fever")]
    assert docs[1].text == "Nothing here.\n" and docs[1].entities == []


def test_pubtator_duplicate_pmid_keeps_both_documents(tmp_path):
    quirks: Counter = Counter()
    docs = read_pubtator(write(tmp_path, "c.txt", PUBTATOR + "\n" + PUBTATOR), quirks=quirks)
    assert [d.id for d in docs] == ["11", "12", "11#2", "12#2"]
    assert n_entities(docs) == 4 and quirks == Counter({DUPLICATE_ID: 2})


@pytest.mark.parametrize("line, match", [
    ("11\t0\t7\tAspirin", "6 or 7 tab-separated columns"),
    ("11\t0\tseven\tAspirin\tChemical\tD1", "end 'seven' is not an integer"),
    ("11\t30\t45\tfever and more\tDisease\tD1", "outside the text"),
    ("11\t3\t10\tAspirin\tChemical\tD1", "does not match"),
    ("12\t0\t7\tAspirin\tChemical\tD1", "document '12' inside document '11'"),
])
def test_pubtator_errors_name_file_and_line(tmp_path, line, match):
    path = write(tmp_path, "c.txt", "11|t|Aspirin helps.\n11|a|It treats pain.\n" + line + "\n")
    with raises_at(path, 3, match):
        read_pubtator(path)


def test_pubtator_block_without_title(tmp_path):
    path = write(tmp_path, "c.txt", "11|a|It treats pain.\n")
    with raises_at(path, 1, "expected a title line"):
        read_pubtator(path)


# --------------------------------------------------------------------------- BioC
def bioc(annotations: str, abstract_offset: int = 15) -> str:
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<collection><source>test</source>
<document><id>21</id>
<passage><infon key="type">title</infon><offset>0</offset><text>Aspirin helps.</text>
<annotation id="0"><infon key="type">Chemical</infon><location offset="0" length="7"/><text>Aspirin</text>
</annotation></passage>
<passage><infon key="type">abstract</infon><offset>{abstract_offset}</offset>
<text>Ocular and auditory toxicity.</text>{annotations}</passage>
<relation id="R0"><infon key="relation">CID</infon></relation>
</document></collection>
"""


COMPOSITE = """
<annotation id="1"><infon key="type">Disease</infon><location offset="15" length="28"/>
<text>Ocular and auditory toxicity</text></annotation>
<annotation id="2"><infon key="type">Disease</infon><infon key="CompositeRole">IndividualMention</infon>
<location offset="15" length="6"/><location offset="35" length="8"/><text>Ocular toxicity</text></annotation>"""


def test_bioc_places_passages_at_their_offsets_and_skips_individual_mentions(tmp_path):
    path = write(tmp_path, "c.xml", bioc(COMPOSITE))
    quirks: Counter = Counter()
    (doc,) = read_bioc(path, quirks=quirks)
    assert doc.id == "21" and doc.text == "Aspirin helps.\nOcular and auditory toxicity."
    assert spans(doc) == [(((0, 7),), "Chemical", "Aspirin"),
                          (((15, 43),), "Disease", "Ocular and auditory toxicity")]
    assert quirks == Counter({INDIVIDUAL_MENTIONS: 1})


def test_bioc_gap_between_passages_is_filled_with_newlines(tmp_path):
    (doc,) = read_bioc(write(tmp_path, "c.xml", bioc("", abstract_offset=17)))
    assert doc.text == "Aspirin helps.\n\n\nOcular and auditory toxicity."


@pytest.mark.parametrize("annotation, where, match", [
    ('<annotation id="1"><infon key="type">Disease</infon><location offset="x" length="6"/><text>Ocular</text>'
     '</annotation>', "document 21, annotation 1", "location offset 'x' is not an integer"),
    ('<annotation id="1"><infon key="type">Disease</infon><location offset="40" length="9"/><text>toxicity.'
     '</text></annotation>', "document 21, annotation 1", "outside the text"),
    ('<annotation id="1"><infon key="type">Disease</infon><location offset="15" length="6"/><text>Auditory'
     '</text></annotation>', "document 21, annotation 1", "does not match"),
    ('<annotation id="1"><location offset="15" length="6"/><text>Ocular</text></annotation>',
     "document 21, annotation 1", "without a type"),
    ('<annotation id="1"><infon key="type">Disease</infon><text>Ocular</text></annotation>',
     "document 21, annotation 1", "without a <location>"),
])
def test_bioc_errors_name_the_record(tmp_path, annotation, where, match):
    path = write(tmp_path, "c.xml", bioc(annotation))
    with raises_at(path, where, match):
        read_bioc(path)


def test_bioc_overlapping_passages(tmp_path):
    path = write(tmp_path, "c.xml", bioc("", abstract_offset=10))
    with raises_at(path, "document 21", "overlaps the previous passage"):
        read_bioc(path)


def test_bioc_broken_xml_names_the_line(tmp_path):
    path = write(tmp_path, "c.xml", bioc("").replace("<text>Aspirin</text>", "<text>Aspirin</txt>"))
    with raises_at(path, 5, "broken XML: mismatched tag"):
        read_bioc(path)


# --------------------------------------------------------------------------- brat
BRAT_TEXT = "Severe pain in the left and right knee.\nNo fever."
BRAT_ANN = ("T1\tSIGN 0 11\tSevere pain\n"
            "T2\tSIGN 7 11\tpain\n"
            "T3\tANATOMY 19 23;34 38\tleft knee\n"
            "T4\tANATOMY 34 38;28 33\tknee right\n"
            "R1\tLocated Arg1:T1 Arg2:T3\n"
            "E1\tSIGN:T1\n"
            "A1\tNegated T2\n"
            "N1\tReference T1 UMLS:C0030193\tPain\n"
            "#1\tAnnotatorNotes T1\tchecked\n"
            "*\tEquiv T3 T4\n"
            "\n")


def test_brat_reads_nested_and_discontinuous_entities_and_skips_other_lines(tmp_path):
    write(tmp_path, "doc1.txt", BRAT_TEXT)
    write(tmp_path, "doc1.ann", BRAT_ANN)
    quirks: Counter = Counter()
    (doc,) = read_brat(tmp_path, quirks=quirks)
    assert doc.id == "doc1" and doc.text == BRAT_TEXT
    assert spans(doc) == [(((0, 11),), "SIGN", "Severe pain"), (((7, 11),), "SIGN", "pain"),
                          (((19, 23), (34, 38)), "ANATOMY", "left knee"),
                          (((28, 33), (34, 38)), "ANATOMY", "right knee")]
    assert quirks == Counter({FRAGMENTS_REORDERED: 1})


def test_brat_accepts_ann_files_from_several_directories(tmp_path):
    for folder in ("a", "b"):
        write(tmp_path, f"{folder}/doc1.txt", BRAT_TEXT)
        write(tmp_path, f"{folder}/doc1.ann", "T1\tSIGN 7 11\tpain\n")
    docs = read_brat([tmp_path / "a" / "doc1.ann", tmp_path / "b" / "doc1.ann"])
    assert [d.id for d in docs] == ["doc1", "doc1#2"] and n_entities(docs) == 2


def test_brat_crlf_text_keeps_its_characters(tmp_path):
    (tmp_path / "d.txt").write_bytes(b"Title\r\nPain.")
    write(tmp_path, "d.ann", "T1\tSIGN 7 11\tPain\n")
    assert spans(read_brat(tmp_path)[0]) == [(((7, 11),), "SIGN", "Pain")]


def test_brat_text_that_is_not_utf8(tmp_path):
    txt = tmp_path / "d.txt"
    txt.write_bytes("Dolor de cabeza en el niño.".encode("latin-1"))
    write(tmp_path, "d.ann", "T1\tSIGN 0 5\tDolor\n")
    with pytest.raises(FormatError, match=rf"^{re.escape(str(txt))}: not UTF-8"):
        read_brat(tmp_path)


def test_brat_repairs_whitespace_and_small_shifts_and_counts_them(tmp_path):
    write(tmp_path, "d.txt", "Use of (R)- or (S)-warfarin with aspirin.")
    write(tmp_path, "d.ann", "T1\tDRUG 6 11;19 27\t(R)-warfarin\n"  # starts on a space, joined without one
                             "T2\tDRUG 31 38\taspirin\n")  # two characters early
    quirks: Counter = Counter()
    (doc,) = read_brat(tmp_path, quirks=quirks)
    assert spans(doc) == [(((7, 11), (19, 27)), "DRUG", "(R)- warfarin"), (((33, 40),), "DRUG", "aspirin")]
    assert quirks == Counter({WHITESPACE_MISMATCH: 1, SHIFTED_OFFSETS: 1})


@pytest.mark.parametrize("line, match", [
    ("T1\tSIGN 7 11", "3 tab-separated columns"),
    ("T1\tSIGN 7 eleven\tpain", "end 'eleven' is not an integer"),
    ("T1\tSIGN 7\tpain", "expected 'start end'"),
    ("T1\tSIGN 45 55\tfever", "outside the text"),
    ("T1\tSIGN 0 6\tsevere", "does not match"),
    ("T1\tSIGN 7 12\tpain in the", "does not match"),  # the end is 6 characters off: beyond MAX_SHIFT
    ("T1\tSIGN 0 11;7 14\tSevere pain pain in", "overlap"),
    ("X1\tSIGN 0 6\tSevere", "unknown brat line"),
    ("T9\tSIGN 0 6\tSevere", "entity id 'T9' is used before, at line 1"),
])
def test_brat_errors_name_file_and_line(tmp_path, line, match):
    write(tmp_path, "d.txt", BRAT_TEXT)
    path = write(tmp_path, "d.ann", "T9\tSIGN 7 11\tpain\n" + line + "\n")
    with raises_at(path, 2, match):
        read_brat(tmp_path)


def test_brat_without_texts_explains_why(tmp_path):
    path = write(tmp_path, "Alkaptonuria.ann", "T1\tRAREDISEASE 0 12\tAlkaptonuria\n")
    with pytest.raises(FormatError, match=r"Alkaptonuria\.ann: no text file Alkaptonuria\.txt.*on request"):
        read_brat(tmp_path)
    (doc,) = read_brat(path, require_text=False)
    assert doc.text == "" and spans(doc) == [(((0, 12),), "RAREDISEASE", "Alkaptonuria")]


# --------------------------------------------------------------------------- DDI XML
def ddi(entity: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<document id="DDI-DrugBank.d1">
    <sentence id="DDI-DrugBank.d1.s0" text="Avoid (R)- and (S)-warfarin.&#xd;&#xa;">
        <entity id="DDI-DrugBank.d1.s0.e0" charOffset="6-9;19-26" type="drug" text="(R)- warfarin"/>
        <entity id="DDI-DrugBank.d1.s0.e1" charOffset="15-26" type="drug" text="(S)-warfarin"/>
    </sentence>
    <sentence id="DDI-DrugBank.d1.s1" text=""/>
    <sentence id="DDI-DrugBank.d1.s2" text="Aspirin is fine.">
        <entity id="DDI-DrugBank.d1.s2.e0" charOffset="0-6" type="brand" text="Aspirin"/>{entity}
    </sentence>
</document>
"""


def test_ddi_joins_sentences_and_maps_inclusive_sentence_offsets(tmp_path):
    (doc,) = read_ddi_xml(write(tmp_path, "d.xml", ddi()))
    first = "Avoid (R)- and (S)-warfarin.\r\n"
    assert doc.id == "DDI-DrugBank.d1" and doc.text == first + " Aspirin is fine."
    assert doc.sentences == [(0, len(first)), (len(first), len(first)), (len(first) + 1, len(doc.text))]
    assert spans(doc) == [(((6, 10), (19, 27)), "drug", "(R)- warfarin"), (((15, 27),), "drug", "(S)-warfarin"),
                          (((31, 38),), "brand", "Aspirin")]
    (newline,) = read_ddi_xml([tmp_path / "d.xml"], separator="\n")
    assert newline.text == first + "\nAspirin is fine."


@pytest.mark.parametrize("offset, match", [
    ("0-16", "outside its sentence"),
    ("0-x", "end 'x' is not an integer"),
    ("0-3", "does not match"),
])
def test_ddi_errors_name_the_entity(tmp_path, offset, match):
    entity = f'<entity id="DDI-DrugBank.d1.s2.e1" charOffset="{offset}" type="drug" text="fine"/>'
    path = write(tmp_path, "d.xml", ddi(entity))
    with raises_at(path, "entity DDI-DrugBank.d1.s2.e1", match):
        read_ddi_xml(path)


def test_ddi_broken_xml_and_wrong_root(tmp_path):
    broken = write(tmp_path, "broken.xml", ddi().replace('type="brand"', 'type="brand'))
    with raises_at(broken, 9, "broken XML"):
        read_ddi_xml(broken)
    wrong = write(tmp_path, "wrong.xml", "<collection/>")
    with raises_at(wrong, 1, "<document id=...> root"):
        read_ddi_xml(wrong)


# --------------------------------------------------------------------------- BC2GM
def bc2gm(tmp_path: Path, eval_lines: str) -> tuple[Path, Path]:
    return (write(tmp_path, "train.in", "S1 The  p53 gene binds MDM2.\nS2 No genes.\n"),
            write(tmp_path, "GENE.eval", eval_lines))


def test_bc2gm_maps_whitespace_free_inclusive_offsets(tmp_path):
    docs = read_bc2gm(*bc2gm(tmp_path, "S1|3 5|p53\nS1|3 9|p53 gene\nS1|15 18|MDM2\n"))
    assert [d.id for d in docs] == ["S1", "S2"]
    first = docs[0]
    assert first.text == "The  p53 gene binds MDM2." and first.sentences == [(0, 25)]
    assert spans(first) == [(((5, 8),), "GENE", "p53"), (((5, 13),), "GENE", "p53 gene"),
                            (((20, 24),), "GENE", "MDM2")]


@pytest.mark.parametrize("line, match", [
    ("S3|0 2|The", "unknown sentence id 'S3'"),
    ("S1|3 5", "expected 'id|start end|text'"),
    ("S1|3|p53", "expected 'start end'"),
    ("S1|3 five|p53", "offset 'five' is not an integer"),
    ("S1|15 25|MDM2", "outside the sentence"),
    ("S1|0 2|p53", "does not match"),
])
def test_bc2gm_errors_name_file_and_line(tmp_path, line, match):
    in_file, eval_file = bc2gm(tmp_path, "S1|3 5|p53\n" + line + "\n")
    with raises_at(eval_file, 2, match):
        read_bc2gm(in_file, eval_file)


def test_bc2gm_sentence_line_without_text(tmp_path):
    in_file = write(tmp_path, "train.in", "S1 Fine.\nS2\n")
    with raises_at(in_file, 2, "expected '<id> <sentence>'"):
        read_bc2gm(in_file, write(tmp_path, "GENE.eval", ""))


# --------------------------------------------------------------------------- LINNAEUS
TAGS = ("#species id\tdocument\tstart\tend\ttext\tcode\n"
        "species:ncbi:4932\tpmcA1\t0\t5\tYeast\t\n"
        "species:ncbi:9606\tpmcA2\t4\t9\thuman\t4\n")


def linnaeus(tmp_path: Path, tags: str) -> tuple[Path, Path]:
    write(tmp_path, "txt/pmcA1.txt", "Yeast cells.\n")
    write(tmp_path, "txt/pmcA2.txt", "The human gene.\n")
    return tmp_path / "txt", write(tmp_path, "tags.tsv", tags)


def test_linnaeus_reads_full_texts_and_selected_documents(tmp_path):
    txt_dir, tags = linnaeus(tmp_path, TAGS)
    docs = read_linnaeus(txt_dir, tags)
    assert [(d.id, d.text, spans(d)) for d in docs] == [
        ("pmcA1", "Yeast cells.\n", [(((0, 5),), "Species", "Yeast")]),
        ("pmcA2", "The human gene.\n", [(((4, 9),), "Species", "human")])]
    assert [d.id for d in read_linnaeus(txt_dir, tags, ["pmcA2"])] == ["pmcA2"]


@pytest.mark.parametrize("line, match", [
    ("species:ncbi:9606\tpmcA2\t4\t9\thuman", "6 tab-separated columns"),
    ("species:ncbi:9606\tpmcA3\t4\t9\thuman\t", "no text file for document 'pmcA3'"),
    ("species:ncbi:9606\tpmcA2\tfour\t9\thuman\t", "start 'four' is not an integer"),
    ("species:ncbi:9606\tpmcA2\t0\t3\thuman\t", "does not match"),
    ("species:ncbi:9606\tpmcA2\t10\t30\tgene\t", "outside the text"),
])
def test_linnaeus_errors_name_file_and_line(tmp_path, line, match):
    txt_dir, tags = linnaeus(tmp_path, TAGS + line + "\n")
    with raises_at(tags, 4, match):
        read_linnaeus(txt_dir, tags)


def test_linnaeus_unknown_selected_document(tmp_path):
    txt_dir, tags = linnaeus(tmp_path, TAGS)
    with pytest.raises(FormatError, match="no text file for document 'pmcA9'"):
        read_linnaeus(txt_dir, tags, ["pmcA1", "pmcA9"])


# --------------------------------------------------------------------------- real corpora
# Each split is read once per module; `quirks` records what the repair policies did.
def read(reader, *args, **kwargs) -> tuple[list[Document], Counter]:
    quirks: Counter = Counter()
    return reader(*args, quirks=quirks, **kwargs), quirks


@pytest.fixture(scope="module")
def ncbi_train():
    return read(read_pubtator, MIRROR / "ncbi_disease/original_pubtator/NCBItrainset_corpus.txt")


@pytest.fixture(scope="module")
def cdr_training():
    stem = MIRROR / "bc5cdr/original/CDR_TrainingSet"
    return read(read_pubtator, f"{stem}.PubTator.txt"), read(read_bioc, f"{stem}.BioC.xml")


@pytest.fixture(scope="module")
def biored_train():
    return read(read_pubtator, MIRROR / "biored/Train.PubTator"), read(read_bioc, MIRROR / "biored/Train.BioC.XML")


@pytest.fixture(scope="module")
def ddi_drugbank_train():
    return (read(read_ddi_xml, MIRROR / "ddi/xml_original/Train/DrugBank"),
            read(read_brat, MIRROR / "ddi/brat/Train/DrugBank"))


@needs_mirror
def test_ncbi_disease(ncbi_train):
    docs, quirks = ncbi_train
    assert (len(docs), n_entities(docs)) == (593, 5145)
    first, second = (d for d in docs if d.id.startswith("8528200"))
    assert (first.id, second.id) == ("8528200", "8528200#2") and first.text == second.text
    # one mention states two trailing spaces that its offsets leave out
    assert quirks == Counter({DUPLICATE_ID: 1, WHITESPACE_MISMATCH: 1})
    assert type_counts(docs) == {"SpecificDisease": 2972, "Modifier": 1289, "DiseaseClass": 769,
                                 "CompositeMention": 115}
    for name, n_docs, n_ents in [("develop", 100, 787), ("test", 100, 960)]:
        docs = read_pubtator(MIRROR / f"ncbi_disease/original_pubtator/NCBI{name}set_corpus.txt")
        assert (len(docs), n_entities(docs)) == (n_docs, n_ents)


@needs_mirror
def test_bc5cdr_pubtator_and_bioc_agree(cdr_training):
    (pubtator, pubtator_quirks), (bioc_docs, bioc_quirks) = cdr_training
    for docs in (pubtator, bioc_docs):
        assert len(docs) == 500 and type_counts(docs) == {"Chemical": 5203, "Disease": 4182}
    assert [(d.id, d.text, sorted(d.entities)) for d in pubtator] == \
           [(d.id, d.text, sorted(d.entities)) for d in bioc_docs]
    assert not pubtator_quirks and bioc_quirks == Counter({INDIVIDUAL_MENTIONS: 185})


@needs_mirror
def test_biored_pubtator_and_bioc_agree(biored_train):
    (pubtator, quirks), (bioc_docs, _) = biored_train
    assert (len(pubtator), n_entities(pubtator)) == (400, 13351) and not quirks
    assert len(type_counts(pubtator)) == 6
    assert [(d.id, d.text, sorted(d.entities)) for d in pubtator] == \
           [(d.id, d.text, sorted(d.entities)) for d in bioc_docs]


@needs_mirror
def test_pharmaconer_train():
    docs, quirks = read(read_brat, MIRROR / "pharmaconer/train/subtrack1")
    assert len(docs) == 500 and n_discontinuous(docs) == 0
    assert type_counts(docs) == {"NORMALIZABLES": 2304, "PROTEINAS": 1405, "NO_NORMALIZABLES": 24, "UNCLEAR": 89}
    # S0211-69952015000200015-1: offsets after each "\n\n" paragraph break drift by one more character
    assert quirks == Counter({SHIFTED_OFFSETS: 5})


@needs_mirror
def test_nerel_bio_train():
    docs, quirks = read(read_brat, MIRROR / "nerel_bio/train")
    assert len(docs) == 612 and all(d.id.endswith("_ru") for d in docs)
    assert (n_entities(docs), n_discontinuous(docs)) == (54210, 439)
    assert quirks == Counter({FRAGMENTS_REORDERED: 19})
    # heavily nested: 25,488 pairs of entities share characters (SOURCES.md gives 25,635 "overlapping
    # span pairs" by a definition it does not state; 25,783 pairs have overlapping extents)
    assert sum(overlapping_pairs(d) for d in docs) == 25488


@needs_mirror
def test_raredis_ships_without_texts():
    folder = MIRROR / "raredis_annotations_only/train"
    with pytest.raises(FormatError, match="on request"):
        read_brat(folder)
    docs = read_brat(folder, require_text=False)
    assert (len(docs), n_entities(docs), n_discontinuous(docs)) == (729, 10426, 664)


@needs_mirror
def test_ddi_xml_and_brat(ddi_drugbank_train):
    (xml_docs, xml_quirks), (brat_docs, brat_quirks) = ddi_drugbank_train
    assert (len(xml_docs), n_entities(xml_docs), n_discontinuous(xml_docs)) == (572, 12929, 33)
    assert sum(len(d.sentences) for d in xml_docs) == 5675
    assert sum(s == e for d in xml_docs for s, e in d.sentences) == 71  # sentences with empty text
    assert (len(brat_docs), n_entities(brat_docs), n_discontinuous(brat_docs)) == (572, 12929, 33)
    # the XML sentences joined by a space give exactly the brat conversion's texts
    assert sorted(d.text for d in xml_docs) == sorted(d.text for d in brat_docs)
    # "(R)-warfarin" (Eszopiclone) is one character early in the XML; some fragments are joined
    # without a space, and the brat conversion starts "(R)-" on the space before it
    assert xml_quirks == Counter({WHITESPACE_MISMATCH: 2, SHIFTED_OFFSETS: 1})
    assert brat_quirks == Counter({WHITESPACE_MISMATCH: 3})
    medline, quirks = read(read_ddi_xml, MIRROR / "ddi/xml_original/Train/MedLine")
    assert (len(medline), n_entities(medline), n_discontinuous(medline)) == (142, 1836, 5)
    assert quirks == Counter({WHITESPACE_MISMATCH: 2})


@needs_mirror
def test_bc2gm():
    folder = MIRROR / "bc2gm/original"
    docs, quirks = read(read_bc2gm, folder / "train/train.in", folder / "train/GENE.eval")
    assert (len(docs), n_entities(docs)) == (15000, 18265)
    assert quirks == Counter({SHIFTED_OFFSETS: 1})  # GENE.eval:1790 starts on the "/" before the gene
    test = read_bc2gm(folder / "test/test.in", folder / "test/GENE.eval")
    assert (len(test), n_entities(test)) == (5000, 6331)


@needs_mirror
def test_linnaeus():
    folder = MIRROR / "linnaeus/original"
    docs, quirks = read(read_linnaeus, folder / "txt", folder / "tags.tsv")
    assert (len(docs), n_entities(docs)) == (100, 4259) and not quirks
    sizes = {}
    for split in ("train", "devel", "test"):
        ids = (folder / "split" / f"{split}.txt").read_text(encoding="utf-8").split()
        part = read_linnaeus(folder / "txt", folder / "tags.tsv", ids)
        sizes[split] = (len(part), n_entities(part))
    assert sizes == {"train": (50, 2119), "devel": (17, 708), "test": (33, 1432)}
