from collections import Counter

import pytest
from hypothesis import given, strategies as st
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Tokens

from data.bio import describe_changes, from_bio, sentence_tokens, to_bio, write_iob
from data.corpus import Document, Entity, Relation


def decode(doc, tags_per_sentence):
    """All entities of a document read back from its per-sentence tags."""
    return [ent for toks, tags in zip(sentence_tokens(doc), tags_per_sentence)
            for ent in from_bio(toks, tags, doc.text)]


def flat(doc, **policies):
    changes = Counter()
    tags = to_bio(doc, changes=changes, **policies)
    return [t for sent in tags for t in sent], changes


def ents(*spans):
    return [Entity(frags if isinstance(frags[0], tuple) else (frags,), type_, "") for frags, type_ in spans]


# --- round trip ---------------------------------------------------------------------------------------

PIECES = ["BRCA1", "cancer", "The", "e.g.", "Fig.", "J.", "(", ")", "'s", "-", "/", ",", ".", "Ж", "ab",
          " ", " ", "\n"]


@st.composite
def flat_documents(draw):
    """Texts with non-overlapping, continuous entities anywhere (inside words too), never on whitespace."""
    text = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=30)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=10))))
    entities = []
    for s, e in zip(cuts, cuts[1:]):
        s, e = s + len(text[s:e]) - len(text[s:e].lstrip()), s + len(text[s:e].rstrip())
        if e > s and draw(st.booleans()):
            entities.append(Entity.span(s, e, draw(st.sampled_from(["Gene", "Disease"])), text[s:e]))
    return Document("d", text, entities)


@given(flat_documents())
def test_round_trip_without_overlaps_or_discontinuities(doc):
    changes = Counter()
    decoded = decode(doc, to_bio(doc, changes=changes))
    assert changes == Counter()
    assert decoded == sorted(doc.entities)
    assert [e.text for e in decoded] == [e.text for e in sorted(doc.entities)]


# --- policies on hand-made nested and discontinuous documents -----------------------------------------

NESTED = Document("n", "breast cancer gene 1 protein",
                  ents(((0, 13), "Disease"), ((7, 28), "Gene"), ((14, 18), "Gene")))


def test_longest_first_keeps_the_longest():
    tags, changes = flat(NESTED)
    assert tags == ["O", "B-Gene", "I-Gene", "I-Gene", "I-Gene"]
    assert changes == Counter(overlap_dropped=2)


def test_first_keeps_the_earliest():
    tags, changes = flat(NESTED, overlap_policy="first")
    assert tags == ["B-Disease", "I-Disease", "B-Gene", "O", "O"]
    assert changes == Counter(overlap_dropped=1)


COORDINATED = Document("c", "breast and ovarian cancer",
                       ents((((0, 6), (19, 25)), "Disease"), ((11, 25), "Disease")))


@pytest.mark.parametrize("policy, tags, changes", [
    ("first_fragment", ["B-Disease", "O", "B-Disease", "I-Disease"], {"discontinuous_first_fragment": 1}),
    ("span", ["B-Disease", "I-Disease", "I-Disease", "I-Disease"], {"discontinuous_spanned": 1, "overlap_dropped": 1}),
    ("drop", ["O", "O", "B-Disease", "I-Disease"], {"discontinuous_dropped": 1}),
])
def test_discontinuous_policies(policy, tags, changes):
    assert flat(COORDINATED, discontinuous_policy=policy) == (tags, Counter(changes))


def test_boundaries_snap_to_given_tokens_and_are_counted():
    doc = Document("b", "IL-2 receptor binds", ents(((0, 2), "Gene"), ((5, 14), "Gene")),
                   sentences=[(0, 19)], tokens=[(0, 4), (5, 13), (14, 19)])
    tags, changes = flat(doc)
    assert tags == ["B-Gene", "B-Gene", "O"]
    assert changes == Counter(boundary_expanded=1, whitespace_trimmed=1)


def test_entities_that_cannot_be_tagged_are_counted_not_lost():
    doc = Document("x", "a b. C d", ents(((2, 6), "T"), ((1, 2), "T"), ((7, 8), "T"), ((7, 8), "T")),
                   sentences=[(0, 4), (5, 8)])  # a given segmentation that cuts the first entity
    tags, changes = flat(doc)
    assert tags == ["O", "O", "O", "O", "B-T"]
    assert changes == Counter(crosses_sentence_dropped=1, no_token_dropped=1, duplicate_merged=1)


def test_unknown_policy_is_an_error():
    with pytest.raises(ValueError, match="overlap policy"):
        to_bio(NESTED, overlap_policy="shortest")
    with pytest.raises(ValueError, match="discontinuous policy"):
        to_bio(NESTED, discontinuous_policy="merge")


# --- decoding -----------------------------------------------------------------------------------------

def test_strict_and_lenient_on_invalid_sequences():
    text = "a b c d e"
    tokens = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    tags = ["I-A", "I-A", "B-A", "I-B", "I-B"]
    strict, lenient = Counter(), Counter()
    assert [(e.start, e.end, e.type) for e in from_bio(tokens, tags, text, "strict", strict)] == [(4, 5, "A")]
    assert [(e.start, e.end, e.type, e.text) for e in from_bio(tokens, tags, text, "lenient", lenient)] == [
        (0, 3, "A", "a b"), (4, 5, "A", "c"), (6, 9, "B", "d e")]
    assert strict == Counter(inside_ignored=4)
    assert lenient == Counter(inside_opened=2)


tag_sequences = st.lists(st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B", "B-X-Y", "I-X-Y"]), max_size=12)


@given(tag_sequences)
def test_decoding_agrees_with_seqeval(tags):
    tokens = [(2 * i, 2 * i + 1) for i in range(len(tags))]
    text = " ".join("w" * len(tags)) if tags else ""
    got = {mode: [(e.type, e.start // 2, e.end // 2) for e in from_bio(tokens, tags, text, mode)]
           for mode in ("strict", "lenient")}
    assert got["lenient"] == [(t, s, e) for t, s, e in get_entities(tags)]
    assert got["strict"] == [(e.tag, e.start, e.end - 1) for e in Tokens(tags, IOB2).entities]


def test_decoding_rejects_malformed_input():
    with pytest.raises(ValueError, match="BIO tag"):
        from_bio([(0, 1)], ["E-A"], "a")
    with pytest.raises(ValueError, match="BIO tag"):
        from_bio([(0, 1)], ["B-"], "a")
    with pytest.raises(ValueError, match="tokens"):
        from_bio([(0, 1)], [], "a")
    with pytest.raises(ValueError, match="mode"):
        from_bio([], [], "", mode="loose")


# --- IOB files ----------------------------------------------------------------------------------------

def test_write_iob_layout_and_report(tmp_path):
    docs = [Document("1", "Parkinson's disease. It", [Entity.span(0, 19, "Disease")]), COORDINATED,
            Document("empty", "  ")]
    changes = write_iob(docs, tmp_path / "out.iob")
    assert (tmp_path / "out.iob").read_text(encoding="utf-8") == (
        "-DOCSTART-\tO\n\n"
        "Parkinson\tB-Disease\n'\tI-Disease\ns\tI-Disease\ndisease\tI-Disease\n.\tO\n\nIt\tO\n\n"
        "-DOCSTART-\tO\n\n"
        "breast\tB-Disease\nand\tO\novarian\tB-Disease\ncancer\tI-Disease\n\n"
        "-DOCSTART-\tO\n\n")
    assert changes == Counter(discontinuous_first_fragment=1)
    assert describe_changes(changes) == "BIO flattening changed: discontinuous entities cut to their first fragment: 1"
    assert describe_changes(Counter()) == "BIO flattening changed no entity"


def test_convert_cli_writes_iob_and_reports(tmp_path, monkeypatch, capsys):
    from data import convert
    monkeypatch.setattr(convert, "load", lambda name, split: [Document(NESTED.id, NESTED.text, NESTED.entities)])
    convert.main(["toy", "--split", "train", "--to", "iob", "--out", str(tmp_path / "t.iob")])
    assert "overlapping entities dropped: 2" in capsys.readouterr().err
    assert "gene\tI-Gene" in (tmp_path / "t.iob").read_text(encoding="utf-8")


def test_brat2iob_cli_uses_the_same_writer(tmp_path, monkeypatch, capsys):
    from data import brat2iob
    monkeypatch.setattr(brat2iob, "read_brat", lambda directory: [Document(COORDINATED.id, COORDINATED.text,
                                                                           COORDINATED.entities)])
    brat2iob.main(["--ann-dir", "unused", "--out", str(tmp_path / "b.iob"), "--discontinuous-policy", "drop"])
    assert "discontinuous entities dropped: 1" in capsys.readouterr().err
    assert "breast\tO" in (tmp_path / "b.iob").read_text(encoding="utf-8")


def test_write_iob_counts_the_relations_it_cannot_keep(tmp_path):
    aspirin, pain = Entity(((0, 7),), "Chemical", "Aspirin"), Entity(((14, 18),), "Disease", "pain")
    doc = Document("d", "Aspirin eases pain.", [aspirin, pain],
                   relations=[Relation("treats", aspirin, pain), Relation("CID", "D001241", "D010146")])
    changes = write_iob([doc], tmp_path / "d.iob")
    assert changes["relations_dropped"] == 2
    assert "relations left out (IOB has no place for them): 2" in describe_changes(changes)
