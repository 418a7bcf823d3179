"""Where corpus files come from: public GitHub repositories pinned to a commit, read file by file or out of
an archive (.zip / .tar.gz), every file checked against its sha256. data/registry.py names the sources of each
corpus; this module only knows how to fetch and check a file.
"""
from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from data.corpus import InputError


@dataclass(frozen=True)
class Source:
    """Where the files under a mirror folder come from: a repository at a commit.

    `path` is the folder in the repository; when `archive` is set the files are members of that
    archive (a .zip or .tar.gz at `archive` in the repository), under `path` inside the archive.
    """

    mirror_prefix: str
    repo: str
    commit: str
    path: str
    archive: str | None = None


# {repo}, {commit}, {path}: where a file of a repository at a commit can be read. Overridable so that
# a test can serve the sources from a local HTTP server.
RAW_URL = os.environ.get("NER_SOURCE_URL", "https://raw.githubusercontent.com/{repo}/{commit}/{path}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(path: Path, mirror_path: str, want: str) -> None:
    """Remove the file and stop when its sha256 is not the manifest's."""
    got = sha256(path)
    if got != want:
        path.unlink()
        raise InputError(f"{mirror_path}: sha256 {got} does not match the registry's {want} (a changed source or a "
                         "damaged mirror); file removed")


def url(repo: str, commit: str, path: str) -> str:
    return RAW_URL.format(repo=repo, commit=commit, path=urllib.parse.quote(path))


def download(url: str) -> bytes:
    """The bytes at `url`; no network or a missing file ends the run naming the URL and the way round it."""
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError) as err:
        raise InputError(f"cannot download {url}: {getattr(err, 'reason', err)}; offline, point NER_MIRROR (or "
                         "data/download.py --mirror) at a folder holding the corpus files") from None


class ArchiveCache:
    """Downloads each source archive once per run and hands out its members."""

    def __init__(self) -> None:
        self._archives: dict[str, dict[str, bytes]] = {}

    def member(self, src: Source, rest: str) -> bytes:
        key = f"{src.repo}@{src.commit}:{src.archive}"
        if key not in self._archives:
            print(f"  downloading archive {src.archive} from {src.repo}", file=sys.stderr)
            self._archives[key] = _unpack(src.archive, download(url(src.repo, src.commit, src.archive)))
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
