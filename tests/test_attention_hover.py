"""AttentionHover driven from Python (no browser): a fake model with known attention, then SmolLM2."""
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import traitlets

from course_lib.widgets import attention_hover
from course_lib.widgets.attention_hover import EMPTY_HINT, AttentionHover, SelectionError
from course_lib.widgets.tokens import make_visible

N_LAYERS, N_HEADS = 3, 2
STEP = 1 / 255  # one step of the uint8 weights


class FakeModel:
    """Words as tokens (each keeps its leading space) and a fixed, random-looking causal attention."""

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on
        self.vocab: list[str] = []

    def encode(self, text):
        pieces = re.findall(r" ?\S+|\s+", text)
        for piece in pieces:
            if piece not in self.vocab:
                self.vocab.append(piece)
        return [self.vocab.index(piece) for piece in pieces]

    def token_label(self, token_id):
        return self.vocab[token_id]

    def run_with_capture(self, ids):
        if self.fail_on in [self.vocab[i] for i in ids]:
            raise RuntimeError(f"cannot run on {self.fail_on!r}")
        n = len(ids)
        scores = torch.randn(N_LAYERS, N_HEADS, n, n, generator=torch.Generator().manual_seed(n))
        scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
        return torch.zeros(n, 8), SimpleNamespace(attentions=list(scores.softmax(-1)))


def decoded(widget) -> np.ndarray:
    """The synced bytes back as weights, [layer][head][query][key]."""
    n = len(widget.tokens)
    return np.frombuffer(widget.weights, dtype=np.uint8).reshape(widget.n_layers, widget.n_heads, n, n) / 255


def test_weights_are_all_layers_and_heads_as_bytes_within_one_step():
    w = AttentionHover(FakeModel(), text="The cat sat on the mat")
    assert w.tokens == ["The", "␣cat", "␣sat", "␣on", "␣the", "␣mat"]
    assert (w.n_layers, w.n_heads) == (N_LAYERS, N_HEADS)
    assert isinstance(w.weights, bytes) and len(w.weights) == N_LAYERS * N_HEADS * 6 * 6
    sent = decoded(w)
    for layer in range(N_LAYERS):
        for head in range(N_HEADS):
            exact = w.matrix(layer, head).numpy()
            assert np.abs(sent[layer, head] - exact).max() <= STEP / 2 + 1e-9
            assert not sent[layer, head][np.triu_indices(6, 1)].any()  # nothing above the diagonal
    assert sent[1, 0, 0, 0] == 1  # the first token can only look at itself


def test_matrix_follows_the_selection_and_head_minus_one_averages():
    w = AttentionHover(FakeModel(), text="a b c d e", layer=2, head=1)
    assert torch.equal(w.matrix(), w.matrix(2, 1))
    w.head = -1
    heads = torch.stack([w.matrix(2, head) for head in range(N_HEADS)])
    assert torch.allclose(w.matrix(), heads.mean(dim=0))
    assert torch.allclose(w.matrix().sum(dim=-1), torch.ones(5))
    w.matrix(0, 0)[0, 0] = 5  # a copy: the widget's weights stay as the model gave them
    assert w.matrix(0, 0)[0, 0] == 1


def test_attended_by_lists_earlier_tokens_most_attended_first():
    w = AttentionHover(FakeModel(), text="The cat sat on the mat")
    row = w.matrix(1, 0)[3]
    looked_at = w.attended_by(3, layer=1, head=0)
    assert [position for position, _, _ in looked_at] == sorted(range(4), key=lambda k: -row[k].item())
    assert [weight for _, _, weight in looked_at] == pytest.approx(sorted(row[:4].tolist(), reverse=True))
    position, label, _ = looked_at[0]
    assert label == ["The", " cat", " sat", " on"][position]  # the model's own text, spaces and all
    assert len(w.attended_by(3, layer=1, head=0, top=2)) == 2
    assert w.attended_by(0) == [(0, "The", pytest.approx(1.0))]


def test_long_text_keeps_the_first_max_tokens_with_a_notice():
    words = " ".join(f"w{i}" for i in range(70))
    w = AttentionHover(FakeModel(), text=words, max_tokens=64)
    assert len(w.tokens) == 64 and w.tokens[-1] == "␣w63"
    assert len(w.weights) == N_LAYERS * N_HEADS * 64 * 64
    assert w.notice == "Only the first 64 tokens are used; 6 tokens cut."
    assert w.text == words  # the learner's text itself is left alone
    w.text = "short text"
    assert w.notice == "" and len(w.tokens) == 2


def test_empty_text_has_no_tokens_and_a_hint():
    w = AttentionHover(FakeModel())
    assert (w.tokens, w.weights, w.error, w.notice) == ([], b"", "", EMPTY_HINT)
    assert w.matrix().shape == (0, 0)
    with pytest.raises(SelectionError, match="no tokens"):
        w.attended_by(0)
    w.text = "now some words"
    assert len(w.tokens) == 3 and w.notice == ""


def test_emoji_and_right_to_left_tokens_are_shown_visibly():
    text = "مرحبا بالعالم 🍓 👨\u200d👩\u200d👧"
    w = AttentionHover(FakeModel(), text=text)
    assert w.tokens == ["مرحبا", "␣بالعالم", "␣🍓", "␣👨<E2 80 8D>👩<E2 80 8D>👧"]
    assert w.labels == ["مرحبا", " بالعالم", " 🍓", " 👨\u200d👩\u200d👧"]
    assert len(w.weights) == N_LAYERS * N_HEADS * 4 * 4
    w.text = "a\ud83c"  # a lone surrogate, as a browser can send: no crash
    assert w.tokens == ["a\ufffd"] and w.error == ""


def test_a_model_error_is_shown_and_the_widget_stays_usable():
    w = AttentionHover(FakeModel(fail_on=" boom"), text="all fine here")
    w.locked = 2
    w.text = "this goes boom"
    assert w.error == "RuntimeError: cannot run on ' boom'"
    assert (w.tokens, w.weights, w.locked, w.notice) == ([], b"", -1, "")
    with pytest.raises(SelectionError, match="cannot run on"):
        w.attended_by(0)
    w.text = "fine again"
    assert w.error == "" and w.tokens == ["fine", "␣again"]


def test_a_new_sentence_unlocks():
    w = AttentionHover(FakeModel(), text="one two three four")
    w.locked = 3
    w.text = "one two"
    assert w.locked == -1


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("layer", N_LAYERS, "layer must be between 0 and 2"),
        ("layer", -1, "layer must be between 0 and 2"),
        ("head", N_HEADS, r"head must be -1 \(the average over heads\) or between 0 and 1"),
        ("head", -2, "head must be -1"),
        ("locked", 4, "position must be between 0 and 3"),
    ],
)
def test_out_of_range_selections_are_refused_and_change_nothing(name, value, message):
    w = AttentionHover(FakeModel(), text="one two three four", layer=1, head=0)
    with pytest.raises(SelectionError, match=message) as raised:
        setattr(w, name, value)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, traitlets.TraitError)
    assert (w.layer, w.head, w.locked) == (1, 0, -1)
    if name != "locked":  # layer and head are arguments of the constructor too
        with pytest.raises(SelectionError, match=message):
            AttentionHover(FakeModel(), text="one two three four", **{name: value})


def test_bad_arguments_are_clear_errors():
    w = AttentionHover(FakeModel(), text="one two")
    with pytest.raises(SelectionError, match="layer must be between 0 and 2"):
        w.matrix(layer=3)
    with pytest.raises(SelectionError, match="position must be between 0 and 1"):
        w.attended_by(2)
    with pytest.raises(ValueError, match="max_tokens must be at least 1"):
        AttentionHover(FakeModel(), max_tokens=0)


def test_a_model_that_fails_at_once_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="probe text.*RuntimeError: cannot run on 'Hello'"):
        AttentionHover(FakeModel(fail_on="Hello"))


def test_front_end_decodes_the_bytes_like_python():
    """attention_hover.js's own decoding, run in node on the synced bytes, against matrix()."""
    w = AttentionHover(FakeModel(), text="The cat sat on the mat")
    assert "export default" in w._esm and ".ah-future" in w._css
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    # Plain `node --check file.js` skips ES modules silently; read it from stdin as a module.
    check = subprocess.run([node, "--input-type=module", "--check"], input=w._esm,
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    module = Path(attention_hover.__file__).with_name("attention_hover.js")
    script = f"""
      import {{ attentionRow, shownShares }} from {json.dumps(module.as_uri())};
      const bytes = new Uint8Array({json.dumps(list(w.weights))});
      const rows = [[1, 0, 4], [2, -1, 5], [0, 1, 0]].map(([layer, head, query]) =>
        attentionRow(bytes, {N_HEADS}, 6, layer, head, query));
      console.log(JSON.stringify({{ rows, ignoring: shownShares(rows[1], true) }}));
    """
    run = subprocess.run([node, "--input-type=module"], input=script, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    for (layer, head, query), row in zip([(1, 0, 4), (2, -1, 5), (0, 1, 0)], result["rows"]):
        assert row == pytest.approx(w.matrix(layer, head)[query, : query + 1].tolist(), abs=STEP / 2 + 1e-9)
    # Leaving the first token out rescales the rest to sum to 1.
    rest = w.matrix(2, -1)[5, 1:]
    shares = [share["share"] for share in result["ignoring"]]
    assert [share["position"] for share in result["ignoring"]] == [1, 2, 3, 4, 5]
    assert shares == pytest.approx((rest / rest.sum()).tolist(), abs=2 * STEP)
    assert sum(shares) == pytest.approx(1)


@pytest.mark.slow
def test_smollm2_weights_survive_the_trip_to_the_browser():
    from course_lib.models.smollm import load_smollm2

    smol = load_smollm2(device="cpu", progress=False)
    text = "The cat sat on the mat because it was tired."
    w = AttentionHover(smol, text=text)
    ids = smol.encode(text)
    n = len(ids)
    assert w.tokens == [make_visible(smol.token_label(i)) for i in ids]
    assert (w.n_layers, w.n_heads) == (smol.config.n_layers, smol.config.n_heads)
    _, capture = smol.run_with_capture(ids)
    exact = torch.stack(capture.attentions).numpy()
    assert np.abs(decoded(w) - exact).max() <= STEP
    for layer in (0, 14, 29):
        for head in (-1, 0, 8):
            weights = w.matrix(layer, head)
            assert torch.allclose(weights.sum(dim=-1), torch.ones(n), atol=1e-5)
            assert torch.equal(weights, weights.tril())  # causal: nothing after the looking token
    it = w.tokens.index("␣it")
    looked_at = w.attended_by(it, layer=14, head=-1, top=3)
    assert len(looked_at) == 3 and all(position <= it for position, _, _ in looked_at)
