"""Word-level token classification over sub-word models: the one core shared by encoders/main.py,
encoders/inference.py and bench/encoder_speed.py.

    documents --encode--> sentences of words --tokenizer--> sub-word windows (Features)
              --model--> label scores per sub-word --decode--> BIO tags per word --> character spans

Words are the documents' own tokens where the reader gave them (IOB corpora), else data/text's
segmentation. Training segments around the gold entities (every gold span is then a word span);
prediction segments a copy without them, so tokenisation cannot leak where the gold boundaries are.
A word's label sits on its first sub-word; the other sub-words and the special tokens get -100
(ignored by the loss). A sentence longer than the model's window is cut into overlapping windows
(data/text.windows) whose predictions are merged back (merge_windows): nothing is truncated.
Decoding reads each word's label scores at its first sub-word and, by default, takes the most probable
tag sequence that is valid BIO (an I-X only after B-X or I-X; Viterbi over the per-word log-probabilities)
rather than the arg-max of each word alone.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from data.bio import from_bio, sentence_tokens, to_bio
from data.corpus import Document, Span
from data.text import merge_windows, segment, windows

IGNORE = -100  # label of sub-words the loss skips (torch's CrossEntropyLoss default ignore_index)
# Padded tokens per inference batch. On CPUs, batches of a few thousand tokens keep the activations in
# cache and were fastest (one machine: 1k-4k tokens equal within noise, 16k about 20 % slower; another, MiniLM
# on 1,000 NCBI sentences: 13.7 s at 1k and 2k, 15.2 s at 4k, 16.9 s at 8k); GPUs want big batches.
MAX_BATCH_TOKENS = {"cpu": 2048, "accelerator": 32768}
MAX_BATCH_SIZE = 128  # sequences per inference batch
# "viterbi": the most probable valid BIO sequence. The arg-max modes read each word's own best tag, and
# differ on an I-X that continues nothing (data/bio.from_bio): "lenient" opens an entity there, "strict"
# drops it. MiniLM, 3 epochs, test strict F1, seeds 42 / 43: NCBI-disease lenient 57.91 / 55.28, strict
# 57.57 / 52.93, viterbi 59.12 / 56.46; BC5CDR (45 abstracts) lenient 58.06 / 59.22, viterbi 59.06 / 60.25.
DECODE_MODES = ("viterbi", "lenient", "strict")
DECODE_MODE = "viterbi"
PROVENANCE = "training.json"  # in a saved model folder: its base model and training data (encoders/main.py writes it)


def label_names(types: Sequence[str]) -> list[str]:
    """The BIO label set of a list of entity types, in a fixed order (O first)."""
    return ["O", *(f"{prefix}-{t}" for t in types for prefix in "BI")]


@dataclass
class Sentence:
    doc: int  # index of its document in the list given to `encode`
    tokens: list[Span]  # the words, as character spans
    first_subword: list[int]  # per word, the position of its first sub-word (-1: the tokenizer gave none)
    n_subwords: int


@dataclass
class Feature:
    """One model input: a window of one sentence's sub-words between the special tokens."""

    input_ids: list[int]
    labels: list[int] | None
    sentence: int
    window: tuple[int, int]  # the sentence's sub-words [start, end) this input holds


@dataclass
class Encoded:
    docs: list[Document]
    sentences: list[Sentence]
    features: list[Feature]
    n_prefix: int  # special tokens before the window's sub-words (e.g. [CLS])

    def training_examples(self) -> list[dict]:
        """Features as the dicts transformers' collators and Trainer take."""
        return [{"input_ids": f.input_ids, "labels": f.labels} for f in self.features]


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text ([CLS] / [SEP] for BERT, BOS or none for Llamas)."""
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    i = next(i for i in range(len(full)) if full[i:i + len(bare)] == bare)
    return full[:i], full[i + len(bare):]


def word_tokens(doc: Document, gold_aware: bool) -> Document:
    """A segmented copy of `doc` (its own sentences and tokens are kept where the reader gave them).

    gold_aware=True (training) cuts tokens at entity boundaries and keeps sentences around entities;
    gold_aware=False (prediction) segments as if the entities were unknown, then puts them back so
    that to_bio can still label the copy (for the validation loss).
    """
    copy = Document(doc.id, doc.text, list(doc.entities) if gold_aware else [], list(doc.sentences),
                    list(doc.tokens))
    segment(copy, respect_entities=gold_aware)
    copy.entities = list(doc.entities)
    return copy


def encode(docs: Sequence[Document], tokenizer, max_length: int, stride: int | None = None,
           label2id: dict[str, int] | None = None, gold_aware: bool = False,
           overlap_policy: str = "longest_first", discontinuous_policy: str = "first_fragment",
           changes: Counter | None = None) -> Encoded:
    """Sentences of words and their sub-word windows; with `label2id`, first-sub-word labels from the
    gold entities, flattened to BIO by data/bio's named policies (what they change goes to `changes`).

    `stride` is the step between window starts in sub-words (default: half a window).
    """
    prefix, suffix = special_tokens(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    stride = stride or max(1, room // 2)
    segmented = [word_tokens(d, gold_aware) for d in docs]
    sentences: list[Sentence] = []
    sentence_tags: list[list[str] | None] = []
    for di, doc in enumerate(segmented):
        tags = to_bio(doc, overlap_policy, discontinuous_policy, changes) if label2id else None
        for si, toks in enumerate(sentence_tokens(doc)):
            if toks:
                sentences.append(Sentence(di, toks, [], 0))
                sentence_tags.append(tags[si] if tags else None)

    # One batched call to the (Rust) tokenizer. Each word keeps the whitespace before it, so that
    # space-sensitive tokenizers (byte-level BPE) see it as in running text; WordPiece drops it.
    words = [[(" " if s > 0 and segmented[sent.doc].text[s - 1].isspace() else "") + segmented[sent.doc].text[s:e]
              for s, e in sent.tokens] for sent in sentences]
    encoding = tokenizer(words, is_split_into_words=True, add_special_tokens=False) if words else None

    features: list[Feature] = []
    for k, sent in enumerate(sentences):
        ids = encoding["input_ids"][k]
        firsts = [-1] * len(sent.tokens)
        for pos, w in enumerate(encoding.word_ids(k)):
            if w is not None and firsts[w] < 0:
                firsts[w] = pos
        sent.first_subword, sent.n_subwords = firsts, len(ids)
        labels = None
        if sentence_tags[k] is not None:
            labels = [IGNORE] * len(ids)
            for pos, tag in zip(firsts, sentence_tags[k]):
                if pos >= 0:
                    labels[pos] = label2id[tag]
        for s, e in windows(len(ids), room, min(stride, room)):
            window_labels = None if labels is None else [IGNORE] * len(prefix) + labels[s:e] + [IGNORE] * len(suffix)
            features.append(Feature(prefix + ids[s:e] + suffix, window_labels, k, (s, e)))
    return Encoded(segmented, sentences, features, len(prefix))


def bio_transitions(id2label: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """Which labels may open a sentence, and which may follow which (an I-X only after B-X or I-X)."""
    n = len(id2label)
    start = np.ones(n, dtype=bool)
    follows = np.ones((n, n), dtype=bool)  # [previous, next]
    for j, label in id2label.items():
        if label.startswith("I-"):
            start[j] = False
            follows[:, j] = [id2label[i] in (f"B-{label[2:]}", label) for i in range(n)]
    return start, follows


def best_valid_path(scores: np.ndarray, start: np.ndarray, follows: np.ndarray) -> np.ndarray:
    """The label ids of the highest-scoring valid BIO sequence (scores: words x labels, log-probabilities).
    The per-word arg-max when it is already valid, as it mostly is; Viterbi otherwise."""
    path = scores.argmax(-1)
    if start[path[0]] and follows[path[:-1], path[1:]].all():
        return path
    transition = np.where(follows, 0.0, -np.inf)
    best = np.where(start, scores[0], -np.inf)
    back = np.empty((len(scores), scores.shape[1]), dtype=np.int64)
    for k in range(1, len(scores)):
        candidates = best[:, None] + transition
        back[k] = candidates.argmax(0)
        best = candidates.max(0) + scores[k]
    path[-1] = best.argmax()
    for k in range(len(scores) - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    return path


def decode(encoded: Encoded, predictions: Sequence[np.ndarray], id2label: dict[int, str],
           mode: str = DECODE_MODE) -> list[Document]:
    """Documents with the entities read off per-feature label scores (positions x labels, one row per input
    position, special tokens included; rows past the input, such as batch padding, are ignored)."""
    if mode not in DECODE_MODES:
        raise ValueError(f"decode mode must be one of {DECODE_MODES}, got {mode!r}")
    start, follows = bio_transitions(id2label)
    outside = np.full(len(id2label), -np.inf)
    outside[next(i for i, label in id2label.items() if label == "O")] = 0.0  # a word with no sub-word
    by_sentence: dict[int, tuple[list[tuple[int, int]], list]] = {}
    for feat, pred in zip(encoded.features, predictions):
        s, e = feat.window
        spans, preds = by_sentence.setdefault(feat.sentence, ([], []))
        spans.append(feat.window)
        preds.append(pred[encoded.n_prefix:encoded.n_prefix + e - s])
    out = [Document(d.id, d.text) for d in encoded.docs]
    for k, (spans, preds) in by_sentence.items():
        sent = encoded.sentences[k]
        merged = merge_windows(spans, preds, sent.n_subwords)
        scores = np.stack([merged[p] if p >= 0 else outside for p in sent.first_subword])
        ids = best_valid_path(scores, start, follows) if mode == "viterbi" else scores.argmax(-1)
        tags = [id2label[int(i)] for i in ids]
        out[sent.doc].entities.extend(from_bio(sent.tokens, tags, encoded.docs[sent.doc].text,
                                               "strict" if mode == "viterbi" else mode))
    return out


def batches(lengths: Sequence[int], max_tokens: int, max_size: int = MAX_BATCH_SIZE) -> list[list[int]]:
    """Indices sorted by length and cut into batches whose padded size stays within `max_tokens`:
    similar lengths share a batch, so almost nothing is padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    out: list[list[int]] = []
    for i in order:  # longest first: a batch's first item fixes its padded length
        if out and len(out[-1]) < max_size and lengths[out[-1][0]] * (len(out[-1]) + 1) <= max_tokens:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def label_scores(logits: torch.Tensor) -> torch.Tensor:
    """What decode reads: label log-probabilities in float32 (bf16 logits too), for prediction and for the
    Trainer's validation alike."""
    return logits.float().log_softmax(-1)


def predict_scores(model, features: Sequence[Feature], pad_id: int, max_tokens: int | None = None,
                   max_size: int = MAX_BATCH_SIZE, progress: bool = False) -> list[np.ndarray]:
    """Label log-probabilities (positions x labels) of every feature: length-sorted batches, padded only
    to the longest input of each batch (`max_tokens` padded tokens at most; default by device).
    On a CPU with several threads, batches run side by side, one thread each (see batch_workers)."""
    model.eval()
    device = next(model.parameters()).device
    max_tokens = max_tokens or MAX_BATCH_TOKENS["cpu" if device.type == "cpu" else "accelerator"]
    lengths = [len(f.input_ids) for f in features]
    out: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(features)

    @torch.inference_mode()  # grad mode is per thread: each worker sets its own
    def run(group: list[int]) -> np.ndarray:
        width = lengths[group[0]]
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, i in enumerate(group):
            ids[row, :lengths[i]] = torch.tensor(features[i].input_ids)
            mask[row, :lengths[i]] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        return label_scores(logits).cpu().numpy()

    groups = batches(lengths, max_tokens, max_size)
    with batch_workers(device, len(groups)) as workers, ThreadPoolExecutor(workers) as pool:
        scored = tqdm(pool.map(run, groups), total=len(groups), desc="predict", unit="batch",
                      disable=not progress, mininterval=1.0)
        for group, scores in zip(groups, scored):
            for row, i in enumerate(group):
                out[i] = scores[row, :lengths[i]]
    return out


@contextmanager
def batch_workers(device: torch.device, n_batches: int):
    """How many batches run side by side (yielded), with torch's intra-op threads down to one meanwhile:
    on a CPU, one batch per thread when there are at least two batches per thread (else a lone batch
    would get a single thread); elsewhere one. A small encoder's matrices (MiniLM: 384 x 1,536) are too
    small to split well across threads: MiniLM on 1,000 BC5CDR sentences on 2 cores, one quiet run:
    6.0-6.4 s (0.59-0.61 of the large-matmul rate) with 2 threads per batch, 5.2 s (0.75) with 2 batches
    of 1 thread each, the scores equal to the bit."""
    threads = torch.get_num_threads()
    workers = threads if device.type == "cpu" and n_batches >= 2 * threads else 1
    if workers > 1:
        torch.set_num_threads(1)
    try:
        yield workers
    finally:
        torch.set_num_threads(threads)


def predict(model, tokenizer, docs: Sequence[Document], max_length: int = 512, stride: int | None = None,
            max_tokens: int | None = None, max_size: int = MAX_BATCH_SIZE, mode: str = DECODE_MODE,
            progress: bool = False) -> list[Document]:
    """Predicted entities for `docs` (their gold entities, if any, are not looked at)."""
    encoded = encode(docs, tokenizer, max_length, stride)
    scores = predict_scores(model, encoded.features, pad_token_id(tokenizer), max_tokens, max_size, progress)
    return decode(encoded, scores, model.config.id2label, mode)


def attention_implementation() -> str:
    """How models are loaded to attend: on CPUs plain matmul attention ("eager") beat PyTorch's SDPA kernel
    for sentence-length inputs (MiniLM: about 15 % faster inference, 5-10 % faster training steps)."""
    return "sdpa" if torch.accelerator.is_available() else "eager"


def pad_token_id(tokenizer) -> int:
    """The padding id (decoder LMs often have none: their end-of-text token is as good, being masked)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer.pad_token_id


def matmul_flops(model, encoded: Encoded) -> float:
    """Floating-point operations of the model's matrix products for the real (unpadded) inputs: every
    nn.Linear (2 * in * out per token) plus attention scores and mixing (4 * L^2 * hidden per layer)."""
    config = model.config
    tokens = sum(len(f.input_ids) for f in encoded.features)
    squares = sum(len(f.input_ids) ** 2 for f in encoded.features)
    linear = sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    heads_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    attention = 4 * config.num_hidden_layers * config.num_attention_heads * heads_dim * squares
    return float(linear * tokens + attention)


def window_count(encoded: Encoded) -> tuple[int, int]:
    """(sentences, sentences cut into more than one window)."""
    per_sentence = Counter(f.sentence for f in encoded.features)
    return len(encoded.sentences), sum(1 for n in per_sentence.values() if n > 1)
