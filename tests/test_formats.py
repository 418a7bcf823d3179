import json
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from conftest import load_split, needs_mirror
from data.bio import from_bio, to_bio
from data.corpus import Document, Entity
from data.llm.formats import FORMATS, get_format
from data.registry import DATASETS
from data.text import tokenize

TYPES = ("Chemical", "Disease")
NESTED = {"nerel_bio"}  # corpora whose mentions nest: json/typed/list place with nested=True


def fmt(name, nested=False):
    return get_format(name, **({"nested": True} if nested and name != "bio" else {}))


def round_trip(f, unit, types):
    """Assert parse(serialise(unit)) == flatten(unit), cleanly; return what flattening changed."""
    changes = Counter()
    out = f.serialise(unit, types, changes)
    expected = f.flatten(unit, types)
    got = f.parse(out, unit[0], types)
    assert got.entities == expected, (f.name, out)
    assert [e.text for e in got.entities] == [e.text for e in expected]
    assert got.well_formed and got.unparsed == 0 and not got.counts, (f.name, out, got.counts)
    return changes


# --- every registry dataset ---------------------------------------------------------------------------

def sample(docs, budget=20_000):
    """Every k-th document, k chosen so that about `budget` characters are kept (deterministic)."""
    step = max(1, sum(len(d.text) for d in docs) // budget)
    return docs[::step]


@needs_mirror
@pytest.mark.parametrize("name", sorted(n for n in DATASETS if n != "raredis"))
def test_round_trip_on_every_dataset(name):
    ds = DATASETS[name]
    formats = [fmt(f, name in NESTED) for f in FORMATS]
    changes = {f.name: Counter() for f in formats}
    n_entities = Counter()
    for split in ds.splits:
        docs = load_split(name, split)
        assert {e.type for d in docs for e in d.entities} <= set(ds.types), "gold types missing from the registry"
        for doc in sample(docs):
            unit = (doc.text, doc.entities)
            n_entities["gold"] += len(doc.entities)
            n_entities["discontinuous"] += sum(e.discontinuous for e in doc.entities)
            for f in formats:
                changes[f.name] += round_trip(f, unit, ds.types)
    # JSON keeps offsets: only discontinuous entities and exact duplicates can change
    assert set(changes["json"]) <= {"discontinuous_first_fragment", "duplicate_merged"}
    assert changes["json"]["discontinuous_first_fragment"] == n_entities["discontinuous"]
    for f in ("typed", "typed_short", "list"):
        assert changes[f] == changes["typed"]
        # a string says which occurrence only by its rank; corpora leave some occurrences unannotated
        # (NCBI-disease: about 19 % of mentions at document level, mostly abbreviations)
        assert changes[f]["occurrence_reassigned"] <= 0.25 * n_entities["gold"]
        assert not changes[f]["unplaceable_dropped"]


# --- generated documents ------------------------------------------------------------------------------

PIECES = ["aspirin", "Aspirin", "cancer", "breast", "IL-2", "2,3-dichloro", ", ", ",", ":", '"', "'", "[", "]",
          "{", "}", "\\", "Ж", " ", " ", "\n", "\t", "\r", "\x85", "\u2028", "B-Disease", "O", "  "]


@st.composite
def units(draw):
    """Texts with entities anywhere: repeated, nested, overlapping, discontinuous, duplicated."""
    text = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=25)))
    entities = []
    for _ in range(draw(st.integers(0, 6))):
        cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), min_size=2, max_size=4))))
        frags = [(s, e) for s, e in zip(cuts[::2], cuts[1::2]) if s < e]
        if frags:
            entities.append(Entity(tuple(frags), draw(st.sampled_from(TYPES)),
                                   " ".join(text[s:e] for s, e in frags)))
    return text, entities


@settings(max_examples=150, deadline=None)
@given(units(), st.sampled_from(sorted(FORMATS)), st.booleans())
def test_round_trip_on_generated_units(unit, name, nested):
    round_trip(fmt(name, nested), unit, TYPES)


@settings(max_examples=60, deadline=None)
@given(units())
def test_json_and_bio_flatten_only_what_they_cannot_hold(unit):
    text, entities = unit
    flat = get_format("json").flatten(unit, TYPES)
    assert set(flat) == {Entity.span(*(e.fragments[0]), e.type) for e in entities}
    words = tokenize(text)
    tags = to_bio(Document("d", text, entities, [(0, len(text))] if words else [], words))
    assert get_format("bio").flatten(unit, TYPES) == sorted(from_bio(words, tags[0] if words else [], text))


def test_typed_lines_quote_mentions_that_would_not_survive_bare():
    text = 'breast, ovarian cancer and "quoted" 2,3-dichloro  x '
    ents = [Entity.span(0, 22, "Disease"), Entity.span(27, 35, "Chemical"), Entity.span(36, 48, "Chemical"),
            Entity.span(48, 51, "Chemical")]
    out = get_format("typed").serialise((text, ents), TYPES)
    assert out == 'Chemical: "\\"quoted\\"", 2,3-dichloro, "  x"\nDisease: "breast, ovarian cancer"'
    assert get_format("typed_short").serialise((text, []), TYPES) == ""
    assert get_format("typed").serialise((text, []), TYPES) == "Chemical:\nDisease:"


def test_type_order_is_the_given_order_and_foreign_gold_types_are_an_error():
    text, ents = "aspirin and cancer", [Entity.span(0, 7, "Chemical"), Entity.span(12, 18, "Disease")]
    order = ("Disease", "Chemical")
    assert get_format("typed").serialise((text, ents), order) == "Disease: cancer\nChemical: aspirin"
    assert list(json.loads(get_format("list").serialise((text, ents), order))) == list(order)
    with pytest.raises(ValueError, match="Chemical"):
        get_format("json").serialise((text, ents), ("Disease",))


# --- parsing real-looking model output ---------------------------------------------------------------

TEXT = "Aspirin and aspirin caused cancer. IL-2 rose."


def parse(name, output, types=TYPES):
    return get_format(name).parse(output, TEXT, types)


def spans(result):
    return [(e.start, e.end, e.type) for e in result.entities]


def test_json_prose_around_the_array_and_wrong_offsets():
    out = ('Here you go: [{"text": "aspirin", "type": "Chemical", "start": 0, "end": 7}, '
           '{"text": "aspirin", "type": "Chemical"}, {"text": "cancer", "type": "Disease", "start": 27, "end": 33}]'
           " Hope this helps [1].")
    r = parse("json", out)
    assert r.well_formed and r.unparsed == 0
    assert spans(r) == [(0, 7, "Chemical"), (12, 19, "Chemical"), (27, 33, "Disease")]
    assert [i.placement for i in r.items] == ["exact", "normalised", "stated"]  # copy by copy
    assert [i.compliant for i in r.items] == [True, False, True]


def test_json_truncated_output_keeps_complete_objects():
    r = parse("json", '[{"text": "cancer", "type": "Disease", "start": 27, "end": 33}, {"text": "IL-2", "ty')
    assert spans(r) == [(27, 33, "Disease")]
    assert not r.well_formed and r.unparsed == 1 and r.counts["truncated"] == 1


def test_json_unknown_types_hallucinations_and_junk_are_counted_not_kept():
    out = '[{"text": "IL-2", "type": "Gene"}, {"text": "ibuprofen", "type": "Chemical"}, 3, {"type": "Disease"}]'
    r = parse("json", out)
    assert r.entities == [] and r.well_formed
    assert r.invalid_type == 1 and r.hallucinated == 1 and r.unparsed == 2
    assert [i.placement for i in r.items] == ["exact", "hallucinated"]


def test_typed_lines_with_prose_repeats_unknown_types_and_an_unclosed_quote():
    out = ("Sure! Here are the entities:\nChemical: Aspirin, aspirin\nGene: IL-2\nDisease: cancer\n"
           'Chemical: "aspirin')
    r = parse("typed", out)
    assert spans(r) == [(0, 7, "Chemical"), (12, 19, "Chemical"), (27, 33, "Disease")]
    assert r.invalid_type == 1 and r.unparsed == 2 and not r.well_formed


def test_list_single_type_and_dict_with_tolerant_fallback():
    r = parse("list", "The chemicals are ['Aspirin', 'aspirin'].", ("Chemical",))
    assert spans(r) == [(0, 7, "Chemical"), (12, 19, "Chemical")] and r.well_formed
    r = parse("list", '["Aspirin", "aspirin", "IL-', ("Chemical",))  # truncated
    assert spans(r) == [(0, 7, "Chemical"), (12, 19, "Chemical")] and not r.well_formed
    assert r.counts["truncated"] == 1
    r = parse("list", '{"Chemical": ["aspirin"], "Disease": ["cancer"], "Gene": ["IL-2"]}')
    assert spans(r) == [(12, 19, "Chemical"), (27, 33, "Disease")] and r.invalid_type == 1
    r = parse("list", '{"Chemical": ["aspirin"], "Disease": ["cancer", ')  # broken dict
    assert spans(r) == [(12, 19, "Chemical"), (27, 33, "Disease")] and not r.well_formed
    r = parse("list", "No chemicals here.", ("Chemical",))
    assert r.entities == [] and r.unparsed == 1


def test_bio_lines_are_split_at_the_last_separator_and_aligned_to_the_input_words():
    lines = ["Aspirin:B-Chemical", "and O", "aspirin : B-Chemical", "caused O", "cancer B-Disease", ". O",
             "IL B-Gene", "- I-Gene", "2 I-Gene", "rose O", ": O", "garbage"]
    r = parse("bio", "\n".join(lines))
    assert spans(r) == [(0, 7, "Chemical"), (12, 19, "Chemical"), (27, 33, "Disease")]
    assert r.invalid_type == 1 and r.unparsed == 1 and not r.well_formed
    assert r.counts["unaligned_words"] == 2  # ":" and "garbage"; the missing final "." became O


def test_bio_missing_and_extra_words_do_not_shift_the_tags():
    r = parse("bio", "Aspirin B-Chemical\nand O\nthe O\naspirin B-Chemical\ncancer B-Disease")
    assert spans(r) == [(0, 7, "Chemical"), (12, 19, "Chemical"), (27, 33, "Disease")]


FUZZ_PIECES = ["[", "]", "{", "}", '"', "'", ":", ",", ", ", "\n", " ", "\\", "text", "type", "start", "end",
               "Chemical", "Disease", "B-", "I-", "O", "aspirin", "0", "7", "-1", "null", "true", "1e9", "\x85"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(st.sampled_from(FUZZ_PIECES), max_size=40).map("".join)),
       st.sampled_from(sorted(FORMATS)), st.sampled_from([TYPES, ("Chemical",)]))
def test_parsers_never_crash_and_return_valid_spans(output, name, types):
    r = get_format(name).parse(output, TEXT, types)
    for e in r.entities:
        assert e.type in types and 0 <= e.start < e.end <= len(TEXT) and e.text == TEXT[e.start:e.end]
    assert r.unparsed >= 0 and len(set(r.entities)) == len(r.entities)
