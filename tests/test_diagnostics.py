import json

import pytest

from data.corpus import Document, Entity
from data.llm.formats import get_format
from eval.diagnostics import diagnose, summarise

TYPES = ("Chemical", "Disease")


def obj(text, type_, start=None, end=None):
    out = {"text": text, "type": type_}
    if start is not None:
        out.update(start=start, end=end)
    return out


# Only the second "aspirin" is annotated.
A = Document("A", "aspirin and aspirin caused cancer.",
             [Entity.span(12, 19, "Chemical", "aspirin"), Entity.span(27, 33, "Disease", "cancer")])
B = Document("B", "No entities here.")
C = Document("C", "Nothing here either.")
D = Document("D", "No answer for this one.")
JSON_OUTPUTS = {
    "A": json.dumps([obj("aspirin", "Chemical", 0, 7),       # offsets hold, but not the gold occurrence
                     obj("cancer", "Disease", 27, 33),       # right
                     obj("ibuprofen", "Chemical", 0, 9),     # hallucinated (compliant, offsets wrong)
                     obj("cancer", "Drug", 27, 33),          # unknown type: not compliant
                     obj("Cancer", "Disease")]),             # no offsets: not compliant; surplus
    "B": "Sorry, I cannot help with that.",
    "C": "[]",
}


@pytest.fixture(scope="module")
def json_report():
    return diagnose([A, B, C, D], JSON_OUTPUTS, "json", TYPES)


def test_parse_rate_counts_well_formed_outputs_and_missing_ones(json_report):
    assert json_report["documents"] == 4 and json_report["missing_outputs"] == 1
    assert json_report["parse_rate"] == 2 / 4  # A and C


def test_hallucination_rate_is_per_predicted_mention(json_report):
    assert json_report["mentions"] == 5
    assert json_report["hallucination_rate"] == 1 / 5


def test_boundary_accuracy_compares_offsets_of_predictions_matching_a_gold_text_and_type(json_report):
    assert json_report["boundary_accuracy"] == 1 / 2  # "cancer" right, "aspirin" at the wrong occurrence


def test_format_compliance_counts_unreadable_pieces_and_not_empty_answers(json_report):
    assert json_report["format_compliance"] == 3 / 6  # 3 compliant of A's 5 objects and B's unreadable text
    assert json_report["offset_accuracy"] == 3 / 4  # "ibuprofen" 0-9 does not hold


def test_per_document_variants_average_over_documents(json_report):
    per_doc = json_report["per_document"]
    assert per_doc["hallucination_rate"] == 1 / 5 and per_doc["boundary_accuracy"] == 1 / 2
    assert per_doc["format_compliance"] == (3 / 5 + 1.0) / 2  # A and the empty answer of C
    assert per_doc["averaged_over"] == {"hallucination_rate": 1, "boundary_accuracy": 1, "format_compliance": 2}


def test_counts_say_what_was_dropped(json_report):
    assert json_report["counts"] == {"hallucinated": 1, "invalid_type": 1, "surplus": 1, "unparsed": 1}


def test_string_formats_report_hallucinated_and_normalised_mentions():
    doc = Document("E", "Aspirin and aspirin caused cancer.",
                   [Entity.span(0, 7, "Chemical"), Entity.span(12, 19, "Chemical"), Entity.span(27, 33, "Disease")])
    out = "Chemical: aspirin, ASPIRIN, ibuprofen\nDisease: cancer\nGene: IL-2"
    report = diagnose([doc], {"E": out}, "typed", TYPES)
    assert report["mentions"] == 5 and report["hallucination_rate"] == 2 / 5  # ibuprofen, IL-2
    assert report["normalised_rate"] == 1 / 5  # ASPIRIN
    assert report["boundary_accuracy"] == 1.0 and report["format_compliance"] == 4 / 5
    assert report["parse_rate"] == 1.0 and report["offset_accuracy"] is None  # unknown types: compliance


def test_bio_mentions_with_words_not_in_the_input_are_hallucinated():
    doc = Document("F", "Aspirin eased pain .", [Entity.span(0, 7, "Chemical"), Entity.span(14, 18, "Disease")])
    out = "Aspirin B-Chemical\neased O\npain B-Disease\n. O\nibuprofen B-Chemical"
    report = diagnose([doc], {"F": out}, get_format("bio"), TYPES)
    assert report["hallucination_rate"] == 1 / 3 and report["boundary_accuracy"] == 1.0
    assert report["parse_rate"] == 0.0  # an extra word


def test_nothing_to_measure_is_none_and_unknown_documents_are_an_error():
    report = summarise([B], {"B": get_format("json").parse("[]", B.text, TYPES)})
    assert report["parse_rate"] == 1.0 and report["hallucination_rate"] is None
    assert report["boundary_accuracy"] is None and report["format_compliance"] is None
    assert report["per_document"]["format_compliance"] == 1.0
    with pytest.raises(ValueError, match="unknown"):
        diagnose([B], {"Z": "[]"}, "json", TYPES)
