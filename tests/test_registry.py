"""The registry: every file has a source and a checksum, downloads are verified, and every split's
counts equal the ones shared/datasets/SOURCES.md reports."""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import pytest

from conftest import MIRROR, load_split, needs_mirror
from data import registry, sources
from data.corpus import Document, Entity, FormatError, InputError, write_jsonl
from data.stats import split_stats

# (dataset, split) -> (documents, sentences or None, entities, {type: n} or None), from SOURCES.md.
# IOB files without document markers are one document per sentence.
JNLPBA_TRAIN_TYPES = {"protein": 30269, "DNA": 9533, "cell_type": 6718, "cell_line": 3830, "RNA": 951}
JNLPBA_TEST_TYPES = {"protein": 5067, "cell_type": 1921, "DNA": 1056, "cell_line": 500, "RNA": 118}
JNLPBA_DEV_TYPES = {"protein": 2466, "DNA": 1052, "cell_type": 526, "cell_line": 400, "RNA": 107}
EXPECTED = {
    ("ncbi_disease", "train"): (593, None, 5145, None),
    ("ncbi_disease", "dev"): (100, None, 787, None),
    ("ncbi_disease", "test"): (100, None, 960, None),
    ("ncbi_disease_iob", "train"): (5424, 5424, 5134, None),
    ("ncbi_disease_iob", "dev"): (923, 923, 787, None),
    ("ncbi_disease_iob", "test"): (940, 940, 960, None),
    ("bc5cdr", "train"): (500, None, 9385, {"Chemical": 5203, "Disease": 4182}),
    ("bc5cdr", "dev"): (500, None, 9591, {"Chemical": 5347, "Disease": 4244}),
    ("bc5cdr", "test"): (500, None, 9809, {"Chemical": 5385, "Disease": 4424}),
    ("bc5cdr_bioc", "train"): (500, None, 9385, {"Chemical": 5203, "Disease": 4182}),
    ("bc5cdr_bioc", "test"): (500, None, 9809, {"Chemical": 5385, "Disease": 4424}),
    ("bc5cdr_iob", "train"): (4560, 4560, 9385, {"Chemical": 5203, "Disease": 4182}),
    ("bc5cdr_iob", "dev"): (4581, 4581, 9593, {"Chemical": 5347, "Disease": 4246}),
    ("bc5cdr_iob", "test"): (4797, 4797, 9809, {"Chemical": 5385, "Disease": 4424}),
    ("bc5cdr_chem_iob", "test"): (4797, 4797, 5385, None),
    ("bc5cdr_disease_iob", "dev"): (4581, 4581, 4246, None),
    ("jnlpba", "train"): (2000, 18546, 51301, JNLPBA_TRAIN_TYPES),
    ("jnlpba", "test"): (404, 3856, 8662, JNLPBA_TEST_TYPES),
    ("jnlpba_mtl", "dev"): (200, 1739, 4551, JNLPBA_DEV_TYPES),
    ("jnlpba_mtl", "test"): (None, 3856, 8662, JNLPBA_TEST_TYPES),
    ("jnlpba_mtl", "train"): (None, 18546 - 1739, 51301 - 4551,
                              {t: n - JNLPBA_DEV_TYPES[t] for t, n in JNLPBA_TRAIN_TYPES.items()}),
    ("biored", "train"): (400, None, 13351, None),
    ("biored", "dev"): (100, None, 3533, None),
    ("biored", "test"): (100, None, 3535, None),
    ("biored_bioc", "train"): (400, None, 13351, None),
    ("chemprot", "dev"): (327, 3360, 8415, None),
    ("chemprot", "test"): (800, 8179, 20759, None),
    ("pharmaconer", "train"): (500, None, 3822, {"NORMALIZABLES": 2304, "PROTEINAS": 1405,
                                                 "NO_NORMALIZABLES": 24, "UNCLEAR": 89}),
    ("pharmaconer", "dev"): (250, None, 1926, {"NORMALIZABLES": 1121, "PROTEINAS": 745,
                                               "NO_NORMALIZABLES": 16, "UNCLEAR": 44}),
    ("pharmaconer", "test"): (250, None, 1876, {"NORMALIZABLES": 973, "PROTEINAS": 859,
                                                "NO_NORMALIZABLES": 10, "UNCLEAR": 34}),
    ("rudrec", "all"): (500, 4809, 4566, {"DI": 1401, "Drugname": 1043, "Drugform": 836, "ADR": 720,
                                          "Drugclass": 330, "Finding": 236}),
    ("nerel_bio", "train"): (612, None, 54210, None),
    ("nerel_bio", "dev"): (77, None, 6435, None),
    ("nerel_bio", "test"): (77, None, 6173, None),
    ("bc2gm", "train"): (15000, 15000, 18265, None),
    ("bc2gm", "test"): (5000, 5000, 6331, None),
    ("bc2gm_iob", "train"): (12574, 12574, 15197, None),
    ("bc2gm_iob", "dev"): (2519, 2519, 3061, None),
    ("bc2gm_iob", "test"): (5038, 5038, 6325, None),
    ("linnaeus_iob", "train"): (11935, 11935, 2119, None),
    ("linnaeus_iob", "dev"): (4078, 4078, 711, None),
    ("linnaeus_iob", "test"): (7142, 7142, 1433, None),
    ("s800", "train"): (5733, 5733, 2557, {"Species": 2557}),
    ("s800", "dev"): (830, 830, 384, None),
    ("s800", "test"): (1630, 1630, 767, None),
    ("ddi", "train"): (572 + 142, 5675 + 1301, 12929 + 1836, None),
    ("ddi", "test"): (54 + 58, 145 + 520, 304 + 382, None),
    ("ddi", "test_ddi"): (158 + 33, 973 + 326, 2512 + 528, None),
    ("ddi_brat", "train"): (572 + 142, None, 12929 + 1836, None),
    ("ddi_brat", "test"): (54 + 58 + 158 + 33, None, 304 + 382 + 2512 + 528, None),
}


def test_every_registry_file_has_a_checksum_and_a_source():
    for ds in registry.DATASETS.values():
        files = registry.dataset_files(ds)
        assert files, ds.name
        for f in files:
            assert f in registry.manifest()
            src, _ = registry.source_of(f)
            assert len(src.commit) == 40


@needs_mirror
@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0]}-{k[1]}")
def test_counts_equal_sources_md(key):
    docs, sents, ents, types = EXPECTED[key]
    stats = split_stats(load_split(*key))
    if docs is not None:
        assert stats["documents"] == docs
    if sents is not None:
        assert stats["sentences"] == sents
    assert stats["entities"] == ents
    if types is not None:
        assert stats["types"] == types
    assert set(stats["types"]) <= set(registry.get(key[0]).types)


@needs_mirror
def test_linnaeus_splits_partition_the_100_documents():
    splits = {s: load_split("linnaeus", s) for s in ("train", "dev", "test")}
    assert [len(d) for d in splits.values()] == [50, 17, 33]
    assert sum(len(d.entities) for docs in splits.values() for d in docs) == 4259


@needs_mirror
def test_raredis_explains_that_its_texts_are_missing():
    with pytest.raises(FormatError, match="(?i)text"):
        load_split("raredis", "dev")


@needs_mirror
def test_mirror_copy_is_checked(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    for f in registry.dataset_files(registry.get("s800")):
        (mirror / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MIRROR / f, mirror / f)
    monkeypatch.setenv("NER_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "_verified", set())
    assert len(registry.fetch("s800", mirror)) == 3
    tampered = mirror / "s800/iob_biobert/test.tsv"
    tampered.write_bytes(tampered.read_bytes().replace(b"\tO\n", b"\tB\n", 1))
    (tmp_path / "data/s800/iob_biobert/test.tsv").unlink()
    with pytest.raises(InputError, match="sha256"):
        registry.fetch("s800", mirror)
    assert not (tmp_path / "data/s800/iob_biobert/test.tsv").exists()
    tampered.unlink()
    with pytest.raises(InputError, match="has no s800/iob_biobert/test.tsv"):
        registry.fetch("s800", mirror)


def test_no_network_is_one_error_naming_the_url_and_the_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("NER_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "_verified", set())
    monkeypatch.setattr(sources, "RAW_URL", "http://127.0.0.1:9/{repo}/{commit}/{path}")  # port 9: refused
    with pytest.raises(InputError, match=r"cannot download http://127\.0\.0\.1:9/.*NER_MIRROR"):
        registry.fetch("s800")


@needs_mirror
def test_download_from_sources_over_http(tmp_path, monkeypatch):
    """Serve a plain-file source and an archive source from loopback, laid out as the repositories are."""
    served = tmp_path / "served"
    for name in ("ncbi_disease", "pharmaconer"):
        archives: dict[Path, zipfile.ZipFile] = {}
        for f in registry.dataset_files(registry.get(name)):
            src, rest = registry.source_of(f)
            base = served / src.repo / src.commit
            inner = f"{src.path}/{rest}".strip("/")
            if src.archive:
                zpath = base / src.archive
                if zpath not in archives:
                    zpath.parent.mkdir(parents=True, exist_ok=True)
                    archives[zpath] = zipfile.ZipFile(zpath, "w")
                archives[zpath].write(MIRROR / f, inner)
            else:
                (base / inner).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(MIRROR / f, base / inner)
        for z in archives.values():
            z.close()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(sources, "RAW_URL", f"http://127.0.0.1:{server.server_port}/{{repo}}/{{commit}}/{{path}}")
        monkeypatch.setenv("NER_DATA", str(tmp_path / "data"))
        monkeypatch.setattr(registry, "_verified", set())
        for name in ("ncbi_disease", "pharmaconer"):
            files = registry.fetch(name)
            assert files and all(p.exists() for p in files)
        assert len(registry.load("pharmaconer", "dev")) == 250
    finally:
        server.shutdown()


def test_a_datasets_folder_without_dev_holds_out_training_documents_for_validation(tmp_path):
    train = [Document(f"t{i}", "Aspirin helps.", [Entity(((0, 7),), "Chemical", "Aspirin")]) for i in range(20)]
    write_jsonl(train, tmp_path / "train.jsonl")
    write_jsonl([Document("x", "No entity here.")], tmp_path / "test.jsonl")
    docs, types = registry.load_splits("mine", tmp_path, seed=1)
    assert types == ("Chemical",) and [d.id for d in docs["test"]] == ["x"]
    assert len(docs["dev"]) == int(registry.HELD_OUT_DEV * 20) and len(docs["dev"]) + len(docs["train"]) == 20
    assert not {d.id for d in docs["dev"]} & {d.id for d in docs["train"]}
    (tmp_path / "test.jsonl").unlink()
    with pytest.raises(FormatError, match="test.jsonl: no such file"):
        registry.load_splits("mine", tmp_path)
