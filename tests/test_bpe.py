"""The course's BPE against the `tokenizers` library and a plain recount, and the BPE exercises
against the mistakes learners make (caught under their declared keys)."""
import random
from collections import Counter
import unicodedata
from functools import partial

import pytest
import regex

from course_lib import tokenizer_lab
from course_lib.checks import bpe as checks
from course_lib.data import python_docs_text
from course_lib.exercises import ExerciseFailure, bpe, check, use
from course_lib.exercises.bpe import GPT2_PATTERN

SPECIALS = ["<|endoftext|>", "<|end|>", "<|end|><|pad|>"]


# A learner's plain implementations, each with an optional planted mistake ----------------------------
def learner_train_bpe(text, vocab_size, special_tokens=(), pattern=GPT2_PATTERN, mistake=None):
    """train_bpe as a learner writes it: recount every pair over every pre-token at every step."""
    special_tokens = list(special_tokens)
    by_length = sorted(special_tokens, key=len, reverse=mistake != "shortest_special_first")
    chunks = [text]
    if special_tokens and mistake != "specials_trained_on":
        chunks = regex.split("|".join(map(regex.escape, by_length)), text)
    pre_tokens = [p for chunk in chunks if chunk
                  for p in ([chunk] if pattern is None or mistake == "across_pre_tokens"
                            else regex.findall(pattern, chunk))]
    if mistake == "unweighted":
        pre_tokens = list(dict.fromkeys(pre_tokens))
    words = [list(p.encode("utf-8")) for p in pre_tokens]
    vocab = {i: bytes([i]) for i in range(256)}
    first_merge_id = 256 + len(special_tokens) if mistake == "specials_first" else 256
    merges = []
    for new_id in range(first_merge_id, first_merge_id + vocab_size - 256 - len(special_tokens)):
        counts = Counter()
        for word in words:
            counts.update(bpe.get_pair_counts(word))
        if not counts:
            break
        if mistake == "ties_to_smaller":
            best = min(counts, key=lambda p: (-counts[p], (vocab[p[0]], vocab[p[1]])))
        elif mistake == "ties_by_id":
            best = max(counts, key=lambda p: (counts[p], p))
        else:
            best = max(counts, key=lambda p: (counts[p], (vocab[p[0]], vocab[p[1]])))
        vocab[new_id] = vocab[best[0]] + vocab[best[1]]
        merges.append((vocab[best[0]], vocab[best[1]]))
        words = [bpe.merge(word, best, new_id) for word in words]
    first_special_id = 256 if mistake == "specials_first" else len(vocab)
    vocab.update({first_special_id + k: t.encode("utf-8") for k, t in enumerate(special_tokens)})
    return vocab, merges


def learner_encode(text, vocab, merges, special_tokens=(), pattern=GPT2_PATTERN, mistake=None):
    """encode as a learner writes it (minbpe's loop), with an optional planted mistake."""
    rank = {pair: r for r, pair in enumerate(merges)}
    id_of = {b: i for i, b in sorted(vocab.items(), reverse=True)}
    by_length = sorted(special_tokens, key=len, reverse=mistake != "shortest_special_first")
    chunks = [text]
    if special_tokens and mistake != "specials_as_text":
        chunks = regex.split("(" + "|".join(map(regex.escape, by_length)) + ")", text)
    ids = []
    for position, chunk in enumerate(chunks):
        if position % 2:
            ids.append(id_of[chunk.encode("utf-8")])
            continue
        for piece in [chunk] if pattern is None or mistake == "no_pre_split" else regex.findall(pattern, chunk):
            parts = [bytes([b]) for b in piece.encode("utf-8")]
            while True:
                known = [p for p in zip(parts, parts[1:]) if p in rank]
                if not known:
                    break
                pair = known[0] if mistake == "leftmost_first" else min(known, key=rank.get)
                parts = bpe.merge(parts, pair, pair[0] + pair[1])
            ids += [id_of[p] for p in parts]
    return ids


def decode_token_by_token(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def get_pair_counts_without_overlaps(ids):
    """Counts like str.count: a pair's occurrences may not share an id, so [1, 1, 1] has (1, 1) once."""
    counts, i = Counter(), 0
    while i + 1 < len(ids):
        counts[ids[i], ids[i + 1]] += 1
        i += 2 if ids[i] == ids[i + 1] else 1
    return dict(counts)


def merge_without_skipping(ids, pair, new_id):
    """Forgets to skip the second id of a merged pair: [1, 2, 3] with (1, 2) -> 4 gives [4, 2, 3]."""
    return [new_id if (a, b) == pair else a for a, b in zip(ids, ids[1:])] + ids[-1:]


# The reference ----------------------------------------------------------------------------------------
def test_pair_counts_and_merge_on_the_documented_examples():
    assert bpe.get_pair_counts([1, 1, 1]) == {(1, 1): 2}
    assert bpe.get_pair_counts([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    ids = [1, 1, 1]
    assert bpe.merge(ids, (1, 1), 9) == [9, 1] and ids == [1, 1, 1]
    assert bpe.merge([1, 1, 1, 1], (1, 1), 9) == [9, 9]


def test_worked_example_tie_and_vocabulary_layout():
    vocab, merges = bpe.train_bpe("aaabdaaabac", 259, pattern=None)
    # step 2 is a tie, (aa, a) and (a, b) both occur twice: the greater pair of byte strings wins
    assert merges == [(b"a", b"a"), (b"aa", b"a"), (b"aaa", b"b")]
    assert [vocab[i] for i in (97, 256, 257, 258)] == [b"a", b"aa", b"aaa", b"aaab"]

    vocab, merges = bpe.train_bpe("ab ab", 300, special_tokens=["<|x|>", "<|y|>"])
    assert merges == [(b"a", b"b"), (b" ", b"ab")]  # then nothing is left to merge
    assert len(vocab) == 260 and vocab[258] == b"<|x|>" and vocab[259] == b"<|y|>"


def test_reference_equals_a_plain_recount_on_random_texts():
    """The incremental pair counts and the heap must give exactly the merges a full recount gives."""
    rng = random.Random(0)
    alphabet = list("aabbcdé  \n!") + ["你", "🙂", "<|end|>", "<|endoftext|>"]
    for trial in range(60):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        vocab_size = 256 + len(SPECIALS) + rng.randint(0, 60)
        pattern = GPT2_PATTERN if trial % 3 else None
        expected = learner_train_bpe(text, vocab_size, SPECIALS, pattern)
        assert bpe.train_bpe(text, vocab_size, SPECIALS, pattern) == expected, (text, vocab_size, pattern)
    docs = python_docs_text(15_000)
    assert bpe.train_bpe(docs, 400) == learner_train_bpe(docs, 400)


def first_tie(text: str, merges) -> int:
    """The first step at which two pairs share the top count (where tie-breaking rules may differ)."""
    counts = Counter(regex.findall(GPT2_PATTERN, text))
    words = [[bytes([b]) for b in w.encode("utf-8")] for w in counts]
    for step, pair in enumerate(merges):
        pairs = Counter()
        for word, frequency in zip(words, counts.values()):
            for p in zip(word, word[1:]):
                pairs[p] += frequency
        (top, n), (_, runner_up) = pairs.most_common(2)
        if n == runner_up:
            return step
        assert top == pair
        words = [bpe.merge(word, pair, pair[0] + pair[1]) for word in words]
    return len(merges)


def test_reference_agrees_with_the_tokenizers_library():
    text = python_docs_text(200_000)
    vocab, merges = bpe.train_bpe(text, 1000)
    library = tokenizer_lab.train_library_bpe(text, 1000)
    theirs = tokenizer_lab.library_merges(library)
    assert len(merges) == len(theirs) == 1000 - 256
    tie = first_tie(text, merges)
    assert tie > 10
    agreement = tokenizer_lab.compare_merges(merges, theirs)
    assert agreement["identical_prefix"] >= tie  # they break ties differently, nothing else
    assert agreement["in_common"] >= 0.9 * len(merges)

    held_out = python_docs_text(260_000)[200_000:]
    ours = tokenizer_lab.bytes_per_token(tokenizer_lab.bpe_tokenizer(vocab, merges), held_out)
    library_bpt = tokenizer_lab.bytes_per_token(tokenizer_lab.library_tokenizer(library), held_out)
    assert ours == pytest.approx(library_bpt, rel=0.01)
    assert ours > 2.5  # far from raw bytes: the merges are real


ROUND_TRIP_TEXTS = [
    "", "hello world", "I 👍🏽 it 👨‍👩‍👧 🇫🇷", "你好，世界。東京 서울",
    "cafe\u0301 Z\u0351\u0353",
    "שלום עולם مرحبا بالعالم", "line\n\n\r\n  \t end\n", "<|endoftext|><|end|><|pad|>x<|end|>",
    "don't we'll they've 3.14159", "\x00\x7f\u200b\ufeff",
]


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, None])
def test_round_trips(pattern):
    vocab, merges = bpe.train_bpe(python_docs_text(5000) + "".join(ROUND_TRIP_TEXTS), 400, SPECIALS, pattern)
    for text in ROUND_TRIP_TEXTS:
        ids = bpe.encode(text, vocab, merges, SPECIALS, pattern)
        assert bpe.decode(ids, vocab) == text
        assert ids == learner_encode(text, vocab, merges, SPECIALS, pattern)
    ids = bpe.encode("a<|end|><|pad|>b<|endoftext|><|endoftext|>", vocab, merges, SPECIALS, pattern)
    assert ids[1] == 256 + len(merges) + 2 and ids[-2:] == [256 + len(merges)] * 2


def test_encode_takes_the_smaller_of_two_ids_with_the_same_bytes():
    vocab = {i: bytes([i]) for i in range(256)} | {256: b"ab", 257: b"ab"}
    assert bpe.encode("ab", vocab, [(b"a", b"b")]) == [256]


def test_clear_errors_for_bad_input():
    with pytest.raises(ValueError, match="vocab_size must be an int >= 257"):
        bpe.train_bpe("abc", 256, special_tokens=["<|x|>"])
    with pytest.raises(ValueError, match="non-empty"):
        bpe.train_bpe("abc", 300, special_tokens=[""])
    with pytest.raises(ValueError, match="distinct.*<\\|x\\|>"):
        bpe.train_bpe("abc", 300, special_tokens=["<|x|>", "<|x|>"])
    with pytest.raises(ValueError, match="not one string"):
        bpe.train_bpe("abc", 300, special_tokens="<|x|>")
    with pytest.raises(ValueError, match="text must be a str"):
        bpe.train_bpe(b"abc", 300)
    vocab, merges = bpe.train_bpe("abc", 300)
    with pytest.raises(ValueError, match="'<\\|x\\|>' is not in the vocabulary"):
        bpe.encode("a<|x|>", vocab, merges, special_tokens=["<|x|>"])
    with pytest.raises(ValueError, match="token id 999"):
        bpe.decode([97, 999], vocab)
    with pytest.raises(ValueError, match="whole number"):
        python_docs_text(-1)
    with pytest.raises(ValueError, match="asked for 100,000,000 characters"):
        python_docs_text(100_000_000)


def test_python_docs_text_is_one_fixed_text():
    topics = python_docs_text()
    assert 300_000 < len(topics) and topics.startswith(python_docs_text(1000))
    long = python_docs_text(1_000_000)
    assert len(long) == 1_000_000 and long.startswith(topics) and long == python_docs_text(1_000_000)
    assert "Return" in long[len(topics):]  # docstrings follow the topics


# The tokenizer lab ------------------------------------------------------------------------------------
def test_tokenizer_lab_rows_and_comparisons():
    text = python_docs_text(20_000)
    library = tokenizer_lab.train_library_bpe(text + "<|endoftext|>", 300, ["<|endoftext|>"])
    merges = tokenizer_lab.library_merges(library)
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in merges)
    assert (b" ", b"t") in merges  # GPT-2's "Ġt", back as raw bytes
    row = tokenizer_lab.library_tokenizer(library)("the 🙂<|endoftext|>")
    assert b"".join(piece for _, piece in row) == "the 🙂<|endoftext|>".encode()
    assert row[-1][1] == b"<|endoftext|>"

    vocab, ours = bpe.train_bpe(text, 300, ["<|endoftext|>"])
    row = tokenizer_lab.bpe_tokenizer(vocab, ours, ["<|endoftext|>"])("the<|endoftext|>")
    assert row == [(vocab_id, vocab[vocab_id]) for vocab_id in bpe.encode("the<|endoftext|>", vocab, ours,
                                                                            ["<|endoftext|>"])]
    assert row[-1] == (299, b"<|endoftext|>")
    learner_row = tokenizer_lab.bpe_tokenizer(vocab, ours, encode_fn=lambda *args: [104])("x")
    assert learner_row == [(104, b"h")]

    pairs = [(b"a", b"b"), (b"c", b"d"), (b"e", b"f")]
    assert tokenizer_lab.compare_merges(pairs, pairs) == {"in_common": 3, "identical_prefix": 3,
                                                          "first_difference": None}
    assert tokenizer_lab.compare_merges(pairs, [pairs[0], pairs[2], pairs[1]]) == {
        "in_common": 3, "identical_prefix": 1, "first_difference": ((b"c", b"d"), (b"e", b"f"))}
    assert tokenizer_lab.compare_merges(pairs[:1], pairs)["first_difference"] == (None, (b"c", b"d"))
    assert tokenizer_lab.bytes_per_token(lambda t: [(0, b"ab"), (1, b"c")], "abc") == 1.5
    with pytest.raises(ValueError, match="no tokens"):
        tokenizer_lab.bytes_per_token(lambda t: [], "")


# The exercises -----------------------------------------------------------------------------------------
def failure(check, *submitted) -> ExerciseFailure:
    with pytest.raises(ExerciseFailure) as caught:
        check(*submitted)
    return caught.value


def test_the_courses_answers_and_a_plain_learner_pass_every_check(capsys):
    for train in (bpe.train_bpe, learner_train_bpe):
        checks.check_train_bpe(train)
        checks.check_train_bpe_hidden(train)
    for encode in (bpe.encode, learner_encode):
        checks.check_encode_decode(encode, bpe.decode)
        checks.check_encode_decode_hidden(encode, bpe.decode)
    checks.check_get_pair_counts(bpe.get_pair_counts)
    checks.check_merge(bpe.merge)
    assert capsys.readouterr().out.count("✅") == 10


def emptying_special_tokens(text, vocab_size, special_tokens=(), pattern=GPT2_PATTERN):
    learned = bpe.train_bpe(text, vocab_size, special_tokens, pattern)
    special_tokens.clear()
    return learned


def test_train_bpe_and_encode_may_edit_their_own_inputs(capsys):
    """Editing special_tokens in place (sorting them, say) harms no caller: only get_pair_counts and
    merge are held to leaving their inputs alone."""
    checks.check_train_bpe_hidden(emptying_special_tokens)

    def encode(text, vocab, merges, special_tokens=(), pattern=GPT2_PATTERN):
        special_tokens.sort(key=len, reverse=True)
        vocab[len(vocab)] = b"<|extra|>"
        return bpe.encode(text, vocab, merges, special_tokens, pattern)

    checks.check_encode_decode_hidden(encode, bpe.decode)
    assert capsys.readouterr().out.count("✅") == 2


def merge_in_place(ids, pair, new_id):
    ids[:] = bpe.merge(ids, pair, new_id)
    return ids


def stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("check, wrong, key", [
    (checks.check_get_pair_counts, get_pair_counts_without_overlaps, "overlaps_skipped"),
    (checks.check_get_pair_counts, lambda ids: list(bpe.get_pair_counts(ids).items()), "wrong_type"),
    (checks.check_merge, merge_without_skipping, "not_skipped"),
    (checks.check_merge, merge_in_place, "changed_input"),
    (checks.check_merge, stub, "not_implemented"),
])
def test_pair_count_and_merge_mistakes_are_caught(check, wrong, key):
    assert failure(check, wrong).key == key


@pytest.mark.parametrize("mistake, check, key", [
    ("ties_to_smaller", checks.check_train_bpe, "ties"),
    ("ties_by_id", checks.check_train_bpe, "ties"),
    ("across_pre_tokens", checks.check_train_bpe, "across_pre_tokens"),
    ("unweighted", checks.check_train_bpe_hidden, "unweighted"),
    ("specials_trained_on", checks.check_train_bpe_hidden, "specials_trained_on"),
    ("shortest_special_first", checks.check_train_bpe_hidden, "longest_special_first"),
    ("specials_first", checks.check_train_bpe_hidden, "special_ids"),
])
def test_train_bpe_mistakes_are_caught(mistake, check, key):
    assert failure(check, partial(learner_train_bpe, mistake=mistake)).key == key


@pytest.mark.parametrize("mistake, check, key", [
    ("leftmost_first", checks.check_encode_decode, "merge_order"),
    ("no_pre_split", checks.check_encode_decode, "across_pre_tokens"),
    ("specials_as_text", checks.check_encode_decode_hidden, "special_tokens"),
    ("shortest_special_first", checks.check_encode_decode_hidden, "special_tokens"),
])
def test_encode_mistakes_are_caught(mistake, check, key):
    assert failure(check, partial(learner_encode, mistake=mistake), bpe.decode).key == key


def test_decode_mistakes_are_caught():
    assert failure(checks.check_encode_decode, bpe.encode, decode_token_by_token).key == "decode_per_token"
    ignoring_bad_bytes = lambda ids, vocab: b"".join(vocab[i] for i in ids).decode("utf-8", "ignore")  # noqa: E731
    assert failure(checks.check_encode_decode, bpe.encode, ignoring_bad_bytes).key == "invalid_utf8"


def test_the_notebook_calls_find_the_exercises_by_name(capsys):
    encode, decode, train_bpe = bpe.encode, bpe.decode, bpe.train_bpe
    check(encode, decode)
    check(train_bpe, hidden=True)

    def merge(ids, pair, new_id):
        raise NotImplementedError()

    assert use(merge) is bpe.merge
    assert capsys.readouterr().out.count("✅") == 2


def test_the_language_sentences_cover_many_scripts():
    from course_lib.data.languages import WALK_IN_THE_PARK

    assert len(WALK_IN_THE_PARK) >= 8 and "English" in WALK_IN_THE_PARK
    # Non-Latin scripts: Cyrillic, Greek, Arabic and Hebrew (right to left), Devanagari, CJK, Hangul.
    first_letters = {unicodedata.name(next(c for c in s if c.isalpha())).split()[0] for s in WALK_IN_THE_PARK.values()}
    assert {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "CJK", "HANGUL"} <= first_letters
