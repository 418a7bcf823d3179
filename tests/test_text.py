from hypothesis import given, settings, strategies as st

import pytest

from data.corpus import Document, Entity
from collections import Counter

from data.text import first_sentences, merge_windows, segment, split_sentences, tokenize, windows

# Texts mixing words, biomedical punctuation, sentence ends, line breaks and non-ASCII letters.
PIECES = ["BRCA1", "cancer", "The", "e.g.", "Fig.", "et al.", "J.", "(", ")", "'s", "-", "/", ",", ".", "?",
          "3beta", "Ж", "é", "_", " ", " ", "  ", "\n", "\t", "\u00a0", "x"]
texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


def words(text, spans):
    return [text[s:e] for s, e in spans]


def test_tokenize_splits_punctuation_like_mtl():
    text = "Parkinson's disease; KH-domain (C/EBP) 3beta"
    assert words(text, tokenize(text)) == ["Parkinson", "'", "s", "disease", ";", "KH", "-", "domain",
                                           "(", "C", "/", "EBP", ")", "3beta"]


def test_tokenize_window_keeps_document_offsets():
    text = "skip this, take that."
    assert tokenize(text, 11) == [(11, 15), (16, 20), (20, 21)]
    assert words(text, tokenize(text, 5, 9)) == ["this"]


@given(texts)
def test_tokens_cover_every_non_space_character_once(text):
    tokens = tokenize(text)
    covered = [i for s, e in tokens for i in range(s, e)]
    assert covered == [i for i, c in enumerate(text) if not c.isspace()]
    assert all(e > s for s, e in tokens)


def test_split_sentences_breaks_and_abbreviations():
    text = ("Mutations were found by Smith et al. in 1999. The E. coli strain (see Fig. 2), e.g. K-12, grew!  "
            "Did it? (Yes.) 3 cases (P = 0. 02) were seen.\nA title without a period\n\n  Last line.  ")
    assert words(text, split_sentences(text)) == [
        "Mutations were found by Smith et al. in 1999.",
        "The E. coli strain (see Fig. 2), e.g. K-12, grew!",
        "Did it?",
        "(Yes.)",
        "3 cases (P = 0. 02) were seen.",
        "A title without a period",
        "Last line.",
    ]
    assert split_sentences("") == split_sentences(" \n ") == []


def test_split_sentences_never_cuts_an_entity():
    text = "The dose was 5 mg. Twice daily.\nOf the first line\nand the second. Done."
    dose = Entity.span(13, 24, "Dose")  # "5 mg. Twice"
    spanning = Entity(((39, 44), (54, 57)), "X")  # "first" ... "the": discontinuous, across the line break
    assert words(text, split_sentences(text)) == ["The dose was 5 mg.", "Twice daily.", "Of the first line",
                                                  "and the second.", "Done."]
    assert words(text, split_sentences(text, [dose, spanning])) == [
        "The dose was 5 mg. Twice daily.", "Of the first line\nand the second.", "Done."]


@st.composite
def texts_with_entities(draw):
    text = draw(texts)
    bounds = st.integers(0, max(len(text) - 1, 0))
    entities = []
    for _ in range(draw(st.integers(0, 4)) if text else 0):
        s = draw(bounds)
        e = draw(st.integers(s + 1, len(text)))
        entities.append(Entity.span(s, e, "T"))
    return text, entities


@given(texts_with_entities())
def test_sentences_cover_text_and_never_cut_entities(case):
    text, entities = case
    sentences = split_sentences(text, entities)
    covered = [i for s, e in sentences for i in range(s, e) if not text[i].isspace()]
    assert covered == [i for i, c in enumerate(text) if not c.isspace()]
    assert all(text[s:e] == text[s:e].strip() and e > s for s, e in sentences)
    assert all(e1 < s2 for (_, e1), (s2, _) in zip(sentences, sentences[1:]))
    for ent in entities:  # an entity's characters all lie in one sentence
        assert len({k for k, (s, e) in enumerate(sentences) if s < ent.end and ent.start < e}) <= 1


@given(texts_with_entities())
def test_segment_puts_every_entity_boundary_on_a_token_boundary(case):
    text, entities = case
    doc = segment(Document("d", text, entities))
    starts, ends = {s for s, _ in doc.tokens}, {e for _, e in doc.tokens}
    for ent in entities:
        for s, e in ent.fragments:
            assert text[s].isspace() or s in starts
            assert text[e - 1].isspace() or e in ends
    covered = [i for s, e in doc.tokens for i in range(s, e)]
    assert covered == [i for i, c in enumerate(text) if not c.isspace()]


def test_segment_keeps_existing_tokens_and_can_ignore_entities():
    text = "antiestrogen therapy. Next"
    doc = Document("d", text, [Entity.span(4, 12, "Chem")])
    assert words(text, segment(Document("d", text, doc.entities)).tokens)[:2] == ["anti", "estrogen"]
    blind = segment(Document("d", text, doc.entities), respect_entities=False)
    assert words(text, blind.tokens)[:2] == ["antiestrogen", "therapy"]
    given_tokens = Document("d", text, doc.entities, sentences=[(0, 26)], tokens=[(0, 20), (20, 21), (22, 26)])
    assert segment(given_tokens).tokens == [(0, 20), (20, 21), (22, 26)]
    assert given_tokens.sentences == [(0, 26)]


@settings(max_examples=200)
@given(st.integers(0, 60), st.integers(1, 12), st.data())
def test_windows_cover_everything_and_merge_back(n, max_len, data):
    stride = data.draw(st.integers(1, max_len))
    spans = windows(n, max_len, stride)
    assert sorted({i for s, e in spans for i in range(s, e)}) == list(range(n))
    assert all(0 < e - s <= max_len for s, e in spans)
    full = [f"tag{i}" for i in range(n)]
    assert merge_windows(spans, [full[s:e] for s, e in spans], n) == full


def test_merge_takes_each_item_from_its_most_central_window():
    spans = windows(6, 4, 2)
    assert spans == [(0, 4), (2, 6)]
    merged = merge_windows(spans, [["a"] * 4, ["b"] * 4], 6)
    # item 2 is one item from the first window's edge but at the second's; item 3 the other way round
    assert merged == ["a", "a", "a", "b", "b", "b"]


def test_windows_reject_bad_arguments_and_gaps():
    with pytest.raises(ValueError):
        windows(10, 4, 5)
    with pytest.raises(ValueError):
        windows(10, 0, 1)
    with pytest.raises(ValueError, match="item 3"):
        merge_windows([(0, 3)], [[1, 2, 3]], 4)
    with pytest.raises(ValueError):
        merge_windows([(0, 3)], [[1, 2]], 3)


def test_first_sentences_cuts_text_and_counts_entities_across_the_cut():
    text = "Gene A causes cancer. Both were seen. Later B mattered."
    #       0         1         2         3         4         5
    doc = Document("d", text, [Entity(((14, 20),), "Disease"),          # inside sentence 1
                               Entity(((27, 31), (44, 45)), "Disease"),  # discontinuous, across the cut
                               Entity(((44, 45),), "Gene")])             # in sentence 3
    changes = Counter()
    (cut,) = first_sentences([doc], 2, changes)
    assert cut.text == "Gene A causes cancer. Both were seen."
    assert cut.entities == [doc.entities[0]]
    assert changes == {"crosses_cap_dropped": 1}
    assert first_sentences([doc], 3, changes)[0] is doc and first_sentences([doc], None, changes) == [doc]


def test_first_sentences_keeps_given_sentences_and_tokens():
    doc = segment(Document("d", "One two. Three four. Five.", [Entity(((9, 14),), "X")]))
    (cut,) = first_sentences([doc], 2, Counter())
    assert cut.text == "One two. Three four." and cut.sentences == doc.sentences[:2]
    assert words(cut.text, cut.tokens) == ["One", "two", ".", "Three", "four", "."]
    assert cut.entities == doc.entities
