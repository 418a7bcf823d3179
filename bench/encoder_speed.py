"""How fast is encoders/tagging.py? One run, one model, the same BC5CDR test sentences for every contender.

    python bench/encoder_speed.py [--json bench_encoder_speed.json] [--sentences 1000]

Inference (MiniLM with a fresh, seeded 5-label head; each ratio is our speed over theirs):
  vs_pipeline_default   transformers pipeline("token-classification", aggregation_strategy="first") at
                        its default batch size (1), on the first --pipeline_default_sentences sentences
  vs_pipeline_batch32   the same pipeline with batch_size=32, on all the sentences
  vs_pad512_inference   seed 0's recipe: the words tokenised and every batch of 8 padded to 512 sub-words,
                        on the first --pad512_sentences sentences
Training (forward, backward and the same fused AdamW step on batches of 8 BC5CDR training sentences):
  vs_pad512_training    ours (length-grouped batches padded to their longest) vs every batch padded to 512
Hardware:
  matmul_fraction       our inference's matmul FLOP/s (every nn.Linear plus the attention products, counted
                        on the real, unpadded tokens) over this machine's fp32 rate for a 2048x2048
                        torch.matmul; `matmul_fraction_cpu_time` is the same per CPU-second
  bf16_speedup          (no target) our inference with bfloat16 weights over fp32
CPU speed here swings several-fold from minute to minute (shared cores), so every ratio compares runs
interleaved in small chunks (theirs, ours, theirs, ours...), and the matmul rate is measured between runs
of ours, both taken at their best.
"""
from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path
from typing import Callable, Sequence


import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification, pipeline
from transformers.trainer_pt_utils import get_length_grouped_indices

from data.bio import sentence_tokens
from data.corpus import Document, Entity, exit_on_format_error, script_parser
from data.llm.models import resolve
from data.registry import load
from data.text import split_sentences
from encoders import tagging
from eval.runs import write_json

DATASET = "bc5cdr"
TYPES = ("Chemical", "Disease")
MATMUL_SIZE = 2048
TARGETS = {"vs_pipeline_default": 2.0, "vs_pipeline_batch32": 1.5, "vs_pad512_inference": 5.0,
           "matmul_fraction": 0.5}


def sentences(split: str, n: int) -> list[Document]:
    """The first n sentences of a BC5CDR split, each a document of its own (gold entities kept)."""
    out = []
    for doc in load(DATASET, split):
        for s, e in split_sentences(doc.text, doc.entities):
            ents = [ent for ent in doc.entities if s <= ent.start and ent.end <= e]
            out.append(Document(f"{doc.id}:{s}", doc.text[s:e],
                                [Entity(tuple((a - s, b - s) for a, b in ent.fragments), ent.type) for ent in ents]))
    return out[:n]


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(theirs: Callable[[slice], object], ours: Callable[[slice], object], n: int, chunks: int) -> float:
    """Their time over ours on n items, run chunk by chunk in turns so both meet the same machine load."""
    bounds = [round(k * n / chunks) for k in range(chunks + 1)]
    t_theirs = t_ours = 0.0
    for a, b in zip(bounds, bounds[1:]):
        t_theirs += timed(lambda: theirs(slice(a, b)))[0]
        t_ours += timed(lambda: ours(slice(a, b)))[0]
    return t_theirs / t_ours


def matmul(seconds: float = 1.0) -> tuple[float, float]:
    """FLOP per wall second and per CPU second of back-to-back fp32 products of two 2048x2048 matrices,
    for about `seconds`: the most this CPU does in the operation models spend their time on."""
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    n = max(1, round(seconds / timed(lambda: a @ b)[0]))
    wall, cpu = timed(lambda: [a @ b for _ in range(n)])
    return 2 * MATMUL_SIZE ** 3 * n / wall, 2 * MATMUL_SIZE ** 3 * n / cpu


@torch.inference_mode()
def pad512_inference(model, tokenizer, docs: Sequence[Document], batch_size: int = 8) -> None:
    """Seed 0's recipe: words (gold-free segmentation) tokenised, every batch padded to 512."""
    words = [[d.text[s:e] for s, e in toks] for d in docs
             for toks in sentence_tokens(tagging.word_tokens(d, gold_aware=False))]
    for i in range(0, len(words), batch_size):
        enc = tokenizer(words[i:i + batch_size], is_split_into_words=True, padding="max_length", truncation=True,
                        max_length=512, return_tensors="pt")
        model(**enc).logits.argmax(-1)


def training_batches(tokenizer, docs: list[Document], n_batches: int, pad512: bool, seed: int = 0) -> list[dict]:
    """n_batches batches of 8 labelled sentences in length-grouped order (transformers' sampler), padded
    to their longest (ours) or to 512 (seed 0)."""
    label2id = {l: i for i, l in enumerate(tagging.label_names(TYPES))}
    examples = tagging.encode(docs, tokenizer, 512, label2id=label2id, gold_aware=True).training_examples()
    lengths = [len(x["input_ids"]) for x in examples]
    order = get_length_grouped_indices(lengths, 8, generator=torch.Generator().manual_seed(seed))
    collate = DataCollatorForTokenClassification(
        tokenizer, **({"padding": "max_length", "max_length": 512} if pad512 else {}))
    return [collate([examples[i] for i in order[k * 8:(k + 1) * 8]]) for k in range(n_batches)]


def train_on(model, optimizer, batches: Sequence[dict]) -> None:
    for batch in batches:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    path = resolve("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    labels = tagging.label_names(TYPES)
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
        attn_implementation=tagging.attention_implementation())  # the pipeline gets the same model
    model.eval()
    test = sentences("test", args.sentences)
    encoded = tagging.encode(test, tokenizer, 512)
    flops = tagging.matmul_flops(model, encoded)
    out: dict = {"sentences": len(test), "subword_tokens": sum(len(f.input_ids) for f in encoded.features),
                 "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                 "load_average_1min": round(os.getloadavg()[0], 2)}

    def ours(part: slice = slice(None), model=model) -> list[Document]:
        return tagging.predict(model, tokenizer, test[part], args.max_length, None, args.max_batch_tokens,
                               args.max_batch_size)

    def report(name: str, value: float) -> None:
        out[name] = value
        target = TARGETS.get(name)
        mark = "" if target is None else f"  (target >= {target}: {'met' if value >= target else 'NOT met'})"
        print(f"{name:24s} {value:8.2f}{mark}", flush=True)

    ours(slice(64))  # warm-up
    runs = [(timed(ours), matmul()) for _ in range(args.repeats)]  # ours and the matmul rate, in turns
    wall = min(w for (w, _), _ in runs)
    peak, peak_cpu = max(m for _, (m, _) in runs), max(m for _, (_, m) in runs)
    out.update(ours_sentences_per_s=len(test) / wall, ours_gflops=flops / wall / 1e9, matmul_gflops=peak / 1e9,
               matmul_fraction_cpu_time=max(flops / c for (_, c), _ in runs) / peak_cpu)
    print(f"ours: {len(test)} sentences in {wall:.2f} s ({len(test) / wall:.0f}/s), {flops / wall / 1e9:.1f} GFLOP/s;"
          f" fp32 {MATMUL_SIZE}x{MATMUL_SIZE} matmul {peak / 1e9:.1f} GFLOP/s", flush=True)
    report("matmul_fraction", flops / wall / peak)
    report("matmul_fraction_cpu_time", out["matmul_fraction_cpu_time"])

    # Not a target: bfloat16 weights, which CPUs with AMX (and GPUs) multiply several times faster.
    half = copy.deepcopy(model).to(torch.bfloat16)
    full_scores, half_scores = (tagging.predict_scores(m, encoded.features, 0) for m in (model, half))
    same = sum(int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in zip(full_scores, half_scores))
    out["bf16_label_agreement"] = same / out["subword_tokens"]
    report("bf16_speedup", interleaved(ours, lambda part: ours(part, half), len(test), 2))
    del half

    pipe = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="first",
                    device=-1)
    texts = [d.text for d in test]
    pipe(texts[:8])  # warm-up
    report("vs_pipeline_default", interleaved(lambda part: pipe(texts[part]), ours,
                                              min(args.pipeline_default_sentences, len(test)), 2))
    report("vs_pipeline_batch32", interleaved(lambda part: pipe(texts[part], batch_size=32), ours, len(test), 2))
    report("vs_pad512_inference", interleaved(lambda part: pad512_inference(model, tokenizer, test[part]), ours,
                                              min(args.pad512_sentences, len(test)), 4))

    # Training: 3 rounds of (one 512-padded batch, `ratio` of ours), both sides the same number of sentences.
    ratio = args.train_batches // args.pad512_train_batches
    train_docs = sentences("train", 8 * args.train_batches * 4)
    mine = training_batches(tokenizer, train_docs, args.train_batches, pad512=False)
    padded = training_batches(tokenizer, train_docs, args.pad512_train_batches, pad512=True)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    train_on(model, optimizer, mine[:2])  # warm-up
    speedup = interleaved(lambda part: train_on(model, optimizer, padded[part]),
                          lambda part: train_on(model, optimizer, mine[part.start * ratio:part.stop * ratio]),
                          len(padded), len(padded))
    report("vs_pad512_training", speedup * ratio)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--json", type=Path, help="write the ratios and raw figures here")
    parser.add_argument("--sentences", type=int, default=1000, help="BC5CDR test sentences to tag")
    parser.add_argument("--pipeline_default_sentences", type=int, default=400,
                        help="sentences for the pipeline at batch size 1 (ours on the same ones)")
    parser.add_argument("--pad512_sentences", type=int, default=96, help="sentences for the slow 512-padded recipe")
    parser.add_argument("--train_batches", type=int, default=24, help="training batches of 8 (ours)")
    parser.add_argument("--pad512_train_batches", type=int, default=3, help="training batches of 8 (512-padded)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of ours (alternating with the matmul)")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--max_batch_tokens", type=int, default=tagging.MAX_BATCH_TOKENS["cpu"])
    parser.add_argument("--max_batch_size", type=int, default=tagging.MAX_BATCH_SIZE)
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> None:
    out = run(args)
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
