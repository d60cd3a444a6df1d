"""Put a BPE built by hand next to the Hugging Face `tokenizers` library's, trained the same way.

Both are turned into the tokenizer form TokenizerBox shows (text -> [(id, token bytes), ...]), so
they can be compared side by side, merge by merge and by compression.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from course_lib.models.smollm import byte_level_token_bytes, raw_bytes
from course_lib.exercises import bpe

TokenizeFn = Callable[[str], list[tuple[int, bytes]]]


def train_library_bpe(text: str, vocab_size: int, special_tokens: Iterable[str] = ()) -> Tokenizer:
    """The `tokenizers` library's byte-level BPE, trained as bpe.train_bpe trains with its defaults:
    the same 256 bytes to start from, the GPT-2 pre-tokenizer, every pair counted (no minimum
    frequency), and `vocab_size` counting bytes, merges and special tokens alike."""
    special_tokens = list(special_tokens)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=0, show_progress=False,
                                  special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # Cut at the special tokens first, as train_bpe does, so no special token is trained on.
    chunks = bpe._chunks(text, bpe._checked_special_tokens(special_tokens))[::2]
    tokenizer.train_from_iterator(chunks, trainer=trainer)
    return tokenizer


def library_merges(tokenizer: Tokenizer) -> list[tuple[bytes, bytes]]:
    """The tokenizer's merges, in the order learned, as pairs of raw bytes (the form train_bpe returns)."""
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    # Recent versions store each merge as [a, b], older ones as the string "a b".
    pairs = [merge.split(" ") if isinstance(merge, str) else merge for merge in merges]
    return [(raw_bytes(a), raw_bytes(b)) for a, b in pairs]


def library_tokenizer(tokenizer: Tokenizer) -> TokenizeFn:
    """`tokenizer` as a TokenizerBox row: text -> [(id, token bytes), ...]."""
    token_bytes = byte_level_token_bytes(tokenizer)

    def tokenize(text: str) -> list[tuple[int, bytes]]:
        return [(i, token_bytes[i]) for i in tokenizer.encode(text).ids]

    return tokenize


def bpe_tokenizer(vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]],
                  special_tokens: Iterable[str] = (), encode_fn: Callable | None = None) -> TokenizeFn:
    """A vocabulary and merges (from train_bpe) as a TokenizerBox row, encoding with `encode_fn`
    (called like bpe.encode; default: the course's reference encode)."""
    encode_fn = encode_fn or bpe.encode
    special_tokens = list(special_tokens)

    def tokenize(text: str) -> list[tuple[int, bytes]]:
        return [(i, vocab[i]) for i in encode_fn(text, vocab, merges, special_tokens)]

    return tokenize


def compare_merges(ours: list[tuple[bytes, bytes]], theirs: list[tuple[bytes, bytes]]) -> dict:
    """How far two lists of merges agree.

    in_common: how many merges both learned, in any order; identical_prefix: how many first merges
    are the same, in the same order; first_difference: (ours, theirs) at the first position they
    differ (None for a list that ended), or None when the lists are identical.
    """
    ours = [tuple(pair) for pair in ours]
    theirs = [tuple(pair) for pair in theirs]
    prefix = 0
    while prefix < min(len(ours), len(theirs)) and ours[prefix] == theirs[prefix]:
        prefix += 1
    if prefix == len(ours) == len(theirs):
        first_difference = None
    else:
        first_difference = (ours[prefix] if prefix < len(ours) else None,
                            theirs[prefix] if prefix < len(theirs) else None)
    return {"in_common": len(set(ours) & set(theirs)), "identical_prefix": prefix,
            "first_difference": first_difference}


def bytes_per_token(tokenize_fn: TokenizeFn, text: str) -> float:
    """Compression: UTF-8 bytes of `text` per token (higher is better; raw bytes give 1.0)."""
    n_tokens = len(tokenize_fn(text))
    if n_tokens == 0:
        raise ValueError("the text has no tokens: compression needs a non-empty text")
    return len(text.encode("utf-8")) / n_tokens
