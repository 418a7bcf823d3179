"""One scorer for every method: SemEval-2013 task 9.1 on character spans (eval.semeval), the token-level and
string-level views of the source papers (eval.views), generated answers scored and diagnosed (eval.answers,
eval.diagnostics), what every run writes (eval.runs), the CLI (eval/evaluate.py) and the report (eval/report.py)."""
