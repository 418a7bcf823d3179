"""Readers for the token-level formats: CoNLL/IOB files, RuDReC sentence JSON lines, ChemProt PURE JSON.

None of these sources carries the original text, so each reader rebuilds one: tokens joined by a space,
sentences by a line break (RuDReC keeps its sentences' own text). Offsets are exact into that text.
Repairs of malformed-but-usable input are counted in an optional `changes` Counter under a named key,
so a caller can report how much of a corpus was altered.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from pathlib import Path
from typing import Collection, Literal, NamedTuple

from data.corpus import Document, Entity, FormatError, Relation, Span, iter_jsonl, iter_lines

__all__ = ["read_iob", "jnlpba_train_minus_devel", "read_rudrec", "read_chemprot_pure", "CPR_GROUPS",
           "CHEMPROT_LABELS"]

DOCSTART = "-DOCSTART-"
MEDLINE_MARKER = "###MEDLINE:"


# --------------------------------------------------------------------------- IOB
class _Row(NamedTuple):
    token: str
    tag: str
    prefix: str  # "B", "I" or "O"
    type: str | None
    line: int


def _parse_tag(tag: str, default_type: str | None, path: Path, line: int) -> tuple[str, str | None]:
    """Split a tag into prefix and type; bare B/I (S800) take `default_type`."""
    if tag == "O":
        return "O", None
    prefix, dash, typ = tag.partition("-")
    if prefix not in ("B", "I") or (dash and not typ):
        raise FormatError(path, line, f"unknown tag {tag!r} (expected O, B-<type>, I-<type>, or bare B/I)")
    if not dash:
        if default_type is None:
            raise FormatError(path, line, f"bare tag {tag!r} has no type and no default_type was given")
        typ = default_type
    return prefix, typ


def _decode_iob(tags: list[tuple[str, str | None]]) -> tuple[list[tuple[int, int, str]], list[int]]:
    """Entity token spans (start, end exclusive, type) of one sentence's IOB2 tags, read conlleval-style,
    and the positions of invalid I- tags (after O or another type): each of those opened a new entity."""
    spans: list[tuple[int, int, str]] = []
    invalid: list[int] = []
    start, current = 0, None  # the open entity, if any
    for i, (prefix, typ) in enumerate(tags):
        continues = prefix == "I" and typ == current
        if prefix == "I" and not continues:
            invalid.append(i)
        if current is not None and not continues:
            spans.append((start, i, current))
            current = None
        if prefix != "O" and not continues:
            start, current = i, typ
    if current is not None:
        spans.append((start, len(tags), current))
    return spans, invalid


def _layout(sentences: list[list[str]]) -> tuple[str, list[Span], list[Span]]:
    """Text of tokenised sentences (a space between tokens, a line break between sentences), with the
    offsets of every token and every sentence."""
    tokens: list[Span] = []
    sentence_spans: list[Span] = []
    offset = 0
    for sentence in sentences:
        first = len(tokens)
        for token in sentence:
            tokens.append((offset, offset + len(token)))
            offset += len(token) + 1  # the space, or after the last token the line break
        sentence_spans.append((tokens[first][0], tokens[-1][1]))
    return "\n".join(" ".join(s) for s in sentences), tokens, sentence_spans


def _iob_document(doc_id: str, sentences: list[list[_Row]], path: Path, invalid: str,
                  changes: Counter | None) -> Document:
    """Rebuild the text of tokenised sentences and decode their tags into entities."""
    text, tokens, sentence_spans = _layout([[row.token for row in rows] for rows in sentences])
    entities: list[Entity] = []
    first = 0
    for rows in sentences:
        spans, bad = _decode_iob([(row.prefix, row.type) for row in rows])
        if bad and invalid == "error":
            i = bad[0]
            prev = "the sentence start" if i == 0 else repr(rows[i - 1].tag)
            raise FormatError(path, rows[i].line, f"invalid IOB2: {rows[i].tag!r} after {prev}")
        if bad and changes is not None:
            changes["iob_repair_I_opens_entity"] += len(bad)
        for s, e, typ in spans:
            start, end = tokens[first + s][0], tokens[first + e - 1][1]
            entities.append(Entity.span(start, end, typ, text[start:end]))
        first += len(rows)
    return Document(doc_id, text, entities, sentence_spans, tokens)


def read_iob(path: str | Path, *, default_type: str | None = None,
             invalid: Literal["error", "repair"] = "error", changes: Counter | None = None,
             token_column: int = 0, tag_column: int = -1) -> list[Document]:
    """Read a CoNLL/IOB2 file: one token per line (tab- or else space-separated columns), blank line
    between sentences.

    `-DOCSTART-` and `###MEDLINE:<id>` lines start a document (the MEDLINE id becomes its id, otherwise
    `<file stem>-<n>`, n from 1); a file without such markers gives one document per sentence.
    An I- tag that does not continue an entity of its type raises FormatError, or with invalid="repair"
    opens a new entity, counted as `iob_repair_I_opens_entity`. A repeated document id gets `#<k>`
    appended for its k-th occurrence, counted as `iob_duplicate_doc_id_suffixed` (the original JNLPBA
    files repeat MEDLINE ids, with different annotations, so both copies are kept).
    """
    if invalid not in ("error", "repair"):
        raise ValueError(f"invalid must be 'error' or 'repair', not {invalid!r}")
    path = Path(path)
    loose: list[list[_Row]] = []  # sentences before any document marker
    marked: list[tuple[str | None, list[list[_Row]]]] = []  # (MEDLINE id or None, sentences) per marker
    sentence: list[_Row] = []
    n_columns, columns_line = 0, 0

    def end_sentence() -> None:
        if sentence:
            (marked[-1][1] if marked else loose).append(sentence.copy())
            sentence.clear()

    for line_no, line in iter_lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            end_sentence()
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if fields[0] == DOCSTART or line.startswith(MEDLINE_MARKER):
            end_sentence()
            doc_id = line[len(MEDLINE_MARKER):].strip() if line.startswith(MEDLINE_MARKER) else None
            if doc_id == "":
                raise FormatError(path, line_no, f"{MEDLINE_MARKER} line without a document id")
            marked.append((doc_id, []))
            continue
        if len(fields) < 2:
            raise FormatError(path, line_no, f"expected a token and a tag, found {len(fields)} column")
        if not n_columns:
            n_columns, columns_line = len(fields), line_no
        elif len(fields) != n_columns:
            raise FormatError(path, line_no, f"{len(fields)} columns, expected {n_columns} "
                                             f"as on line {columns_line}")
        try:
            token, tag = fields[token_column], fields[tag_column]
        except IndexError:
            raise FormatError(path, line_no, f"no column {token_column} (token) or {tag_column} (tag) "
                                             f"in {len(fields)} columns") from None
        if not token:
            raise FormatError(path, line_no, "empty token")
        sentence.append(_Row(token, tag, *_parse_tag(tag, default_type, path, line_no), line_no))
    end_sentence()

    if marked and loose:
        raise FormatError(path, loose[0][0].line, "sentence before the first document marker")
    groups = marked or [(None, [s]) for s in loose]
    docs, seen = [], Counter()
    for n, (doc_id, sentences) in enumerate(groups, 1):
        doc_id = doc_id or f"{path.stem}-{n}"
        seen[doc_id] += 1
        if seen[doc_id] > 1:
            doc_id = f"{doc_id}#{seen[doc_id]}"
            if changes is not None:
                changes["iob_duplicate_doc_id_suffixed"] += 1
        docs.append(_iob_document(doc_id, sentences, path, invalid, changes))
    return docs


def _sentence_tokens(doc: Document) -> tuple[tuple[str, ...], ...]:
    """A document's sentences, each as the sequence of its token strings."""
    starts = [s for s, _ in doc.tokens]
    return tuple(tuple(doc.text[s:e] for s, e in doc.tokens[bisect_left(starts, ss):bisect_left(starts, se)])
                 for ss, se in doc.sentences)


def jnlpba_train_minus_devel(train_docs: list[Document], devel_docs: list[Document]) -> list[Document]:
    """The MTL JNLPBA train split, which the mirror lacks: the original training abstracts minus the MTL
    devel sentences.

    The devel sentences are whole training abstracts, so whole documents are removed. A devel document
    matches a training document with the same sentences, a sentence being identified by its token
    sequence (ids cannot be compared: `-DOCSTART-` carries none). Each devel document removes one
    match; ValueError if a devel document matches none, as the split would then not be the MTL one.
    """
    wanted = Counter(_sentence_tokens(d) for d in devel_docs)
    kept = []
    for doc in train_docs:
        key = _sentence_tokens(doc)
        if wanted[key]:
            wanted[key] -= 1
        else:
            kept.append(doc)
    missing = sum(wanted.values())
    if missing:
        raise ValueError(f"{missing} of {len(devel_docs)} devel documents are not among the training documents")
    return kept


# --------------------------------------------------------------------------- JSON lines
def read_rudrec(path: str | Path, *, changes: Counter | None = None) -> list[Document]:
    """Read RuDReC: one sentence per JSON line, entity offsets relative to the sentence.

    Sentences are grouped into one document per `file_name` (its id), in `sentence_id` order; the
    document text is their concatenation (each sentence text already ends with a line break; one is
    added, counted as `rudrec_line_break_added`, where it does not). Sentence spans leave out that final
    line break. `tokens` stays empty: the source is not tokenised. Whitespace at the edges of an entity
    is trimmed off its span, counted as `rudrec_entity_whitespace_trimmed`.
    """
    path = Path(path)
    by_file: dict[str, list[tuple[int, str, list, int]]] = {}
    for line_no, obj in iter_jsonl(path):
        try:
            name, text, sid, ents = obj["file_name"], obj["text"], obj["sentence_id"], obj["entities"]
        except (KeyError, TypeError):
            raise FormatError(path, line_no, "expected an object with file_name, text, sentence_id "
                                             "and entities") from None
        if not (isinstance(name, str) and isinstance(text, str) and type(sid) is int
                and isinstance(ents, list)):
            raise FormatError(path, line_no, "file_name, text, sentence_id or entities has the wrong type")
        by_file.setdefault(name, []).append((sid, text, ents, line_no))

    docs = []
    for name, sentences in by_file.items():
        sentences.sort(key=lambda s: s[0])
        texts, seen = [], set()
        for sid, text, _, line_no in sentences:
            if sid in seen:
                raise FormatError(path, line_no, f"{name}: sentence_id {sid} repeated")
            seen.add(sid)
            if not text.endswith("\n"):
                text += "\n"
                if changes is not None:
                    changes["rudrec_line_break_added"] += 1
            texts.append(text)
        doc_text = "".join(texts)
        spans, entities = [], []
        offset = 0
        for text, (_, _, ents, line_no) in zip(texts, sentences):
            spans.append((offset, offset + len(text) - 1))
            entities += [_rudrec_entity(e, text, offset, doc_text, path, line_no, changes) for e in ents]
            offset += len(text)
        docs.append(Document(name, doc_text, entities, spans))
    return docs


def _rudrec_entity(ent: dict, text: str, offset: int, doc_text: str, path: Path, line: int,
                   changes: Counter | None) -> Entity:
    """One sentence-relative RuDReC mention as a document-level entity."""
    try:
        start, end, typ, surface = ent["start"], ent["end"], ent["entity_type"], ent["entity_text"]
    except (KeyError, TypeError):
        raise FormatError(path, line, f"entity {ent!r} lacks start, end, entity_type or entity_text") from None
    if type(start) is not int or type(end) is not int:  # JSON true and false are not offsets
        raise FormatError(path, line, f"entity {ent!r}: start and end must be integers")
    if not 0 <= start < end <= len(text):
        raise FormatError(path, line, f"entity {ent!r}: offsets outside the sentence (length {len(text)})")
    if not isinstance(typ, str) or not typ:
        raise FormatError(path, line, f"entity {ent!r}: entity_type is not a non-empty string")
    if text[start:end] != surface:
        raise FormatError(path, line, f"entity {ent!r}: the text at its offsets is {text[start:end]!r}")
    if not surface.strip():
        raise FormatError(path, line, f"entity {ent!r} is only whitespace")
    if surface.strip() != surface:
        start += len(surface) - len(surface.lstrip())
        end -= len(surface) - len(surface.rstrip())
        if changes is not None:
            changes["rudrec_entity_whitespace_trimmed"] += 1
    start, end = offset + start, offset + end
    return Entity.span(start, end, typ, doc_text[start:end])


def _is_mention(m: object) -> bool:
    return (isinstance(m, list) and len(m) == 3 and type(m[0]) is int and type(m[1]) is int
            and isinstance(m[2], str) and m[2] != "")


def _is_pair(r: object) -> bool:
    return (isinstance(r, list) and len(r) == 5 and all(type(i) is int for i in r[:4])
            and isinstance(r[4], str) and r[4] != "")


CPR_GROUPS = ("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9")  # the groups ChemProt's official evaluation scores
# BioCreative VI ChemProt's fine-grained labels (the SciBERT sentence files use them) and the evaluated group
# each belongs to
CHEMPROT_LABELS = {
    "UPREGULATOR": "CPR:3", "ACTIVATOR": "CPR:3", "INDIRECT-UPREGULATOR": "CPR:3",
    "DOWNREGULATOR": "CPR:4", "INHIBITOR": "CPR:4", "INDIRECT-DOWNREGULATOR": "CPR:4",
    "AGONIST": "CPR:5", "AGONIST-ACTIVATOR": "CPR:5", "AGONIST-INHIBITOR": "CPR:5",
    "ANTAGONIST": "CPR:6",
    "SUBSTRATE": "CPR:9", "PRODUCT-OF": "CPR:9", "SUBSTRATE_PRODUCT-OF": "CPR:9",
}


CHEMPROT_ROLES = ("CHEMICAL", "GENE")  # a ChemProt relation runs from a chemical (Arg1) to a gene (Arg2)


def read_chemprot_pure(path: str | Path, relation_types: Collection[str] | None = None, *,
                       changes: Counter | None = None) -> list[Document]:
    """Read PURE/DyGIE JSON lines (ChemProt end-to-end): tokenised `sentences` and per-sentence `ner`
    lists of [first token, last token (inclusive), type], token indices counted across the document.

    With `relation_types`, the per-sentence `relations` lists of [first token, last token, first token,
    last token, label] are relations between two mentions of their sentence; a fine-grained label
    (INHIBITOR...) is read as its CPR group (CHEMPROT_LABELS), and the label must then be one of
    `relation_types`. Else relations are skipped. Some token spans are both a CHEMICAL and a GENE mention
    ("insulin"); an argument on such a span is the mention of its role's type (CHEMPROT_ROLES), counted as
    `chemprot_argument_typed_by_role` (5 arguments in dev, 83 in test)."""
    path = Path(path)
    docs, seen = [], set()
    for line_no, obj in iter_jsonl(path):
        try:
            doc_id, sentences, ner = str(obj["doc_key"]), obj["sentences"], obj["ner"]
        except (KeyError, TypeError):
            raise FormatError(path, line_no, "expected an object with doc_key, sentences and ner") from None
        if doc_id in seen:
            raise FormatError(path, line_no, f"duplicate doc_key {doc_id!r}")
        seen.add(doc_id)
        if not (isinstance(sentences, list) and isinstance(ner, list) and len(ner) == len(sentences)
                and all(isinstance(s, list) and s and all(isinstance(t, str) and t for t in s) for s in sentences)
                and all(isinstance(m, list) for m in ner)):
            raise FormatError(path, line_no, f"document {doc_id!r}: sentences must be non-empty lists of "
                                             f"non-empty tokens, with one ner list per sentence")
        pairs = obj.get("relations", []) if relation_types is not None else [[] for _ in sentences]
        if not (isinstance(pairs, list) and len(pairs) == len(sentences) and all(isinstance(p, list) for p in pairs)):
            raise FormatError(path, line_no, f"document {doc_id!r}: relations must hold one list per sentence")
        text, tokens, sentence_spans = _layout(sentences)
        entities, relations = [], []
        first = 0  # index of the sentence's first token in the document
        for i, (sentence, mentions) in enumerate(zip(sentences, ner)):
            last = first + len(sentence) - 1
            by_tokens: dict[tuple[int, int], list[Entity]] = {}
            for j, mention in enumerate(mentions):
                where = f"document {doc_id!r}, ner[{i}][{j}] {mention!r}"
                if not _is_mention(mention):
                    raise FormatError(path, line_no, f"{where}: expected [start_token, end_token, type]")
                s, e, typ = mention
                if not first <= s <= e <= last:
                    raise FormatError(path, line_no, f"{where}: token indices outside sentence {i} "
                                                     f"(tokens {first}-{last})")
                start, end = tokens[s][0], tokens[e][1]
                entities.append(Entity.span(start, end, typ, text[start:end]))
                by_tokens.setdefault((s, e), []).append(entities[-1])
            for j, pair in enumerate(pairs[i]):
                relations.append(_chemprot_relation(pair, by_tokens, relation_types or (), path, line_no,
                                                    f"document {doc_id!r}, relations[{i}][{j}] {pair!r}", changes))
            first = last + 1
        docs.append(Document(doc_id, text, entities, sentence_spans, tokens, relations))
    return docs


def _chemprot_relation(pair: object, by_tokens: dict[tuple[int, int], list[Entity]],
                       relation_types: Collection[str], path: Path, line: int, where: str,
                       changes: Counter | None) -> Relation:
    """A relation between two mentions of one sentence (`by_tokens`: its mentions by token span)."""
    if not _is_pair(pair):
        raise FormatError(path, line, f"{where}: expected [start, end, start, end, label]")
    label = CHEMPROT_LABELS.get(pair[4], pair[4])  # type: ignore[index]
    if label not in relation_types:
        raise FormatError(path, line, f"{where}: unknown relation type {pair[4]!r} (expected one of "  # type: ignore[index]
                                      f"{sorted(relation_types)} or a label of one)")
    args = []
    for span, role in zip((tuple(pair[0:2]), tuple(pair[2:4])), CHEMPROT_ROLES):  # type: ignore[index]
        mentions = by_tokens.get(span, [])
        if len(mentions) > 1:
            mentions = [m for m in mentions if m.type == role]
            if changes is not None and len(mentions) == 1:
                changes["chemprot_argument_typed_by_role"] += 1
        if len(mentions) != 1:
            raise FormatError(path, line, f"{where}: tokens {span} are not one mention of this sentence")
        args.append(mentions[0])
    return Relation(label, *args)
