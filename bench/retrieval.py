"""Example selection measured without any LLM, so that it means something on a CPU: how much of what an input
asks about do the chosen examples show, and what does retrieval cost as the training set grows?

    python bench/retrieval.py [--datasets bc5cdr ncbi_disease] [--rerank_model_path DIR] [--json OUT]

Quality. For every test document of each corpus (data/per_type_tasks.py), --shots examples chosen from the training
documents by each strategy of data/llm/examples.py, and their coverage: the share of the document's gold
mentions ((type, lower-cased text)) that occur among the examples' gold mentions. Strategies: fers and ders
(random, seed --seed), kate (embedding only: the bundled MiniLM, cosine), and rag (kate's --k, reranked by
--rerank_model_path, top --shots, no threshold: the threshold only removes examples) when a reranker is
given. Reported: mean coverage per strategy and, for kate and rag, the difference to ders with a 95 %
bootstrap interval (documents resampled, --resamples times).

Scale. The sentences of the training splits of --datasets, embedded once, in an exact inner-product index
(FAISS IndexFlatIP, LangChain's) and an approximate one (HNSW, data.llm.examples.hnsw_copy), at 1x and at
--scale x the units (the copies are the same vectors with small Gaussian noise, renormalised: synthetic, as
the goal allows). Per index and size: build seconds, the seconds of --queries queries (test sentences) for
their --k nearest (the fastest of --repeats runs), and HNSW's recall@k against the exact
index. Goals: at --scale x the units an HNSW query
costs under 2x as much as at 1x, with recall@k >= 0.95.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from data.corpus import exit_on_format_error, script_parser
from data.llm.examples import ExampleIndex, Reranker, coverage, hnsw_copy, random_examples, retrieve_and_rerank
from data.llm.units import unit_documents
from data.per_type_tasks import corpus_documents
from eval.runs import write_json

STRATEGIES = ("fers", "ders", "kate", "rag")


def quality(dataset: str, args: argparse.Namespace) -> dict:
    """Mean coverage per strategy on the test documents, and kate's and rag's difference to ders."""
    train = {d.id: d for d in corpus_documents(dataset, "train") if d.text.strip()}
    test = [d for d in corpus_documents(dataset, "test")[:args.max_eval_docs] if d.entities]
    index = ExampleIndex({i: d.text for i, d in train.items()}, args.embedding_model_path)
    reranker = Reranker(args.rerank_model_path) if args.rerank_model_path else None
    chosen = {s: random_examples(list(train), [d.id for d in test], args.shots, args.seed, per_query=s == "ders")
              for s in ("fers", "ders")}
    chosen["kate"] = {d.id: index.search(d.text, args.shots) for d in test}
    if reranker is not None:
        chosen["rag"] = {d.id: retrieve_and_rerank(index, reranker, d.text, args.k, args.shots, None) for d in test}
    per_doc = {s: np.array([coverage(d, [train[e.id] for e in chosen[s][d.id]]) for d in test]) for s in chosen}
    out = {"documents": len(test), "training_documents": len(train),
           "coverage": {s: float(v.mean()) for s, v in per_doc.items()}}
    rng = np.random.default_rng(args.seed)
    samples = rng.integers(0, len(test), size=(args.resamples, len(test)))
    for s in ("kate", "rag"):
        if s in per_doc:
            diff = per_doc[s] - per_doc["ders"]
            low, high = np.percentile(diff[samples].mean(axis=1), [2.5, 97.5])
            out[f"{s}_minus_ders"] = {"mean": float(diff.mean()), "ci95": [float(low), float(high)]}
    return out


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    """The fastest of `repeats` calls (CPU speed here swings from one second to the next) and the result."""
    best, value = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value


def scale(args: argparse.Namespace) -> dict:
    """Build and query costs of exact and HNSW indexes at 1x and --scale x the training sentences."""
    import faiss
    from langchain_huggingface import HuggingFaceEmbeddings

    from data.llm.models import resolve

    train = [u.text for name in args.datasets
             for u in unit_documents(corpus_documents(name, "train"), "sentence").values()]
    queries = [u.text for name in args.datasets
               for u in unit_documents(corpus_documents(name, "test"), "sentence", respect_entities=False).values()]
    queries = queries[:args.queries]
    embed = HuggingFaceEmbeddings(model_name=resolve(args.embedding_model_path),
                                  encode_kwargs={"normalize_embeddings": True, "batch_size": 128})
    embed_seconds, vectors = timed(lambda: np.asarray(embed.embed_documents(train), dtype="float32"))
    query_vectors = np.asarray(embed.embed_documents(queries), dtype="float32")
    rng = np.random.default_rng(args.seed)
    copies = [vectors] + [vectors + rng.normal(0, 0.02, vectors.shape).astype("float32")
                          for _ in range(args.scale - 1)]
    out = {"train_sentences": len(train), "queries": len(queries), "embed_seconds": round(embed_seconds, 1),
           "k": args.k, "sizes": {}}
    for factor, data in ((1, vectors), (args.scale, np.concatenate(copies))):
        faiss.normalize_L2(data)
        row = {"units": len(data)}
        flat = faiss.IndexFlatIP(data.shape[1])
        row["flat_build_s"], _ = timed(lambda: flat.add(data))
        row["flat_query_s"], (_, exact) = timed(lambda: flat.search(query_vectors, args.k), args.repeats)
        row["hnsw_build_s"], hnsw = timed(lambda: hnsw_copy(flat))
        row["hnsw_query_s"], (_, approx) = timed(lambda: hnsw.search(query_vectors, args.k), args.repeats)
        row["hnsw_recall_at_k"] = float(np.mean([len(set(a) & set(e)) / args.k for a, e in zip(approx, exact)]))
        out["sizes"][f"{factor}x"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
    small, large = out["sizes"]["1x"], out["sizes"][f"{args.scale}x"]
    out["hnsw_query_cost_ratio"] = large["hnsw_query_s"] / small["hnsw_query_s"]
    out["flat_query_cost_ratio"] = large["flat_query_s"] / small["flat_query_s"]
    out["goal_met"] = out["hnsw_query_cost_ratio"] < 2 and large["hnsw_recall_at_k"] >= 0.95
    return out


def run(args: argparse.Namespace) -> dict:
    out: dict = {"settings": {"shots": args.shots, "seed": args.seed, "embedding_model": args.embedding_model_path,
                              "reranker": args.rerank_model_path}}
    if "quality" in args.parts:
        out["quality"] = {name: quality(name, args) for name in args.datasets}
        for name, q in out["quality"].items():
            cells = ", ".join(f"{s} {v:.3f}" for s, v in q["coverage"].items())
            print(f"{name}: coverage of {args.shots} examples over {q['documents']} test documents: {cells}",
                  flush=True)
            for s in ("kate", "rag"):
                if f"{s}_minus_ders" in q:
                    d = q[f"{s}_minus_ders"]
                    print(f"  {s} - ders {d['mean']:+.3f} (95 % CI {d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f})")
    if "scale" in args.parts:
        out["scale"] = s = scale(args)
        for size, row in s["sizes"].items():
            print(f"{size}: {row}", flush=True)
        print(f"HNSW query cost {args.scale}x / 1x: {s['hnsw_query_cost_ratio']:.2f} (flat "
              f"{s['flat_query_cost_ratio']:.2f}); recall@{args.k} at {args.scale}x "
              f"{s['sizes'][f'{args.scale}x']['hnsw_recall_at_k']:.3f}; goal {'met' if s['goal_met'] else 'NOT met'}")
        out["hnsw_query_cost_ratio"], out["goal_met"] = s["hnsw_query_cost_ratio"], s["goal_met"]
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--datasets", nargs="+", default=["bc5cdr", "ncbi_disease"])
    parser.add_argument("--parts", nargs="+", default=["quality", "scale"], choices=["quality", "scale"])
    parser.add_argument("--embedding_model_path", default="minilm")
    parser.add_argument("--rerank_model_path", default=None, help="adds the rag strategy (rag_icl/train_reranker.py)")
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--k", type=int, default=30, help="retrieved before reranking; the recall@k of the scale part")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the test documents")
    parser.add_argument("--max_eval_docs", type=int, default=None, help="quality on the first N test documents")
    parser.add_argument("--scale", type=int, default=10, help="the larger index holds this many copies")
    parser.add_argument("--queries", type=int, default=1000, help="test sentences queried in the scale part")
    parser.add_argument("--repeats", type=int, default=7, help="query timings: the fastest of this many")
    parser.add_argument("--json", help="write every figure here")
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> None:
    out = run(args)
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
