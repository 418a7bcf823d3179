"""The bio format: one `word TAG` line per input word (seeds 0 and 2)."""
from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher
from typing import Hashable, Sequence

from data.bio import OVERLAP_POLICIES, from_bio, to_bio
from data.corpus import Document, Entity
from data.llm.formats.base import (DONE, MAX_WORDS, Alternative, Item, Machine, OutputFormat, ParseResult, Labelled,
                                   check_types, gbnf_literal, labelled_parts)
from data.text import tokenize
_BIO_LINE = re.compile(r"(?P<word>.+?)(?:\s*:\s*|\s+)(?P<tag>[^\s:]+)")


class BioFormat(OutputFormat):
    """One `word TAG` line per input word (separator: a space; on reading, the last run of spaces or
    colons, so `word:TAG` and `word : TAG` are read too, and the word ":" survives).

    Parsing aligns the predicted words to the input words with a sequence matcher; input words left
    unmatched are O, predicted words left unmatched are counted ("unaligned_words"). Tags are decoded by
    data.bio.from_bio in `mode` (default "lenient": a stray I- opens an entity, counted "inside_opened").
    A predicted mention (a B/I run over the predicted words) is "hallucinated" if any of its words was
    not aligned. Well formed: every non-blank line is a word and a B-/I-/O tag, and the words are
    exactly the input words.
    """

    name = "bio"

    def __init__(self, discontinuous_policy: str = "first_fragment", overlap_policy: str = "longest_first",
                 mode: str = "lenient"):
        super().__init__(discontinuous_policy)
        if overlap_policy not in OVERLAP_POLICIES:
            raise ValueError(f"overlap policy {overlap_policy!r} is not one of {OVERLAP_POLICIES}")
        if mode not in ("strict", "lenient"):
            raise ValueError(f"mode must be 'strict' or 'lenient', got {mode!r}")
        self.overlap_policy, self.mode = overlap_policy, mode

    def _tags(self, labelled: Labelled, types: Sequence[str], changes: Counter | None) -> tuple[str, list, list[str]]:
        text, entities = labelled_parts(labelled)
        check_types(entities, types)
        words = tokenize(text)
        doc = Document("unit", text, entities, sentences=[(0, len(text))] if words else [], tokens=words)
        tags = to_bio(doc, self.overlap_policy, self.discontinuous_policy, changes)
        return text, words, tags[0] if words else []

    def flatten(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> list[Entity]:
        text, words, tags = self._tags(labelled, types, changes)
        return sorted(from_bio(words, tags, text))

    def serialise(self, labelled: Labelled, types: Sequence[str], changes: Counter | None = None) -> str:
        text, words, tags = self._tags(labelled, types, changes)
        return "\n".join(f"{text[s:e]} {tag}" for (s, e), tag in zip(words, tags))

    def parse(self, model_text: str, doc_text: str, types: Sequence[str]) -> ParseResult:
        counts: Counter = Counter()
        lines = [line.strip() for line in model_text.split("\n") if line.strip()]
        pred_words, pred_tags = [], []  # tags: None (unreadable), "O", or (prefix, type)
        for line in lines:
            m = _BIO_LINE.fullmatch(line)
            word, tag = (m["word"].strip(), _read_tag(m["tag"])) if m else (line, None)
            pred_words.append(word)
            pred_tags.append(tag)
        unparsed = pred_tags.count(None)
        words = tokenize(doc_text)
        input_words = [doc_text[s:e] for s, e in words]
        matcher = SequenceMatcher(None, input_words, pred_words, autojunk=False)
        aligned: dict[int, int] = {}  # predicted word -> input word
        for a, b, size in matcher.get_matching_blocks():
            aligned.update((b + k, a + k) for k in range(size))
        counts["unaligned_words"] = len(pred_words) - len(aligned)
        items = self._items(pred_words, pred_tags, aligned, types, counts)
        tags = ["O"] * len(words)
        for j, i in aligned.items():
            tag = pred_tags[j]
            if isinstance(tag, tuple) and tag[1] in types:
                tags[i] = f"{tag[0]}-{tag[1]}"
        entities = from_bio(words, tags, doc_text, self.mode, counts)
        well_formed = unparsed == 0 and pred_words == input_words
        return ParseResult(sorted(entities), unparsed, well_formed, items, +counts)

    @staticmethod
    def _items(pred_words: list[str], pred_tags: list, aligned: dict[int, int], types: Sequence[str],
               counts: Counter) -> list[Item]:
        """The predicted mentions as written: B/I runs of one type (a stray I- opens one)."""
        runs: list[list] = []  # [type, first word, last word]
        for j, tag in enumerate(pred_tags):
            if not isinstance(tag, tuple):
                continue
            prefix, type_ = tag
            if prefix == "I" and runs and runs[-1][0] == type_ and runs[-1][2] == j - 1:
                runs[-1][2] = j
            else:
                runs.append([type_, j, j])
        items = []
        for type_, first, last in runs:
            in_text = all(j in aligned for j in range(first, last + 1))
            items.append(Item(" ".join(pred_words[first:last + 1]), type_,
                              "exact" if in_text else "hallucinated", type_ in types))
            if type_ not in types:
                counts["invalid_type"] += 1
            elif not in_text:
                counts["hallucinated"] += 1
        return items

    def _explain_format(self, types: Sequence[str]) -> str:
        return ("Write one line for each word of the text, in order: the word, a space, then its tag. Every "
                "punctuation mark is a word of its own. The tag is B-TYPE on the first word of a mention, "
                "I-TYPE on each further word of the same mention, and O on every other word.")

    def machine(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> Machine:
        return BioMachine(text, types)

    def grammar(self, text: str, types: Sequence[str], max_words: int = MAX_WORDS) -> str:
        """Rule w<i>-<k>: the lines of words i.. given that the previous tag had type k (0: none)."""
        machine = BioMachine(text, types)
        n, rules = len(machine.words), []
        if not n:
            return 'root ::= ""'
        index = {t: k + 1 for k, t in enumerate(machine.types)}
        for i in range(n):
            for prev in [None, *machine.types]:
                alts = []
                for line, (_, _, tag_type) in machine.alternatives(("word", i, prev)):
                    rest = f" w{i + 1}-{index.get(tag_type, 0)}" if i + 1 < n else ""
                    alts.append(gbnf_literal(line) + rest)
                rules.append(f"w{i}-{index.get(prev, 0)} ::= " + " | ".join(alts))
        return "\n".join(["root ::= w0-0", *rules])


def _read_tag(tag: str) -> str | tuple[str, str] | None:
    """"O", (prefix, type) for B-/I- tags of any type, or None if it is no tag at all."""
    if tag == "O":
        return "O"
    prefix, dash, type_ = tag.partition("-")
    return (prefix, type_) if dash and prefix in ("B", "I") and type_ else None


class BioMachine(Machine):
    """Line i: the i-th input word, a space and its tag (strict BIO: I-T only after B-T or I-T); key
    ("word", i, type of the previous tag or None)."""

    def __init__(self, text: str, types: Sequence[str]):
        self.words = [text[s:e] for s, e in tokenize(text)]
        self.types = list(types)
        self.start = ("word", 0, None)

    def alternatives(self, key: Hashable) -> list[Alternative]:
        _, i, prev = key
        if i == len(self.words):
            return [("", DONE)]
        line = ("\n" if i else "") + self.words[i] + " "
        out = [(line + "O", ("word", i + 1, None))]
        for t in self.types:
            out.append((f"{line}B-{t}", ("word", i + 1, t)))
            if prev == t:
                out.append((f"{line}I-{t}", ("word", i + 1, t)))
        return out
