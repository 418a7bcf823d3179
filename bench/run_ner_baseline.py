"""A plain Hugging Face token-classification baseline, in the style of transformers' run_ner example.

    python bench/run_ner_baseline.py --dataset_name bc5cdr --output_dir results/encoder_accuracy/run_ner_baseline/bc5cdr

The recipe of examples/pytorch/token-classification/run_ner.py, written fresh:
  - examples are sentences of words with word-level IOB2 tags (data/bio.to_bio over
    data/bio.sentence_tokens, the words data/convert.py --to iob writes); the label list is the
    sorted set of training tags;
  - the tokenizer splits each sentence with is_split_into_words=True, truncated to --max_seq_length;
    the first sub-word of a word carries its tag, the other sub-words and the special tokens -100
    (label_all_tokens=False);
  - DataCollatorForTokenClassification and Trainer with the TrainingArguments defaults (AdamW, linear
    decay, no warm-up, no weight decay), no early stopping: the model after the last epoch is evaluated;
  - a word's predicted tag is the arg-max at its first sub-word; a word cut off by truncation gets O.

run_ner scores those word tags with seqeval (default, lenient mode). Here they become character spans
instead, by data/bio.from_bio over the same words read the same lenient way (an I-X that continues
nothing opens an entity, as seqeval's default does), and every split is scored by eval/semeval like
every other method. Prediction segments the texts without looking at their entities.
Writes `{split}.predictions.jsonl` and `metrics.json` (method "run_ner_baseline") to --output_dir.
"""
from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path


from data import registry
from data.bio import from_bio, sentence_tokens, to_bio
from data.corpus import Document, Span, exit_on_format_error, script_parser, write_jsonl
from data.llm.models import resolve
from eval.runs import print_scores, run_settings, write_metrics
from eval.semeval import score

METHOD = "run_ner_baseline"
DECODING = "lenient"  # how seqeval (run_ner's metric) reads tags by default
IGNORE = -100  # label of positions the loss skips


@dataclass
class Config:
    model_name: str = "minilm"  # hub id, local path, or a short name of data/models.resolve
    num_train_epochs: int = 3  # this and the rest but eval_batch_size: run_ner's defaults
    learning_rate: float = 5e-5
    batch_size: int = 8
    eval_batch_size: int = 64
    max_seq_length: int = 512  # sub-words per sentence, special tokens included (the model's limit)
    seed: int = 42


@dataclass
class Sentence:
    """One example: a sentence's word spans in its document, their words and (for training) their tags."""

    doc_index: int
    tokens: list[Span]
    words: list[str]
    tags: list[str] | None = None


def training_sentences(docs: list[Document], changes: Counter) -> list[Sentence]:
    """Every non-empty sentence with its gold IOB2 tags (what flattening changed goes to `changes`)."""
    out = []
    for i, doc in enumerate(docs):
        for toks, tags in zip(sentence_tokens(doc), to_bio(doc, changes=changes)):
            if toks:
                out.append(Sentence(i, toks, [doc.text[s:e] for s, e in toks], tags))
    return out


def prediction_sentences(docs: list[Document]) -> list[Sentence]:
    """Every non-empty sentence of entity-free copies of `docs` (tokens a source gives are kept)."""
    out = []
    for i, doc in enumerate(docs):
        blank = Document(doc.id, doc.text, [], list(doc.sentences), list(doc.tokens))
        for toks in sentence_tokens(blank):
            if toks:
                out.append(Sentence(i, toks, [doc.text[s:e] for s, e in toks]))
    return out


def align_labels(word_ids: list[int | None], tags: list[str], label2id: dict[str, int]) -> list[int]:
    """run_ner's label alignment with label_all_tokens=False: a word's tag on its first sub-word only."""
    labels, previous = [], None
    for w in word_ids:
        labels.append(IGNORE if w is None or w == previous else label2id[tags[w]])
        previous = w
    return labels


def word_tags(word_ids: list[int | None], label_ids: list[int], n_words: int, id2label: dict[int, str]) -> list[str]:
    """The tag of each word read at its first sub-word; O for a word with no sub-word (cut off)."""
    tags = ["O"] * n_words
    previous = None
    for pos, w in enumerate(word_ids):
        if w is not None and w != previous:
            tags[w] = id2label[int(label_ids[pos])]
        previous = w
    return tags


def encode(tokenizer, sentences: list[Sentence], max_seq_length: int, label2id: dict[str, int] | None = None):
    """A datasets.Dataset of input ids (and aligned labels when `label2id` is given), and the word ids."""
    from datasets import Dataset

    enc = tokenizer([s.words for s in sentences], is_split_into_words=True, truncation=True,
                    max_length=max_seq_length)
    word_ids = [enc.word_ids(i) for i in range(len(sentences))]
    columns = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if label2id is not None:
        columns["labels"] = [align_labels(w, s.tags, label2id) for w, s in zip(word_ids, sentences)]
    return Dataset.from_dict(columns), word_ids


def to_documents(docs: list[Document], sentences: list[Sentence], tags: list[list[str]],
                 changes: Counter) -> list[Document]:
    """Predicted documents: each sentence's word tags read back as character spans (data/bio.from_bio)."""
    entities: list[list] = [[] for _ in docs]
    for sent, sent_tags in zip(sentences, tags):
        doc = docs[sent.doc_index]
        entities[sent.doc_index].extend(from_bio(sent.tokens, sent_tags, doc.text, DECODING, changes))
    return [Document(d.id, d.text, ents) for d, ents in zip(docs, entities)]


class Baseline:
    """A model fine-tuned by the run_ner recipe, and its predictions as documents."""

    def __init__(self, config: Config, workdir: str):
        self.config, self.workdir = config, workdir
        self.trainer = self.tokenizer = None
        self.id2label: dict[int, str] = {}

    def train(self, docs: list[Document], changes: Counter) -> dict:
        """Fine-tune on `docs`; returns what the run took (sentences, steps, seconds, mean loss, labels)."""
        from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                                  Trainer, TrainingArguments, set_seed)

        cfg = self.config
        sentences = training_sentences(docs, changes)
        labels = sorted({t for s in sentences for t in s.tags})
        label2id = {t: i for i, t in enumerate(labels)}
        self.id2label = dict(enumerate(labels))
        set_seed(cfg.seed)  # before the classification head is initialised, as run_ner does
        path = resolve(cfg.model_name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForTokenClassification.from_pretrained(path, num_labels=len(labels),
                                                                id2label=self.id2label, label2id=label2id)
        dataset, _ = encode(self.tokenizer, sentences, cfg.max_seq_length, label2id)
        args = TrainingArguments(output_dir=self.workdir, num_train_epochs=cfg.num_train_epochs,
                                 learning_rate=cfg.learning_rate, per_device_train_batch_size=cfg.batch_size,
                                 per_device_eval_batch_size=cfg.eval_batch_size, seed=cfg.seed,
                                 save_strategy="no", logging_strategy="epoch", report_to="none",
                                 disable_tqdm=True, use_cpu=True)
        self.trainer = Trainer(model=model, args=args, train_dataset=dataset, processing_class=self.tokenizer,
                               data_collator=DataCollatorForTokenClassification(self.tokenizer))
        start = time.perf_counter()
        out = self.trainer.train()
        return {"train_sentences": len(sentences), "steps": out.global_step, "train_loss": out.training_loss,
                "train_seconds": time.perf_counter() - start, "labels": labels}

    def predict(self, docs: list[Document], changes: Counter) -> list[Document]:
        """Documents with the predicted entities; decoding counts (and cut-off words) go to `changes`."""
        sentences = sorted(prediction_sentences(docs), key=lambda s: len(s.words))  # batches of similar length
        dataset, word_ids = encode(self.tokenizer, sentences, self.config.max_seq_length)
        logits = self.trainer.predict(dataset).predictions  # padded to the longest batch with -100
        tags = []
        for i, sent in enumerate(sentences):
            tags.append(word_tags(word_ids[i], logits[i].argmax(-1), len(sent.words), self.id2label))
            changes["words_cut_off"] += len(sent.words) - len({w for w in word_ids[i] if w is not None})
        return to_documents(docs, sentences, tags, changes)


def run(config: Config, dataset_name: str, train: list[Document], evaluate: dict[str, list[Document]],
        output_dir: Path) -> dict:
    """Train on `train`, predict and score every split of `evaluate`, write predictions and metrics.json."""
    output_dir.mkdir(parents=True, exist_ok=True)
    flattening: Counter = Counter()
    with tempfile.TemporaryDirectory() as workdir:
        baseline = Baseline(config, workdir)
        metrics = {"method": METHOD, "dataset": dataset_name, "decoding": DECODING,
                   "epochs": config.num_train_epochs, "train_documents": len(train),
                   **baseline.train(train, flattening), "train_flattening": dict(flattening)}
        for split, gold in evaluate.items():
            changes: Counter = Counter()
            pred = baseline.predict(gold, changes)
            write_jsonl(pred, output_dir / f"{split}.predictions.jsonl", with_text=False)
            metrics[split] = score(gold, pred).to_json()
            metrics[f"{split}_decoding"] = dict(changes)
            print_scores(f"{METHOD} {dataset_name} {split}", metrics[split])
    write_metrics(output_dir, metrics, settings=run_settings(config))
    return metrics


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--dataset_name", required=True, help=f"one of: {', '.join(registry.DATASETS)}")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--max_train_docs", type=int, help="train on the first N training documents only")
    parser.add_argument("--eval_splits", nargs="+", default=["dev", "test"])
    for name, value in asdict(Config()).items():
        parser.add_argument(f"--{name}", type=type(value), default=value, help="default: %(default)s")
    ns = parser.parse_args()
    config = Config(**{k: getattr(ns, k) for k in asdict(Config())})
    train = registry.load(ns.dataset_name, "train")[:ns.max_train_docs]
    evaluate = {s: registry.load(ns.dataset_name, s) for s in ns.eval_splits
                if s in registry.get(ns.dataset_name).splits}
    run(config, ns.dataset_name, train, evaluate, ns.output_dir)


if __name__ == "__main__":
    exit_on_format_error(main)
