"""One scorer for every method: SemEval-2013 task 9.1 on character spans (eval.semeval), the
token-level and string-level views of the source papers (eval.views), and the CLI (eval/evaluate.py)."""
