"""Generating methods that prompt an LLM without training it (generative/prompt.py) and the length
analysis that sizes their inputs and answers (generative/length_analysis.py)."""
