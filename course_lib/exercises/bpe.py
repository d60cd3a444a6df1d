"""Notebook A's tokenizer exercises: get_pair_counts, merge, train_bpe, and encode with decode
(checked together), with the course's byte-level BPE, as in GPT-2, as their answers.

A vocabulary maps ids to byte strings: ids 0..255 are the single bytes, merge i (a pair of byte
strings) gets id 256 + i, and special tokens get the ids after the last merge. Text is first cut at
the special tokens, then into pre-tokens by a regex (words, numbers, punctuation runs, whitespace);
merges never cross a pre-token, so tokens never glue a word to the punctuation after it.

The cases compare the learner's functions with these answers on small inputs, so that a plain
implementation that recounts every pair at every step still finishes in seconds. When train_bpe
picks a different merge, they recount the pairs at that step under the usual mistakes (special
tokens left in, merges across pre-tokens, unweighted counts) to name the one it was.
"""
from __future__ import annotations

import functools
import heapq
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

import regex

from course_lib.data import GPT2_PATTERN, python_docs_text
from course_lib.exercises.engine import Exercise, Hint, Trial, copied


def _shown(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


@dataclass(frozen=True)
class Equal:
    """The learner's result on `args` must be a `kind` (list, dict) equal to the answer's; `key`
    names the mistake when it is not. What Case does for tensors."""
    args: tuple
    key: str
    kind: type

    def __call__(self, t: Trial) -> None:
        what = f"{t.exercise.name}({', '.join(map(repr, self.args))})"
        got = t.call(*self.args, what=what)
        if not isinstance(got, self.kind):
            t.fail("wrong_type", f"{what} should return a {self.kind.__name__}", f"a {self.kind.__name__}",
                   _shown(got))
        expected = t.answer(*self.args)
        if self.kind(got) != expected:
            t.fail(self.key, what, expected, self.kind(got))


def call_on_copies(t: Trial, fn: Callable, *args, what: str, **kwargs):
    """t.call on fn, with fn free to edit its inputs: they are copies of its own. train_bpe, encode and
    decode may well sort special_tokens longest first in place, say, which harms no caller."""
    def on_copies(*args, **kwargs):
        return fn(*map(copied, args), **{k: copied(v) for k, v in kwargs.items()})

    on_copies.__name__ = getattr(fn, "__name__", t.exercise.name)  # a stub or an error names fn, not this
    return t.call(*args, what=what, fn=on_copies, **kwargs)


# --------------------------------------------------------------------------------------------
# get_pair_counts
# --------------------------------------------------------------------------------------------
def get_pair_counts(ids: list) -> dict[tuple, int]:
    """How often each pair of neighbours occurs, overlapping pairs included: [1, 1, 1] -> {(1, 1): 2}."""
    return dict(Counter(zip(ids, ids[1:])))


GET_PAIR_COUNTS = Exercise(
    name="get_pair_counts",
    answer=get_pair_counts,
    probe=lambda f: f([1, 2]),
    mistakes={
        "wrong_type": "return a dict such as {(1, 2): 2}; a collections.Counter is a dict too",
        "wrong_counts": "count every pair of neighbours",
        "overlaps_skipped": "overlapping pairs count too: slide along one position at a time, so [1, 1, 1] "
                            "holds (1, 1) twice, at positions 0 and 1",
        "too_short": "fewer than two ids have no pairs: a single id has no neighbour",
    },
    visible=(
        Equal(([1, 2, 3, 1, 2],), "wrong_counts", dict),
        Equal(([1, 1, 1],), "overlaps_skipped", dict),
        Equal(([5, 5, 5, 5, 6],), "overlaps_skipped", dict),
        Equal(([7],), "too_short", dict),
        Equal(([],), "too_short", dict),
    ),
    hints=(
        Hint("Neighbours are `ids[0], ids[1]`, then `ids[1], ids[2]`, and so on. Start with an empty dict, "
             "`counts = {}`, walk along the list one position at a time, and return the dict.",
             fits=("wrong_type",)),
        Hint("`zip(ids, ids[1:])` gives every neighbour pair as a tuple `(left, right)`, moving one position "
             "at a time, so overlapping pairs are all there: `[1, 1, 1]` gives `(1, 1)` twice.",
             fits=("overlaps_skipped", "wrong_counts")),
        Hint("Add one for each pair you meet: `counts[pair] = counts.get(pair, 0) + 1`. A list with fewer "
             "than two ids has no pairs, and the `zip` then gives nothing, so the result is `{}`.",
             fits=("too_short",)),
    ),
)


# --------------------------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------------------------
def merge(ids: list, pair: tuple, new_id) -> list:
    """A copy of `ids` with every occurrence of `pair` replaced by `new_id`, left to right.

    Occurrences do not overlap: [1, 1, 1] with (1, 1) -> 9 gives [9, 1].
    """
    merged = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


MERGE = Exercise(
    name="merge",
    answer=merge,
    probe=lambda f: f([1, 2], (1, 2), 256),
    mistakes={
        "wrong_type": "build a new list of ids and return it",
        "changed_input": "build a new list and return it: leave ids as it was",
        "not_skipped": "each occurrence of the pair (two ids) becomes one new_id, and occurrences do not "
                       "overlap: after merging ids[i], ids[i + 1], go on at i + 2",
        "pair_at_end": "a pair at the very end must be merged too",
        "last_id_dropped": "keep the last id when it is not part of a merge",
        "pair_order": "the order in a pair matters: (2, 1) is not (1, 2)",
        "not_neighbours": "only neighbours form a pair",
        "empty": "an empty list stays empty",
    },
    visible=(
        Equal(([1, 2, 3, 1, 2], (1, 2), 4), "not_skipped", list),
        Equal(([1, 1, 1], (1, 1), 9), "not_skipped", list),
        Equal(([1, 1, 1, 1], (1, 1), 9), "not_skipped", list),
        Equal(([3, 1, 2], (1, 2), 4), "pair_at_end", list),
        Equal(([1, 2, 3], (1, 2), 4), "last_id_dropped", list),
        Equal(([2, 1, 2], (2, 1), 7), "pair_order", list),
        Equal(([1, 3, 2], (1, 2), 4), "not_neighbours", list),
        Equal(([], (1, 2), 4), "empty", list),
    ),
    hints=(
        Hint("Build a new list, `merged = []`, and return it; leave `ids` itself as it is. Walk through `ids` "
             "with an index in a `while i < len(ids):` loop, because you will sometimes jump ahead by two, "
             "which a `for` loop cannot do.",
             fits=("wrong_type", "changed_input", "empty")),
        Hint("At each position, check whether `ids[i]` and `ids[i + 1]` are the pair, in that order: "
             "`(ids[i], ids[i + 1]) == pair`. If so, append `new_id` and go on two places (`i += 2`), so "
             "occurrences never overlap; if not, append `ids[i]` and go on one place.",
             fits=("not_skipped", "pair_order", "not_neighbours")),
        Hint("Mind the end of the list: test `i + 1 < len(ids)` before reading `ids[i + 1]`. Then a pair in "
             "the last two places is still merged, and a lone last id is still copied over.",
             fits=("pair_at_end", "last_id_dropped")),
    ),
)


# --------------------------------------------------------------------------------------------
# train_bpe
# --------------------------------------------------------------------------------------------
def _checked_special_tokens(special_tokens: Iterable[str]) -> list[str]:
    if isinstance(special_tokens, str):
        raise ValueError(f"special_tokens must be a list of strings, not one string: "
                         f"write [{special_tokens!r}]")
    special_tokens = list(special_tokens)
    for token in special_tokens:
        if not isinstance(token, str) or not token:
            raise ValueError(f"every special token must be a non-empty string, got {token!r}")
    duplicates = sorted({t for t in special_tokens if special_tokens.count(t) > 1})
    if duplicates:
        raise ValueError(f"special tokens must be distinct; repeated: {duplicates}")
    return special_tokens


def _special_splitter(special_tokens: list[str]):
    """A regex matching any special token, longest first, so "<|a|><|b|>" wins over "<|a|>" where both
    match. Its one group makes split() keep the specials. None when there are no special tokens."""
    if not special_tokens:
        return None
    longest_first = sorted(special_tokens, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(t) for t in longest_first) + ")")


def _chunks(text: str, special_tokens: list[str]) -> list[str]:
    """The text cut at the special tokens: even positions hold ordinary text (maybe empty), odd
    positions the special tokens themselves."""
    splitter = _special_splitter(special_tokens)
    return [text] if splitter is None else splitter.split(text)


def _pre_tokens(chunk: str, pattern: str | None) -> list[str]:
    if not chunk:
        return []
    return [chunk] if pattern is None else regex.findall(pattern, chunk)


class _GreaterFirst:
    """A pair of byte strings that sorts in reverse: on equal counts the min-heap pops the
    lexicographically greater pair first."""

    __slots__ = ("pair",)

    def __init__(self, pair: tuple[bytes, bytes]):
        self.pair = pair

    def __lt__(self, other: _GreaterFirst) -> bool:
        return self.pair > other.pair


def train_bpe(text: str, vocab_size: int, special_tokens: Iterable[str] = (),
              pattern: str | None = GPT2_PATTERN) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Learn merges from `text` until the vocabulary (256 bytes + merges + special tokens) has
    `vocab_size` entries, or no pair is left to merge.

    Each step merges the most frequent pair of neighbouring tokens inside a pre-token; on equal
    counts, the lexicographically greater pair of byte strings. Returns (vocab, merges): vocab maps
    each id to its bytes, merges lists the merged pairs in the order they were learned.
    """
    special_tokens = _checked_special_tokens(special_tokens)
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    smallest = 256 + len(special_tokens)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < smallest:
        raise ValueError(f"vocab_size must be an int >= {smallest} (256 bytes + {len(special_tokens)} "
                         f"special tokens), got {vocab_size!r}")

    # Each distinct pre-token once, with how often it occurs: a common word is merged once, not
    # once per occurrence, and its pairs count as often as the word does.
    pre_token_counts = Counter(
        pre_token
        for chunk in _chunks(text, special_tokens)[::2]
        for pre_token in _pre_tokens(chunk, pattern)
    )
    words = [list(pre_token.encode("utf-8")) for pre_token in pre_token_counts]
    frequencies = list(pre_token_counts.values())

    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    words_with = defaultdict(set)  # pair -> indices of the words that contain it (or once did)
    for w, (word, frequency) in enumerate(zip(words, frequencies)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += frequency
            words_with[pair].add(w)

    vocab = {i: bytes([i]) for i in range(256)}

    def heap_entry(pair, count):
        return -count, _GreaterFirst((vocab[pair[0]], vocab[pair[1]])), pair

    # A min-heap of the pairs by (-count, bytes reversed): its top is the pair to merge. Merges
    # change counts, so entries go stale; every change pushes a fresh entry, and a popped entry is
    # used only if its count is still the pair's current one.
    heap = [heap_entry(pair, count) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < vocab_size - smallest and heap:
        negative_count, _, pair = heapq.heappop(heap)
        if pair_counts.get(pair) != -negative_count:
            continue  # stale
        new_id = 256 + len(merges)
        a, b = pair
        merges.append((vocab[a], vocab[b]))
        vocab[new_id] = vocab[a] + vocab[b]

        # Only the words containing the pair change: take back their old pairs, add their new ones.
        changes: dict[tuple[int, int], int] = defaultdict(int)
        for w in words_with.pop(pair):
            word = words[w]
            new_word = merge(word, pair, new_id)
            if len(new_word) == len(word):
                continue  # an earlier merge already took this word's occurrences of the pair
            frequency = frequencies[w]
            for old_pair in zip(word, word[1:]):
                changes[old_pair] -= frequency
            for new_pair in zip(new_word, new_word[1:]):
                changes[new_pair] += frequency
                words_with[new_pair].add(w)
            words[w] = new_word
        for changed, change in changes.items():
            if change == 0:
                continue
            count = pair_counts[changed] + change
            if count > 0:
                pair_counts[changed] = count
                heapq.heappush(heap, heap_entry(changed, count))
            else:
                del pair_counts[changed]
                words_with.pop(changed, None)

    for token in special_tokens:
        vocab[len(vocab)] = token.encode("utf-8")
    return vocab, merges


def _pair_counts(chunks, pattern, merges, weighted=True) -> Counter:
    """The counts of byte-string pairs in the chunks of text between special tokens, once `merges`
    are applied; each distinct pre-token counted once if not `weighted`."""
    pre_tokens = Counter(p for chunk in chunks for p in _pre_tokens(chunk, pattern))
    counts = Counter()
    for pre_token, frequency in pre_tokens.items():
        pieces = [bytes([b]) for b in pre_token.encode("utf-8")]
        for pair in merges:
            pieces = merge(pieces, pair, pair[0] + pair[1])
        for pair in zip(pieces, pieces[1:]):
            counts[pair] += frequency if weighted else 1
    return counts


def _merge_mistake(text, special_tokens, pattern, learned, expected, got) -> str | None:
    """The mistake that makes the learner's pair `got` beat `expected` after the merges `learned`: the
    first wrong way of counting under which `got` is at least as frequent as `expected`, if any."""
    chunks = _chunks(text, list(special_tokens))[::2]
    counts = _pair_counts(chunks, pattern, learned)
    if counts[got] == counts[expected] and got < expected:
        return "ties"

    def wins(chunks=chunks, pattern=pattern, weighted=True) -> bool:
        wrong = _pair_counts(chunks, pattern, learned, weighted)
        return wrong[got] > 0 and wrong[got] >= wrong[expected]

    if special_tokens:
        shortest_first = "|".join(regex.escape(t) for t in sorted(special_tokens, key=len))
        if wins(chunks=regex.split(shortest_first, text)):
            return "longest_special_first"
        if wins(chunks=[text]):
            return "specials_trained_on"
    if pattern is not None and wins(pattern=None):
        return "across_pre_tokens"
    if wins(weighted=False):
        return "unweighted"
    return None


@dataclass(frozen=True)
class Training:
    """train_bpe on `text` (or on what calling it gives) must learn the answer's merges, in the same
    order, and the same vocabulary. A merge that differs for none of the usual reasons fails as `key`."""
    what: str
    text: str | Callable[[], str]
    vocab_size: int
    key: str
    special_tokens: tuple[str, ...] = ()
    pattern: str | None = GPT2_PATTERN

    def __call__(self, t: Trial) -> None:
        text = self.text() if callable(self.text) else self.text
        vocab, merges = self.learned(t, text)
        expected_vocab, expected_merges = t.answer(text, self.vocab_size, self.special_tokens, self.pattern)
        for step, (want, have) in enumerate(zip(expected_merges, merges)):
            if want != have:
                learned = expected_merges[:step]
                key = _merge_mistake(text, self.special_tokens, self.pattern, learned, want, have)
                hint = None
                if key is None:
                    counts = _pair_counts(_chunks(text, list(self.special_tokens))[::2], self.pattern, learned)
                    key, hint = self.key, (f"{have} occurs {counts[have]} times at this step, {want} "
                                           f"{counts[want]} times. {t.exercise.hint(self.key)}")
                t.fail(key, f"{self.what}: merge #{step} (counting from 0) differs", want, have, hint=hint)
        if len(merges) != len(expected_merges):
            t.fail("too_few_merges" if len(merges) < len(expected_merges) else "too_many_merges",
                   f"{self.what}: the number of merges", len(expected_merges), len(merges))
        if vocab != expected_vocab:
            wrong = min(set(vocab) ^ set(expected_vocab) | {i for i in vocab if vocab[i] != expected_vocab.get(i)})
            special_bytes = {token.encode("utf-8") for token in self.special_tokens}
            if {vocab.get(wrong), expected_vocab.get(wrong)} & special_bytes:
                key = "special_ids"
            else:
                key = "byte_ids" if wrong < 256 else "merge_ids"
            t.fail(key, f"{self.what}: vocab[{wrong}]", expected_vocab.get(wrong, "no such id"),
                   vocab.get(wrong, "no such id"))

    def learned(self, t: Trial, text: str) -> tuple[dict, list]:
        """The learner's (vocab, merges), after checking their types."""
        got = call_on_copies(t, t.fn, text, self.vocab_size, special_tokens=list(self.special_tokens),
                             pattern=self.pattern, what=self.what)
        if not (isinstance(got, tuple) and len(got) == 2):
            t.fail("not_vocab_and_merges", f"{self.what}: train_bpe should return a tuple (vocab, merges)",
                   "(dict, list)", _shown(got))
        vocab, merges = got
        if not isinstance(vocab, dict) or not all(
                isinstance(i, int) and isinstance(b, bytes) for i, b in vocab.items()):
            t.fail("vocab_type", f"{self.what}: vocab should be a dict from int ids to bytes",
                   "{0: b'\\x00', ..., 256: b'aa'}", _shown(vocab))
        if not isinstance(merges, list) or not all(
                isinstance(m, tuple) and len(m) == 2 and all(isinstance(x, bytes) for x in m) for m in merges):
            t.fail("merges_type", f"{self.what}: merges should be a list of (bytes, bytes) tuples",
                   "[(b'a', b'a'), ...]", _shown(merges))
        return vocab, merges


def docs_around_a_special_token() -> str:
    docs = python_docs_text(6000)
    return docs[:3000] + "<|endoftext|>" + docs[3000:]


TRAIN_BPE = Exercise(
    name="train_bpe",
    answer=train_bpe,
    probe=lambda f: f("ab ab", 257),
    mistakes={
        "not_vocab_and_merges": "return vocab, merges",
        "vocab_type": "start from {i: bytes([i]) for i in range(256)}",
        "merges_type": "append (vocab[a], vocab[b]) for each merged pair of ids (a, b)",
        "pattern_none": "with pattern=None the whole text is one sequence of bytes",
        "ties": "ties: pick the lexicographically greater pair, comparing the byte strings "
                "(vocab[a], vocab[b]), not the ids: max over (count, (vocab[a], vocab[b]))",
        "across_pre_tokens": "a merge crossed a pre-token boundary: split each chunk with "
                             "regex.findall(pattern, chunk) and count and merge pairs only inside each piece",
        "unweighted": "counts must be weighted by how often each pre-token occurs: a word that appears "
                      "5 times adds 5 to each of its pairs",
        "specials_trained_on": "special tokens are not training text: split the text on them first "
                               "(longest first), train only on the pieces between them, and give them the "
                               "ids after the last merge",
        "longest_special_first": "match the longest special token first: sort them by length, longest first",
        "not_utf8_bytes": "work on the UTF-8 bytes (text.encode('utf-8')), not on characters",
        "wrong_merge": "compare your merges with the reference's, step by step",
        "too_few_merges": "merges = vocab_size - 256 - len(special_tokens); stop early only when no pair "
                          "is left to merge",
        "too_many_merges": "merges = vocab_size - 256 - len(special_tokens); stop when no pair is left: "
                           "the vocabulary is then smaller than vocab_size",
        "special_ids": "special tokens get the ids right after the last merge, in the order given, as "
                       "UTF-8 bytes",
        "byte_ids": "ids 0..255 are the single bytes: vocab = {i: bytes([i]) for i in range(256)}",
        "merge_ids": "merge i gets id 256 + i, and vocab[256 + i] is the two byte strings of merge i joined",
    },
    visible=(
        Training('the worked example "aaabdaaabac" with pattern=None', "aaabdaaabac", 259, "pattern_none",
                 pattern=None),
        Training('the tie case "c c ac" (every pair occurs once)', "c c ac", 259, "ties"),
        Training('pre-tokens "hi! hi! hi!"', "hi! hi! hi!", 258, "across_pre_tokens"),
        Training('stopping early on "ab" with pattern=None', "ab", 300, "too_many_merges", pattern=None),
    ),
    hidden=(
        Training('weighting: "zz" once, " ab" five times', "zz" + " ab" * 5, 257, "unweighted"),
        Training("text with a special token", "low<|end|>lower<|end|>newest<|end|>widest<|end|>" * 3, 266,
                 "specials_trained_on", ("<|end|>",)),
        Training('overlapping special tokens "<|a|>" and "<|a|><|b|>"',
                 "<|a|><|b|>x<|a|>y<|a|><|b|>" * 4 + "xy xy", 263, "longest_special_first",
                 ("<|a|>", "<|a|><|b|>")),
        Training("emoji and CJK text", "你好世界，你好！🙂🙂 👍🏽 👍🏽 héllo héllo " * 3, 290, "not_utf8_bytes"),
        Training("6,000 characters of Python's docs around a special token", docs_around_a_special_token, 350,
                 "wrong_merge", ("<|endoftext|>",)),
    ),
    hints=(
        Hint("Start from the single bytes, `vocab = {i: bytes([i]) for i in range(256)}`, and an empty list "
             "`merges`. The number of merges to make is `vocab_size - 256 - len(special_tokens)` (if that is "
             "negative, `raise ValueError(\"...\")`), and the function ends with `return vocab, merges`.",
             fits=("not_vocab_and_merges", "vocab_type", "byte_ids", "too_few_merges")),
        Hint("If there are special tokens, cut them out first, longest first (they are not training text): "
             "`re.split(\"|\".join(re.escape(s) for s in sorted(special_tokens, key=len, reverse=True)), "
             "text)`. "
             "Cut each remaining piece with `regex.findall(pattern, piece)` (whole when `pattern` is None), and "
             "count the pre-tokens in a `Counter`, each as the tuple of its UTF-8 bytes, "
             "`tuple(piece.encode(\"utf-8\"))`.",
             fits=("specials_trained_on", "longest_special_first", "across_pre_tokens", "pattern_none",
                   "not_utf8_bytes")),
        Hint("Each step, add up `get_pair_counts(word)` over the distinct words, each count times the word's "
             "frequency, and pick `max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))`: ties go "
             "to the greater byte strings, not ids. Record it as `(vocab[a], vocab[b])` in `merges` and "
             "`vocab[new_id] = vocab[a] + vocab[b]`, `merge` it in every word, and stop early when no pair is "
             "left. Only after the loop do the special tokens get the next ids: "
             "`vocab[len(vocab)] = token.encode(\"utf-8\")`.",
             fits=("unweighted", "ties", "merges_type", "merge_ids", "too_many_merges", "special_ids",
                   "wrong_merge")),
    ),
)


# --------------------------------------------------------------------------------------------
# encode and decode, checked together: check(encode, decode)
# --------------------------------------------------------------------------------------------
def _bytes_to_id(vocab: dict[int, bytes]) -> dict[bytes, int]:
    """The inverse of vocab; where two ids spell the same bytes, the smaller id."""
    inverse: dict[bytes, int] = {}
    for token_id in sorted(vocab, reverse=True):
        inverse[vocab[token_id]] = token_id
    return inverse


def _encode_pre_token(data: bytes, merge_ranks: dict[tuple[bytes, bytes], int]) -> list[bytes]:
    """The pre-token's bytes, merged as in training: always the earliest-learned pair first."""
    pieces = [bytes([byte]) for byte in data]
    while len(pieces) > 1:
        pair = min(zip(pieces, pieces[1:]), key=lambda p: merge_ranks.get(p, len(merge_ranks)))
        if pair not in merge_ranks:
            break
        pieces = merge(pieces, pair, pair[0] + pair[1])
    return pieces


def encode(text: str, vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]],
           special_tokens: Iterable[str] = (), pattern: str | None = GPT2_PATTERN) -> list[int]:
    """The token ids of `text` under a vocabulary and merges from train_bpe."""
    special_tokens = _checked_special_tokens(special_tokens)
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    merge_ranks = {pair: rank for rank, pair in enumerate(merges)}
    id_of = _bytes_to_id(vocab)
    # A special token's own id comes after every merge, so it is the largest id with its bytes.
    special_ids = {}
    for token in special_tokens:
        ids = [i for i, b in vocab.items() if b == token.encode("utf-8")]
        if not ids:
            raise ValueError(f"special token {token!r} is not in the vocabulary")
        special_ids[token] = max(ids)

    ids: list[int] = []
    cache: dict[str, list[int]] = {}  # pre-token -> its ids: common words are encoded once
    for position, chunk in enumerate(_chunks(text, special_tokens)):
        if position % 2:
            ids.append(special_ids[chunk])
            continue
        for pre_token in _pre_tokens(chunk, pattern):
            if pre_token not in cache:
                pieces = _encode_pre_token(pre_token.encode("utf-8"), merge_ranks)
                missing = [p for p in pieces if p not in id_of]
                if missing:
                    raise ValueError(f"the vocabulary has no id for the bytes {missing[0]!r}")
                cache[pre_token] = [id_of[p] for p in pieces]
            ids.extend(cache[pre_token])
    return ids


def decode(ids: Iterable[int], vocab: dict[int, bytes]) -> str:
    """The text of `ids`: their bytes joined, then decoded as UTF-8 (invalid bytes become "�")."""
    pieces = []
    for token_id in ids:
        if token_id not in vocab:
            raise ValueError(f"token id {token_id!r} is not in the vocabulary ({len(vocab)} ids)")
        pieces.append(vocab[token_id])
    return b"".join(pieces).decode("utf-8", errors="replace")


SPECIALS = ("<|endoftext|>", "<|end|>", "<|end|><|pad|>")


@functools.cache
def course_tokenizer(pattern: str | None) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """A vocabulary and merges trained by the course's train_bpe, so that these cases do not depend
    on the learner's."""
    return train_bpe(python_docs_text(12000 if pattern else 2000), 400, SPECIALS, pattern)


def submitted_decode(t: Trial) -> Callable:
    """The learner's decode, passed after encode; check(encode) alone checks encode with the course's."""
    return t.submitted[1] if len(t.submitted) > 1 else decode


def _encoding_mistake(text, got, vocab, special_tokens, pattern) -> str:
    """Why the learner's ids `got` differ from the answer's: tokens that do not spell the text, a token
    across a pre-token or special token, or else merges applied in the wrong order."""
    spelled = [vocab.get(i) for i in got]
    if None in spelled:
        return "unknown_id"
    if b"".join(spelled) != text.encode("utf-8"):
        return "not_spelling_text"
    token_ends = set(itertools.accumulate(len(b) for b in spelled))
    token_spans = set(zip([0, *itertools.accumulate(len(b) for b in spelled)], token_ends))
    end = 0
    for position, chunk in enumerate(_chunks(text, list(special_tokens))):
        start, end = end, end + len(chunk.encode("utf-8"))
        if position % 2 and (start, end) not in token_spans:
            return "special_tokens"
        if not position % 2 and pattern is not None:
            for piece in _pre_tokens(chunk, pattern):
                start += len(piece.encode("utf-8"))
                if start not in token_ends:
                    return "across_pre_tokens"
    return "merge_order"


@dataclass(frozen=True)
class Encoding:
    """encode must give the answer's ids for `text` (or for what calling it gives) under the course's
    own vocabulary, and decode must give the text back from them."""
    what: str
    text: str | Callable[[], str]
    special_tokens: tuple[str, ...] = ()
    pattern: str | None = GPT2_PATTERN

    def __call__(self, t: Trial) -> None:
        text = self.text() if callable(self.text) else self.text
        vocab, merges = course_tokenizer(self.pattern)
        expected = t.answer(text, vocab, merges, self.special_tokens, self.pattern)
        got = call_on_copies(t, t.fn, text, vocab, merges, special_tokens=list(self.special_tokens),
                             pattern=self.pattern, what=self.what)
        if not isinstance(got, list) or not all(isinstance(i, int) for i in got):
            t.fail("not_token_ids", f"{self.what}: encode should return a list of int ids", "e.g. [84, 295, 300]",
                   _shown(got))
        if got != expected:
            first = next((k for k, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            t.fail(_encoding_mistake(text, got, vocab, self.special_tokens, self.pattern),
                   f"{self.what}: the ids of {_shown(text, 80)} differ from token #{first} on",
                   [(i, vocab[i]) for i in expected[first:first + 4]],
                   [(i, vocab.get(i)) for i in got[first:first + 4]])
        decoded = call_on_copies(t, submitted_decode(t), expected, vocab, what=f"{self.what}: decode")
        if decoded != text:
            t.fail("decode_per_token", f"{self.what}: decode(encode(text)) should give the text back",
                   _shown(text), _shown(decoded))


def decodes_half_a_character(t: Trial) -> None:
    what = "decode of 'a' plus half of 'é'"
    vocab, _ = course_tokenizer(GPT2_PATTERN)
    got = call_on_copies(t, submitted_decode(t), [ord("a"), "é".encode("utf-8")[0]], vocab, what=what)
    if got != "a\ufffd":
        t.fail("invalid_utf8", what, repr("a\ufffd"), _shown(got))


ENCODE = Exercise(
    name="encode",
    answer=encode,
    probe=lambda f: f("a", {97: b"a"}, []),
    mistakes={
        "not_token_ids": "return a plain list of int ids",
        "unknown_id": "every id must be a key of vocab: look each final piece up in the inverse of vocab",
        "not_spelling_text": "your tokens do not spell the text: map each final piece to its id with the "
                             "inverse of vocab",
        "special_tokens": "split the text on the special tokens first, longest first; each special token "
                          "becomes one id, the id whose bytes are the special token's",
        "across_pre_tokens": "pre-split the text with regex.findall(pattern, chunk) and encode each piece on "
                             "its own: no token crosses a pre-token",
        "merge_order": "apply merges as training did: find the pair with the lowest rank (earliest in "
                       "`merges`), merge it everywhere, repeat until no pair has a merge",
        "decode_per_token": "join all the tokens' bytes first, then decode once with "
                            ".decode('utf-8', errors='replace'): one character can span several tokens",
        "invalid_utf8": "bytes that are not valid UTF-8 become '\ufffd': use errors='replace'",
    },
    visible=(
        *(Encoding("plain text", text) for text in (
            "hello world", "The quick brown fox jumps over the lazy dog.",
            lambda: python_docs_text(12000)[3000:3400], "   if x:\n\treturn f(x)  # done\n",
            "In 2024, 3.14159 wasn't 22/7.", "café crème brûlée", "")),
        decodes_half_a_character,
    ),
    hidden=(
        Encoding("a special token", "Hello<|endoftext|>world", SPECIALS),
        Encoding("adjacent special tokens", "<|endoftext|><|endoftext|>", SPECIALS),
        Encoding("overlapping special tokens", "<|end|>x<|end|><|pad|>y<|end|><|pad|><|end|>", SPECIALS),
        Encoding("special tokens not given", "<|endoftext|> is text when it is not a special token"),
        Encoding("emoji (multi-codepoint ones too)", "I 👍🏽 it 👨‍👩‍👧 🇫🇷", SPECIALS),
        Encoding("combining characters", "cafe\u0301 n\u0303 Z\u0351\u0353\u0325", SPECIALS),
        Encoding("right-to-left text", "שלום עולם مرحبا بالعالم", SPECIALS),
        Encoding("CJK text", "你好，世界。東京 서울", SPECIALS),
        Encoding("newlines and tabs", "line\n\n\r\n  \t end\n", SPECIALS),
        Encoding("the empty string", "", SPECIALS),
        *(Encoding("pattern=None (the text is one sequence)", text, SPECIALS, None) for text in (
            lambda: python_docs_text(2000)[500:800], "no pre-tokens: spaces and words may merge")),
    ),
    hints=(
        Hint("First build the inverse of `vocab`, a dict from bytes to id (fill it from the largest id down, "
             "so the smaller id wins). Then cut the text as training did: special tokens first, the other "
             "parts with `regex.findall(pattern, part)` (whole when `pattern` is None), and each pre-token "
             "into one id per UTF-8 byte, `[id_of[bytes([b])] for b in piece.encode(\"utf-8\")]`.",
             fits=("not_token_ids", "unknown_id", "not_spelling_text", "across_pre_tokens")),
        Hint("Merge inside each pre-token in the order training learned the merges. With "
             "`merge_of = {(id_of[a], id_of[b]): (rank, id_of[a + b]) for rank, (a, b) in enumerate(merges)}`, "
             "repeat: among the pairs present (`get_pair_counts` lists them) take the one with the lowest "
             "rank, stop if it has no merge, else `merge` it into its new id.",
             fits=("merge_order",)),
        Hint("When there are special tokens, split with a capturing group, `re.split(f\"({alternatives})\", "
             "text)`, where `alternatives` joins the escaped tokens with `|`, longest first: they land at "
             "the odd positions, and each becomes the one id whose bytes are the special token's (the "
             "larger id if two share them). In "
             "`decode`, join all the tokens' bytes with `b\"\".join(...)` and decode once, with "
             "`errors=\"replace\"`: one character, an emoji say, can span two tokens.",
             fits=("special_tokens", "decode_per_token", "invalid_utf8")),
    ),
)

EXERCISES = (GET_PAIR_COUNTS, MERGE, TRAIN_BPE, ENCODE)
