"""The structure the project promises: imports run one way (methods -> eval/ -> data/), no method folder imports
another, bench/ imports only data/, eval/ and the script it times, and no two modules import each other, however
late; and every script answers --help, listing every flag its docstring and the README show it with."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import ROOT

METHODS = ("encoders", "decoders", "generative", "continual", "dictionary", "rag_icl", "dfpo")
PACKAGES = ("data", "eval", "bench", *METHODS)
BENCH_TIMES = {"bench/encoder_speed.py": {"encoders"}, "bench/encoder_accuracy.py": {"encoders"},
               "bench/retrieval.py": {"rag_icl"}, "bench/soak_prompting.py": {"generative"}}


def sources() -> list[Path]:
    return sorted(p for top in PACKAGES if (ROOT / top).is_dir() for p in (ROOT / top).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Every project module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from data import registry`
    return {name for name in found if name.split(".")[0] in PACKAGES}


def allowed(path: Path) -> set[str]:
    """The top-level folders a file may import from."""
    top = path.relative_to(ROOT).parts[0]
    if top == "data":
        return {"data"}
    if top == "eval":
        return {"data", "eval"}
    if top == "bench":
        return {"data", "eval", "bench", *BENCH_TIMES.get(str(path.relative_to(ROOT)), ())}
    return {"data", "eval", top}


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path):
    wrong = sorted(name for name in project_imports(path) if name.split(".")[0] not in allowed(path))
    assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"


def test_no_import_cycles():
    """Between project modules, counting imports inside functions too (a late import hides a cycle)."""
    modules = {module_name(p): p for p in sources()}
    graph = {name: {m for m in project_imports(p) if m in modules and m != name} for name, p in modules.items()}
    for name in graph:  # a package's __init__ is not an import of its submodules' importers
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


# --------------------------------------------------------------------------- every script's --help
def scripts() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in sources() if '__name__ == "__main__"' in p.read_text(encoding="utf-8")]


def documented_flags(script: str) -> set[str]:
    """The flags of the example commands of `script`: in its docstring and in the README's code blocks, every
    `python SCRIPT ...` command line (with its continuation lines)."""
    doc = ast.get_docstring(ast.parse((ROOT / script).read_text(encoding="utf-8"))) or ""
    flags = set()
    for text in (doc, (ROOT / "README.md").read_text(encoding="utf-8")):
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if not re.search(rf"(^|\s)(python3? |\$LAUNCH |torchrun .*?){re.escape(script)}(\s|$)", line):
                continue
            command = line
            while command.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command.rstrip()[:-1] + " " + lines[i]
            command = command.split(script, 1)[1].split("#")[0]
            flags |= set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", command))
    return flags


@lru_cache(maxsize=1)
def helps() -> dict[str, subprocess.CompletedProcess]:
    """Every script's --help, two at a time (a fresh interpreter mostly imports transformers)."""
    def run(script: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(scripts(), pool.map(run, scripts())))


@pytest.mark.parametrize("script", scripts())
def test_every_script_answers_help_with_every_documented_flag(script):
    done = helps()[script]
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]
    missing = sorted(f for f in documented_flags(script) if not re.search(rf"{re.escape(f)}(?![\w-])", done.stdout))
    assert not missing, f"{script}: documented but not in --help: {missing}"
