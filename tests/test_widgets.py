"""The on-ramp widgets, driven from Python the way a notebook would (no browser)."""
import math
import re
import shutil
import subprocess

import pytest
import torch

from course_lib.reference import softmax_with_temperature
from course_lib.widgets import TemperatureExplorer, TokenizerBox, bytes_tokenizer
from course_lib.widgets.tokens import make_visible


def word_tokenizer(text):
    """GPT-style words: each word keeps its leading space; ids are positions."""
    return [(i, word.encode("utf-8")) for i, word in enumerate(re.findall(r" ?\S+|\s+", text))]


def byte_pair_tokenizer(text):
    """Cuts the UTF-8 bytes into pairs, so multi-byte characters get split like in byte-level BPE."""
    data = text.encode("utf-8")
    return [(i, data[i : i + 2]) for i in range(0, len(data), 2)]


def box(text="", **kwargs):
    return TokenizerBox({"raw bytes": bytes_tokenizer, "words": word_tokenizer}, text=text, **kwargs)


def row(widget, name):
    return next(r for r in widget.rows if r["name"] == name)


def pieces(widget, name):
    return [token["piece"] for token in row(widget, name)["tokens"]]


# ---- TokenizerBox ----


def test_ascii_rows_and_counts():
    w = box("Hello world")
    assert [r["name"] for r in w.rows] == ["raw bytes", "words"]
    raw = row(w, "raw bytes")
    assert (raw["n_chars"], raw["n_bytes"], raw["n_tokens"]) == (11, 11, 11)
    assert [t["id"] for t in raw["tokens"]] == list(b"Hello world")
    assert pieces(w, "words") == ["Hello", "␣world"]
    assert row(w, "words")["n_tokens"] == 2
    assert all(r["error"] is None for r in w.rows)


def test_setting_text_retokenizes():
    w = box("a")
    w.text = "a b\nc"
    assert pieces(w, "raw bytes") == ["a", "␣", "b", "↵", "c"]


def test_emoji_is_four_byte_tokens_in_the_raw_row():
    w = box("🍓")
    raw = row(w, "raw bytes")
    assert (raw["n_chars"], raw["n_bytes"], raw["n_tokens"]) == (1, 4, 4)
    assert [t["id"] for t in raw["tokens"]] == [0xF0, 0x9F, 0x8D, 0x93]
    assert pieces(w, "raw bytes") == ["<F0>", "<9F>", "<8D>", "<93>"]
    assert row(w, "words")["tokens"] == [{"id": 0, "piece": "🍓", "hex": "F0 9F 8D 93"}]


@pytest.mark.parametrize(
    "text, n_chars, n_bytes, words",
    [
        ("你好世界", 4, 12, ["你好世界"]),
        ("مرحبا بالعالم", 13, 25, ["مرحبا", "␣بالعالم"]),
    ],
)
def test_cjk_and_arabic(text, n_chars, n_bytes, words):
    w = box(text)
    raw = row(w, "raw bytes")
    assert (raw["n_chars"], raw["n_bytes"], raw["n_tokens"]) == (n_chars, n_bytes, n_bytes)
    assert pieces(w, "words") == words


def test_partial_utf8_tokens_show_as_hex():
    w = TokenizerBox({"pairs": byte_pair_tokenizer}, text="é🍓")  # C3 A9 | F0 9F | 8D 93
    assert row(w, "pairs")["tokens"] == [
        {"id": 0, "piece": "é", "hex": "C3 A9"},
        {"id": 2, "piece": "<F0 9F>", "hex": "F0 9F"},
        {"id": 4, "piece": "<8D 93>", "hex": "8D 93"},
    ]


def test_invisible_characters_are_made_visible():
    assert make_visible(" a\tb\n") == "␣a⇥b↵"
    assert make_visible("\u200d") == "<E2 80 8D>"  # zero-width joiner inside family emoji
    assert make_visible("\u0301") == "\u25cc\u0301"  # a lone combining acute accent sits on ◌
    assert make_visible("e\u0301") == "e\u0301"


def test_empty_text_gives_zero_counts():
    w = box("")
    assert w.notice == ""
    for r in w.rows:
        assert (r["n_chars"], r["n_bytes"], r["n_tokens"], r["tokens"], r["error"]) == (0, 0, 0, [], None)


def test_long_text_is_truncated_with_a_notice():
    w = box("ab" * 3000, max_chars=2000)
    assert "2,000" in w.notice and "4,000" in w.notice
    raw = row(w, "raw bytes")
    assert (raw["n_chars"], raw["n_tokens"]) == (2000, 2000)
    assert len(w.text) == 6000  # the learner's text itself is left alone
    w.text = "short"
    assert w.notice == ""


def test_lone_surrogate_from_the_browser_does_not_crash():
    w = box("a\ud83c")
    assert row(w, "raw bytes")["n_bytes"] == 4  # "a" + U+FFFD


def test_raising_tokenizer_shows_its_error_in_its_row():
    def broken(text):
        raise RuntimeError("vocab file missing")

    w = TokenizerBox({"broken": broken, "raw bytes": bytes_tokenizer}, text="hi")
    assert "vocab file missing" in row(w, "broken")["error"]
    assert row(w, "broken")["tokens"] == []
    assert row(w, "raw bytes")["n_tokens"] == 2


def test_tokenizer_returning_str_pieces_is_reported():
    w = TokenizerBox({"strings": lambda text: [(0, text)]}, text="hi")
    assert "bytes" in row(w, "strings")["error"]


def test_needs_a_tokenizer():
    with pytest.raises(ValueError, match="at least one tokenizer"):
        TokenizerBox({})


def test_summary_is_a_text_table():
    w = box("Hi 🍓")
    summary = w.summary()
    assert "4 characters, 7 UTF-8 bytes" in summary
    assert "raw bytes" in summary and "H|i|␣|<F0>|<9F>|<8D>|<93>" in summary
    assert repr(w) == summary


def test_front_end_is_loaded_and_valid_javascript():
    w = box()
    assert "export default" in w._esm and ".tokbox-chip" in w._css
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    # Plain `node --check file.js` skips ES modules silently; read it from stdin as a module.
    check = subprocess.run(
        [node, "--input-type=module", "--check"], input=w._esm, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stderr


# ---- TemperatureExplorer ----

VOCAB = [" the", " a", "\n", "cat", "<b>", "dog", " on", "mat"]
LOGITS = torch.tensor([4.0, 3.0, 2.5, 1.0, 0.0, -1.0, -2.0, -3.0])


def token_label(token_id):
    return VOCAB[token_id]


def explorer(**kwargs):
    return TemperatureExplorer(LOGITS, token_label, top_n=5, **kwargs)


def test_bars_show_top_tokens_most_likely_first():
    w = explorer()
    bars = w.figure.data[0]
    expected = softmax_with_temperature(LOGITS, 1.0)
    assert list(bars.x) == pytest.approx(expected[:5].tolist())
    others = len(LOGITS) - 5
    assert list(w.figure.layout.yaxis.ticktext) == ["␣the", "␣a", "↵", "cat", "&lt;b&gt;", f"all other {others}"]
    assert list(w.figure.layout.xaxis.range) == [0, 1]
    assert w.slider.description == "temperature"
    assert (w.slider.min, w.slider.max, w.slider.step) == (0.05, 3.0, 0.05)


def test_slider_updates_the_bars_and_top_probability_rises_as_temperature_falls():
    w = explorer()
    before = list(w.figure.data[0].x)
    w.slider.value = 0.2
    assert list(w.figure.data[0].x) != before
    top = []
    for temperature in [3.0, 2.0, 1.0, 0.5, 0.2, 0.05]:
        w.temperature = temperature
        top.append(w.figure.data[0].x[0])
    assert top == sorted(top) and len(set(top)) == len(top)
    assert top[-1] > 0.99


def test_probabilities_property_is_the_full_distribution():
    w = explorer(temperature=0.5)
    assert w.temperature == 0.5
    assert torch.allclose(w.probabilities, softmax_with_temperature(LOGITS, 0.5))
    assert w.probabilities.sum().item() == pytest.approx(1.0)


def test_stats_show_top_probability_shown_mass_and_entropy():
    w = TemperatureExplorer(torch.zeros(8), lambda i: str(i), top_n=4)
    assert "12.5%" in w.stats.value  # top token of a uniform distribution over 8
    assert "50.0%" in w.stats.value  # the 4 shown
    assert "3.00 bits" in w.stats.value  # log2(8)
    w = explorer(temperature=0.7)
    p = softmax_with_temperature(LOGITS, 0.7).double()
    entropy = -(p * p.log2()).sum().item()
    assert f"{entropy:.2f} bits" in w.stats.value


@pytest.mark.parametrize("bad", [0, -1.0, 3.5, float("nan")])
def test_temperature_outside_range_is_a_clear_error(bad):
    w = explorer()
    with pytest.raises(ValueError, match="between 0.05 and 3.0"):
        w.temperature = bad
    assert w.temperature == 1.0
    with pytest.raises(ValueError, match="between 0.05 and 3.0"):
        explorer(temperature=bad)


@pytest.mark.parametrize("logits", [torch.zeros(0), torch.zeros(2, 3), [[1.0, 2.0]]])
def test_logits_must_be_non_empty_and_1d(logits):
    with pytest.raises(ValueError, match="non-empty 1-D"):
        TemperatureExplorer(logits, str)


def test_the_grey_bar_holds_the_rest_and_grows_with_temperature():
    w = explorer()
    rests = []
    for t in (0.2, 1.0, 3.0):
        w.temperature = t
        (rest,) = w.figure.data[1].x
        assert rest == pytest.approx(1 - sum(w.figure.data[0].x), abs=1e-6)
        rests.append(rest)
    assert rests[0] < rests[1] < rests[2]


def test_array_like_logits_and_top_n_larger_than_vocab():
    w = TemperatureExplorer([1.0, 2.0, 3.0], lambda i: "abc"[i], top_n=12)
    assert len(w.figure.data[0].x) == 3
    assert list(w.figure.layout.yaxis.ticktext) == ["c", "b", "a"]


def test_unimplemented_softmax_falls_back_to_the_reference_with_a_notice():
    def softmax_with_temperature_exercise(logits, temperature):
        raise NotImplementedError

    w = explorer(softmax=softmax_with_temperature_exercise)
    assert "not implemented" in w.notice.value and "reference softmax" in w.notice.value
    assert torch.allclose(w.probabilities, softmax_with_temperature(LOGITS, 1.0))


@pytest.mark.parametrize(
    "bad_softmax, problem",
    [
        (lambda logits, t: logits / t, "negative"),
        (lambda logits, t: torch.exp(logits / t), "sums to"),
        (lambda logits, t: torch.full_like(logits, float("nan")), "NaN"),
        (lambda logits, t: torch.ones(3) / 3, "shape"),
        (lambda logits, t: [1.0], "not a torch tensor"),
        (lambda logits, t: logits.nonexistent(), "AttributeError"),
    ],
)
def test_bad_softmax_shows_a_warning_and_draws_the_reference(bad_softmax, problem):
    w = explorer(softmax=bad_softmax)
    assert problem in w.notice.value and "reference softmax" in w.notice.value
    expected = softmax_with_temperature(LOGITS, 1.0)
    assert list(w.figure.data[0].x) == pytest.approx(expected[:5].tolist())


def test_warning_follows_the_temperature():
    def naive_softmax(logits, temperature):  # no max subtraction: overflows at low temperature
        weights = torch.exp(logits / temperature)
        return weights / weights.sum()

    w = TemperatureExplorer(LOGITS * 3, token_label, softmax=naive_softmax)
    assert w.notice.value == ""
    w.temperature = 0.05
    assert "NaN" in w.notice.value
    assert w.figure.data[0].x[0] == pytest.approx(1.0)
    w.temperature = 1.0
    assert w.notice.value == ""


def recording_softmax(calls: list):
    """A learner's correct softmax that records the temperature of every call in `calls`."""
    def my_softmax(logits, temperature):
        calls.append(temperature)
        return torch.softmax(logits / temperature, dim=-1)
    return my_softmax


def test_learner_softmax_is_used_when_it_is_correct():
    calls = []
    my_softmax = recording_softmax(calls)
    w = explorer(softmax=my_softmax)
    w.temperature = 2.0
    assert calls == [1.0, 2.0]
    assert w.notice.value == ""
    assert math.isclose(w.figure.data[0].x[0], torch.softmax(LOGITS / 2, -1)[0].item(), rel_tol=1e-6)


# ---- TemperatureExplorer: top-k / top-p filters and drawing tokens ----

from course_lib.exercises.lifecycle import sample_next_token, sampling_probabilities  # noqa: E402


def filtered_explorer(**kwargs):
    return TemperatureExplorer(LOGITS, token_label, top_n=5, filters=True, **kwargs)


def test_without_filters_there_are_no_filter_controls():
    w = explorer()
    assert (w.top_k, w.top_p) == (0, 1.0)
    assert "pool" not in w.stats.value
    with pytest.raises(ValueError, match="filters=True"):
        w.top_k = 3
    with pytest.raises(ValueError, match="filters=True"):
        w.top_p = 0.5


def test_top_k_cuts_the_rest_to_zero_and_marks_them():
    w = filtered_explorer()
    assert (w.top_k_slider.min, w.top_k_slider.max, w.top_k_slider.value) == (0, 100, 0)
    assert (w.top_p_slider.min, w.top_p_slider.max, w.top_p_slider.value) == (0.05, 1.0, 1.0)
    assert "sampling pool: <b>8</b> of 8 tokens" in w.stats.value
    w.top_k = 2
    expected = sampling_probabilities(LOGITS, 1.0, top_k=2)
    assert torch.allclose(w.probabilities, expected)
    assert list(w.figure.data[0].x) == pytest.approx(expected[:5].tolist())
    assert list(w.figure.layout.yaxis.ticktext)[:5] == ["␣the", "␣a", "↵ ✂ cut", "cat ✂ cut", "&lt;b&gt; ✂ cut"]
    assert list(w.figure.data[0].text)[2:] == ["", "", ""]  # no text on a bar of length 0: the tick label says "cut"
    assert w.figure.data[1].x[0] == pytest.approx(0.0, abs=1e-6)
    assert "sampling pool: <b>2</b> of 8 tokens" in w.stats.value
    w.top_k = 0
    assert torch.allclose(w.probabilities, softmax_with_temperature(LOGITS, 1.0))
    assert "✂" not in "".join(w.figure.layout.yaxis.ticktext)


def test_top_p_follows_the_temperature_and_combines_with_top_k():
    w = filtered_explorer(temperature=0.5)
    w.top_p = 0.9
    assert torch.allclose(w.probabilities, sampling_probabilities(LOGITS, 0.5, top_p=0.9))
    pool = int((w.probabilities > 0).sum())
    assert f"sampling pool: <b>{pool}</b> of 8" in w.stats.value
    w.temperature = 2.0  # a flatter distribution needs more tokens to reach 0.9
    assert int((w.probabilities > 0).sum()) > pool
    w.top_k = 3
    assert torch.allclose(w.probabilities, sampling_probabilities(LOGITS, 2.0, top_k=3, top_p=0.9))


@pytest.mark.parametrize("name, bad", [("top_k", -1), ("top_k", 101), ("top_k", 2.5), ("top_k", True),
                                       ("top_p", 0.0), ("top_p", 1.5), ("top_p", float("nan"))])
def test_bad_filter_values_are_refused_and_change_nothing(name, bad):
    w = filtered_explorer()
    w.top_k, w.top_p = 4, 0.9
    before = (w.top_k, w.top_p, w.probabilities.clone())
    with pytest.raises(ValueError, match=f"{name} must be"):
        setattr(w, name, bad)
    assert (w.top_k, w.top_p) == before[:2] and torch.equal(w.probabilities, before[2])


def test_filters_apply_after_the_learners_softmax():
    calls = []
    my_softmax = recording_softmax(calls)
    w = filtered_explorer(softmax=my_softmax)
    w.top_k = 1
    assert calls == [1.0, 1.0] and w.notice.value == ""
    assert w.probabilities.tolist() == [1.0] + [0.0] * 7


def reference_draws(n, seed, **settings):
    generator = torch.Generator().manual_seed(seed)
    return [sample_next_token(LOGITS, generator=generator, **settings) for _ in range(n)]


def test_draw_uses_the_sampler_at_the_current_settings():
    calls = []

    def my_sampler(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
        calls.append((temperature, top_k, top_p))
        return sample_next_token(logits, temperature, top_k, top_p, generator)

    w = filtered_explorer(sampler=my_sampler, temperature=0.7)
    w.top_k, w.top_p = 3, 0.95
    tokens = w.draw(seed=5)
    assert tokens == reference_draws(10, 5, temperature=0.7, top_k=3, top_p=0.95)
    assert calls == [(0.7, 3, 0.95)] * 10 and w.notice.value == ""
    assert " · ".join(make_visible(VOCAB[t]) for t in tokens) in w.draws.value
    assert "temperature 0.7, top_k 3, top_p 0.95, seed 5" in w.draws.value
    w.top_k, w.top_p = 0, 1.0
    calls.clear()
    w.draw(n=3)
    assert calls == [(0.7, None, None)] * 3  # filters that are off are passed as None


def test_the_draw_button_draws_ten_with_a_new_seed_each_click():
    w = filtered_explorer(sampler=sample_next_token)
    assert w.draw_button.description == "Draw 10"
    w.draw_button.click()
    assert "seed 0" in w.draws.value
    w.draw_button.click()
    assert "seed 1" in w.draws.value
    assert w.draws.value.count(" · ") == 9


def test_without_a_sampler_there_is_no_button_and_draw_uses_the_reference():
    w = filtered_explorer()
    assert not any(w.draw_button in getattr(child, "children", ()) for child in w.children)
    w.top_k = 1
    assert w.draw(n=20, seed=3) == [0] * 20


def test_an_unimplemented_sampler_falls_back_to_the_reference_with_a_notice():
    def sample_next_token_exercise(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
        raise NotImplementedError

    w = filtered_explorer(sampler=sample_next_token_exercise)
    assert w.draw(seed=2) == reference_draws(10, 2, temperature=1.0)
    assert "sample_next_token_exercise is not implemented yet" in w.notice.value
    assert "reference sampler" in w.notice.value


def always(token):
    def sampler(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
        return token
    return sampler


def raising(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    raise RuntimeError("invalid multinomial distribution")


@pytest.mark.parametrize("bad_sampler, problem", [
    (raising, "RuntimeError: invalid multinomial distribution"),
    (always(42), "outside the vocabulary of 8"),
    (always("the"), "not a token id"),
    (always(7), "drew 'mat' (id 7), which the top-k / top-p filters exclude"),
])
def test_a_failing_sampler_shows_a_warning_and_draws_with_the_reference(bad_sampler, problem):
    w = filtered_explorer(sampler=bad_sampler)
    w.top_k = 3
    assert w.draw(seed=1) == reference_draws(10, 1, temperature=1.0, top_k=3)
    assert problem in w.notice.value and "reference sampler" in w.notice.value


def test_the_sampler_notice_stays_next_to_the_softmax_notice():
    def softmax_with_temperature_exercise(logits, temperature):
        raise NotImplementedError

    w = filtered_explorer(softmax=softmax_with_temperature_exercise, sampler=raising)
    w.draw()
    w.temperature = 0.5  # a redraw keeps both notices
    assert "reference softmax" in w.notice.value and "reference sampler" in w.notice.value
    w.sampler = sample_next_token
    w.draw()
    assert "reference softmax" in w.notice.value and "reference sampler" not in w.notice.value


@pytest.mark.parametrize("n", [0, -1, 2.5])
def test_draw_refuses_a_bad_count(n):
    with pytest.raises(ValueError, match="n must be a whole number >= 1"):
        filtered_explorer().draw(n=n)


# --- AttentionMap -----------------------------------------------------------------------------
from course_lib.widgets import AttentionMap  # noqa: E402


def _causal_attention(layers=3, heads=2, n=4):
    scores = torch.randn(layers, heads, n, n, generator=torch.Generator().manual_seed(0))
    scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    return list(scores.softmax(-1))


def test_attention_map_follows_the_sliders():
    attentions = _causal_attention()
    w = AttentionMap(attentions, ["How", " many", " r", "?"], layer=1, head=0)
    assert torch.equal(w.weights, attentions[1][0])
    assert w.figure.data[0].z[0][1] == 0  # the causal rule: no looking ahead
    w.layer_slider.value, w.head_slider.value = 2, 1
    assert [list(r) for r in w.figure.data[0].z] == attentions[2][1].tolist()
    assert "layer 2, head 1" in w.figure.layout.title.text
    assert w.figure.data[0].x[1] == "1:␣many"


def test_attention_map_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="4 labels"):
        AttentionMap(_causal_attention(n=3), ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="capture"):
        AttentionMap([], [])
