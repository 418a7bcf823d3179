"""Token-level readers (IOB, RuDReC, ChemProt PURE): tiny fixtures for every error and repair path,
then the real corpora against the counts in shared/datasets/SOURCES.md."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import MIRROR, needs_mirror
from data.corpus import Document, FormatError, type_counts
from data.readers.tokens import jnlpba_train_minus_devel, read_chemprot_pure, read_iob, read_rudrec


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def spans(doc: Document) -> list[tuple[int, int, str, str]]:
    return [(e.start, e.end, e.type, e.text) for e in doc.entities]


def raises_at(path: Path, line: int, match: str):
    """Expect a FormatError naming this file and line."""
    return pytest.raises(FormatError, match=rf"^{re.escape(str(path))}:{line}: .*{match}")


# --------------------------------------------------------------------------- IOB
def test_iob_sentences_become_documents_with_exact_offsets(tmp_path):
    path = write(tmp_path, "train.tsv", "Acute\tB-Disease\nrenal\tI-Disease\nfailure\tI-Disease\n.\tO\n\n"
                                        "\n\nAspirin\tB-Chemical\nhelps\tO\n")
    docs = read_iob(path)
    assert [d.id for d in docs] == ["train-1", "train-2"]
    first, second = docs
    assert first.text == "Acute renal failure ."
    assert first.tokens == [(0, 5), (6, 11), (12, 19), (20, 21)]
    assert first.sentences == [(0, 21)]
    assert spans(first) == [(0, 19, "Disease", "Acute renal failure")]
    assert second.text == "Aspirin helps" and spans(second) == [(0, 7, "Chemical", "Aspirin")]


def test_iob_space_separated_and_chosen_columns(tmp_path):
    path = write(tmp_path, "c.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n")
    assert [spans(d) for d in read_iob(path)] == [[(0, 2, "ORG", "EU")], [(0, 5, "PER", "Peter")]]
    assert [spans(d) for d in read_iob(path, tag_column=2)][0] == [(0, 2, "NP", "EU"), (3, 10, "VP", "rejects")]


def test_iob_document_markers(tmp_path):
    docstart = write(tmp_path, "devel.tsv", "-DOCSTART-\tO\n\nA\tB-DNA\n\nB\tO\n\n-DOCSTART-\tO\n\nC\tO\n")
    docs = read_iob(docstart)
    assert [(d.id, d.text, d.sentences) for d in docs] == [("devel-1", "A\nB", [(0, 1), (2, 3)]),
                                                          ("devel-2", "C", [(0, 1)])]
    medline = write(tmp_path, "task2.iob2", "###MEDLINE:111\n\nx\tO\n\n###MEDLINE:222\n\ny\tO\n\n"
                                            "###MEDLINE:111\n\nz\tB-protein\n")
    changes = Counter()
    assert [d.id for d in read_iob(medline, changes=changes)] == ["111", "222", "111#2"]
    assert changes == {"iob_duplicate_doc_id_suffixed": 1}


def test_iob_sentence_before_first_marker(tmp_path):
    path = write(tmp_path, "x.tsv", "a\tO\n\n-DOCSTART-\tO\n\nb\tO\n")
    with raises_at(path, 1, "before the first document marker"):
        read_iob(path)


def test_iob_bare_tags_take_default_type(tmp_path):
    path = write(tmp_path, "s800.tsv", "Homo\tB\nsapiens\tI\nand\tO\nmice\tB\n")
    assert spans(read_iob(path, default_type="species")[0]) == [(0, 12, "species", "Homo sapiens"),
                                                               (17, 21, "species", "mice")]
    with raises_at(path, 1, "no default_type"):
        read_iob(path)


@pytest.mark.parametrize("tag", ["E-Disease", "S-Disease", "B-", "X", "b-Disease"])
def test_iob_unknown_tag(tmp_path, tag):
    path = write(tmp_path, "t.tsv", f"a\tO\nb\t{tag}\n")
    with raises_at(path, 2, "unknown tag"):
        read_iob(path)


@pytest.mark.parametrize("content, line, match", [
    ("a\tO\nb\tO\tO\n", 2, "3 columns, expected 2"),
    ("a\tO\n\nb\n", 3, "expected a token and a tag"),
    ("a O\n\tO\n", 2, "empty token"),
])
def test_iob_wrong_columns(tmp_path, content, line, match):
    path = write(tmp_path, "t.tsv", content)
    with raises_at(path, line, match):
        read_iob(path)


def test_iob_missing_column(tmp_path):
    path = write(tmp_path, "t.tsv", "a\tO\n")
    with raises_at(path, 1, "no column 0 .token. or 2 .tag."):
        read_iob(path, tag_column=2)


@pytest.mark.parametrize("tags, line, previous", [
    (["O", "I-DNA"], 2, "'O'"),
    (["B-RNA", "I-DNA"], 2, "'B-RNA'"),
    (["I-DNA", "I-DNA"], 1, "the sentence start"),
])
def test_iob_invalid_sequence_is_an_error(tmp_path, tags, line, previous):
    path = write(tmp_path, "t.tsv", "".join(f"w{i}\t{t}\n" for i, t in enumerate(tags)))
    with raises_at(path, line, f"invalid IOB2: 'I-DNA' after {previous}"):
        read_iob(path)


def test_iob_invalid_sequence_repair_opens_entities_and_counts(tmp_path):
    path = write(tmp_path, "t.tsv", "a\tI-DNA\nb\tI-DNA\nc\tO\nd\tI-DNA\ne\tB-RNA\nf\tI-DNA\ng\tI-RNA\n\nh\tI-RNA\n")
    changes = Counter()
    first, second = read_iob(path, invalid="repair", changes=changes)
    assert spans(first) == [(0, 3, "DNA", "a b"), (6, 7, "DNA", "d"), (8, 9, "RNA", "e"),
                            (10, 11, "DNA", "f"), (12, 13, "RNA", "g")]
    assert spans(second) == [(0, 1, "RNA", "h")]
    assert changes == {"iob_repair_I_opens_entity": 5}


def test_iob_rejects_unknown_policy(tmp_path):
    with pytest.raises(ValueError):
        read_iob(write(tmp_path, "t.tsv", "a\tO\n"), invalid="drop")


def test_train_minus_devel_matches_documents_by_token_sequences(tmp_path):
    train = read_iob(write(tmp_path, "train.iob2", "###MEDLINE:1\n\na\tO\n\nb\tO\n\n###MEDLINE:2\n\nc\tO\n\n"
                                                   "###MEDLINE:3\n\na\tO\n\nb\tO\n\n###MEDLINE:4\n\nd\tO\n"))
    devel = read_iob(write(tmp_path, "devel.tsv", "-DOCSTART-\tO\n\na\tB-DNA\n\nb\tO\n"))
    assert [d.id for d in jnlpba_train_minus_devel(train, devel)] == ["2", "3", "4"]  # one copy removed
    partial = read_iob(write(tmp_path, "partial.tsv", "-DOCSTART-\tO\n\na\tO\n"))
    with pytest.raises(ValueError, match="1 of 1 devel documents"):
        jnlpba_train_minus_devel(train, partial)


# --------------------------------------------------------------------------- RuDReC
def rudrec_line(name: str, sid: int, text: str, *entities: tuple[int, int, str, str]) -> str:
    ents = [{"start": s, "end": e, "entity_type": t, "entity_text": x, "concept_name": float("nan")}
            for s, e, t, x in entities]
    return json.dumps({"file_name": name, "text": text, "entities": ents, "sentence_id": sid}) + "\n"


def test_rudrec_groups_sentences_by_review(tmp_path):
    path = write(tmp_path, "r.json", rudrec_line("2.tsv", 1, "Пила аспирин.\n", (5, 12, "Drugname", "аспирин"))
                 + rudrec_line("1.tsv", 0, "Одна.\n")
                 + rudrec_line("2.tsv", 0, "Болела голова.\n", (0, 13, "DI", "Болела голова")))
    assert "NaN" in path.read_text(encoding="utf-8")
    docs = read_rudrec(path)
    assert [d.id for d in docs] == ["2.tsv", "1.tsv"]
    review = docs[0]
    assert review.text == "Болела голова.\nПила аспирин.\n"
    assert review.sentences == [(0, 14), (15, 28)]
    assert review.tokens == []
    assert spans(review) == [(0, 13, "DI", "Болела голова"), (15 + 5, 15 + 12, "Drugname", "аспирин")]


def test_rudrec_policies_are_counted(tmp_path):
    path = write(tmp_path, "r.json", rudrec_line("1.tsv", 0, "Но я Гриппферон", (2, 9, "Drugname", " я Грип"))
                 + rudrec_line("1.tsv", 1, "Ок.\n"))
    changes = Counter()
    doc, = read_rudrec(path, changes=changes)
    assert doc.text == "Но я Гриппферон\nОк.\n" and doc.sentences == [(0, 15), (16, 19)]
    assert spans(doc) == [(3, 9, "Drugname", "я Грип")]
    assert changes == {"rudrec_line_break_added": 1, "rudrec_entity_whitespace_trimmed": 1}


@pytest.mark.parametrize("second_line, match", [
    ('{"file_name": "1.tsv", "text": \n', "invalid JSON"),
    ('["not", "an", "object"]\n', "expected an object"),
    (rudrec_line("1.tsv", 1, "abc\n", (1, 9, "DI", "bc")), "offsets outside the sentence"),
    (rudrec_line("1.tsv", 1, "abc\n", (1, 3, "DI", "b")), "the text at its offsets is 'bc'"),
    (rudrec_line("1.tsv", 0, "abc\n"), "sentence_id 0 repeated"),
])
def test_rudrec_errors(tmp_path, second_line, match):
    path = write(tmp_path, "r.json", rudrec_line("1.tsv", 0, "x\n") + second_line)
    with raises_at(path, 2, match):
        read_rudrec(path)


# --------------------------------------------------------------------------- ChemProt PURE
def pure_line(doc_key: str, sentences: list[list[str]], ner: list[list]) -> str:
    return json.dumps({"doc_key": doc_key, "sentences": sentences, "ner": ner, "relations": [[]] * len(ner)}) + "\n"


def test_chemprot_pure_document_level_token_indices(tmp_path):
    path = write(tmp_path, "dev.json", pure_line("9", [["Aspirin", "inhibits", "COX", "-", "1", "."],
                                                       ["COX", "binds", "."]],
                                                 [[[0, 0, "CHEMICAL"], [2, 4, "GENE"]], [[6, 6, "GENE"]]]))
    doc, = read_chemprot_pure(path)
    assert doc.id == "9"
    assert doc.text == "Aspirin inhibits COX - 1 .\nCOX binds ."
    assert doc.sentences == [(0, 26), (27, 38)] and len(doc.tokens) == 9
    assert spans(doc) == [(0, 7, "CHEMICAL", "Aspirin"), (17, 24, "GENE", "COX - 1"), (27, 30, "GENE", "COX")]


@pytest.mark.parametrize("second_line, match", [
    ('{"doc_key": "2", \n', "invalid JSON"),
    (pure_line("2", [["a", "b"]], [[[1, 2, "GENE"]]]), r"document '2', ner\[0\]\[0\] \[1, 2, 'GENE'\]: token indices"),
    (pure_line("2", [["a"], ["b"]], [[], [[0, 0, "GENE"]]]), r"ner\[1\]\[0\].*outside sentence 1"),
    (pure_line("2", [["a", "b"]], [[[1, 0, "GENE"]]]), "token indices outside"),
    (pure_line("2", [["a"]], [[[0, "GENE"]]]), "expected .start_token, end_token, type."),
    (pure_line("2", [["a"]], []), "one ner list per sentence"),
    (pure_line("1", [["a"]], [[]]), "duplicate doc_key '1'"),
])
def test_chemprot_pure_errors(tmp_path, second_line, match):
    path = write(tmp_path, "dev.json", pure_line("1", [["x"]], [[]]) + second_line)
    with raises_at(path, 2, match):
        read_chemprot_pure(path)


# --------------------------------------------------------------------------- real corpora
JNLPBA_TRAIN = {"protein": 30269, "DNA": 9533, "cell_type": 6718, "cell_line": 3830, "RNA": 951}
JNLPBA_TEST = {"protein": 5067, "cell_type": 1921, "DNA": 1056, "cell_line": 500, "RNA": 118}
JNLPBA_DEVEL = {"protein": 2466, "DNA": 1052, "cell_type": 526, "cell_line": 400, "RNA": 107}

# file -> (default_type, documents, sentences, tokens, entities per type, changes); all read with
# invalid="error", so none of them holds an invalid IOB2 sequence.
IOB_EXPECTED = {
    "ncbi_disease/iob_mtl/train.tsv": (None, 5424, 5424, 135701, {"Disease": 5134}, {}),
    "bc5cdr/iob_mtl/BC5CDR-IOB/train.tsv": (None, 4560, 4560, 118170, {"Chemical": 5203, "Disease": 4182}, {}),
    "bc2gm/iob_mtl/train.tsv": (None, 12574, 12574, 355405, {"GENE": 15197}, {}),
    "linnaeus/iob_mtl/train.tsv": (None, 11935, 11935, 280960, {"Species": 2119}, {}),
    "s800/iob_biobert/train.tsv": ("species", 5733, 5733, 147291, {"species": 2557}, {}),
    "jnlpba/original/train/Genia4ERtask2.iob2": (None, 2000, 18546, 492551, JNLPBA_TRAIN,
                                                 {"iob_duplicate_doc_id_suffixed": 1}),
    "jnlpba/original/test/Genia4EReval2.iob2": (None, 404, 3856, 101039, JNLPBA_TEST,
                                                {"iob_duplicate_doc_id_suffixed": 2}),
    "jnlpba/iob_mtl/devel.tsv": (None, 200, 1739, 47461, JNLPBA_DEVEL, {}),
}


@pytest.fixture(scope="module")
def mirror():
    """Read a mirror file once per module: (documents, changes counted while reading)."""
    cache: dict[str, tuple[list[Document], Counter]] = {}

    def read(rel: str) -> tuple[list[Document], Counter]:
        if rel not in cache:
            changes = Counter()
            if rel.startswith("rudrec/"):
                docs = read_rudrec(MIRROR / rel, changes=changes)
            elif rel.startswith("chemprot/"):
                docs = read_chemprot_pure(MIRROR / rel)
            else:
                docs = read_iob(MIRROR / rel, default_type=IOB_EXPECTED[rel][0], changes=changes)
            cache[rel] = docs, changes
        return cache[rel]
    return read


def check_offsets(docs: list[Document]) -> None:
    """Entity texts agree with the text, lie inside one sentence and, where there are tokens, on token edges."""
    for doc in docs:
        doc.validate()
        starts, ends = {s for s, _ in doc.tokens}, {e for _, e in doc.tokens}
        for ent in doc.entities:
            assert any(s <= ent.start and ent.end <= e for s, e in doc.sentences), (doc.id, ent)
            assert not doc.tokens or (ent.start in starts and ent.end in ends), (doc.id, ent)


@needs_mirror
@pytest.mark.parametrize("rel", IOB_EXPECTED)
def test_real_iob_counts(mirror, rel):
    _, n_docs, n_sents, n_tokens, types, expected_changes = IOB_EXPECTED[rel]
    docs, changes = mirror(rel)
    assert len(docs) == n_docs
    assert sum(len(d.sentences) for d in docs) == n_sents
    assert sum(len(d.tokens) for d in docs) == n_tokens
    assert type_counts(docs) == types
    assert changes == expected_changes
    assert len({d.id for d in docs}) == n_docs
    check_offsets(docs)


@needs_mirror
def test_real_jnlpba_ids_and_mtl_train(mirror):
    train, _ = mirror("jnlpba/original/train/Genia4ERtask2.iob2")
    test, _ = mirror("jnlpba/original/test/Genia4EReval2.iob2")
    devel, _ = mirror("jnlpba/iob_mtl/devel.tsv")
    assert train[0].id == "95369245" and "97218353#2" in {d.id for d in train}
    assert {"98281994#2", "98282479#2"} <= {d.id for d in test}
    assert devel[0].id == "devel-1"
    mtl_train = jnlpba_train_minus_devel(train, devel)
    assert mtl_train == train[:1800]  # the devel abstracts are the last 200 training abstracts
    assert sum(len(d.sentences) for d in mtl_train) == 18546 - 1739
    assert type_counts(mtl_train) == Counter(JNLPBA_TRAIN) - Counter(JNLPBA_DEVEL)


@needs_mirror
def test_real_rudrec(mirror):
    docs, changes = mirror("rudrec/rudrec_annotated.json")
    assert len(docs) == 500 and sum(len(d.sentences) for d in docs) == 4809
    assert type_counts(docs) == {"DI": 1401, "Drugname": 1043, "Drugform": 836, "ADR": 720,
                                 "Drugclass": 330, "Finding": 236}
    assert changes == {"rudrec_entity_whitespace_trimmed": 2}  # every sentence text already ends with "\n"
    assert all(e.text == e.text.strip() for d in docs for e in d.entities)
    check_offsets(docs)


@needs_mirror
@pytest.mark.parametrize("split, n_docs, n_sents, types", [
    ("dev", 327, 3360, {"CHEMICAL": 4194, "GENE": 4221}),
    ("test", 800, 8179, {"CHEMICAL": 10761, "GENE": 9998}),
])
def test_real_chemprot(mirror, split, n_docs, n_sents, types):
    docs, _ = mirror(f"chemprot/end2end_pure_json/{split}.json")
    assert len(docs) == n_docs and sum(len(d.sentences) for d in docs) == n_sents
    assert type_counts(docs) == types
    check_offsets(docs)
