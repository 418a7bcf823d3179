"""Every corpus the project knows: its files per split, entity types, original source and checksums.

Files are named by their path in a mirror laid out like `shared/datasets` (`ncbi_disease/...`).
`data/manifest.tsv` holds the sha256 and size of every file; `fetch` (data/download.py is its command
line) brings them into the data root (env NER_DATA, default `.cache/corpora`) from the original
repositories (data/sources.py) or a mirror.
`load(name, split)` reads a split through the matching reader in data/readers.
"""
from __future__ import annotations

import os
import random
import shutil
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from data import readers, sources
from data.corpus import Document, InputError, nests, read_jsonl
from data.sources import Source

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).with_name("manifest.tsv")


def data_root() -> Path:
    return Path(os.environ.get("NER_DATA", ROOT / ".cache" / "corpora"))


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    types: tuple[str, ...]
    splits: dict[str, tuple[str, ...]]  # split -> mirror paths (files, or folders taken whole)
    read: Callable[[list[Path]], list[Document]]  # the split's local files -> documents
    extra: tuple[str, ...] = ()  # licences and READMEs fetched along with the data
    language: str = "en"
    relations: tuple[str, ...] = ()  # relation types, read into Document.relations (DDI's NEGATIVE aside)


@lru_cache(maxsize=1)
def manifest() -> dict[str, tuple[int, str]]:
    """mirror path -> (size, sha256)."""
    entries = {}
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            path, size, sha = line.split("\t")
            entries[path] = (int(size), sha)
    return entries


def expand(paths: tuple[str, ...]) -> list[str]:
    """Mirror files named by a list of files and folders, sorted within each folder."""
    files = manifest()
    out: list[str] = []
    for p in paths:
        if p in files:
            out.append(p)
            continue
        inside = sorted(f for f in files if f.startswith(p.rstrip("/") + "/"))
        if not inside:
            raise KeyError(f"{p!r} is neither a file nor a folder in {MANIFEST}")
        out.extend(inside)
    return out


def dataset_files(ds: Dataset) -> list[str]:
    return expand(tuple(p for paths in ds.splits.values() for p in paths) + ds.extra)


# --------------------------------------------------------------------------- sources
MTL = ("cambridgeltl/MTL-Bioinformatics-2016", "df0df02fae6dbb87d88ffcf323b9096528f06f84")
SOURCES: tuple[Source, ...] = (
    Source("ncbi_disease/original_pubtator/NCBItrainset_corpus.txt", "spyysalo/ncbi-disease",
           "5a266c6fc76fb2b5184cfa397ff0a5ecdb133aec", "original-data/train/NCBItrainset_corpus.txt"),
    Source("ncbi_disease/original_pubtator/NCBIdevelopset_corpus.txt", "spyysalo/ncbi-disease",
           "5a266c6fc76fb2b5184cfa397ff0a5ecdb133aec", "original-data/devel/NCBIdevelopset_corpus.txt"),
    Source("ncbi_disease/original_pubtator/NCBItestset_corpus.txt", "spyysalo/ncbi-disease",
           "5a266c6fc76fb2b5184cfa397ff0a5ecdb133aec", "original-data/test/NCBItestset_corpus.txt"),
    Source("ncbi_disease/original_pubtator/LICENSE", "spyysalo/ncbi-disease",
           "5a266c6fc76fb2b5184cfa397ff0a5ecdb133aec", "original-data/LICENSE"),
    Source("ncbi_disease/iob_mtl/LICENSE.md", *MTL, "LICENSE.md"),
    Source("ncbi_disease/iob_mtl", *MTL, "data/NCBI-disease-IOB"),
    Source("bc5cdr/original/README.txt", "cryptoradon/biomedRelExt",
           "c3f40f6f28da6c2f227f487bd3c46a78215a2b2f", "CDR_Data/README.txt"),
    Source("bc5cdr/original", "cambridgeltl/bmip-2018", "0b66ee9245653b622cb6c36ba13d018b21b5b80e",
           "BC5-CDR/original-data"),
    Source("bc5cdr/iob_mtl/LICENSE.md", *MTL, "LICENSE.md"),
    Source("bc5cdr/iob_mtl", *MTL, "data"),
    Source("jnlpba/original/train", "wolfe-pack/wolfe", "84fa659cb49374c99b8a7488af8adb17d5edd856", "",
           "wolfe-examples/src/main/resources/ml/wolfe/datasets/genia/Genia4ERtraining.tar.gz"),
    Source("jnlpba/original/test", "wolfe-pack/wolfe", "84fa659cb49374c99b8a7488af8adb17d5edd856", "",
           "wolfe-examples/src/main/resources/ml/wolfe/datasets/genia/Genia4ERtest.tar.gz"),
    Source("jnlpba/iob_mtl/LICENSE.md", *MTL, "LICENSE.md"),
    Source("jnlpba/iob_mtl", *MTL, "data/JNLPBA"),
    Source("biored", "ndlongvn/BioRED-NER-RE", "637e02c9746de045ef56dbf543d77602783d63d9",
           "RE BioRED/data/BioRED"),
    Source("chemprot/scibert_sentence_re", "allenai/scibert", "06793f77d7278898159ed50da30d173cdc8fdea9",
           "data/text_classification/chemprot"),
    Source("chemprot/end2end_pure_json", "bionlproc/end-to-end-ChemProt",
           "a42a0a1637d489c257a4eb36ee30aa0817c7718a", "chemprot_data/processed_data/json"),
    Source("pharmaconer/train", "racai-ai/PharmacoNER2019", "07a4f2d55c9ae817ee10a5cf5bcec26bbaa4883f",
           "train-set", "src/train-set.zip"),
    Source("pharmaconer/dev", "racai-ai/PharmacoNER2019", "07a4f2d55c9ae817ee10a5cf5bcec26bbaa4883f",
           "dev-set", "src/dev-set.zip"),
    Source("pharmaconer/test/subtrack1", "PlanTL-GOB-ES/PharmaCoNER-CODALAB-Evaluation-Script",
           "b354eabd95c875c3eb62c4e80d60d41a83f11079", "subtask1/input/ref/subtask1"),
    Source("pharmaconer/LICENSE", "PlanTL-GOB-ES/SPACCC_PharmaCoNER",
           "6c3727a377b14ade22d28ba99877f365854418df", "LICENSE"),
    Source("raredis_annotations_only/LICENSE.txt", "isegura/NLP4RARE-CM-UC3M",
           "82f23c171922a310df17a780311754d190e596f5", "LICENSE.txt"),
    Source("raredis_annotations_only", "isegura/NLP4RARE-CM-UC3M", "82f23c171922a310df17a780311754d190e596f5",
           "", "RareDis-v1-without-texts.zip"),
    Source("rudrec", "cimm-kzn/RuDReC", "c65741fbcfd4dcae54e135c47ce9e648f22793a6", "data"),
    Source("nerel_bio", "nerel-ds/NEREL-BIO", "a7d0d16043850166a4e378190e53968fc4a2ab72", "nerel-bio-v1.0"),
    Source("bc2gm/original", "spyysalo/bc2gm-corpus", "018161681145daf751af037cb890f3a54f62a74d",
           "original-data"),
    Source("bc2gm/iob_mtl/LICENSE.md", *MTL, "LICENSE.md"),
    Source("bc2gm/iob_mtl", *MTL, "data/BC2GM-IOB"),
    Source("linnaeus/original/split", "spyysalo/linnaeus-corpus", "f75269c93b887d256061faf1339628b1c7e472db",
           "split"),
    Source("linnaeus/original", "spyysalo/linnaeus-corpus-data", "274ef6ed11178320832f58f8cca158a93889aeda", ""),
    Source("linnaeus/iob_mtl/LICENSE.md", *MTL, "LICENSE.md"),
    Source("linnaeus/iob_mtl", *MTL, "data/linnaeus-IOB"),
    Source("s800/iob_biobert", "BioMedBERT/biomedbert", "9e5e1019d79d07c7aecc4eb49106203af1012663",
           "datasets/NER/s800"),
    Source("s800/split_ids_spyysalo", "spyysalo/s800", "f5425e7498930757c8577828eabc41cf88d80348", "split"),
    Source("ddi/README", "isegura/DDICorpus", "819b0fa538ed83ab2a8b4f5417bba3c03249b7f3", "README"),
    Source("ddi/xml_original", "isegura/DDICorpus", "819b0fa538ed83ab2a8b4f5417bba3c03249b7f3",
           "DDICorpus", "DDICorpus-2013.zip"),
    Source("ddi/brat", "isegura/DDICorpus", "819b0fa538ed83ab2a8b4f5417bba3c03249b7f3",
           "DDICorpus-2013(BRAT)", "DDICorpus-2013(BRAT).zip"),
)


def source_of(mirror_path: str) -> tuple[Source, str]:
    """The source of a mirror file and the file's path relative to the source's `path`.

    The most specific prefix wins (a licence file beside a data folder has its own entry).
    """
    best = None
    for src in SOURCES:
        p = src.mirror_prefix
        if mirror_path == p or mirror_path.startswith(p + "/"):
            if best is None or len(p) > len(best.mirror_prefix):
                best = src
    if best is None:
        raise KeyError(f"no source recorded for {mirror_path!r}")
    rest = mirror_path[len(best.mirror_prefix):].lstrip("/")
    return best, rest


# --------------------------------------------------------------------------- datasets
def _one(read_file: Callable[[Path], list[Document]]) -> Callable[[list[Path]], list[Document]]:
    """Read each file of a split with the same reader and concatenate the documents."""
    def read(files: list[Path]) -> list[Document]:
        return [doc for f in files for doc in read_file(f)]
    return read


def _iob(default_type: str | None = None) -> Callable[[list[Path]], list[Document]]:
    return _one(lambda f: readers.read_iob(f, default_type=default_type))


def _brat(relation_types: tuple[str, ...] = ()) -> Callable[[list[Path]], list[Document]]:
    def read(files: list[Path]) -> list[Document]:
        return readers.read_brat([f for f in files if f.suffix == ".ann"], relation_types=relation_types)
    return read


def _raredis(files: list[Path]) -> list[Document]:
    # raises: the texts are not public; with them, the 576 train arguments that name no entity are dropped
    return readers.read_brat([f for f in files if f.suffix == ".ann"], relation_types=RAREDIS_RELATIONS,
                             missing_arguments="drop")


def _bc2gm(files: list[Path]) -> list[Document]:
    by_name = {f.name: f for f in files}
    return readers.read_bc2gm(next(f for f in files if f.suffix == ".in"), by_name["GENE.eval"])


def _linnaeus(split: str) -> Callable[[list[Path]], list[Document]]:
    def read(files: list[Path]) -> list[Document]:
        by_name = {f.name: f for f in files}
        ids = by_name[f"{split}.txt"].read_text(encoding="utf-8").split()
        txt_dir = next(f.parent for f in files if f.parent.name == "txt")
        return readers.read_linnaeus(txt_dir, by_name["tags.tsv"], ids)
    return read


def _jnlpba_mtl_train(files: list[Path]) -> list[Document]:
    train = [f for f in files if f.name == "Genia4ERtask2.iob2"]
    devel = [f for f in files if f.name == "devel.tsv"]
    return readers.jnlpba_train_minus_devel(readers.read_iob(train[0]), readers.read_iob(devel[0]))


def _ddi(files: list[Path]) -> list[Document]:
    return readers.read_ddi_xml([f for f in files if f.suffix == ".xml"], relation_types=DDI_RELATIONS)


NCBI_TYPES = ("SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention")
BIORED_TYPES = ("GeneOrGeneProduct", "DiseaseOrPhenotypicFeature", "ChemicalEntity", "OrganismTaxon",
                "SequenceVariant", "CellLine")
JNLPBA_TYPES = ("protein", "DNA", "RNA", "cell_line", "cell_type")
PHARMACONER_TYPES = ("NORMALIZABLES", "PROTEINAS", "NO_NORMALIZABLES", "UNCLEAR")
RAREDIS_TYPES = ("RAREDISEASE", "DISEASE", "SKINRAREDISEASE", "SIGN", "SYMPTOM", "ANAPHOR")
RUDREC_TYPES = ("DI", "Drugname", "Drugform", "ADR", "Drugclass", "Finding")
DDI_TYPES = ("drug", "group", "brand", "drug_n")
DDI_BRAT_TYPES = ("DRUG", "GROUP", "BRAND", "DRUG_N")  # the brat conversion spells them in capitals
BIORED_RELATIONS = ("Association", "Positive_Correlation", "Negative_Correlation", "Bind", "Cotreatment",
                    "Comparison", "Drug_Interaction", "Conversion")
DDI_RELATIONS = ("mechanism", "effect", "advise", "int")
DDI_BRAT_RELATIONS = ("MECHANISM", "EFFECT", "ADVISE", "INT")
RAREDIS_RELATIONS = ("Produces", "Is_a", "Is_acron", "Is_synon", "Increases_risk_of", "Anaphora")
CDR = "bc5cdr/original/CDR_{}Set"
MTL_CDR = "bc5cdr/iob_mtl/{}/{}.tsv"
DDI_XML = "ddi/xml_original"


# NEREL-BIO's annotations use 41 types (its README lists 37).
NEREL_TYPES = (
    "ACTIVITY", "ADMINISTRATION_ROUTE", "AGE", "ANATOMY", "AWARD", "CHEM", "CITY", "COUNTRY", "CRIME",
    "DATE", "DEVICE", "DISO", "DISTRICT", "EVENT", "FACILITY", "FAMILY", "FINDING", "FOOD", "GENE",
    "HEALTH_CARE_ACTIVITY", "INJURY_POISONING", "LABPROC", "LANGUAGE", "LAW", "LIVB", "LOCATION",
    "MEDPROC", "MENTALPROC", "MONEY", "NATIONALITY", "NUMBER", "ORDINAL", "ORGANIZATION", "PERCENT",
    "PERSON", "PHYS", "PRODUCT", "PROFESSION", "SCIPROC", "STATE_OR_PROVINCE", "TIME",
)
# The 49 relation types its annotations use (annotation.conf lists 66, but not TREATS_DISO, which one uses).
NEREL_RELATIONS = (
    "ABBREVIATION", "AFFECTS", "AGE_DIED_AT", "AGE_IS", "ALTERNATIVE_NAME", "APPLIED_TO", "ASSOCIATED_WITH",
    "CAUSE_OF_DEATH", "CONSUME", "DATE_OF_BIRTH", "DATE_OF_CREATION", "DATE_OF_DEATH", "DOSE_IS", "DURATION_OF",
    "EXPENDITURE", "FINDING_OF", "FOUNDED_BY", "HAS_ADMINISTRATION_ROUTE", "HAS_CAUSE", "HEADQUARTERED_IN",
    "LOCATED_IN", "MEDICAL_CONDITION", "MEMBER_OF", "MENTAL_PROCESS_OF", "ORGANIZES", "ORIGINS_FROM",
    "OWNER_OF", "PARENT_OF", "PARTICIPANT_IN", "PART_OF", "PHYSIOLOGY_OF", "PLACE_OF_BIRTH", "PLACE_OF_DEATH",
    "PLACE_RESIDES_IN", "POINT_IN_TIME", "PROCEDURE_PERFORMED", "PRODUCES", "RELATIVE", "SCHOOLS_ATTENDED",
    "SUBCLASS_OF", "SUBEVENT_OF", "TAKES_PLACE_IN", "TO_DETECT_OR_STUDY", "TREATED_USING", "TREATS_DISO",
    "USED_IN", "VALUE_IS", "WORKPLACE", "WORKS_AS",
)

DATASETS: dict[str, Dataset] = {d.name: d for d in [
    Dataset("ncbi_disease", "NCBI-disease, original PubTator (four disease classes)", NCBI_TYPES,
            {"train": ("ncbi_disease/original_pubtator/NCBItrainset_corpus.txt",),
             "dev": ("ncbi_disease/original_pubtator/NCBIdevelopset_corpus.txt",),
             "test": ("ncbi_disease/original_pubtator/NCBItestset_corpus.txt",)},
            _one(readers.read_pubtator), extra=("ncbi_disease/original_pubtator/LICENSE",)),
    Dataset("ncbi_disease_iob", "NCBI-disease, MTL IOB (one type: Disease)", ("Disease",),
            {s: (f"ncbi_disease/iob_mtl/{f}.tsv",) for s, f in [("train", "train"), ("dev", "devel"),
                                                               ("test", "test")]},
            _iob(), extra=("ncbi_disease/iob_mtl/LICENSE.md",)),
    Dataset("bc5cdr", "BC5CDR, original PubTator (Chemical, Disease)", ("Chemical", "Disease"),
            {s: (CDR.format(f) + ".PubTator.txt",) for s, f in [("train", "Training"), ("dev", "Development"),
                                                                ("test", "Test")]},
            _one(lambda f: readers.read_pubtator(f, relation_types=("CID",))), extra=("bc5cdr/original/README.txt",),
            relations=("CID",)),
    Dataset("bc5cdr_bioc", "BC5CDR, original BioC XML (same documents as bc5cdr)", ("Chemical", "Disease"),
            {s: (CDR.format(f) + ".BioC.xml",) for s, f in [("train", "Training"), ("dev", "Development"),
                                                            ("test", "Test")]},
            _one(lambda f: readers.read_bioc(f, relation_types=("CID",))), extra=("bc5cdr/original/README.txt",),
            relations=("CID",)),
    *[Dataset(name, f"BC5CDR, MTL IOB ({folder})", types,
              {s: (MTL_CDR.format(folder, f),) for s, f in [("train", "train"), ("dev", "devel"), ("test", "test")]},
              _iob(), extra=("bc5cdr/iob_mtl/LICENSE.md",))
      for name, folder, types in [("bc5cdr_iob", "BC5CDR-IOB", ("Chemical", "Disease")),
                                  ("bc5cdr_chem_iob", "BC5CDR-chem-IOB", ("Chemical",)),
                                  ("bc5cdr_disease_iob", "BC5CDR-disease-IOB", ("Disease",))]],
    Dataset("jnlpba", "JNLPBA 2004 shared task, original IOB2 with ###MEDLINE document markers; no dev split",
            JNLPBA_TYPES,
            {"train": ("jnlpba/original/train/Genia4ERtask2.iob2",),
             "test": ("jnlpba/original/test/Genia4EReval2.iob2",)},
            _iob(), extra=("jnlpba/original/train/LICENSE", "jnlpba/original/train/README.txt",
                           "jnlpba/original/test/README.txt")),
    Dataset("jnlpba_mtl", "JNLPBA, MTL split: train = original train minus the MTL devel sentences",
            JNLPBA_TYPES,
            {"train": ("jnlpba/original/train/Genia4ERtask2.iob2", "jnlpba/iob_mtl/devel.tsv"),
             "dev": ("jnlpba/iob_mtl/devel.tsv",), "test": ("jnlpba/iob_mtl/test.tsv",)},
            lambda files: (_jnlpba_mtl_train(files) if any(f.suffix == ".iob2" for f in files)
                           else _iob()(files)),
            extra=("jnlpba/iob_mtl/LICENSE.md", "jnlpba/original/train/LICENSE")),
    Dataset("biored", "BioRED, PubTator (six entity types)", BIORED_TYPES,
            {s: (f"biored/{f}.PubTator",) for s, f in [("train", "Train"), ("dev", "Dev"), ("test", "Test")]},
            _one(lambda f: readers.read_pubtator(f, concept_separator=",", relation_types=BIORED_RELATIONS)),
            relations=BIORED_RELATIONS),
    Dataset("biored_bioc", "BioRED, BioC XML (same documents as biored)", BIORED_TYPES,
            {s: (f"biored/{f}.BioC.XML",) for s, f in [("train", "Train"), ("dev", "Dev"), ("test", "Test")]},
            _one(lambda f: readers.read_bioc(f, concept_separator=",", relation_types=BIORED_RELATIONS)),
            relations=BIORED_RELATIONS),
    Dataset("chemprot", "ChemProt end-to-end (PURE JSON): authors' re-split dev and the official test; "
                        "train.json is not in the snapshot", ("CHEMICAL", "GENE"),
            {"dev": ("chemprot/end2end_pure_json/dev.json",), "test": ("chemprot/end2end_pure_json/test.json",)},
            _one(lambda f: readers.read_chemprot_pure(f, relation_types=readers.CPR_GROUPS)),
            relations=readers.CPR_GROUPS),
    Dataset("pharmaconer", "PharmaCoNER subtrack 1, Spanish clinical cases (brat)", PHARMACONER_TYPES,
            {s: (f"pharmaconer/{s}/subtrack1",) for s in ("train", "dev", "test")},
            _brat(), extra=("pharmaconer/LICENSE",), language="es"),
    Dataset("raredis", "RareDis: annotations only, the texts are distributed by the authors on request",
            RAREDIS_TYPES, {s: (f"raredis_annotations_only/{s}",) for s in ("train", "dev", "test")},
            _raredis, extra=("raredis_annotations_only/LICENSE.txt",), relations=RAREDIS_RELATIONS),
    Dataset("rudrec", "RuDReC, Russian drug reviews (no official split: one split 'all')", RUDREC_TYPES,
            {"all": ("rudrec/rudrec_annotated.json",)}, _one(readers.read_rudrec), language="ru"),
    Dataset("nerel_bio", "NEREL-BIO, Russian PubMed abstracts, nested (brat)", NEREL_TYPES,
            {s: (f"nerel_bio/{s}",) for s in ("train", "dev", "test")}, _brat(NEREL_RELATIONS),
            extra=("nerel_bio/annotation.conf",), language="ru", relations=NEREL_RELATIONS),
    Dataset("bc2gm", "BioCreative II GM, original (whitespace-free offsets); no dev split", ("GENE",),
            {s: (f"bc2gm/original/{s}/{s}.in", f"bc2gm/original/{s}/GENE.eval") for s in ("train", "test")},
            _bc2gm, extra=("bc2gm/original/NOTICE", "bc2gm/original/README.GM")),
    Dataset("bc2gm_iob", "BC2GM, MTL IOB", ("GENE",),
            {s: (f"bc2gm/iob_mtl/{f}.tsv",) for s, f in [("train", "train"), ("dev", "devel"), ("test", "test")]},
            _iob(), extra=("bc2gm/iob_mtl/LICENSE.md",)),
    Dataset("linnaeus", "LINNAEUS v1.1, 100 full texts with stand-off species tags", ("Species",),
            {s: ("linnaeus/original/txt", "linnaeus/original/tags.tsv", f"linnaeus/original/split/{f}.txt")
             for s, f in [("train", "train"), ("dev", "devel"), ("test", "test")]},
            lambda files: _linnaeus(next(f.stem for f in files if f.parent.name == "split"))(files),
            extra=("linnaeus/original/LICENSE.txt", "linnaeus/original/README.md")),
    Dataset("linnaeus_iob", "LINNAEUS, MTL IOB", ("Species",),
            {s: (f"linnaeus/iob_mtl/{f}.tsv",) for s, f in [("train", "train"), ("dev", "devel"), ("test", "test")]},
            _iob(), extra=("linnaeus/iob_mtl/LICENSE.md",)),
    Dataset("s800", "S800 species, BioBERT IOB with bare B/I/O tags (typed here as Species)", ("Species",),
            {s: (f"s800/iob_biobert/{f}.tsv",) for s, f in [("train", "train"), ("dev", "devel"), ("test", "test")]},
            _iob("Species")),
    Dataset("ddi", "DDI 2013 XML (DrugBank + MedLine); test = the DrugNER task test set, "
                   "test_ddi = the DDI extraction task test set", DDI_TYPES,
            {"train": (f"{DDI_XML}/Train",), "test": (f"{DDI_XML}/Test/Test for DrugNER task",),
             "test_ddi": (f"{DDI_XML}/Test/Test for DDI Extraction task",)},
            _ddi, extra=("ddi/README",), relations=DDI_RELATIONS),
    Dataset("ddi_brat", "DDI 2013, the authors' brat conversion", DDI_BRAT_TYPES,
            {"train": ("ddi/brat/Train",), "test": ("ddi/brat/Test",)}, _brat(DDI_BRAT_RELATIONS),
            extra=("ddi/README", "ddi/brat/annotation.conf"), relations=DDI_BRAT_RELATIONS),
]}


def get(name: str) -> Dataset:
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def local_path(mirror_path: str) -> Path:
    return data_root() / mirror_path


def nested(name: str) -> bool:
    """Whether the corpus nests mentions (data.corpus.nests of its training split; of every split when it has
    none): formats that write mentions as text then place them with nesting allowed."""
    ds = get(name)
    splits = ["train"] if "train" in ds.splits else list(ds.splits)
    return any(nests(load(name, s)) for s in splits)


SPLITS = ("train", "dev", "test")
HELD_OUT_DEV = 0.1  # share of the training documents held out for validation when a corpus has no dev split


def load_splits(name: str, folder: Path | None = None, seed: int = 42, max_train_docs: int | None = None,
                max_eval_docs: int | None = None) -> tuple[dict[str, list[Document]], tuple[str, ...]]:
    """train/dev/test documents and the entity types of a registry corpus, or of a folder holding
    train/dev/test.jsonl in the corpus format (types: those of its training split, sorted). A corpus (or
    folder) without a dev split gives HELD_OUT_DEV of its training documents (drawn with `seed`) to
    validation, never test documents.
    Every trainer that selects on validation reads its splits here."""
    if folder is not None:
        docs = {s: read_jsonl(Path(folder) / f"{s}.jsonl") for s in SPLITS
                if s != "dev" or (Path(folder) / "dev.jsonl").exists()}
        types = tuple(sorted({e.type for d in docs["train"] for e in d.entities}))
    else:
        ds = get(name)
        docs = {s: load(name, s) for s in SPLITS if s in ds.splits}
        types = ds.types
    if "dev" not in docs:
        train = docs["train"][:]
        random.Random(seed).shuffle(train)
        n = max(1, int(HELD_OUT_DEV * len(train)))
        docs["dev"], docs["train"] = train[:n], train[n:]
        print(f"{folder or name} has no dev split: {n} training documents held out for validation")
    docs["train"] = docs["train"][:max_train_docs]
    for split in ("dev", "test"):
        docs[split] = docs[split][:max_eval_docs]
    return docs, types


_verified: set[Path] = set()  # files whose checksum this process has already checked


def fetch(name: str, mirror: str | Path | None = None, quiet: bool = True) -> list[Path]:
    """Make every file of dataset `name` present and verified in the data root; return their paths."""
    ds = get(name)
    archives = sources.ArchiveCache()
    out = []
    for mirror_path in dataset_files(ds):
        dest = local_path(mirror_path)
        out.append(dest)
        if dest in _verified and dest.exists():
            continue
        if dest.exists() and sources.sha256(dest) == manifest()[mirror_path][1]:
            _verified.add(dest)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        # written beside it and renamed once verified: another process reading the corpus never sees half a file
        partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
        if mirror is not None:
            src_file = Path(mirror) / mirror_path
            if not src_file.exists():
                raise InputError(f"mirror {mirror} has no {mirror_path}")
            shutil.copyfile(src_file, partial)
        else:
            src, rest = source_of(mirror_path)
            if src.archive:
                blob = archives.member(src, rest)
            else:
                blob = sources.download(sources.url(src.repo, src.commit, f"{src.path}/{rest}" if rest else src.path))
            partial.write_bytes(blob)
        sources.check(partial, mirror_path, manifest()[mirror_path][1])
        os.replace(partial, dest)
        _verified.add(dest)
        if not quiet:
            print(f"  {mirror_path}", file=sys.stderr)
    return out


def load(name: str, split: str) -> list[Document]:
    """Documents of one split, fetched on first use (from NER_MIRROR when set, else the sources)."""
    ds = get(name)
    if split not in ds.splits:
        raise InputError(f"dataset {name!r} has no split {split!r}; it has {', '.join(ds.splits)}")
    fetch(name, mirror=os.environ.get("NER_MIRROR") or None)
    files = [local_path(p) for p in expand(ds.splits[split])]
    return ds.read(files)
