"""Property tests over every reader and the scorer's input loading (issue 21: no traceback for an everyday
mistake). Each reader is given arbitrary bytes and mutations of a well-formed input (byte flips,
truncations, inserted, deleted and swapped lines, swapped fields, stray characters, numbers made negative,
huge or not numbers): the JSONL fixture corpus, and for the other formats small files shaped like the
reader tests' ones. It must return documents whose entities lie in their text (and, where the reader reads
an entity's text off the document, match it), or raise InputError (FormatError) naming one of the files it
was given; any other exception is a bug in the reader.

Examples are derandomized, so CI draws the same ones on every run: about 45 s of CPU in all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURE
from data.corpus import Document, InputError, read_jsonl
from data.readers import (read_bc2gm, read_bioc, read_brat, read_chemprot_pure, read_ddi_xml, read_iob,
                          read_linnaeus, read_pubtator, read_rudrec)
from eval.evaluate import load_predictions
from eval.semeval import score

EXAMPLES = 1000  # per strategy, so 2,000 per reader

# --------------------------------------------------------------------------- well-formed inputs to mutate
PUBTATOR = ("11|t|Aspirin helps.\n"
            "11|a|It treats pain and fever.\n"
            "11\t0\t7\tAspirin\tChemical\tD001241\n"
            "11\t25\t39\tpain and fever\tDisease\tD010146|D005334\tpain|fever\n"
            "11\tCID\tD001241\tD010146\n"
            "11\tAssociation\tD001241\tD010146\tNovel\n"
            "\n"
            "12|t|Ocular toxicity.\n"
            "12|a|Deferoxamine caused it.\n"
            "12\t0\t15\tOcular toxicity\tDisease\tD1\n"
            "12\t17\t29\tDeferoxamine\tChemical\tD2\n")

BIOC = """<?xml version='1.0' encoding='UTF-8'?>
<collection><source>test</source>
<document><id>21</id>
<passage><infon key="type">title</infon><offset>0</offset><text>Aspirin helps.</text>
<annotation id="0"><infon key="type">Chemical</infon><location offset="0" length="7"/><text>Aspirin</text>
</annotation></passage>
<passage><infon key="type">abstract</infon><offset>15</offset><text>Ocular and auditory toxicity.</text>
<annotation id="1"><infon key="type">Disease</infon><location offset="15" length="28"/>
<text>Ocular and auditory toxicity</text></annotation>
<annotation id="2"><infon key="type">Disease</infon><infon key="CompositeRole">IndividualMention</infon>
<location offset="15" length="6"/><location offset="35" length="8"/><text>Ocular toxicity</text></annotation>
</passage>
<relation id="R0"><infon key="relation">CID</infon></relation>
</document></collection>
"""

DDI = """<?xml version="1.0" encoding="UTF-8"?>
<document id="DDI-DrugBank.d1">
    <sentence id="DDI-DrugBank.d1.s0" text="Avoid (R)- and (S)-warfarin.&#xd;&#xa;">
        <entity id="DDI-DrugBank.d1.s0.e0" charOffset="6-9;19-26" type="drug" text="(R)- warfarin"/>
        <entity id="DDI-DrugBank.d1.s0.e1" charOffset="15-26" type="drug" text="(S)-warfarin"/>
    </sentence>
    <sentence id="DDI-DrugBank.d1.s1" text=""/>
    <sentence id="DDI-DrugBank.d1.s2" text="Aspirin is fine.">
        <entity id="DDI-DrugBank.d1.s2.e0" charOffset="0-6" type="brand" text="Aspirin"/>
    </sentence>
</document>
"""

BRAT_TEXT = "Severe pain in the left and right knee.\r\nNo fever."
BRAT_ANN = ("T1\tSIGN 0 11\tSevere pain\n"
            "T2\tSIGN 7 11\tpain\n"
            "T3\tANATOMY 19 23;34 38\tleft knee\n"
            "T4\tANATOMY 34 38;28 33\tknee right\n"
            "T5\tSIGN 44 49\tfever\n"
            "R1\tLocated Arg1:T1 Arg2:T3\n"
            "A1\tNegated T5\n"
            "#1\tAnnotatorNotes T1\tchecked\n")

BC2GM_IN = "S1 The  p53 gene binds MDM2.\nS2 No genes.\n"
BC2GM_EVAL = "S1|3 5|p53\nS1|3 9|p53 gene\nS1|15 18|MDM2\n"

LINNAEUS_TAGS = ("#species id\tdocument\tstart\tend\ttext\tcode\n"
                 "species:ncbi:4932\tpmcA1\t0\t5\tYeast\t\n"
                 "species:ncbi:9606\tpmcA2\t4\t9\thuman\t4\n")

IOB = ("-DOCSTART-\tO\n\nAcute\tB-Disease\nrenal\tI-Disease\nfailure\tI-Disease\n.\tO\n\n"
       "Aspirin\tB-Chemical\nhelps\tO\n\n-DOCSTART-\tO\n\nNo\tO\nfever\tB-Disease\n")
IOB_BARE = ("###MEDLINE:111\n\nHomo\tB\nsapiens\tI\nand\tO\nmice\tI-Species\n\n"
            "###MEDLINE:111\n\nIL-2\tB-protein\ngene\tI-DNA\n")

RUDREC = ('{"file_name": "2.tsv", "text": "Пила аспирин.\\n", "entities": [{"start": 5, "end": 12, '
          '"entity_type": "Drugname", "entity_text": "аспирин", "concept_name": NaN}], "sentence_id": 1}\n'
          '{"file_name": "2.tsv", "text": "Болела голова", "entities": [{"start": 0, "end": 13, '
          '"entity_type": "DI", "entity_text": "Болела голова"}], "sentence_id": 0}\n'
          '{"file_name": "1.tsv", "text": "Но я Гриппферон", "entities": [{"start": 2, "end": 9, '
          '"entity_type": "Drugname", "entity_text": " я Грип"}], "sentence_id": 0}\n')

CHEMPROT = ('{"doc_key": "9", "sentences": [["Aspirin", "inhibits", "COX", "-", "1", "."], ["COX", "binds", "."]], '
            '"ner": [[[0, 0, "CHEMICAL"], [2, 4, "GENE"]], [[6, 6, "GENE"]]], "relations": [[], []]}\n'
            '{"doc_key": "10", "sentences": [["x"]], "ner": [[]], "relations": [[]]}\n')

GOLD = (FIXTURE / "test.jsonl").read_text(encoding="utf-8")
PREDICTIONS = ('{"id": "s1", "entities": [{"start": 0, "end": 11, "type": "Chemical", "text": "Doxorubicin"}, '
               '{"start": 34, "end": 39, "type": "Disease"}]}\n'
               '{"id": "s2", "entities": [{"start": 11, "end": 34, "type": "Disease", "fragments": [[11, 16], '
               '[28, 34]]}, {"start": 21, "end": 34, "type": "Chemical", "text": "rectal cancer"}]}\n'
               '{"id": "s3", "text": "Dexrazoxane protected the heart. Colon cancer screening helps.", '
               '"entities": []}\n')


# --------------------------------------------------------------------------- the readers
def _score(folder: Path) -> list[Document]:
    """The scorer's loading, as eval/evaluate.py's main does it, then the alignment itself."""
    gold = read_jsonl(folder / "gold.jsonl")
    pred = load_predictions(folder / "pred.jsonl", gold)
    score(gold, pred)
    return pred


@dataclass(frozen=True)
class Case:
    """A reader, the well-formed files it reads (name -> content), and those of them the strategies replace
    (one per example). `exact`: the reader reads each entity's text off the document (otherwise the text
    may be left out)."""

    name: str
    files: dict[str, str]
    targets: tuple[str, ...]
    read: Callable[[Path], list[Document]]
    exact: bool = True


LINNAEUS = {"txt/pmcA1.txt": "Yeast cells.\n", "txt/pmcA2.txt": "The human gene.\n", "tags.tsv": LINNAEUS_TAGS}
CASES = [
    Case("pubtator", {"corpus.txt": PUBTATOR}, ("corpus.txt",), lambda d: read_pubtator(d / "corpus.txt")),
    Case("bioc", {"c.xml": BIOC}, ("c.xml",), lambda d: read_bioc(d / "c.xml")),
    Case("ddi_xml", {"d1.xml": DDI}, ("d1.xml",), read_ddi_xml),
    Case("brat", {"doc1.txt": BRAT_TEXT, "doc1.ann": BRAT_ANN}, ("doc1.ann", "doc1.txt"), read_brat),
    Case("brat_without_text", {"doc1.ann": BRAT_ANN}, ("doc1.ann",),
         lambda d: read_brat(d, require_text=False), exact=False),
    Case("bc2gm", {"train.in": BC2GM_IN, "GENE.eval": BC2GM_EVAL}, ("GENE.eval", "train.in"),
         lambda d: read_bc2gm(d / "train.in", d / "GENE.eval")),
    Case("linnaeus", LINNAEUS, ("tags.tsv", "txt/pmcA2.txt"),
         lambda d: read_linnaeus(d / "txt", d / "tags.tsv", ["pmcA2", "pmcA1"])),
    Case("iob", {"train.tsv": IOB}, ("train.tsv",), lambda d: read_iob(d / "train.tsv")),
    Case("iob_bare_repair", {"s800.iob2": IOB_BARE}, ("s800.iob2",),
         lambda d: read_iob(d / "s800.iob2", default_type="Species", invalid="repair")),
    Case("rudrec", {"r.json": RUDREC}, ("r.json",), lambda d: read_rudrec(d / "r.json")),
    Case("chemprot_pure", {"dev.json": CHEMPROT}, ("dev.json",), lambda d: read_chemprot_pure(d / "dev.json")),
    Case("jsonl", {"train.jsonl": (FIXTURE / "train.jsonl").read_text(encoding="utf-8")}, ("train.jsonl",),
         lambda d: read_jsonl(d / "train.jsonl"), exact=False),
    Case("scorer", {"gold.jsonl": GOLD, "pred.jsonl": PREDICTIONS}, ("pred.jsonl", "gold.jsonl"), _score,
         exact=False),
]


# --------------------------------------------------------------------------- mutations
NUMBER = re.compile(rb"-?\d+")
SEPARATORS = (b"\t", b" ", b"|", b";", b",", b'"', b"-")
NUMBERS = (b"-1", b"0", b"-0", b"1", b"2147483648", b"99999999999999999999", b"1000000000", b"9" * 5000,
           b"1e3", b"1.5", b"NaN", b"Infinity", b"", b"x", b"true", b"null", b"\xd9\xa3", b"\xc2\xb2", b"1_0",
           b" 7 ", b"+3", b'"3"', b"[3]")
SPECIALS = (b"\r", b"\n", b"\r\n", b"\t", b" ", b"\x00", b"\x0b", "\u2028".encode(), "\ufeff".encode(),
            "\u0301".encode(), b"\xed\xa0\x80", b"\xff", b'"', b"\\", b"\\u", b"\\ud800", b"[", b"{", b"}", b"<",
            b">", b"&", b"&#0;", b"&amp;", b"]]>", b"<!--", b"<!DOCTYPE d [<!ENTITY e 'ee'>]>", b"&e;",
            b"|t|", b"|a|", b"-DOCSTART-\tO\n", b"###MEDLINE:", b"T1\t", b"B-", b"I-", b"[" * 100_000,
            b"<a>" * 20_000, b"<document>", b"<passage><offset>", b"<document><id>1</id>")

positions = st.integers(min_value=0, max_value=1 << 16)
payloads = st.one_of(st.sampled_from(SPECIALS), st.binary(max_size=6),
                     st.text(max_size=6).map(str.encode))
operations = st.one_of(
    st.tuples(st.just("flip"), positions, st.integers(1, 255)),
    st.tuples(st.just("truncate"), positions),
    st.tuples(st.just("delete"), positions, st.integers(1, 40)),
    st.tuples(st.just("insert"), positions, payloads),
    st.tuples(st.just("line_delete"), positions),
    st.tuples(st.just("line_duplicate"), positions),
    st.tuples(st.just("line_swap"), positions, positions),
    st.tuples(st.just("field_swap"), positions, st.sampled_from(SEPARATORS), positions, positions),
    st.tuples(st.just("number"), positions, st.sampled_from(NUMBERS)),
)


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    """Apply the operations in turn; positions are taken modulo the current length, so any op applies."""
    for op, *args in ops:
        lines = data.split(b"\n")
        if op == "flip":
            if data:
                i = args[0] % len(data)
                data = data[:i] + bytes([data[i] ^ args[1]]) + data[i + 1:]
        elif op == "truncate":
            data = data[:args[0] % (len(data) + 1)]
        elif op == "delete":
            i = args[0] % (len(data) + 1)
            data = data[:i] + data[i + args[1]:]
        elif op == "insert":
            i = args[0] % (len(data) + 1)
            data = data[:i] + args[1] + data[i:]
        elif op == "line_delete":
            del lines[args[0] % len(lines)]
            data = b"\n".join(lines)
        elif op == "line_duplicate":
            i = args[0] % len(lines)
            data = b"\n".join(lines[:i + 1] + lines[i:])
        elif op == "line_swap":
            i, j = args[0] % len(lines), args[1] % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif op == "field_swap":
            line_no, sep, a, b = args
            i = line_no % len(lines)
            fields = lines[i].split(sep)
            a, b = a % len(fields), b % len(fields)
            fields[a], fields[b] = fields[b], fields[a]
            lines[i] = sep.join(fields)
            data = b"\n".join(lines)
        elif op == "number":
            numbers = list(NUMBER.finditer(data))
            if numbers:
                m = numbers[args[0] % len(numbers)]
                data = data[:m.start()] + args[1] + data[m.end():]
    return data


# --------------------------------------------------------------------------- the harness
def check(case: Case, workdir: Path, target: str, content: bytes) -> InputError | None:
    """Write the case's files, with `content` in place of file `target`, into the case's folder and read
    them: documents whose entities are spans of their text, or an InputError naming one of the files (which
    is returned). Every
    example writes the same file names, so each replaces all that the one before it wrote. A file is removed
    and written anew: truncating one that holds data makes ext4 flush it on close, 3 ms an example."""
    folder = workdir / case.name
    for name, seed in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_bytes(content if name == target else seed.encode("utf-8"))
    try:
        docs = case.read(folder)
    except InputError as err:
        names = {str(folder / name) for name in case.files} | {str((folder / name).parent) for name in case.files}
        assert any(name in str(err) for name in names), f"{err} names none of the files {names}"
        return err
    assert isinstance(docs, list)
    for doc in docs:
        assert isinstance(doc, Document) and isinstance(doc.id, str) and isinstance(doc.text, str)
        for ent in doc.entities:
            assert isinstance(ent.type, str) and ent.type, f"{doc.id}: entity {ent} without a type"
            if case.exact:
                assert ent.end <= len(doc.text) and ent.text == ent.surface(doc.text), (doc.id, ent)
        if case.exact or doc.text:
            doc.validate()
    return None


PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])
which = st.integers(min_value=0, max_value=1)  # which of a case's targets an example replaces


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_well_formed_input_reads(case, workdir):
    """The inputs the mutations start from are well-formed, so mutations reach past the first check."""
    for target in case.targets:
        check(case, workdir, target, case.files[target].encode("utf-8"))
    assert any(doc.entities for doc in case.read(workdir / case.name))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@PROPERTY
@given(index=which, content=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)))
def test_arbitrary_bytes(case, workdir, index, content):
    check(case, workdir, case.targets[index % len(case.targets)], content)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@PROPERTY
@given(index=which, ops=st.lists(operations, min_size=1, max_size=4))
def test_mutated_input(case, workdir, index, ops):
    target = case.targets[index % len(case.targets)]
    check(case, workdir, target, mutate(case.files[target].encode("utf-8"), ops))


# --------------------------------------------------------------------------- what the properties found
# Each input made a reader raise something other than FormatError before it was fixed; kept as explicit
# examples, with the error each now gives (None: documents are read).
DEEP = '{"id": "d1", "text": "x", "entities": ' + "[" * 100_000 + "}\n"
FOUND = [
    pytest.param("iob", "train.tsv", b"a\tO\n\xad\tO\n", r"train.tsv:2: not UTF-8 text: byte 0xad at column 1",
                 id="iob-not-utf8"),
    pytest.param("bioc", "c.xml", BIOC.replace("<offset>15<", "<offset>99999999999999999999<").encode(),
                 r"c.xml:document 21: passage at offset 99999999999999999999 leaves a gap", id="bioc-huge-offset"),
    pytest.param("bioc", "c.xml", BIOC.replace("<offset>15<", "<offset>1000000000<").encode(),
                 r"leaves a gap of 999999986 characters", id="bioc-gigabyte-offset"),
    pytest.param("bioc", "c.xml", BIOC.replace("UTF-8", "UTF-1").encode(), None, id="bioc-unknown-encoding"),
    pytest.param("ddi_xml", "d1.xml", DDI.replace("UTF-8", "UTF-1").encode(), None, id="ddi-unknown-encoding"),
    pytest.param("jsonl", "train.jsonl", b'{"id": "d1", "entities": [{"start": ' + b"9" * 5000 + b"}]}\n",
                 r"train.jsonl:1: invalid JSON: Exceeds the limit \(4300 digits\)", id="jsonl-5000-digits"),
    pytest.param("jsonl", "train.jsonl", DEEP.encode(), r"train.jsonl:1: invalid JSON: arrays or objects nested",
                 id="jsonl-deep"),
    pytest.param("jsonl", "train.jsonl",
                 b'{"id": "d1", "text": "x", "entities": [{"start": 0, "end": 1, "type": null}]}',
                 r"train.jsonl:1: bad entity .*: type None is not a non-empty string", id="jsonl-null-type"),
    pytest.param("scorer", "pred.jsonl", b'{"id": "s1", "text": 5, "entities": [{"start": 0, "end": 1, "type": "X"}]}',
                 r"pred.jsonl:1: document 's1': 'text' is not a string", id="scorer-text-not-string"),
    pytest.param("scorer", "pred.jsonl", b'{"id": "s1",\r "entities": []}\n\n{"id": "s9", "entities": []}\n',
                 r"pred.jsonl:3: document 's9' is not in the gold file", id="scorer-carriage-return-line"),
    pytest.param("rudrec", "r.json", RUDREC.replace('"start": 0, "end": 13', '"start": false, "end": 13').encode(),
                 r"r.json:2: entity .*: start and end must be integers", id="rudrec-false-offset"),
]


@pytest.mark.parametrize("name, target, content, error", FOUND)
def test_found_inputs(workdir, name, target, content, error):
    err = check(next(c for c in CASES if c.name == name), workdir, target, content)
    assert (err is None) if error is None else re.search(error, str(err)), err
