"""One in-memory corpus model for every source format, and its JSONL file format.

Every reader in data/readers.py produces `Document`s; every method writes predictions as the same
JSONL; eval/ scores spans from it. Offsets are character offsets into `Document.text`, end exclusive.
A discontinuous entity keeps all of its fragments; nested and overlapping entities are allowed.
A `Relation` joins two entities of its document, or two concept ids where a corpus annotates relations
between concepts (BC5CDR CID, BioRED); entities keep the concept ids their source links them to.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

Span = tuple[int, int]

FRAGMENT_JOINER = " "  # how the surface text of a discontinuous entity joins its fragments (as brat does)


class InputError(ValueError):
    """An everyday mistake in what a user gave a script (malformed input, an unknown corpus or split): the
    script ends with its one line and status 2 (exit_on_format_error), not a traceback."""


class FormatError(InputError):
    """Malformed input, always naming the file and the line (or record) where it was found."""

    def __init__(self, path: str | Path, where: int | str | None, message: str):
        self.path, self.where, self.message = str(path), where, message
        location = self.path if where is None else f"{self.path}:{where}"
        super().__init__(f"{location}: {message}")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every script's --help: its module docstring as written, and every option's default."""


DEBUG_HELP = "--debug (anywhere on the command line): show the traceback of an error, not its one line"


def script_parser(doc: str) -> argparse.ArgumentParser:
    """The command-line parser of a script that needs no library dataclasses."""
    return argparse.ArgumentParser(description=doc, epilog=DEBUG_HELP, formatter_class=HelpFormatter)


def parse_dataclasses(types: tuple, doc: str, argv: list[str] | None = None, defaults: dict | None = None) -> tuple:
    """A script's command line read into its dataclasses (its own, and the libraries' TrainingArguments,
    SFTConfig, ModelConfig...) with transformers' HfArgumentParser: one instance per type, in order."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(types, description=doc, epilog=DEBUG_HELP, formatter_class=HelpFormatter)
    parser.set_defaults(**(defaults or {}))
    return tuple(parser.parse_args_into_dataclasses(args=argv))


def exit_on_format_error(main: Callable[[], object]) -> None:
    """Run a script's main: an everyday mistake ends it with one line and status 2, not a traceback. That
    is an InputError (malformed input, an unknown corpus, split or model folder, an output folder in use)
    or a file the system cannot open (OSError naming it). `--debug` shows the traceback instead."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        main()
    except (InputError, OSError) as err:
        if debug or (isinstance(err, OSError) and err.filename is None):  # not about a file: a real failure
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


@dataclass(frozen=True, order=True)
class Entity:
    """A mention: one or more fragments (sorted, non-overlapping) of the document text, and a type.

    `concepts` are the ids the source links the mention to (PubTator's sixth column, BioC's MESH or
    identifier infon; several for a composite mention). Like `text` they take no part in equality, so NER
    scores and duplicate checks see the span and type only."""

    fragments: tuple[Span, ...]
    type: str
    text: str = field(default="", compare=False)
    concepts: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.fragments:
            raise ValueError("an entity needs at least one fragment")
        frags = tuple(sorted((int(s), int(e)) for s, e in self.fragments))
        for (s1, e1), (s2, _) in zip(frags, frags[1:]):
            if s2 < e1:
                raise ValueError(f"fragments {frags} overlap")
        if any(s >= e or s < 0 for s, e in frags):
            raise ValueError(f"empty or negative fragment in {frags}")
        object.__setattr__(self, "fragments", frags)

    @classmethod
    def span(cls, start: int, end: int, type: str, text: str = "", concepts: tuple[str, ...] = ()) -> "Entity":
        return cls(((start, end),), type, text, concepts)

    @property
    def start(self) -> int:
        return self.fragments[0][0]

    @property
    def end(self) -> int:
        return self.fragments[-1][1]

    @property
    def discontinuous(self) -> bool:
        return len(self.fragments) > 1

    def surface(self, text: str) -> str:
        """The mention's text as read off the document."""
        return FRAGMENT_JOINER.join(text[s:e] for s, e in self.fragments)

    def overlaps(self, other: "Entity") -> bool:
        return any(s1 < e2 and s2 < e1 for s1, e1 in self.fragments for s2, e2 in other.fragments)

    def to_json(self) -> dict:
        out = self.reference()
        if self.concepts:
            out["concepts"] = list(self.concepts)
        return out

    def reference(self) -> dict:
        """The entity as a relation names it: its span, type and text."""
        out = {"start": self.start, "end": self.end, "type": self.type, "text": self.text}
        if self.discontinuous:
            out["fragments"] = [list(f) for f in self.fragments]
        return out


NEGATIVE = "negative"  # the type of a candidate pair annotated as unrelated (DDI's ddi="false"); never scored

Argument = Entity | str  # an entity of the relation's document, or a concept id


@dataclass(frozen=True)
class Relation:
    """A typed pair of arguments, in the order the source gives them (Arg1 / Arg2, e1 / e2, chemical /
    disease); eval/relations.py decides per view whether that order counts. `novel` is BioRED's flag: the
    relation is a finding of the abstract (True) or background knowledge (False); None where a corpus has
    no such flag."""

    type: str
    arg1: Argument
    arg2: Argument
    novel: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise ValueError(f"relation type {self.type!r} is not a non-empty string")
        for arg in (self.arg1, self.arg2):
            if not isinstance(arg, Entity) and not (isinstance(arg, str) and arg):
                raise ValueError(f"argument {arg!r} is neither an entity nor a concept id")
        if self.novel is not None and not isinstance(self.novel, bool):
            raise ValueError(f"novel {self.novel!r} is not true, false or absent")

    @property
    def arguments(self) -> tuple[Argument, Argument]:
        return self.arg1, self.arg2

    def to_json(self) -> dict:
        out = {"type": self.type, **{name: argument_json(arg) for name, arg in zip(("arg1", "arg2"), self.arguments)}}
        if self.novel is not None:
            out["novel"] = self.novel
        return out


def argument_json(arg: Argument) -> dict:
    return {"concept": arg} if isinstance(arg, str) else arg.reference()


def argument_order(arg: Argument) -> tuple:
    """Sorts entity arguments (by span and type) before concept ids."""
    return (0, arg.fragments, arg.type, "") if isinstance(arg, Entity) else (1, (), "", arg)


def relation_order(rel: Relation) -> tuple:
    return rel.type, argument_order(rel.arg1), argument_order(rel.arg2), rel.novel is None, rel.novel


@dataclass
class Document:
    """A text with its entities, the relations between them and, once segmented, its sentence and token
    offsets."""

    id: str
    text: str
    entities: list[Entity] = field(default_factory=list)
    sentences: list[Span] = field(default_factory=list)
    tokens: list[Span] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    def validate(self, path: str | Path = "<memory>", where: int | str | None = None) -> None:
        """Raise FormatError if an entity lies outside the text or its text disagrees with the offsets."""
        for ent in self.entities:
            if ent.end > len(self.text):
                raise FormatError(path, where, f"document {self.id!r}: entity {ent.to_json()} "
                                               f"ends past the text (length {len(self.text)})")
            if ent.text and ent.text != ent.surface(self.text):
                raise FormatError(path, where, f"document {self.id!r}: entity text {ent.text!r} does not "
                                               f"match the text at its offsets {ent.surface(self.text)!r}")

    def to_json(self, with_text: bool = True) -> dict:
        out: dict = {"id": self.id}
        if with_text:
            out["text"] = self.text
        out["entities"] = [e.to_json() for e in sorted(self.entities)]
        if self.relations:
            out["relations"] = [r.to_json() for r in sorted(self.relations, key=relation_order)]
        return out


def offset(value: object) -> int:
    """A character offset as JSON writes one: an integer. int() would turn 0.9, "0" and true into offsets
    that score as exact matches."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"offset {value!r} is not an integer")
    return value


def entity_from_json(obj: dict, path: str | Path, line: int) -> Entity:
    try:
        if "fragments" in obj:
            frags = tuple((offset(s), offset(e)) for s, e in obj["fragments"])
            if (frags[0][0], frags[-1][1]) != (obj["start"], obj["end"]):
                raise ValueError(f"start/end {obj['start']}-{obj['end']} disagree with fragments {frags}")
        else:
            frags = ((offset(obj["start"]), offset(obj["end"])),)
        if not isinstance(obj["type"], str) or not obj["type"]:
            raise ValueError(f"type {obj['type']!r} is not a non-empty string")
        concepts = obj.get("concepts", [])
        if not isinstance(concepts, list) or not all(isinstance(c, str) and c for c in concepts):
            raise ValueError(f"concepts {concepts!r} is not a list of non-empty strings")
        return Entity(frags, obj["type"], str(obj.get("text", "")), tuple(concepts))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise FormatError(path, line, f"bad entity {obj!r}: {err}") from None


def relation_from_json(obj: object, entities: dict[Entity, Entity], doc_id: str, path: str | Path,
                       line: int) -> Relation:
    """A relation of a JSONL document; an entity argument must be one of the document's `entities` (same span
    and type), so a relation never points into another document or at a mention nobody listed. The argument
    is that entity itself, concept ids included."""
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), dict) for k in ("arg1", "arg2")):
        raise FormatError(path, line, f"document {doc_id!r}: bad relation {obj!r}: expected an object with "
                                      f"'type' and the objects 'arg1' and 'arg2'")
    args = []
    for name in ("arg1", "arg2"):
        arg = obj[name]
        if "concept" in arg:
            args.append(arg["concept"])
            continue
        entity = entity_from_json(arg, path, line)
        if entity not in entities:
            raise FormatError(path, line, f"document {doc_id!r}: relation {obj.get('type')!r} names {name} "
                                          f"{arg!r}, which is not among the document's entities")
        args.append(entities[entity])
    try:
        return Relation(obj.get("type"), *args, obj.get("novel"))  # type: ignore[arg-type]
    except ValueError as err:
        raise FormatError(path, line, f"document {doc_id!r}: bad relation {obj!r}: {err}") from None


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, line with its line break) of a UTF-8 text file, split on "\\n" only; a missing file, a
    folder or a line that is not UTF-8 is a FormatError naming it. Lines are decoded one by one, so a bad
    byte is reported on its own line."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise FormatError(path, None, "no such file") from None
    except IsADirectoryError:
        raise FormatError(path, None, "is a folder, not a file") from None
    with fh:
        for line_no, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise FormatError(path, line_no, f"not UTF-8 text: byte {raw[err.start]:#04x} at column "
                                                 f"{err.start + 1}") from None
            yield line_no, line


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) of each non-blank line; a line that is not JSON or not UTF-8, a missing
    file, a folder or a file without a single record is a FormatError naming it (bare NaN is accepted: RuDReC
    has it)."""
    records = False
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as err:  # JSONDecodeError, or an integer of more than 4300 digits
            raise FormatError(path, line_no, f"invalid JSON: {err}") from None
        except RecursionError:
            raise FormatError(path, line_no, "invalid JSON: arrays or objects nested too deeply") from None
        records = True
        yield line_no, value
    if not records:
        raise FormatError(path, None, "is empty: no records")


def iter_documents(path: str | Path, require_text: bool = True) -> Iterator[tuple[int, Document]]:
    """(line number, document) of each record, for callers that check documents further and must name the
    line; see read_jsonl."""
    seen = set()
    for line_no, obj in iter_jsonl(path):
        if (not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("entities", []), list)
                or not isinstance(obj.get("relations", []), list)):
            raise FormatError(path, line_no, "expected an object with 'id', an 'entities' list and optionally "
                                             "a 'relations' list")
        if require_text and "text" not in obj:
            raise FormatError(path, line_no, f"document {obj['id']!r} has no 'text'")
        if not isinstance(obj.get("text", ""), str):
            raise FormatError(path, line_no, f"document {obj['id']!r}: 'text' is not a string")
        doc_id = str(obj["id"])
        if doc_id in seen:
            raise FormatError(path, line_no, f"duplicate document id {doc_id!r}")
        seen.add(doc_id)
        entities = [entity_from_json(e, path, line_no) for e in obj.get("entities", [])]
        known = {e: e for e in entities}
        relations = [relation_from_json(r, known, doc_id, path, line_no) for r in obj.get("relations", [])]
        doc = Document(doc_id, obj.get("text", ""), entities, relations=relations)
        if "text" in obj:
            doc.validate(path, line_no)
        yield line_no, doc


def read_jsonl(path: str | Path, require_text: bool = True) -> list[Document]:
    """Read documents (or, with require_text=False, predictions, whose `text` may be left out)."""
    return [doc for _, doc in iter_documents(path, require_text)]


def write_jsonl(docs: Iterable[Document], path: str | Path, with_text: bool = True) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc.to_json(with_text), ensure_ascii=False) + "\n")
            n += 1
    return n


def type_counts(docs: Iterable[Document]) -> Counter:
    return Counter(e.type for d in docs for e in d.entities)


def iter_entities(docs: Iterable[Document]) -> Iterator[tuple[str, Entity]]:
    for d in docs:
        for e in d.entities:
            yield d.id, e


def nests(docs: Iterable[Document]) -> bool:
    """Whether any document has a mention inside another (NEREL-BIO, ChemProt, DDI and BC2GM training
    splits do; NCBI-disease and BC5CDR do not): formats that place mentions by their text must then not
    steer a mention away from occurrences inside longer ones (data.llm.align.place's `nested`)."""
    for doc in docs:
        spans = sorted({(e.start, e.end) for e in doc.entities}, key=lambda s: (s[0], -s[1]))
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            if s1 <= s2 and e2 <= e1:
                return True
    return False
