"""Generating methods: seed 1's document-level JSON (main.py and inference.py run decoders/'s scripts with seed 1's
settings), prompting an LLM without training it (prompt.py) and the length analysis that sizes their inputs and
answers (length_analysis.py)."""
