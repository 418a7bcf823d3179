"""encoders/relations.py, relation_main.py, relation_inference.py and run_relations.sh: candidate pairs (negatives
kept, none across sentences, DDI's listed pairs exactly, ChemProt's chemical-gene pairs), the marks at the right
offsets (nested, crossing and identical arguments), inputs cut around the marks, and MiniLM learning DDI
relations in a handful of steps, its predictions read back by eval/relations and by the inference CLI."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import launched, load_split, needs_mirror, slow
from data.corpus import NEGATIVE, Document, Entity, InputError, Relation, read_jsonl, write_jsonl
from encoders import relations
from encoders.relations import SCHEMES, Candidate

DDI, CHEMPROT = SCHEMES["ddi"], SCHEMES["chemprot"]


@pytest.fixture(scope="module")
def tokenizer():
    """A MiniLM tokenizer of this module's own: adding the marks changes it."""
    from transformers import AutoTokenizer

    from data.llm.models import resolve
    tok = AutoTokenizer.from_pretrained(resolve("minilm"))
    tok.add_tokens(sorted({w for s in (DDI, CHEMPROT) for m in relations.MARKINGS
                           for w in relations.special_words(s, m)}), special_tokens=True)
    return tok


def drug(text: str, word: str, type_: str = "drug", nth: int = 0) -> Entity:
    start = -1
    for _ in range(nth + 1):
        start = text.index(word, start + 1)
    return Entity.span(start, start + len(word), type_, word)


TWO = "Aspirin increases the effect of warfarin but not of heparin. Ibuprofen is safe."
A, W, H, I = (drug(TWO, w) for w in ("Aspirin", "warfarin", "heparin", "Ibuprofen"))


def two_sentences(relations_: list[Relation]) -> Document:
    return Document("d", TWO, [I, H, W, A], sentences=[(0, 60), (61, len(TWO))], relations=relations_)


# --------------------------------------------------------------------------- candidate pairs
def test_every_pair_of_a_sentence_is_a_candidate_and_unannotated_ones_are_negative():
    doc = two_sentences([Relation("effect", A, W)])
    got = [(c.arg1.text, c.arg2.text, c.label) for c in relations.candidates([doc], replace(DDI, pairs_given=False))]
    assert got == [("Aspirin", "warfarin", "effect"), ("Aspirin", "heparin", NEGATIVE),
                   ("warfarin", "heparin", NEGATIVE)]  # text order, nothing with Ibuprofen (next sentence)


def test_listed_pairs_are_the_candidates_and_their_negatives_are_kept():
    doc = two_sentences([Relation("advise", W, A), Relation(NEGATIVE, H, W)])  # DDI lists its pairs
    got = [(c.arg1.text, c.arg2.text, c.label, c.window) for c in relations.candidates([doc], DDI)]
    assert got == [("Aspirin", "warfarin", "advise", (0, 60)), ("warfarin", "heparin", NEGATIVE, (0, 60))]


def test_a_pair_across_sentences_is_not_built_but_counted_unless_the_window_allows_it():
    doc = two_sentences([Relation("effect", A, I)])
    scheme = relations.generic_scheme(["effect"], ["drug"])
    counts = Counter()
    pairs = relations.candidates([doc], scheme, counts=counts)
    assert all(I not in (c.arg1, c.arg2) for c in pairs) and len(pairs) == 6  # ordered: 3 x 2
    assert counts["relation_not_candidate"] == 1
    wide = relations.candidates([doc], scheme, window=1, counts=Counter())
    (across,) = [c for c in wide if (c.arg1, c.arg2) == (A, I)]
    assert across.label == "effect" and across.window == (0, len(TWO)) and len(wide) == 12


def test_chemprot_pairs_run_from_chemical_to_gene_and_overlaps_are_candidates():
    text = "Insulin receptor binds insulin and EGF."
    ins_receptor, ins = Entity.span(0, 16, "GENE", "Insulin receptor"), Entity.span(0, 7, "CHEMICAL", "Insulin")
    ins_gene, egf = Entity.span(23, 30, "GENE", "insulin"), Entity.span(35, 38, "GENE", "EGF")
    ins_chem = Entity.span(23, 30, "CHEMICAL", "insulin")
    doc = Document("c", text, [ins_receptor, ins, ins_gene, ins_chem, egf],
                   relations=[Relation("CPR:3", ins_chem, ins_receptor)])
    got = {(c.arg1.text, c.arg1.start, c.arg2.text, c.arg2.start): c.label for c in relations.candidates([doc], CHEMPROT)}
    assert got == {("Insulin", 0, "Insulin receptor", 0): NEGATIVE, ("Insulin", 0, "insulin", 23): NEGATIVE,
                   ("Insulin", 0, "EGF", 35): NEGATIVE, ("insulin", 23, "Insulin receptor", 0): "CPR:3",
                   ("insulin", 23, "insulin", 23): NEGATIVE, ("insulin", 23, "EGF", 35): NEGATIVE}


@needs_mirror
def test_ddi_and_chemprot_candidates_match_the_corpora():
    """DDI: exactly its listed pairs, from the registry and from a JSONL copy without sentences (the sentence
    rule gives them too, plus the one untyped positive the reader drops); ChemProt: every relation is a
    candidate among 6,298 dev pairs."""
    for split, n, positive in (("train", 27_791, 4_020), ("test_ddi", 5_716, 979)):
        docs = load_split("ddi", split)
        labels = Counter(c.label for c in relations.candidates(docs, DDI))
        assert sum(labels.values()) == n and n - labels[NEGATIVE] == positive
        bare = [Document(d.id, d.text, d.entities, relations=d.relations) for d in docs]
        assert [(c.arg1, c.arg2, c.label) for c in relations.candidates(bare, DDI)] == \
            [(c.arg1, c.arg2, c.label) for c in relations.candidates(docs, DDI)]
        unlisted = [Document(d.id, d.text, d.entities, d.sentences) for d in docs]
        assert len(relations.candidates(unlisted, DDI)) == n + (split == "train")
    counts = Counter()
    labels = Counter(c.label for c in relations.candidates(load_split("chemprot", "dev"), CHEMPROT, counts=counts))
    assert sum(labels.values()) == 6_298 and labels[NEGATIVE] == 6_298 - 1_373
    assert counts["relation_not_candidate"] == 0


# --------------------------------------------------------------------------- marks
def marked(text: str, a: Entity, b: Entity, marking: str, scheme=DDI) -> str:
    return relations.marked_text(text, Candidate(0, a, b, (0, len(text)), NEGATIVE), scheme, marking)


def test_marks_sit_at_the_arguments_offsets():
    assert marked(TWO[:60], A, W, "dummy") == "@DRUG$ increases the effect of @DRUG$ but not of heparin."
    assert marked(TWO[:60], A, W, "markers") == \
        "[E1]Aspirin[/E1] increases the effect of [E2]warfarin[/E2] but not of heparin."
    assert marked(TWO[:60], H, A, "markers") == \
        "[E2]Aspirin[/E2] increases the effect of warfarin but not of [E1]heparin[/E1]."
    window = Candidate(0, W, H, (18, 59), NEGATIVE)  # only the window is read
    assert relations.marked_text(TWO, window, DDI, "dummy") == "the effect of @DRUG$ but not of @DRUG$"


def test_nested_crossing_and_identical_arguments_keep_well_placed_marks():
    text = "the insulin receptor gene"
    outer, inner = Entity.span(4, 20, "GENE"), Entity.span(4, 11, "CHEMICAL")
    crossing = Entity.span(12, 25, "GENE")
    assert marked(text, inner, outer, "markers") == "the [E2][E1]insulin[/E1] receptor[/E2] gene"
    assert marked(text, outer, crossing, "markers") == "the [E1]insulin [E2]receptor[/E1] gene[/E2]"
    same = Entity.span(4, 11, "GENE")
    assert marked(text, inner, same, "markers") == "the [E1][E2]insulin[/E2][/E1] receptor gene"
    assert marked(text, inner, outer, "dummy", CHEMPROT) == "the @CHEMICAL-GENE$ gene"  # one token for both
    assert marked(text, inner, same, "dummy", CHEMPROT) == "the @CHEMICAL-GENE$ receptor gene"


def test_a_long_input_keeps_the_window_around_its_marks(tokenizer):
    text = " ".join(["and"] * 100 + ["Aspirin", "raises", "warfarin"] + ["and"] * 100)
    doc = Document("long", text, [drug(text, "Aspirin"), drug(text, "warfarin")], sentences=[(0, len(text))])
    enc = relations.encode([doc], tokenizer, DDI, "dummy", max_length=16)
    (ids,) = enc.input_ids
    assert enc.cut == 1 and len(ids) == 16
    assert tokenizer.convert_ids_to_tokens(ids)[6:10] == ["@DRUG$", "raises", "@DRUG$", "and"]
    assert relations.around_marks(list(range(10)), {0}, 4) == [0, 1, 2, 3]  # clamped at the edges
    assert relations.around_marks(list(range(10)), {8, 9}, 4) == [6, 7, 8, 9]


def test_marks_are_single_tokens_of_their_own(tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    from data.llm.models import resolve
    for word in relations.special_words(CHEMPROT, "dummy") + relations.special_words(DDI, "markers"):
        (token,) = tokenizer(word, add_special_tokens=False)["input_ids"]
        assert tokenizer.convert_ids_to_tokens(token) == word  # never split, never lower-cased
    model = BertForSequenceClassification(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                                                     intermediate_size=8, num_labels=2))  # MiniLM's vocabulary size
    fresh = type(tokenizer).from_pretrained(resolve("minilm"))
    relations.add_tokens(fresh, model, CHEMPROT, "dummy")
    assert model.get_input_embeddings().num_embeddings == len(fresh) == 30522 + 6  # 2 dummies, 4 joined


# --------------------------------------------------------------------------- decoding and scoring
def test_decoded_relations_round_trip_through_jsonl_and_eval_relations(tmp_path, tokenizer):
    from eval.relations import score

    doc = two_sentences([Relation("effect", A, W), Relation(NEGATIVE, A, H), Relation(NEGATIVE, W, H)])
    enc = relations.encode([doc], tokenizer, DDI)
    gold_ids = [DDI.labels.index(c.label) for c in enc.candidates]
    (pred,) = relations.decode(enc, gold_ids, DDI.labels)
    assert pred.relations == [Relation("effect", A, W)] and pred.entities == doc.entities  # negatives left out
    write_jsonl([pred], tmp_path / "p.jsonl", with_text=False)
    assert score([doc], read_jsonl(tmp_path / "p.jsonl", require_text=False), "ddi").micro.f1 == 1.0
    (wrong,) = relations.decode(enc, [DDI.labels.index("int")] * 3, DDI.labels)
    micro = score([doc], [wrong], "ddi").micro
    assert (micro.tp, micro.fp, micro.fn) == (0, 3, 1)


def test_predict_logits_pads_each_batch_to_its_longest_input(tokenizer):
    class Lengths:  # a stand-in model: its "logits" are each input's length and its mask's sum
        config = type("C", (), {"num_labels": 2})()

        def parameters(self):
            import torch
            yield torch.zeros(1)

        def eval(self):
            return self

        def __call__(self, input_ids, attention_mask):
            import torch
            return type("O", (), {"logits": torch.stack([(input_ids != 0).sum(1), attention_mask.sum(1)], 1)})()

    enc = relations.Encoded([], [], [[5] * n for n in (3, 9, 1, 4)], 0)
    assert np.array_equal(relations.predict_logits(Lengths(), enc, 0, max_tokens=12), [[3, 3], [9, 9], [1, 1], [4, 4]])


# --------------------------------------------------------------------------- scripts
def run_main(*argv: str):
    from encoders import relation_main
    return relation_main.main(*relation_main.parse_args(list(argv)))


def test_a_corpus_without_train_or_with_concept_relations_says_so(tmp_path):
    with pytest.raises(InputError, match="chemprot has no train split in the registry.*--datasets_path"):
        run_main("--dataset_name", "chemprot", "--output_dir", str(tmp_path / "c"))
    doc = Document("b", "Cocaine and seizures.", [Entity.span(0, 7, "Chemical", "Cocaine", ("D003042",))],
                   relations=[Relation("CID", "D003042", "D012640")])
    for split in ("train", "dev", "test"):
        write_jsonl([doc], tmp_path / "folder" / f"{split}.jsonl")
    with pytest.raises(InputError, match="relates concept ids"):
        run_main("--dataset_name", "cdr", "--datasets_path", str(tmp_path / "folder"), "--output_dir",
                 str(tmp_path / "b"))


@pytest.mark.parametrize("profile, expected", [
    ("paper", {"model_name": "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext", "learning_rate": 2e-5,
               "per_device_train_batch_size": 32, "num_train_epochs": 5, "max_length": 128, "marking": "dummy",
               "max_train_docs": None}),
    ("default", {"model_name": "minilm", "learning_rate": 1e-4, "per_device_train_batch_size": 32,
                 "num_train_epochs": 3, "max_length": 128, "max_train_docs": 60, "max_eval_docs": 50}),
])
def test_launcher_passes_blurbs_settings(profile, expected):
    runs = launched("encoders/run_relations.sh", PROFILE=profile, CHEMPROT_DIR="/corpora/chemprot")
    assert [(args.dataset_name, args.datasets_path and str(args.datasets_path)) for args, _ in runs] == \
        [("ddi", None), ("chemprot", "/corpora/chemprot")]
    for resolved in runs:
        assert {k: getattr(obj, k) for obj in resolved for k in expected if hasattr(obj, k)} == expected


# --------------------------------------------------------------------------- training
@slow
@needs_mirror
def test_minilm_learns_ddi_relations_and_its_predictions_read_back(tmp_path):
    """A handful of steps (2 epochs of 8-pair batches) on 160 DDI training sentences (bench/relation_accuracy.py's
    sample: relations are 15 % of DDI's pairs, too few for a few steps to predict any) beat the best trivial
    classifier on 40 test_ddi sentences; the predictions written, eval/relations' CLI and the inference CLI agree."""
    from bench.relation_accuracy import sentences
    from encoders import relation_inference
    from eval import relations as relation_eval

    data = tmp_path / "data"
    write_jsonl(sentences(load_split("ddi", "train"), 160), data / "train.jsonl")
    test = sentences(load_split("ddi", "test_ddi"), 40)
    for split in ("dev", "test"):
        write_jsonl(test, data / f"{split}.jsonl")
    out = tmp_path / "run"
    metrics = run_main("--dataset_name", "ddi", "--datasets_path", str(data), "--output_dir", str(out),
                       "--learning_rate", "2e-4", "--batch_size", "8", "--num_train_epochs", "2", "--max_length", "48",
                       "--save_strategy", "no", "--load_best_model_at_end", "False", "--disable_tqdm", "True")
    gold = [r.type for d in test for r in d.relations]
    positive = Counter(t for t in gold if t != NEGATIVE)
    top = max(positive.values())  # every pair labelled with the most frequent type
    trivial = 2 * top / (len(gold) + sum(positive.values()))
    assert metrics["test"]["micro"]["f1"] > trivial + 0.1, (metrics["test"]["micro"], trivial)
    assert metrics["best_epoch"] in (1, 2) and metrics["pairs"]["train"]["relation_not_candidate"] == 0

    relation_eval.main(["--gold", str(data / "test.jsonl"), "--pred", str(out / "test.predictions.jsonl"),
                        "--view", "ddi", "--json", str(tmp_path / "scores.json")])
    assert json.loads((tmp_path / "scores.json").read_text())["ddi"]["micro"] == metrics["test"]["micro"]
    relation_inference.main(relation_inference.parse_args([
        "--model_dir", str(out / "model"), "--input", str(data / "test.jsonl"), "--output", str(tmp_path / "p.jsonl"),
        "--metrics", str(tmp_path / "m.json")]))
    assert read_jsonl(tmp_path / "p.jsonl", require_text=False) == read_jsonl(out / "test.predictions.jsonl",
                                                                             require_text=False)
    assert json.loads((tmp_path / "m.json").read_text())["test"]["micro"] == metrics["test"]["micro"]
