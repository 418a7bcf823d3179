"""llama-cpp-python's OpenAI-compatible server, or a Llama in this process, with llama.cpp's weight repacking
switchable. On CPUs with Intel AMX (Sapphire Rapids and later) llama.cpp repacks quantised weights into its
extra buffer types and then crashes in llama_decode (llama.cpp issue 20824); loading the model with
`use_extra_bufts = False` avoids it, and the Python `Llama` class has no argument for that field.

    python -m data.llm.llama_server --no_repack auto --model SmolLM2-135M-Instruct.Q4_1.gguf \\
        --host 127.0.0.1 --port 8080 --n_ctx 4096

--no_repack auto (the default) turns repacking off where /proc/cpuinfo's flags name AMX (amx_tile, amx_bf16,
amx_int8) and leaves it on elsewhere, and on every system but Linux; true or false force it. What was chosen
is printed to stderr. Every other argument is llama_cpp.server's own (`--help` lists them after this text).

How: `Llama.__init__` takes its model params from `llama_cpp.llama_cpp.llama_model_default_params()`; while
repacking is off, that function (and its re-export `llama_cpp.llama_model_default_params`) returns params with
`use_extra_bufts = False`, so the server's models, and `load_llama`'s, load without the extra buffer types.
Off gives up the repacked kernels' speed (AMX's, and elsewhere llama.cpp's CPU_REPACK layouts of some quant
types), so auto keeps them wherever the crash is not expected.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

AMX_FLAGS = frozenset({"amx_tile", "amx_bf16", "amx_int8"})
CHOICES = ("auto", "true", "false")


def has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has AMX, read from the kernel's flags (Linux only: elsewhere there is nothing to read,
    and the crash has been reported on Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return False
    return any(line.startswith("flags") and AMX_FLAGS & set(line.partition(":")[2].split()) for line in lines)


def resolve(no_repack: str) -> bool:
    """--no_repack's value as a decision: auto means off exactly where AMX is."""
    if no_repack not in CHOICES:
        raise ValueError(f"--no_repack must be one of {', '.join(CHOICES)}, not {no_repack!r}")
    return has_amx() if no_repack == "auto" else no_repack == "true"


@contextmanager
def repacking_off(off: bool) -> Iterator[None]:
    """While inside (if `off`), every Llama made in this process loads with use_extra_bufts False; the library's
    defaults are restored on leaving."""
    if not off:
        yield
        return
    import llama_cpp
    from llama_cpp import llama_cpp as lib

    original = lib.llama_model_default_params

    def defaults():
        params = original()
        params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = llama_cpp.llama_model_default_params = defaults
    try:
        yield
    finally:
        lib.llama_model_default_params = llama_cpp.llama_model_default_params = original


def announce(no_repack: str, off: bool) -> None:
    print(f"llama_server: llama.cpp weight repacking {'off (use_extra_bufts=False)' if off else 'on'} "
          f"(--no_repack {no_repack}{'; AMX found' if has_amx() else ''})", file=sys.stderr)


def load_llama(model_path: str | Path, no_repack: str = "auto", **kwargs):
    """A llama_cpp.Llama (keyword arguments as Llama's) loaded with the repacking --no_repack chooses."""
    from llama_cpp import Llama

    off = resolve(no_repack)
    announce(no_repack, off)
    with repacking_off(off):
        return Llama(model_path=str(model_path), **kwargs)


def launch(model: str | Path, port: int, log: Path, *server_args: str, no_repack: str = "auto",
           wait_s: float = 90.0) -> subprocess.Popen:
    """This launcher's server on 127.0.0.1:`port` in a child process (its output in `log`), returned once it
    answers GET /v1/models; a RuntimeError with the log's tail if it exits or stays silent for `wait_s`."""
    root = Path(__file__).resolve().parents[2]
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "data.llm.llama_server", "--no_repack", no_repack,
                                 "--model", str(model), "--host", "127.0.0.1", "--port", str(port), *server_args],
                                cwd=root, stdout=fh, stderr=subprocess.STDOUT)
    started = time.time()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
            return proc
        except OSError:
            if time.time() - started > wait_s:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"llama.cpp server did not answer within {wait_s} s:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    """Read --no_repack, hand every other argument to llama_cpp.server's own main (it reads sys.argv)."""
    parser = argparse.ArgumentParser(prog="python -m data.llm.llama_server", description=__doc__, add_help=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no_repack", choices=CHOICES, default="auto",
                        help="load without llama.cpp's weight repacking (auto: where the CPU has AMX)")
    args, rest = parser.parse_known_args(argv)
    if {"-h", "--help"} & set(rest):
        parser.print_help()
        print("\nllama_cpp.server's arguments:\n")
    from llama_cpp.server.__main__ import main as serve

    off = resolve(args.no_repack)
    announce(args.no_repack, off)
    sys.argv = [parser.prog, *rest]
    with repacking_off(off):
        serve()


if __name__ == "__main__":
    main()
