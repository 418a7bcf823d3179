"""Seed 3's example selection: for every test document (or sentence), the training units whose solved answers a
prompt should show, written to best_example.json for rag_icl/main.py.

    python rag_icl/best_examples.py --task ner --one_dataset bc5cdr --embedding_model_path minilm \\
        --rerank_model_path results/rag_icl/reranker/bc5cdr --search_type similarity --k 30 --top_n 10 \\
        --score_threshold 0.79 --output_dir results/rag_icl/bc5cdr
    python rag_icl/best_examples.py --one_dataset ncbi_disease --embedding_model_path BAAI/bge-m3 \\
        --rerank_model_path BAAI/bge-reranker-v2-m3 ...                 # the paper's models (GPU, hub)

RAG-ICL (data/llm/examples.py): the training units embedded with --embedding_model_path (LangChain
HuggingFaceEmbeddings, normalised) in a LangChain FAISS store searched by cosine (--index flat: exact;
hnsw: approximate), the --k nearest of each query (--search_type similarity, mmr, or
similarity_score_threshold with --retrieval_threshold on the cosine), reranked by the --rerank_model_path
cross-encoder (a hub reranker, or one trained by rag_icl/train_reranker.py: no reranker ships offline), the
--top_n best kept, and of those only the ones whose rerank probability reaches --score_threshold (the seed
parses this threshold and never applies it: --score_threshold 0 reproduces that). Without
--rerank_model_path the retrieval order is kept (KATE). Units are documents (the seed's) or, with --unit
sentence, sentences; the test units are cut without looking at the gold.

Writes to --output_dir: best_example.json ({"settings": ..., "examples": {test unit id: [{"id": training unit
id, "retrieval": cosine, "rerank": probability}, ...]}}; a test unit may get fewer than --top_n examples
when the threshold removes some, and how many did is printed) and best_example.partial.jsonl, the queries
answered so far: a killed run resumes there, and refuses to mix in answers made with other settings. The
index is saved under --index_dir and reused while the training units, the model and the index kind are the
same.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from data.corpus import exit_on_format_error, parse_dataclasses
from data.llm.examples import (INDEX_KINDS, SEARCH_TYPES, Example, ExampleIndex, Reranker, retrieve_and_rerank,
                               write_selection)
from data.llm.generation import PredictionStore
from data.per_type_tasks import UNITS, corpus_documents, units_of
from eval.runs import claim_output_dir

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Args:
    one_dataset: str = field(metadata={"help": "a corpus of seed 3's (bc5cdr, ncbi_disease; data/per_type_tasks.py)"})
    embedding_model_path: str = field(default="minilm", metadata={"help": "hub id or local path; 'minilm' is bundled"})
    rerank_model_path: str | None = field(default=None, metadata={
        "help": "a cross-encoder (hub id, or rag_icl/train_reranker.py's output); none: the retrieval order (KATE)"})
    datasets_path: Path | None = field(default=None, metadata={
        "help": "a corpus as train/dev/test.jsonl (one task per entity type) instead of a registry corpus"})
    task: str = field(default="ner", metadata={"choices": ("ner",), "help": "relation extraction: issue 19"})
    search_type: str = field(default="similarity", metadata={"choices": SEARCH_TYPES})
    k: int = field(default=30, metadata={"help": "units retrieved per query"})
    top_n: int = field(default=10, metadata={"help": "examples kept after reranking"})
    score_threshold: float = field(default=0.79, metadata={
        "help": "keep only examples whose rerank probability reaches this (0: keep the top_n, as the seed did)"})
    retrieval_threshold: float = field(default=0.0, metadata={
        "help": "--search_type similarity_score_threshold: the least cosine retrieved"})
    unit: str = field(default="document", metadata={"choices": UNITS})
    index: str = field(default="flat", metadata={"choices": INDEX_KINDS})
    split: str = field(default="test", metadata={"help": "the split whose units get examples"})
    output_dir: Path | None = field(default=None, metadata={"help": "default: results/rag_icl/<one_dataset>"})
    index_dir: Path | None = field(default=None, metadata={
        "help": "where the index is saved (default: .cache/rag_icl/index/<one_dataset>-<unit>-<index>)"})
    max_train_docs: int | None = field(default=None, metadata={"help": "use only the first N training documents"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "examples for the first N documents only"})
    overwrite: bool = field(default=False, metadata={"help": "build the index and choose the examples afresh"})


def settings(args: Args) -> dict:
    """What the chosen examples depend on (the partial store refuses others)."""
    return {k: v for k, v in asdict(args).items() if k not in ("output_dir", "index_dir", "overwrite")}


def main(args: Args) -> dict[str, list[Example]]:
    docs = {split: corpus_documents(args.one_dataset, split, args.datasets_path) for split in ("train", args.split)}
    train = {i: u.text for i, u in units_of(docs["train"][:args.max_train_docs], args.unit, True).items()}
    queries = {i: u.text for i, u in units_of(docs[args.split][:args.max_eval_docs], args.unit, False).items()}
    if not train:
        raise SystemExit(f"error: {args.one_dataset} has no training text to retrieve examples from")
    out = claim_output_dir(args.output_dir or ROOT / "results" / "rag_icl" / args.one_dataset, finished=None)
    index_dir = args.index_dir or ROOT / ".cache" / "rag_icl" / "index" / f"{args.one_dataset}-{args.unit}-{args.index}"
    started = time.perf_counter()
    index = ExampleIndex(train, args.embedding_model_path, index_dir, args.index, args.overwrite)
    print(f"{args.one_dataset}: {len(train):,} training {args.unit}s indexed in {time.perf_counter() - started:.1f} s "
          f"({index_dir}); {len(queries):,} {args.split} {args.unit}s to choose for")
    reranker = Reranker(args.rerank_model_path) if args.rerank_model_path else None
    store = PredictionStore(out / "best_example.partial.jsonl", settings(args), args.overwrite)
    todo = [q for q in queries if q not in store]
    started = time.perf_counter()
    for q in tqdm(todo, desc="queries", unit=args.unit):
        chosen = retrieve_and_rerank(index, reranker, queries[q], args.k, args.top_n,
                                     args.score_threshold if reranker else None, args.search_type,
                                     args.retrieval_threshold)
        store.add([{"id": q, "output": json.dumps([asdict(e) for e in chosen])}])
    outputs = store.outputs()
    selection = {q: [Example(**e) for e in json.loads(outputs[q])] for q in queries}
    write_selection(out / "best_example.json", selection, settings(args))
    kept = Counter(len(v) for v in selection.values())
    print(f"{len(todo):,} queries in {time.perf_counter() - started:.1f} s; examples per {args.unit}: "
          + ", ".join(f"{n} for {c:,}" for n, c in sorted(kept.items())) + f" -> {out / 'best_example.json'}")
    return selection


def parse_args(argv: list[str] | None = None) -> Args:
    return parse_dataclasses((Args,), __doc__, argv)[0]


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
