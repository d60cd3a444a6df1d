"""Checks for the BPE exercises: get_pair_counts, merge, train_bpe, encode and decode.

Every answer is compared with the course's reference (course_lib.reference.bpe) on small inputs, so
that a plain implementation that recounts every pair at every step still finishes in seconds. When
train_bpe picks a different merge, the check recounts the pairs at that step under the usual
mistakes (special tokens left in, merges across pre-tokens, unweighted counts) to say which it was.
"""
from __future__ import annotations

import functools
import itertools
from collections import Counter

import regex

from course_lib.checks.common import call, fail
from course_lib.data import python_docs_text
from course_lib.reference import bpe as ref

TIE_HINT = ("ties: pick the lexicographically greater pair, comparing the byte strings "
            "(vocab[a], vocab[b]), not the ids: max over (count, (vocab[a], vocab[b]))")
WEIGHT_HINT = ("counts must be weighted by how often each pre-token occurs: a word that appears 5 times "
               "adds 5 to each of its pairs")
BOUNDARY_HINT = ("a merge crossed a pre-token boundary: split each chunk with regex.findall(pattern, chunk) "
                 "and count and merge pairs only inside each piece")
SPECIAL_HINT = ("special tokens are not training text: split the text on them first (longest first), "
                "train only on the pieces between them, and give them the ids after the last merge")
ORDER_HINT = ("apply merges as training did: find the pair with the lowest rank (earliest in `merges`), "
              "merge it everywhere, repeat until no pair has a merge")
DECODE_HINT = ("join all the tokens' bytes first, then decode once with .decode('utf-8', errors='replace'): "
               "one character can span several tokens")
SPECIAL_ENCODE_HINT = ("split the text on the special tokens first, longest first; each special token "
                       "becomes one id, the id whose bytes are the special token's")


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


# get_pair_counts and merge -------------------------------------------------------------------------
def check_get_pair_counts(fn) -> None:
    """Pairs of neighbours, overlapping ones included; nothing for fewer than two ids."""
    cases = [
        ([1, 2, 3, 1, 2], "count every pair of neighbours"),
        ([1, 1, 1], "overlapping pairs count too: [1, 1, 1] holds (1, 1) twice, at positions 0 and 1"),
        ([5, 5, 5, 5, 6], "overlapping pairs count too: slide along one position at a time"),
        ([7], "a single id has no neighbour, so no pairs"),
        ([], "an empty list has no pairs"),
    ]
    for ids, hint in cases:
        given = list(ids)
        got = call(fn, given)
        if not isinstance(got, dict):
            fail(f"get_pair_counts({ids}) should return a dict", "a dict like {(1, 2): 2}", _short(got),
                 "a collections.Counter is a dict too")
        expected = ref.get_pair_counts(ids)
        if dict(got) != expected:
            fail(f"get_pair_counts({ids})", expected, dict(got), hint)
        if given != ids:
            fail("get_pair_counts should not modify its input", ids, given)
    print("✅ get_pair_counts passes the tests.")


def check_merge(fn) -> None:
    """Every occurrence replaced, left to right, without overlaps; a new list, the input untouched."""
    cases = [
        ([1, 2, 3, 1, 2], (1, 2), 4, "each occurrence of the pair (two ids) becomes one new_id: "
                                     "after merging ids[i], ids[i + 1], go on at i + 2"),
        ([1, 1, 1], (1, 1), 9, "occurrences do not overlap: after merging ids[i], ids[i + 1], go on at i + 2"),
        ([1, 1, 1, 1], (1, 1), 9, "after merging ids[i], ids[i + 1], go on at i + 2"),
        ([3, 1, 2], (1, 2), 4, "a pair at the very end must be merged too"),
        ([1, 2, 3], (1, 2), 4, "keep the last id when it is not part of a merge"),
        ([2, 1, 2], (2, 1), 7, "the order in a pair matters: (2, 1) is not (1, 2)"),
        ([1, 3, 2], (1, 2), 4, "only neighbours form a pair"),
        ([], (1, 2), 4, "an empty list stays empty"),
    ]
    for ids, pair, new_id, hint in cases:
        given = list(ids)
        got = call(fn, given, pair, new_id)
        if not isinstance(got, list):
            fail(f"merge({ids}, {pair}, {new_id}) should return a list", "a list of ids", _short(got))
        expected = ref.merge(ids, pair, new_id)
        if got != expected:
            fail(f"merge({ids}, {pair}, {new_id})", expected, got, hint)
        if given != ids:
            fail("merge should not modify its input", ids, given, "build a new list and return it")
    print("✅ merge passes the tests.")


# train_bpe ------------------------------------------------------------------------------------------
def _train(fn, text, vocab_size, special_tokens, pattern, what):
    """The learner's (vocab, merges), after checking their types."""
    got = call(fn, text, vocab_size, special_tokens=list(special_tokens), pattern=pattern)
    if not (isinstance(got, tuple) and len(got) == 2):
        fail(f"{what}: train_bpe should return a tuple (vocab, merges)", "(dict, list)", _short(got))
    vocab, merges = got
    if not isinstance(vocab, dict) or not all(
            isinstance(i, int) and isinstance(b, bytes) for i, b in vocab.items()):
        fail(f"{what}: vocab should be a dict from int ids to bytes", "{0: b'\\x00', ..., 256: b'aa'}",
             _short(vocab), "start from {i: bytes([i]) for i in range(256)}")
    if not isinstance(merges, list) or not all(
            isinstance(m, tuple) and len(m) == 2 and all(isinstance(x, bytes) for x in m) for m in merges):
        fail(f"{what}: merges should be a list of (bytes, bytes) tuples", "[(b'a', b'a'), ...]", _short(merges),
             "append (vocab[a], vocab[b]) for each merged pair of ids (a, b)")
    return vocab, merges


def _pair_counts(chunks, pattern, merges, weighted=True) -> Counter:
    """The counts of byte-string pairs in the chunks of text between special tokens, once `merges`
    are applied; each distinct pre-token counted once if not `weighted`."""
    pre_tokens = Counter(p for chunk in chunks for p in ref._pre_tokens(chunk, pattern))
    counts = Counter()
    for pre_token, frequency in pre_tokens.items():
        pieces = [bytes([b]) for b in pre_token.encode("utf-8")]
        for pair in merges:
            pieces = ref.merge(pieces, pair, pair[0] + pair[1])
        for pair in zip(pieces, pieces[1:]):
            counts[pair] += frequency if weighted else 1
    return counts


def _explain_merge(text, special_tokens, pattern, learned, expected, got, hint) -> str:
    """Which mistake makes the learner's pair `got` beat `expected` after the merges `learned`:
    the first wrong way of counting under which `got` is at least as frequent as `expected`."""
    chunks = ref._chunks(text, list(special_tokens))[::2]
    counts = _pair_counts(chunks, pattern, learned)
    if counts[got] == counts[expected] and got < expected:
        return TIE_HINT

    def wins(chunks=chunks, pattern=pattern, weighted=True) -> bool:
        wrong = _pair_counts(chunks, pattern, learned, weighted)
        return wrong[got] > 0 and wrong[got] >= wrong[expected]

    if special_tokens:
        shortest_first = "|".join(regex.escape(t) for t in sorted(special_tokens, key=len))
        if wins(chunks=regex.split(shortest_first, text)):
            return "match the longest special token first: sort them by length, longest first"
        if wins(chunks=[text]):
            return SPECIAL_HINT
    if pattern is not None and wins(pattern=None):
        return BOUNDARY_HINT
    if wins(weighted=False):
        return WEIGHT_HINT
    return f"{got} occurs {counts[got]} times at this step, {expected} {counts[expected]} times. {hint}"


def _compare_training(fn, text, vocab_size, what, hint, special_tokens=(), pattern=ref.GPT2_PATTERN):
    vocab, merges = _train(fn, text, vocab_size, special_tokens, pattern, what)
    expected_vocab, expected_merges = ref.train_bpe(text, vocab_size, special_tokens, pattern)
    for step, (want, have) in enumerate(zip(expected_merges, merges)):
        if want != have:
            reason = _explain_merge(text, special_tokens, pattern, expected_merges[:step], want, have, hint)
            fail(f"{what}: merge #{step} (counting from 0) differs", want, have, reason)
    if len(merges) != len(expected_merges):
        stop = ("stop early only when no pair is left to merge" if len(merges) < len(expected_merges)
                else "stop when no pair is left: the vocabulary is then smaller than vocab_size")
        fail(f"{what}: the number of merges", len(expected_merges), len(merges),
             f"merges = vocab_size - 256 - len(special_tokens); {stop}")
    if vocab != expected_vocab:
        wrong = min(set(vocab) ^ set(expected_vocab) | {i for i in vocab if vocab[i] != expected_vocab.get(i)})
        special_bytes = {t.encode("utf-8") for t in special_tokens}
        if {vocab.get(wrong), expected_vocab.get(wrong)} & special_bytes:
            why = "special tokens get the ids right after the last merge, in the order given, as UTF-8 bytes"
        elif wrong < 256:
            why = "ids 0..255 are the single bytes: vocab = {i: bytes([i]) for i in range(256)}"
        else:
            why = "merge i gets id 256 + i, and vocab[256 + i] is the two byte strings of merge i joined"
        fail(f"{what}: vocab[{wrong}]", expected_vocab.get(wrong, "no such id"), vocab.get(wrong, "no such id"),
             why)


def check_train_bpe(fn) -> None:
    """Visible tests: the worked example, a tie, pre-token boundaries, stopping early."""
    _compare_training(fn, "aaabdaaabac", 259, 'the worked example "aaabdaaabac" with pattern=None',
                      "with pattern=None the whole text is one sequence of bytes", pattern=None)
    _compare_training(fn, "c c ac", 259, 'the tie case "c c ac" (every pair occurs once)', TIE_HINT)
    _compare_training(fn, "hi! hi! hi!", 258, 'pre-tokens "hi! hi! hi!"', BOUNDARY_HINT)
    _compare_training(fn, "ab", 300, 'stopping early on "ab" with pattern=None',
                      "after merging (a, b) no pair is left: stop", pattern=None)
    print("✅ train_bpe passes the visible tests.")


def check_train_bpe_hidden(fn) -> None:
    """Special tokens (overlapping ones too), emoji and CJK, frequency weighting, real prose."""
    _compare_training(fn, "zz" + " ab" * 5, 257, 'weighting: "zz" once, " ab" five times', WEIGHT_HINT)
    _compare_training(fn, "low<|end|>lower<|end|>newest<|end|>widest<|end|>" * 3, 266,
                      "text with a special token", SPECIAL_HINT, special_tokens=["<|end|>"])
    _compare_training(fn, "<|a|><|b|>x<|a|>y<|a|><|b|>" * 4 + "xy xy", 263,
                      'overlapping special tokens "<|a|>" and "<|a|><|b|>"',
                      "match the longest special token first: sort them by length, longest first",
                      special_tokens=["<|a|>", "<|a|><|b|>"])
    _compare_training(fn, "你好世界，你好！🙂🙂 👍🏽 👍🏽 héllo héllo " * 3, 290, "emoji and CJK text",
                      "work on the UTF-8 bytes (text.encode('utf-8')), not on characters")
    docs = python_docs_text(6000)
    _compare_training(fn, docs[:3000] + "<|endoftext|>" + docs[3000:], 350,
                      "6,000 characters of Python's docs around a special token",
                      "compare your merges with the reference's, step by step",
                      special_tokens=["<|endoftext|>"])
    print("✅ train_bpe passes the hidden tests too.")


# encode and decode ----------------------------------------------------------------------------------
SPECIALS = ["<|endoftext|>", "<|end|>", "<|end|><|pad|>"]


@functools.cache
def _reference_tokenizer(pattern: str | None = ref.GPT2_PATTERN):
    """A vocabulary trained by the reference train_bpe, so these checks do not depend on the learner's."""
    return ref.train_bpe(python_docs_text(12000 if pattern else 2000), 400, SPECIALS, pattern)


def _encoding_hint(text, got, expected, vocab, special_tokens, pattern) -> str:
    """Why the learner's ids `got` differ from `expected`: tokens that do not spell the text, a
    token across a pre-token or special token, or else merges applied in the wrong order."""
    spelled = [vocab.get(i) for i in got]
    if None in spelled:
        return f"id {got[spelled.index(None)]} is not in the vocabulary"
    if b"".join(spelled) != text.encode("utf-8"):
        return "your tokens do not spell the text: map each final piece to its id with the inverse of vocab"
    token_ends = set(itertools.accumulate(len(b) for b in spelled))
    token_spans = set(zip([0, *itertools.accumulate(len(b) for b in spelled)], token_ends))
    end = 0
    for position, chunk in enumerate(ref._chunks(text, list(special_tokens))):
        start, end = end, end + len(chunk.encode("utf-8"))
        if position % 2 and (start, end) not in token_spans:
            return SPECIAL_ENCODE_HINT
        if not position % 2 and pattern is not None:
            for piece in ref._pre_tokens(chunk, pattern):
                start += len(piece.encode("utf-8"))
                if start not in token_ends:
                    return ("pre-split the text with regex.findall(pattern, chunk) and encode each piece on "
                            "its own: no token crosses a pre-token")
    return ORDER_HINT


def _compare_encoding(encode_fn, decode_fn, text, what, special_tokens=(), pattern=ref.GPT2_PATTERN):
    vocab, merges = _reference_tokenizer(pattern)
    expected = ref.encode(text, vocab, merges, special_tokens, pattern)
    got = call(encode_fn, text, vocab, merges, special_tokens=list(special_tokens), pattern=pattern)
    if not isinstance(got, list) or not all(isinstance(i, int) for i in got):
        fail(f"{what}: encode should return a list of int ids", "e.g. [84, 295, 300]", _short(got))
    if got != expected:
        first = next((k for k, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        fail(f"{what}: the ids of {_short(text, 80)} differ from token #{first} on",
             [(i, vocab[i]) for i in expected[first:first + 4]],
             [(i, vocab.get(i)) for i in got[first:first + 4]],
             _encoding_hint(text, got, expected, vocab, special_tokens, pattern))
    decoded = call(decode_fn, expected, vocab)
    if decoded != text:
        fail(f"{what}: decode(encode(text)) should give the text back", _short(text), _short(decoded), DECODE_HINT)


def check_encode_decode(encode_fn, decode_fn) -> None:
    """Visible tests: ids equal the reference's on plain English and code; decode gives the text back."""
    for text in ["hello world", "The quick brown fox jumps over the lazy dog.",
                 python_docs_text(12000)[3000:3400], "   if x:\n\treturn f(x)  # done\n",
                 "In 2024, 3.14159 wasn't 22/7.", "café crème brûlée", ""]:
        _compare_encoding(encode_fn, decode_fn, text, "plain text")
    vocab, _ = _reference_tokenizer()
    half_a_character = [ord("a"), "é".encode("utf-8")[0]]
    got = call(decode_fn, half_a_character, vocab)
    if got != "a\ufffd":
        fail("decode of 'a' plus half of 'é'", repr("a\ufffd"), _short(got),
             "bytes that are not valid UTF-8 become '\ufffd': use errors='replace'")
    print("✅ encode and decode pass the visible tests.")


def check_encode_decode_hidden(encode_fn, decode_fn) -> None:
    """Special tokens (adjacent, overlapping), emoji, combining marks, right-to-left text, pattern=None."""
    cases = [
        ("Hello<|endoftext|>world", "a special token", SPECIALS),
        ("<|endoftext|><|endoftext|>", "adjacent special tokens", SPECIALS),
        ("<|end|>x<|end|><|pad|>y<|end|><|pad|><|end|>", "overlapping special tokens", SPECIALS),
        ("<|endoftext|> is text when it is not a special token", "special tokens not given", ()),
        ("I 👍🏽 it 👨‍👩‍👧 🇫🇷", "emoji (multi-codepoint ones too)", SPECIALS),
        ("cafe\u0301 n\u0303 Z\u0351\u0353\u0325", "combining characters", SPECIALS),
        ("שלום עולם مرحبا بالعالم", "right-to-left text", SPECIALS),
        ("你好，世界。東京 서울", "CJK text", SPECIALS),
        ("line\n\n\r\n  \t end\n", "newlines and tabs", SPECIALS),
        ("", "the empty string", SPECIALS),
    ]
    for text, what, special_tokens in cases:
        _compare_encoding(encode_fn, decode_fn, text, what, special_tokens)
    for text in [python_docs_text(2000)[500:800], "no pre-tokens: spaces and words may merge"]:
        _compare_encoding(encode_fn, decode_fn, text, "pattern=None (the text is one sequence)", SPECIALS, None)
    print("✅ encode and decode pass the hidden tests too.")
