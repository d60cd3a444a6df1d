"""The course's byte-level BPE tokenizer: training, encoding and decoding, as in GPT-2.

A vocabulary maps ids to byte strings: ids 0..255 are the single bytes, merge i (a pair of byte
strings) gets id 256 + i, and special tokens get the ids after the last merge. Text is first cut at
the special tokens, then into pre-tokens by a regex (words, numbers, punctuation runs, whitespace);
merges never cross a pre-token, so tokens never glue a word to the punctuation after it.
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from typing import Iterable

import regex

from course_lib.data import GPT2_PATTERN


def get_pair_counts(ids: list) -> dict[tuple, int]:
    """How often each pair of neighbours occurs, overlapping pairs included: [1, 1, 1] -> {(1, 1): 2}."""
    return dict(Counter(zip(ids, ids[1:])))


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
