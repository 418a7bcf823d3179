"""Fetch registry corpora into the data root, checking the sha256 of every file.

    python data/download.py ncbi_disease bc5cdr            # from the original repositories
    python data/download.py --all --mirror ../shared/datasets   # from a local mirror
    python data/download.py --write-manifest --mirror DIR  # maintainers: record checksums

Sources are public GitHub repositories pinned to a commit (see data/registry.py). Files that came
out of an archive (.zip / .tar.gz) are extracted from the downloaded archive. A file already in the
data root with the right checksum is left alone, so a rerun costs only the hashing.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path


from data import registry

# {repo}, {commit}, {path}: where a file of a repository at a commit can be read. Overridable so that
# a test can serve the sources from a local HTTP server.
RAW_URL = os.environ.get("NER_SOURCE_URL", "https://raw.githubusercontent.com/{repo}/{commit}/{path}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check(path: Path, mirror_path: str) -> None:
    want = registry.manifest()[mirror_path][1]
    got = sha256(path)
    if got != want:
        path.unlink()
        raise RuntimeError(f"{mirror_path}: sha256 {got} does not match the registry's {want}; file removed")


def _url(repo: str, commit: str, path: str) -> str:
    return RAW_URL.format(repo=repo, commit=commit, path=urllib.parse.quote(path))


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as resp:
        return resp.read()


class ArchiveCache:
    """Downloads each source archive once per run and hands out its members."""

    def __init__(self) -> None:
        self._archives: dict[str, dict[str, bytes]] = {}

    def member(self, src: registry.Source, rest: str) -> bytes:
        key = f"{src.repo}@{src.commit}:{src.archive}"
        if key not in self._archives:
            print(f"  downloading archive {src.archive} from {src.repo}", file=sys.stderr)
            self._archives[key] = _unpack(src.archive, _download(_url(src.repo, src.commit, src.archive)))
        members = self._archives[key]
        name = f"{src.path}/{rest}" if src.path else rest
        if name not in members:
            raise RuntimeError(f"{src.archive} from {src.repo} has no member {name!r}")
        return members[name]


def _unpack(name: str, blob: bytes) -> dict[str, bytes]:
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tf:
        return {m.name.removeprefix("./"): tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


_verified: set[Path] = set()  # files whose checksum this process has already checked


def fetch(name: str, mirror: str | Path | None = None, quiet: bool = True) -> list[Path]:
    """Make every file of dataset `name` present and verified in the data root; return their paths."""
    ds = registry.get(name)
    archives = ArchiveCache()
    out = []
    for mirror_path in registry.dataset_files(ds):
        dest = registry.local_path(mirror_path)
        out.append(dest)
        if dest in _verified and dest.exists():
            continue
        if dest.exists() and sha256(dest) == registry.manifest()[mirror_path][1]:
            _verified.add(dest)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if mirror is not None:
            src_file = Path(mirror) / mirror_path
            if not src_file.exists():
                raise FileNotFoundError(f"mirror {mirror} has no {mirror_path}")
            shutil.copyfile(src_file, dest)
        else:
            src, rest = registry.source_of(mirror_path)
            if src.archive:
                blob = archives.member(src, rest)
            else:
                blob = _download(_url(src.repo, src.commit, f"{src.path}/{rest}" if rest else src.path))
            dest.write_bytes(blob)
        _check(dest, mirror_path)
        _verified.add(dest)
        if not quiet:
            print(f"  {mirror_path}", file=sys.stderr)
    return out


def write_manifest(mirror: Path) -> int:
    """Record size and sha256 of every file of the mirror that a source covers."""
    rows = []
    for path in sorted(p for p in mirror.rglob("*") if p.is_file()):
        rel = path.relative_to(mirror).as_posix()
        if rel == "SOURCES.md":
            continue
        registry.source_of(rel)  # every file must have a recorded origin
        rows.append(f"{rel}\t{path.stat().st_size}\t{sha256(path)}")
    registry.MANIFEST.write_text("# mirror path\tsize\tsha256\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"datasets: {', '.join(registry.DATASETS)}")
    parser.add_argument("--all", action="store_true", help="every dataset in the registry")
    parser.add_argument("--mirror", type=Path, help="copy from this local folder (laid out like shared/datasets)")
    parser.add_argument("--write-manifest", action="store_true", help="record checksums of --mirror's files")
    args = parser.parse_args()
    if args.write_manifest:
        if not args.mirror:
            parser.error("--write-manifest needs --mirror")
        print(f"wrote {write_manifest(args.mirror)} entries to {registry.MANIFEST}")
        return
    names = list(registry.DATASETS) if args.all else args.names
    if not names:
        parser.error("name at least one dataset, or --all")
    for name in names:
        files = fetch(name, args.mirror)
        print(f"{name}: {len(files)} files verified in {registry.data_root()}")


if __name__ == "__main__":
    main()
