"""Seed 3's RAG-ICL: in-context NER with retrieved and reranked examples, its baselines (zero-shot, FERS, DERS,
KATE) and DMCR repair of answers that do not parse."""
