from hypothesis import given, strategies as st

from data.llm.align import Mention, normalise, place, whole_word


def spans(text, *mentions, nested=False):
    return [(p.span, p.how) for p in place(text, list(mentions), nested)]


def test_nth_copy_takes_nth_occurrence_never_the_first_find():
    text = "aspirin, then aspirin, then aspirin"
    got = spans(text, Mention("aspirin", "Chem"), Mention("aspirin", "Chem"))
    assert got == [((0, 7), "exact"), ((14, 21), "exact")]


def test_copies_are_counted_per_type():
    text = "HIV and HIV"
    got = spans(text, Mention("HIV", "Disease"), Mention("HIV", "Species"), Mention("HIV", "Disease"))
    assert got == [((0, 3), "exact"), ((0, 3), "exact"), ((8, 11), "exact")]


def test_whole_word_occurrences_come_first():
    text = "FIL binds IL, not FIL"
    assert spans(text, Mention("IL")) == [((10, 12), "exact")]
    assert whole_word("IL-2", 0, 2) and not whole_word("FIL", 1, 3)


def test_mention_inside_a_longer_placed_mention_goes_elsewhere():
    text = "breast cancer and cancer"
    got = spans(text, Mention("cancer", "D"), Mention("breast cancer", "D"))
    assert got == [((18, 24), "exact"), ((0, 13), "exact")]
    # nested corpora keep text order
    assert spans(text, Mention("cancer", "D"), Mention("breast cancer", "D"), nested=True)[0] == ((7, 13), "exact")


def test_result_does_not_depend_on_how_types_interleave():
    text = "DM and DM and DM"
    a = place(text, [Mention("DM", "Mod"), Mention("DM", "Spec"), Mention("DM", "Mod")])
    b = place(text, [Mention("DM", "Spec"), Mention("DM", "Mod"), Mention("DM", "Mod")])
    assert sorted((p.span, m) for p, m in zip(a, ["Mod", "Spec", "Mod"])) == \
        sorted((p.span, m) for p, m in zip(b, ["Spec", "Mod", "Mod"]))


def test_fallback_ignores_case_and_whitespace():
    text = "Interleukin - 2 ( IL - 2 ) was high"
    assert spans(text, Mention("IL-2")) == [((18, 24), "normalised")]
    assert spans(text, Mention("interleukin-2")) == [((0, 15), "normalised")]
    assert normalise(" A b\nC ") == "abc"


def test_exact_occurrences_are_used_before_the_fallback():
    text = "Aspirin and aspirin"
    got = spans(text, Mention("aspirin"), Mention("aspirin"))
    assert got == [((12, 19), "exact"), ((0, 7), "normalised")]
    # "Aspirin" and "aspirin" share their occurrences: no place is taken twice
    assert spans(text, Mention("Aspirin"), Mention("aspirin")) == [((0, 7), "exact"), ((12, 19), "exact")]


def test_absent_mentions_are_hallucinated_and_extra_copies_surplus():
    text = "aspirin once"
    got = spans(text, Mention("aspirin"), Mention("aspirin"), Mention("ibuprofen"), Mention("  "))
    assert got == [((0, 7), "exact"), (None, "surplus"), (None, "hallucinated"), (None, "hallucinated")]


def test_stated_offsets_are_kept_when_they_hold_and_claimed_first():
    text = "aspirin, aspirin, aspirin"
    got = spans(text, Mention("aspirin", stated=(99, 106)), Mention("aspirin", stated=(9, 16)),
                Mention("aspirin", stated=(9, 16)), Mention("aspirin"))
    assert got == [((0, 7), "exact"), ((9, 16), "stated"), (None, "duplicate"), ((18, 25), "exact")]


@st.composite
def texts_with_all_occurrences(draw):
    """A text of words and the mentions of every whole-word occurrence of a few chosen words."""
    words = draw(st.lists(st.sampled_from(["aspirin", "Aspirin", "IL-2", "cancer", "of", "FIL"]), max_size=20))
    text = " ".join(words)
    chosen = draw(st.sets(st.sampled_from(["aspirin", "IL-2", "cancer"])))
    expected, pos = [], 0
    for w in words:
        if w in chosen:
            expected.append((w, (pos, pos + len(w))))
        pos += len(w) + 1
    return text, expected


@given(texts_with_all_occurrences())
def test_mentions_of_every_occurrence_come_back_exactly(case):
    text, expected = case
    got = place(text, [Mention(w, "T") for w, _ in expected])
    assert [p.span for p in got] == [span for _, span in expected]
    assert all(p.how == "exact" for p in got)


@given(st.text(max_size=40), st.lists(st.tuples(st.text(max_size=6), st.sampled_from("ab"),
                                                st.none() | st.tuples(st.integers(-3, 45), st.integers(-3, 45))),
                                      max_size=8), st.booleans())
def test_placements_never_invent_offsets(text, raw, nested):
    mentions = [Mention(m, k, s) for m, k, s in raw]
    for m, p in zip(mentions, place(text, mentions, nested)):
        if p.span is None:
            continue
        s, e = p.span
        assert 0 <= s < e <= len(text)
        assert normalise(text[s:e]) == normalise(m.text)
