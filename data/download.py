"""Fetch registry corpora into the data root, checking the sha256 of every file.

    python data/download.py ncbi_disease bc5cdr            # from the original repositories
    python data/download.py --all --mirror ../shared/datasets   # from a local mirror
    python data/download.py --write-manifest --mirror DIR  # maintainers: record checksums

Sources are public GitHub repositories pinned to a commit (see data/registry.py). Files that came
out of an archive (.zip / .tar.gz) are extracted from the downloaded archive. A file already in the
data root with the right checksum is left alone, so a rerun costs only the hashing.
"""
from __future__ import annotations

from pathlib import Path

from data import registry, sources
from data.corpus import exit_on_format_error, script_parser


def write_manifest(mirror: Path) -> int:
    """Record size and sha256 of every file of the mirror that a source covers."""
    rows = []
    for path in sorted(p for p in mirror.rglob("*") if p.is_file()):
        rel = path.relative_to(mirror).as_posix()
        if rel == "SOURCES.md":
            continue
        registry.source_of(rel)  # every file must have a recorded origin
        rows.append(f"{rel}\t{path.stat().st_size}\t{sources.sha256(path)}")
    registry.MANIFEST.write_text("# mirror path\tsize\tsha256\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


def main() -> None:
    parser = script_parser(__doc__)
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
        files = registry.fetch(name, args.mirror)
        print(f"{name}: {len(files)} files verified in {registry.data_root()}")


if __name__ == "__main__":
    exit_on_format_error(main)
