"""Which solved training examples an in-context prompt shows, for every prompting method (rag_icl/, and
generative/prompt.py's retrieval-augmented prompts).

    zero_shot  none
    fers       one fixed random set for every input (seed 3's "FERS"), drawn with the seed
    ders       a random set per input (seed 3's "DERS"), drawn from (seed, input id)
    kate       the nearest training units by embedding (KATE: cosine of normalised embeddings)
    rag        seed 3's RAG-ICL: the k nearest by embedding, reranked by a cross-encoder, the top_n kept,
               then only those whose rerank score reaches the threshold (the seed parses its 0.79 threshold
               and never applies it)

Retrieval goes through LangChain, as the seed's did: `langchain_huggingface.HuggingFaceEmbeddings` with
normalised embeddings in a LangChain FAISS store searched by inner product, i.e. by cosine. Scores are the
store's raw inner products (`similarity_search_with_score`): LangChain's "relevance" score for
MAX_INNER_PRODUCT is 1 - cosine, inverted (langchain issues 22209, 14948), so it is never used, and
`similarity_score_threshold` is applied here on the cosine. The store is saved with `save_local` next to a
fingerprint of what made it (embedding model, index kind, the training units' ids and texts) and reused only
when that is unchanged; `load_local` is given the distance strategy again (LangChain does not save it).

Index kinds: "flat" (exact inner product, LangChain's default) or "hnsw" (FAISS's approximate HNSW graph over
inner products; bench/retrieval.py measures its recall against the flat index).
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

from data.corpus import Document, FormatError
from data.llm.models import resolve

STRATEGIES = ("zero_shot", "fers", "ders", "kate", "rag")
SEARCH_TYPES = ("similarity", "mmr", "similarity_score_threshold")
INDEX_KINDS = ("flat", "hnsw")
# FAISS HNSW: graph degree, candidates kept while building, and while searching. On the training sentences of
# BC5CDR and NCBI-disease (9,704, MiniLM) and 10 noisy copies of them, 1,000 queries for their 30 nearest:
# building with 40 candidates and searching 64 reached recall@30 0.986 at 1x but 0.866 at 10x; building with
# 200 reached 0.989 and 0.962, a query costing 1.6x as much at 10x as at 1x (exact search: 7.6-9.2x).
HNSW_NEIGHBOURS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 200, 64


@dataclass(frozen=True)
class Example:
    """A training unit chosen for an input, with how it was chosen (None where a stage did not run)."""

    id: str
    retrieval: float | None = None  # cosine of the embeddings
    rerank: float | None = None  # the cross-encoder's probability that the example is useful


def fingerprint(texts: Mapping[str, str], model: str, kind: str) -> dict:
    digest = hashlib.sha256()
    for unit_id in sorted(texts):
        digest.update(f"{unit_id}\0{texts[unit_id]}\0".encode())
    return {"embedding_model": model, "index": kind, "units": len(texts), "units_sha256": digest.hexdigest()}


class ExampleIndex:
    """Training units in a LangChain FAISS store (module docstring)."""

    def __init__(self, texts: Mapping[str, str], model: str, folder: Path | None = None, kind: str = "flat",
                 overwrite: bool = False):
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy
        from langchain_huggingface import HuggingFaceEmbeddings

        if not texts:
            raise ValueError("no training units to retrieve examples from")
        if kind not in INDEX_KINDS:
            raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
        self.texts = dict(texts)
        self.embeddings = HuggingFaceEmbeddings(model_name=resolve(model), encode_kwargs={"normalize_embeddings": True})
        want = fingerprint(self.texts, model, kind)
        made = folder / "fingerprint.json" if folder is not None else None
        if made is not None and made.exists() and not overwrite:
            found = json.loads(made.read_text())
            if found != want:
                differ = ", ".join(f"{k}: {found.get(k)!r} there, {want[k]!r} now"
                                   for k in want if found.get(k) != want[k])
                raise FormatError(folder, None, f"holds an index of other training units or another model ({differ}): "
                                                "use another --index_dir, or --overwrite True")
            self.store = FAISS.load_local(str(folder), self.embeddings, allow_dangerous_deserialization=True,
                                          distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
            return
        ids = list(self.texts)
        self.store = FAISS.from_texts([self.texts[i] for i in ids], self.embeddings, ids=ids,
                                      distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
        if kind == "hnsw":
            self.store.index = hnsw_copy(self.store.index)
        if folder is not None:
            self.store.save_local(str(folder))
            made.write_text(json.dumps(want, indent=2) + "\n")

    def search(self, query: str, k: int, search_type: str = "similarity", score_threshold: float = 0.0,
               fetch_k: int = 100, lambda_mult: float = 0.5) -> list[Example]:
        """The k best training units for a query text, best first, each with its cosine."""
        if search_type == "similarity":
            found = self.store.similarity_search_with_score(query, k=k)
        elif search_type == "similarity_score_threshold":
            found = [(d, s) for d, s in self.store.similarity_search_with_score(query, k=k) if s >= score_threshold]
        elif search_type == "mmr":
            vector = self.embeddings.embed_query(query)
            found = self.store.max_marginal_relevance_search_with_score_by_vector(vector, k=k, fetch_k=max(fetch_k, k),
                                                                                  lambda_mult=lambda_mult)
        else:
            raise ValueError(f"search type must be one of {SEARCH_TYPES}, got {search_type!r}")
        return [Example(doc.id, float(score)) for doc, score in found]


def hnsw_copy(flat):
    """An approximate HNSW index (inner product) holding the flat index's vectors, in the same order."""
    import faiss

    index = faiss.IndexHNSWFlat(flat.d, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction, index.hnsw.efSearch = HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH
    index.add(flat.reconstruct_n(0, flat.ntotal))
    return index


class Reranker:
    """A sentence-transformers CrossEncoder scoring (input, candidate example) pairs; scores are
    probabilities (the sigmoid of its one logit)."""

    def __init__(self, model: str, max_length: int = 512, batch_size: int = 32):
        import torch
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(resolve(model), num_labels=1, max_length=max_length,
                                  activation_fn=torch.nn.Sigmoid())
        self.batch_size = batch_size

    def scores(self, query: str, candidates: Sequence[str]) -> list[float]:
        if not candidates:
            return []
        return [float(s) for s in self.model.predict([(query, c) for c in candidates], batch_size=self.batch_size,
                                                     show_progress_bar=False)]


def retrieve_and_rerank(index: ExampleIndex, reranker: Reranker | None, query: str, k: int, top_n: int,
                        threshold: float | None, search_type: str = "similarity",
                        score_threshold: float = 0.0) -> list[Example]:
    """RAG-ICL for one input (module docstring): without a reranker, the retrieval order (KATE)."""
    found = index.search(query, k, search_type, score_threshold)
    if reranker is None:
        return found[:top_n]
    scores = reranker.scores(query, [index.texts[e.id] for e in found])
    ranked = sorted((Example(e.id, e.retrieval, s) for e, s in zip(found, scores)), key=lambda e: -e.rerank)
    return [e for e in ranked[:top_n] if threshold is None or e.rerank >= threshold]


def random_examples(train_ids: Sequence[str], queries: Sequence[str], shots: int, seed: int,
                    per_query: bool) -> dict[str, list[Example]]:
    """FERS (one draw for all queries) or DERS (a draw per query, from the seed and the query's id)."""
    if shots > len(train_ids):
        raise ValueError(f"{shots} examples asked for, but only {len(train_ids)} training units")
    pool = sorted(train_ids)
    fixed = random.Random(seed).sample(pool, shots)
    return {q: [Example(i) for i in (random.Random(f"{seed}/{q}").sample(pool, shots) if per_query else fixed)]
            for q in queries}


def gold_mentions(doc: Document) -> set[tuple[str, str]]:
    """(type, lower-cased text) of a unit's gold mentions: what an example can show a model about it."""
    return {(e.type, (e.text or e.surface(doc.text)).lower()) for e in doc.entities}


def coverage(query: Document, examples: Sequence[Document]) -> float | None:
    """The share of the query's gold mentions that occur among the examples' gold mentions (None when the query
    has none): how much the examples could teach about this input. rag_icl/train_reranker.py learns it,
    bench/retrieval.py measures it."""
    wanted = gold_mentions(query)
    if not wanted:
        return None
    shown = set().union(*(gold_mentions(e) for e in examples)) if examples else set()
    return len(wanted & shown) / len(wanted)


def write_selection(path: Path, selection: Mapping[str, Sequence[Example]], settings: dict) -> None:
    """best_example.json: {"settings": ..., "examples": {input id: [{id, retrieval, rerank}, ...]}}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"settings": settings, "examples": {q: [asdict(e) for e in exs] for q, exs in selection.items()}}
    path.write_text(json.dumps(body, indent=1, default=str) + "\n", encoding="utf-8")


def read_selection(path: Path, queries: Sequence[str], train_ids: Sequence[str]) -> dict[str, list[Example]]:
    """The examples best_examples.py chose; an input missing from the file, or an example that is not a training
    unit, is a FormatError naming it."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
        chosen = body["examples"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FormatError(path, None, f"not a best_example.json written by rag_icl/best_examples.py ({err})") from None
    known = set(train_ids)
    out = {}
    for q in queries:
        if q not in chosen:
            raise FormatError(path, q, "this input has no examples: run best_examples.py on the same split")
        unknown = [e["id"] for e in chosen[q] if e["id"] not in known]
        if unknown:
            raise FormatError(path, q, f"examples {unknown[:3]} are not training units of this corpus")
        out[q] = [Example(**e) for e in chosen[q]]
    return out
