"""Readers for the stand-off corpus formats: PubTator, BioC XML, brat, DDI 2013 XML, BC2GM and LINNAEUS.

Every reader returns `list[Document]` whose entity offsets are exact character offsets into
`Document.text` (end exclusive). Each entity's `text` is read off the document after checking it against
the text the source states for the mention, so a reader never silently shifts a span. Malformed input
(wrong column count, unparsable integers, offsets outside the text, text mismatches, broken XML) raises
`FormatError` naming the file and the line, or for XML the record.

Real corpora contain a few offset errors. Rather than reject a whole corpus for them, the readers apply
named policies, count each use in the optional `quirks` Counter every reader takes, and log it with
file and line:

* SHIFTED_OFFSETS: the stated text is found with its start and end each at most MAX_SHIFT characters
  from the given ones (a discontinuous entity: all fragments moved by the same distance); the entity
  takes the nearest such offsets. Examples: one PharmaCoNER train file whose offsets drift by one
  character per paragraph break; a BC2GM gene whose start is one character early.
* WHITESPACE_MISMATCH: the stated text and the text at the offsets differ only in whitespace, as when
  DDI states "(R)-warfarin" for the fragments "(R)-" and "warfarin" (brat would join them with a
  space), a fragment starts on a space, or NCBI-disease states a mention with trailing spaces. The
  fragments lose leading and trailing whitespace; the entity's text is what the document holds there.
* FRAGMENTS_REORDERED: brat lists the fragments of a discontinuous entity in the order its text
  reads ("T24 LIVB 103 113;77 88 микрофлоры аутохтонной"). The text is checked in that order; the
  entity keeps its fragments sorted, as `Entity` requires, so its text follows the document.
* DUPLICATE_ID: a document id seen before in the same call is renamed "id#2", "id#3", ... (never
  dropped).
* INDIVIDUAL_MENTIONS: see `read_bioc`.

Relations are read when the caller names the relation types a corpus has (`relation_types`; data/registry.py
does): a type outside them, or an argument that names no entity (no concept) of the document, is a
FormatError. What the corpus model cannot hold is dropped and counted, never lost silently:

* ARGUMENT_NOT_ENTITY: a brat relation argument that is an event or another relation (the model relates
  entities only).
* ARGUMENT_MISSING: a brat relation argument that no line of its file defines, with
  missing_arguments="drop" (RareDis: 576 such references in train); by default a FormatError.
* UNTYPED_POSITIVE: a DDI pair marked ddi="true" without a type (one in Train/DrugBank), which none of
  the four DDI types can stand for.
* ROLE_CASE: a brat role spelt "ARG2" for "Arg2" (NEREL-BIO train, 11 lines): read as Arg2 and counted.
"""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from itertools import product
from pathlib import Path
from typing import Collection, Iterable, Iterator, Literal

from data.corpus import FRAGMENT_JOINER, NEGATIVE, Document, Entity, FormatError, Relation, Span

__all__ = ["read_pubtator", "read_bioc", "read_brat", "read_ddi_xml", "read_bc2gm", "read_linnaeus",
           "SHIFTED_OFFSETS", "WHITESPACE_MISMATCH", "FRAGMENTS_REORDERED", "DUPLICATE_ID",
           "INDIVIDUAL_MENTIONS", "ARGUMENT_NOT_ENTITY", "ARGUMENT_MISSING", "UNTYPED_POSITIVE", "ROLE_CASE",
           "NO_CONCEPT", "MAX_SHIFT"]

log = logging.getLogger(__name__)

SHIFTED_OFFSETS = "shifted_offsets"
WHITESPACE_MISMATCH = "whitespace_mismatch"
FRAGMENTS_REORDERED = "fragments_reordered"
DUPLICATE_ID = "duplicate_id"
INDIVIDUAL_MENTIONS = "bioc_individual_mentions_skipped"
ARGUMENT_NOT_ENTITY = "relation_argument_not_entity"
ARGUMENT_MISSING = "relation_argument_missing"
UNTYPED_POSITIVE = "ddi_positive_without_type"
ROLE_CASE = "relation_role_case"

NO_CONCEPT = ("-1", "-")  # BC5CDR and BioRED's id for a mention no concept fits: the entity gets none

MAX_SHIFT = 2  # the largest drift seen in the corpora; a larger window risks matching another mention
# (start, end) moves to try, nearest first
_MOVES = sorted(product(range(-MAX_SHIFT, MAX_SHIFT + 1), repeat=2), key=lambda m: (abs(m[0]) + abs(m[1]), m))
# BioC: the corpora leave one character (the title's line break) between passages; a gap far larger is a
# broken offset, and one of 10**9 would fill memory with line breaks
MAX_PASSAGE_GAP = 1000

PathLike = str | Path


# --------------------------------------------------------------------------- shared helpers
def _read_text(path: PathLike) -> str:
    """The file's exact characters: no newline translation, since offsets count "\\r" too."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except UnicodeDecodeError as err:
        raise FormatError(path, None, f"not UTF-8: {err}") from None


def _lines(path: PathLike) -> list[tuple[int, str]]:
    """(line number, line without its line break). Splits on "\\n" only: str.splitlines would also
    split on characters such as U+2028 that occur inside abstracts."""
    return [(n, line.removesuffix("\r")) for n, line in enumerate(_read_text(path).split("\n"), 1)]


def _xml_parser() -> ET.XMLParser:
    """A parser that reads XML as UTF-8, as every corpus is: one that trusted the encoding declaration would
    fail with LookupError or ValueError, not a ParseError, on a declaration it does not know."""
    return ET.XMLParser(encoding="utf-8")


def _int(value: str | None, path: PathLike, where: int | str, what: str) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FormatError(path, where, f"{what} {value!r} is not an integer") from None


def _files(paths: PathLike | Iterable[PathLike], suffix: str) -> list[Path]:
    """The given files, with each directory replaced by its `suffix` files (recursively, sorted). A path
    that does not exist, or a directory without a single such file, is a FormatError: never 0 documents."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[Path] = []
    for item in map(Path, items):
        if not item.exists():
            raise FormatError(item, None, "no such file or folder")
        found = sorted(item.rglob(f"*{suffix}")) if item.is_dir() else [item]
        if not found:
            raise FormatError(item, None, f"holds no {suffix} file")
        out.extend(found)
    return out


def _note(quirks: Counter, policy: str, path: PathLike, where: int | str | None, detail: str,
          level: int = logging.WARNING) -> None:
    quirks[policy] += 1
    log.log(level, "%s:%s: %s: %s", path, where, policy, detail)


def _unique_id(doc_id: str, seen: Counter, quirks: Counter, path: PathLike, where: int | str) -> str:
    seen[doc_id] += 1
    if seen[doc_id] == 1:
        return doc_id
    new_id = f"{doc_id}#{seen[doc_id]}"
    _note(quirks, DUPLICATE_ID, path, where, f"document id {doc_id!r} seen before, renamed {new_id!r}")
    return new_id


def _squeeze(s: str) -> str:
    return "".join(s.split())


def _trim(text: str, fragments: tuple[Span, ...]) -> tuple[Span, ...]:
    """The fragments without leading and trailing whitespace (a fragment of only whitespace vanishes)."""
    out = []
    for start, end in fragments:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            out.append((start, end))
    return tuple(out)


def _move(fragments: list[Span], d_start: int, d_end: int) -> tuple[Span, ...] | None:
    """A single fragment with its start and end moved; several fragments only moved together."""
    if len(fragments) == 1:
        return ((fragments[0][0] + d_start, fragments[0][1] + d_end),)
    if d_start != d_end:
        return None
    return tuple((s + d_start, e + d_start) for s, e in fragments)


def _candidates(text: str, fragments: list[Span]) -> Iterator[tuple[Span, tuple[Span, ...], str]]:
    """(move, moved fragments, their text) for every move that stays inside the text, nearest first."""
    for move in _MOVES:
        moved = _move(fragments, *move)
        if moved is not None and all(0 <= s < e <= len(text) for s, e in moved):
            yield move, moved, FRAGMENT_JOINER.join(text[s:e] for s, e in moved)


def _concepts(stated: str | None, separator: str) -> tuple[str, ...]:
    """The concept ids of a mention's id field, composite ids split on `separator`, "not normalisable" left
    out."""
    ids = (part.strip() for part in (stated or "").split(separator))
    return tuple(dict.fromkeys(i for i in ids if i and i not in NO_CONCEPT))


def _concept_relation(type_: str, first: str, second: str, novelty: str | None, doc: Document,
                      relation_types: Collection[str], path: PathLike, where: int | str) -> Relation:
    """A relation between two concept ids that mentions of `doc` carry (PubTator and BioC: BC5CDR, BioRED)."""
    if type_ not in relation_types:
        raise FormatError(path, where, f"unknown relation type {type_!r} (expected one of {sorted(relation_types)})")
    novel = {"Novel": True, "No": False, None: None}.get(novelty, "?")
    if novel == "?":
        raise FormatError(path, where, f"novelty {novelty!r} is neither 'Novel' nor 'No'")
    known = {c for e in doc.entities for c in e.concepts}
    for concept in (first, second):
        if concept not in known:
            raise FormatError(path, where, f"relation {type_!r} names concept {concept!r}, which no mention of "
                                           f"document {doc.id!r} carries")
    return Relation(type_, first, second, novel)  # type: ignore[arg-type]


def _entity(text: str, fragments: list[Span], type_: str | None, stated: str | None, path: PathLike,
            where: int | str, quirks: Counter, concepts: tuple[str, ...] = ()) -> Entity:
    """An entity at `fragments` of `text` whose source states `stated` as its text: the fragments joined
    in the order the source lists them. The nearest exact match wins over a match up to whitespace
    (see the module docstring for the policies)."""
    if not type_:
        raise FormatError(path, where, "entity without a type")
    for start, end in fragments:
        if not 0 <= start < end <= len(text):
            raise FormatError(path, where, f"fragment {start}-{end} is empty or outside the text "
                                           f"(length {len(text)})")
    stated = stated or ""
    match = next((c for c in _candidates(text, fragments) if c[2] == stated), None)
    if match is None and _squeeze(stated):
        match = next((c for c in _candidates(text, fragments) if _squeeze(c[2]) == _squeeze(stated)), None)
    if match is None:
        found = FRAGMENT_JOINER.join(text[s:e] for s, e in fragments)
        raise FormatError(path, where, f"entity text {stated!r} does not match the text at its offsets "
                                       f"{[list(f) for f in fragments]}: {found!r}")
    (d_start, d_end), moved, found = match
    if found != stated:
        moved = _trim(text, moved)
        _note(quirks, WHITESPACE_MISMATCH, path, where, f"{stated!r} read as {found!r} at {moved}")
    if d_start or d_end:
        _note(quirks, SHIFTED_OFFSETS, path, where, f"{stated!r} found at start {d_start:+d}, end {d_end:+d}")
    try:
        entity = Entity(moved, type_)
    except ValueError as err:
        raise FormatError(path, where, str(err)) from None
    if entity.fragments != moved:
        _note(quirks, FRAGMENTS_REORDERED, path, where, f"{stated!r} at {moved}", logging.INFO)
    return Entity(entity.fragments, type_, entity.surface(text), concepts)


# --------------------------------------------------------------------------- PubTator
_HEADER = re.compile(r"([^|\t]+)\|([ta])\|(.*)", re.DOTALL)


def read_pubtator(path: PathLike, quirks: Counter | None = None, concept_separator: str = "|",
                  relation_types: Collection[str] | None = None) -> list[Document]:
    """PubTator: "PMID|t|title", "PMID|a|abstract", then one tab-separated line per mention
    (PMID, start, end, text, type, concept id[, the individual mentions of a composite]).

    The document text is title + "\\n" + abstract, which is what the offsets of PubTator count. A mention's
    concept ids are its sixth column split on `concept_separator` ("|" in BC5CDR and NCBI-disease; BioRED
    separates with "," because its variant ids contain "|"). Relation lines (BC5CDR "PMID CID chem
    disease", BioRED with a fifth Novel/No column) link concept ids, not mentions: with `relation_types`
    they become relations between concept ids, else they are skipped. A PMID seen twice keeps both
    documents: NCBI-disease train has 8528200 twice, and the second becomes "8528200#2" (policy DUPLICATE_ID).
    """
    quirks = Counter() if quirks is None else quirks
    blocks: list[list[tuple[int, str]]] = []
    for n, line in _lines(path):
        if not line.strip():
            if blocks and blocks[-1]:
                blocks.append([])
            continue
        match = _HEADER.match(line)
        if not blocks or (match and match[2] == "t" and blocks[-1]):
            blocks.append([])
        blocks[-1].append((n, line))
    seen: Counter = Counter()
    return [_pubtator_document(block, path, seen, quirks, concept_separator, relation_types)
            for block in blocks if block]


def _pubtator_document(block: list[tuple[int, str]], path: PathLike, seen: Counter, quirks: Counter,
                       concept_separator: str, relation_types: Collection[str] | None) -> Document:
    first_line, first = block[0]
    title = _HEADER.match(first)
    if not title or title[2] != "t":
        raise FormatError(path, first_line, "expected a title line 'PMID|t|title'")
    pmid, text, rest = title[1], title[3], block[1:]
    abstract = _HEADER.match(rest[0][1]) if rest else None
    if abstract and abstract[2] == "a":
        if abstract[1] != pmid:
            raise FormatError(path, rest[0][0], f"abstract of {abstract[1]!r} follows the title of {pmid!r}")
        text, rest = text + "\n" + abstract[3], rest[1:]
    doc = Document(_unique_id(pmid, seen, quirks, path, first_line), text)
    relation_lines = []
    for n, line in rest:
        cols = line.split("\t")
        if cols[0] != pmid:
            raise FormatError(path, n, f"line of document {cols[0]!r} inside document {pmid!r}")
        if len(cols) in (4, 5) and not cols[1].isdigit():
            relation_lines.append((n, cols))  # a relation between concept ids
            continue
        if len(cols) not in (6, 7):
            raise FormatError(path, n, f"expected 6 or 7 tab-separated columns (a mention) or a relation "
                                       f"line, got {len(cols)} columns")
        start, end = _int(cols[1], path, n, "start"), _int(cols[2], path, n, "end")
        doc.entities.append(_entity(text, [(start, end)], cols[4], cols[3], path, n, quirks,
                                    _concepts(cols[5], concept_separator)))
    if relation_types is not None:  # after every mention: a relation line may precede the mentions it names
        doc.relations = [_concept_relation(cols[1], cols[2], cols[3], cols[4] if len(cols) == 5 else None, doc,
                                           relation_types, path, n) for n, cols in relation_lines]
    doc.validate(path, first_line)
    return doc


# --------------------------------------------------------------------------- BioC XML
def read_bioc(path: PathLike, quirks: Counter | None = None, concept_separator: str = "|",
              relation_types: Collection[str] | None = None) -> list[Document]:
    """BioC XML: passages with document-level offsets; annotations with one <location> per fragment,
    their type in the infon "type" and their concept ids in the infon "MESH" (BC5CDR) or "identifier"
    (BioRED), split on `concept_separator` as in read_pubtator.

    The document text places each passage's text at its offset and fills gaps (of at most
    MAX_PASSAGE_GAP characters) with "\\n", so a
    title at 0 and an abstract at len(title) + 1 give PubTator's text and spans.
    BC5CDR BioC also lists, for each composite mention ("ocular and auditory toxicity"), its parts as
    extra annotations with infon CompositeRole=IndividualMention (often discontinuous). PubTator keeps
    them only as names in a seventh column, the official counts leave them out, and four of them do not
    match their offsets, so they are skipped (policy INDIVIDUAL_MENTIONS counts them).
    With `relation_types`, each <relation> becomes a relation between the concept ids of its infons
    "Chemical" and "Disease" (BC5CDR, type in "relation") or "entity1" and "entity2" (BioRED, type in "type",
    novelty in "novel"); else relations are skipped.
    """
    quirks = Counter() if quirks is None else quirks
    docs: list[Document] = []
    seen: Counter = Counter()
    try:
        for _, elem in ET.iterparse(path, events=("end",), parser=_xml_parser()):
            if elem.tag == "document":
                docs.append(_bioc_document(elem, path, len(docs) + 1, seen, quirks, concept_separator,
                                           relation_types))
                elem.clear()
    except ET.ParseError as err:
        raise FormatError(path, err.position[0], f"broken XML: {err}") from None
    return docs


def _bioc_document(elem: ET.Element, path: PathLike, number: int, seen: Counter, quirks: Counter,
                   concept_separator: str, relation_types: Collection[str] | None) -> Document:
    doc_id = (elem.findtext("id") or "").strip()
    if not doc_id:
        raise FormatError(path, f"document #{number}", "document without an <id>")
    where = f"document {doc_id}"
    text = ""
    for passage in elem.findall("passage"):
        offset = _int(passage.findtext("offset"), path, where, "passage offset")
        passage_text = passage.findtext("text")
        if passage_text is None:
            raise FormatError(path, where, "passage without <text> (sentence-level BioC is not supported)")
        if offset < len(text):
            raise FormatError(path, where, f"passage at offset {offset} overlaps the previous passage, "
                                           f"which ends at {len(text)}")
        if offset - len(text) > MAX_PASSAGE_GAP:
            raise FormatError(path, where, f"passage at offset {offset} leaves a gap of {offset - len(text)} "
                                           f"characters after the previous passage (at most {MAX_PASSAGE_GAP})")
        text += "\n" * (offset - len(text)) + passage_text
    doc = Document(_unique_id(doc_id, seen, quirks, path, where), text)
    for ann in elem.iter("annotation"):
        ann_where = f"{where}, annotation {ann.get('id')}"
        if ann.findtext("infon[@key='CompositeRole']") == "IndividualMention":
            quirks[INDIVIDUAL_MENTIONS] += 1
            continue
        fragments = []
        for loc in ann.findall("location"):
            start = _int(loc.get("offset"), path, ann_where, "location offset")
            fragments.append((start, start + _int(loc.get("length"), path, ann_where, "location length")))
        if not fragments:
            raise FormatError(path, ann_where, "annotation without a <location>")
        concepts = ann.findtext("infon[@key='MESH']") or ann.findtext("infon[@key='identifier']")
        doc.entities.append(_entity(text, fragments, ann.findtext("infon[@key='type']"), ann.findtext("text"),
                                    path, ann_where, quirks, _concepts(concepts, concept_separator)))
    if relation_types is not None:
        doc.relations = [_bioc_relation(rel, doc, relation_types, path, f"{where}, relation {rel.get('id')}")
                         for rel in elem.iter("relation")]
    doc.validate(path, where)
    return doc


def _bioc_relation(rel: ET.Element, doc: Document, relation_types: Collection[str], path: PathLike,
                   where: str) -> Relation:
    infons = {i.get("key"): (i.text or "").strip() for i in rel.findall("infon")}
    for roles in (("Chemical", "Disease"), ("entity1", "entity2")):
        if all(infons.get(role) for role in roles):
            return _concept_relation(infons.get("relation") or infons.get("type") or "", infons[roles[0]],
                                     infons[roles[1]], infons.get("novel"), doc, relation_types, path, where)
    raise FormatError(path, where, "relation without its two arguments (infons Chemical and Disease, or "
                                   "entity1 and entity2)")


# --------------------------------------------------------------------------- brat
_MISSING_TEXT = ("no text file {txt} beside this annotation file. Some corpora ship brat annotations "
                 "without their texts: RareDis, for one, distributes only the .ann files because the NORD "
                 "rare-disease texts are given out by its authors on request (isegura@inf.uc3m.es). "
                 "Obtain the texts (from Python, read_brat(..., require_text=False) reads the annotations alone).")


def read_brat(paths: PathLike | Iterable[PathLike], require_text: bool = True,
              quirks: Counter | None = None, relation_types: Collection[str] | None = None,
              missing_arguments: Literal["error", "drop"] = "error") -> list[Document]:
    """brat stand-off: for each .ann file (directories stand for all .ann files below them) the .txt
    file of the same name holds the text; the document id is the file name without .ann.

    Only T lines are entities ("T3<TAB>TYPE 103 135;177 185<TAB>text", fragments separated by ";",
    nested and overlapping entities allowed; an id used twice in one file is a FormatError). With
    `relation_types`, R lines ("R1<TAB>TYPE Arg1:T3 Arg2:T5") are relations between the entities they
    name, Arg1 first whatever the order of the roles; an argument that is an event or a relation is
    counted (ARGUMENT_NOT_ENTITY) and its relation dropped, one defined nowhere in the file is a
    FormatError, or with missing_arguments="drop" counted (ARGUMENT_MISSING) and dropped. Otherwise R lines
    are skipped, as E, A, M, N, # and * lines always are.
    With require_text=False a missing .txt is allowed: the document text is then "" and the entities
    keep the text the .ann states, unchecked.
    """
    if missing_arguments not in ("error", "drop"):
        raise ValueError(f"missing_arguments must be 'error' or 'drop', not {missing_arguments!r}")
    quirks = Counter() if quirks is None else quirks
    docs: list[Document] = []
    seen: Counter = Counter()
    for ann_path in _files(paths, ".ann"):
        txt_path = ann_path.with_suffix(".txt")
        if txt_path.exists():
            text = _read_text(txt_path)
        elif require_text:
            raise FormatError(ann_path, None, _MISSING_TEXT.format(txt=txt_path.name))
        else:
            text = None
        doc = Document(_unique_id(ann_path.stem, seen, quirks, ann_path, 1), text or "")
        ids: dict[str, int] = {}
        entities: dict[str, Entity] = {}
        relation_lines: list[tuple[int, str]] = []
        for n, line in _lines(ann_path):
            if line.startswith("T"):
                entity_id = line.split("\t", 1)[0]
                if entity_id in ids:  # brat refuses such a file: relations could not tell the two apart
                    raise FormatError(ann_path, n, f"entity id {entity_id!r} is used before, at line {ids[entity_id]}")
                ids[entity_id] = n
                entities[entity_id] = _brat_entity(line, text, ann_path, n, quirks)
                doc.entities.append(entities[entity_id])
            elif line.strip() and line[0] not in "RENAM#*":
                raise FormatError(ann_path, n, "unknown brat line: expected an id starting with "
                                               "T, R, E, A, M, N, # or *")
            elif line.startswith("R"):
                relation_lines.append((n, line))
            elif line.startswith("E"):
                ids.setdefault(line.split("\t", 1)[0], n)
        if relation_types is not None:  # after every line: an argument may be defined below its relation
            for n, line in relation_lines:
                ids.setdefault(line.split("\t", 1)[0], n)
            found = (_brat_relation(line, entities, ids, relation_types, missing_arguments, ann_path, n, quirks)
                     for n, line in relation_lines)
            doc.relations = [rel for rel in found if rel is not None]
        if text is not None:
            doc.validate(ann_path)
        docs.append(doc)
    return docs


def _brat_relation(line: str, entities: dict[str, Entity], defined: dict[str, int],
                   relation_types: Collection[str], missing_arguments: str, path: Path, n: int,
                   quirks: Counter) -> Relation | None:
    """The relation of an R line, or None when an argument is not an entity (counted)."""
    cols = line.split("\t")
    fields = cols[1].split() if len(cols) in (2, 3) else []
    if len(fields) != 3:
        raise FormatError(path, n, "expected an R line 'R<n><TAB>TYPE Arg1:<id> Arg2:<id>'")
    type_, *roles = fields
    if type_ not in relation_types:
        raise FormatError(path, n, f"unknown relation type {type_!r} (expected one of {sorted(relation_types)})")
    refs: dict[str, str] = {}
    for role in roles:
        name, _, ref = role.partition(":")
        if name.lower() not in ("arg1", "arg2") or not ref or name.lower() in refs:
            raise FormatError(path, n, f"expected one 'Arg1:<id>' and one 'Arg2:<id>', got {' '.join(roles)!r}")
        if name not in ("Arg1", "Arg2"):
            _note(quirks, ROLE_CASE, path, n, f"role {name!r} read as {name.capitalize()!r}", logging.INFO)
        refs[name.lower()] = ref
    args = []
    for role in ("arg1", "arg2"):
        ref = refs[role]
        if ref in entities:
            args.append(entities[ref])
        elif ref in defined:
            _note(quirks, ARGUMENT_NOT_ENTITY, path, n, f"{role} {ref!r} is not an entity: relation dropped")
            return None
        elif missing_arguments == "drop":
            _note(quirks, ARGUMENT_MISSING, path, n, f"{role} {ref!r} is defined nowhere: relation dropped")
            return None
        else:
            raise FormatError(path, n, f"relation {type_!r}: {role} {ref!r} names no entity of this file")
    return Relation(type_, *args)


def _brat_entity(line: str, text: str | None, path: Path, n: int, quirks: Counter) -> Entity:
    cols = line.split("\t")
    if len(cols) != 3:
        raise FormatError(path, n, f"expected 3 tab-separated columns in a T line, got {len(cols)}")
    type_, _, spans = cols[1].partition(" ")
    fragments = []
    for part in spans.split(";"):
        bounds = part.split()
        if len(bounds) != 2:
            raise FormatError(path, n, f"expected 'start end' in fragment {part!r}")
        fragments.append((_int(bounds[0], path, n, "start"), _int(bounds[1], path, n, "end")))
    if text is not None:
        return _entity(text, fragments, type_, cols[2], path, n, quirks)
    try:
        return Entity(tuple(fragments), type_, cols[2])
    except ValueError as err:
        raise FormatError(path, n, str(err)) from None


# --------------------------------------------------------------------------- DDI 2013 XML
def read_ddi_xml(files: PathLike | Iterable[PathLike], separator: str = " ",
                 quirks: Counter | None = None, relation_types: Collection[str] | None = None) -> list[Document]:
    """DDI 2013 XML, one <document id> per file (directories stand for all .xml files below them).

    The document text is the sentences' `text` attributes joined by `separator` (a space, as in the
    authors' brat conversion); `sentences` holds one span per <sentence>, in document order. A sentence with empty text (71 in Train/DrugBank) gets an empty span where
    the text so far ends and adds no separator. Entity `charOffset`s are relative to the sentence with
    inclusive ends, fragments separated by ";".
    With `relation_types`, every <pair> of entities of one sentence is a relation: its type for ddi="true",
    NEGATIVE for ddi="false" (the candidate pairs annotated as not interacting are kept); a positive pair
    without a type is dropped and counted (UNTYPED_POSITIVE). Else pairs are skipped.
    """
    quirks = Counter() if quirks is None else quirks
    seen: Counter = Counter()
    return [_ddi_document(path, separator, seen, quirks, relation_types) for path in _files(files, ".xml")]


def _ddi_document(path: Path, separator: str, seen: Counter, quirks: Counter,
                  relation_types: Collection[str] | None) -> Document:
    try:
        root = ET.parse(path, parser=_xml_parser()).getroot()
    except ET.ParseError as err:
        raise FormatError(path, err.position[0], f"broken XML: {err}") from None
    if root.tag != "document" or not root.get("id"):
        raise FormatError(path, 1, "expected a <document id=...> root element")
    sentences = root.findall("sentence")
    parts: list[str] = []
    spans: list[Span] = []
    length = 0
    for sent in sentences:
        sent_text = sent.get("text")
        if sent_text is None:
            raise FormatError(path, f"sentence {sent.get('id')}", "sentence without a text attribute")
        if sent_text and parts:
            length += len(separator)
        spans.append((length, length + len(sent_text)))
        if sent_text:
            parts.append(sent_text)
            length += len(sent_text)
    text = separator.join(parts)
    doc = Document(_unique_id(root.get("id", ""), seen, quirks, path, 1), text, sentences=spans)
    for sent, (sent_start, sent_end) in zip(sentences, spans):
        entities: dict[str | None, Entity] = {}
        for ent in sent.findall("entity"):
            where = f"entity {ent.get('id')}"
            fragments = []
            for part in (ent.get("charOffset") or "").split(";"):
                first, _, last = part.partition("-")
                lo, hi = _int(first, path, where, "start"), _int(last, path, where, "end")
                if not 0 <= lo <= hi < sent_end - sent_start:
                    raise FormatError(path, where, f"charOffset {part!r} lies outside its sentence "
                                                   f"(length {sent_end - sent_start})")
                fragments.append((sent_start + lo, sent_start + hi + 1))
            entities[ent.get("id")] = _entity(text, fragments, ent.get("type"), ent.get("text"), path, where,
                                              quirks)
            doc.entities.append(entities[ent.get("id")])
        if relation_types is not None:
            found = (_ddi_relation(pair, entities, relation_types, path, quirks) for pair in sent.findall("pair"))
            doc.relations += [rel for rel in found if rel is not None]
    doc.validate(path)
    return doc


def _ddi_relation(pair: ET.Element, entities: dict[str | None, Entity], relation_types: Collection[str],
                  path: Path, quirks: Counter) -> Relation | None:
    """The relation of a <pair> between two entities of its sentence, or None for an untyped positive
    (counted)."""
    where = f"pair {pair.get('id')}"
    ddi, type_ = pair.get("ddi"), pair.get("type")
    if ddi not in ("true", "false"):
        raise FormatError(path, where, f"ddi={ddi!r} is neither 'true' nor 'false'")
    if ddi == "true" and not type_:
        _note(quirks, UNTYPED_POSITIVE, path, where, "ddi='true' without a type: pair dropped")
        return None
    if ddi == "true" and type_ not in relation_types:
        raise FormatError(path, where, f"unknown relation type {type_!r} (expected one of {sorted(relation_types)})")
    args = []
    for role in ("e1", "e2"):
        ref = pair.get(role)
        if ref not in entities:
            raise FormatError(path, where, f"{role}={ref!r} names no entity of this pair's sentence")
        args.append(entities[ref])
    return Relation(type_ if ddi == "true" else NEGATIVE, *args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- BioCreative II GM
def read_bc2gm(in_file: PathLike, eval_file: PathLike, quirks: Counter | None = None) -> list[Document]:
    """BioCreative II gene mention: "<id> <sentence>" lines, and GENE.eval lines "id|start end|text".

    Each sentence is one document (its `sentences` is the whole text). GENE.eval offsets count
    non-whitespace characters only and the end is inclusive; they are mapped to character offsets.
    ALTGENE.eval lists acceptable alternative boundaries for scoring, not entities: do not read it here.
    """
    quirks = Counter() if quirks is None else quirks
    docs: dict[str, Document] = {}
    for n, line in _lines(in_file):
        if not line:
            continue
        sent_id, sep, text = line.partition(" ")
        if not sep or not sent_id:
            raise FormatError(in_file, n, "expected '<id> <sentence>'")
        if sent_id in docs:
            raise FormatError(in_file, n, f"duplicate sentence id {sent_id!r}")
        docs[sent_id] = Document(sent_id, text, sentences=[(0, len(text))])
    visible: dict[str, list[int]] = {}  # id -> the character offset of each non-whitespace character
    for n, line in _lines(eval_file):
        if not line:
            continue
        cols = line.split("|", 2)
        if len(cols) != 3:
            raise FormatError(eval_file, n, "expected 'id|start end|text'")
        sent_id, offsets, stated = cols
        if sent_id not in docs:
            raise FormatError(eval_file, n, f"unknown sentence id {sent_id!r} (not in {Path(in_file).name})")
        doc = docs[sent_id]
        bounds = offsets.split(" ")
        if len(bounds) != 2:
            raise FormatError(eval_file, n, f"expected 'start end', got {offsets!r}")
        first, last = (_int(b, eval_file, n, "offset") for b in bounds)
        chars = visible.setdefault(sent_id, [i for i, ch in enumerate(doc.text) if not ch.isspace()])
        if not 0 <= first <= last < len(chars):
            raise FormatError(eval_file, n, f"offsets {offsets!r} outside the sentence "
                                            f"({len(chars)} non-whitespace characters)")
        doc.entities.append(_entity(doc.text, [(chars[first], chars[last] + 1)], "GENE", stated,
                                    eval_file, n, quirks))
    for doc in docs.values():
        doc.validate(eval_file, f"sentence {doc.id}")
    return list(docs.values())


# --------------------------------------------------------------------------- LINNAEUS
def read_linnaeus(txt_dir: PathLike, tags_tsv: PathLike, doc_ids: Iterable[str] | None = None,
                  quirks: Counter | None = None) -> list[Document]:
    """LINNAEUS: full texts (<id>.txt) and a stand-off tag file (species id, document, start, end,
    text, category code; '#' starts a header line). All entities get the type "Species".

    `doc_ids` picks documents (e.g. the ids of a split list); by default every text is read.
    """
    quirks = Counter() if quirks is None else quirks
    available = {p.stem: p for p in sorted(Path(txt_dir).glob("*.txt"))}
    wanted = list(available) if doc_ids is None else list(dict.fromkeys(doc_ids))
    for doc_id in wanted:
        if doc_id not in available:
            raise FormatError(txt_dir, None, f"no text file for document {doc_id!r}")
    docs = {doc_id: Document(doc_id, _read_text(available[doc_id])) for doc_id in wanted}
    for n, line in _lines(tags_tsv):
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 6:
            raise FormatError(tags_tsv, n, f"expected 6 tab-separated columns, got {len(cols)}")
        doc_id = cols[1]
        if doc_id not in available:
            raise FormatError(tags_tsv, n, f"no text file for document {doc_id!r} in {txt_dir}")
        if doc_id in docs:
            doc = docs[doc_id]
            start, end = _int(cols[2], tags_tsv, n, "start"), _int(cols[3], tags_tsv, n, "end")
            doc.entities.append(_entity(doc.text, [(start, end)], "Species", cols[4], tags_tsv, n, quirks))
    for doc in docs.values():
        doc.validate(tags_tsv, f"document {doc.id}")
    return list(docs.values())
