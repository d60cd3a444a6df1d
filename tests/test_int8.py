"""SmolLM2 on int8 weights (course_lib/models/int8.py) against float32, and the parts it is made of."""
import copy

import pytest
import torch

from course_lib import paths
from course_lib.data import python_docs_text
from course_lib.inference import top_tokens, window_logits
from course_lib.models import int8, smollm
from course_lib.models.llama import Llama, LlamaConfig
from course_lib.models.smollm import load_smollm2

# Measured on SmolLM2 over the first 1,024 tokens of python_docs_text(6000) (bench/smollm2.py prints
# the same): int8's top token is float32's at 94.0% of positions (bfloat16's at 97.6%), and at 99.9%
# of those where float32's own top two are at least half a logit apart; the largest logit gap is 2.5.
AGREEMENT_FLOOR = 0.92            # share of positions whose top next token is float32's
CONFIDENT_AGREEMENT_FLOOR = 0.99  # the same, where float32 leads its runner-up by CONFIDENT_MARGIN
CONFIDENT_MARGIN = 0.5
LOGIT_TOLERANCE = 4.0             # largest |logit difference| over the positions compared


@pytest.fixture(scope="module")
def exact():
    return load_smollm2(device="cpu", progress=False)


@pytest.fixture(scope="module")
def quantized():
    return load_smollm2(device="cpu", precision="int8", progress=False)


@pytest.mark.parametrize("cols", [32, 24])  # 24: not a whole number of the kernel's blocks
def test_the_cpu_kernel_computes_the_expanded_product(cols):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(40, cols, generator=generator) * torch.linspace(0.01, 3, 40)[:, None]
    q, scale = int8.quantize_int8(weight)
    x = torch.randn(2, 5, cols, generator=generator)
    fused = int8.int8_matmul(x, q, scale)
    assert fused.shape == (2, 5, 40)
    expanded = int8.expanded_int8_matmul(x, q, scale)
    assert torch.allclose(expanded, x @ (q.float() * scale[:, None]).T, atol=1e-4)
    # The kernel takes x in bfloat16 (8 bits of mantissa): about 1% apart, never more.
    assert fused.dtype == torch.float32
    assert (fused - expanded).abs().max() < 0.02 * expanded.abs().max()


def test_a_small_llama_quantized_keeps_its_predictions_and_refuses_a_bad_quantizer():
    torch.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=300, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=128,
                              max_seq_len=64)).eval()
    ids = torch.randint(0, 300, (2, 20))
    with torch.inference_mode():
        before = model(ids)
        small = int8.quantize_model(copy.deepcopy(model))
        after = small(ids)
    assert {type(m).__name__ for m in small.modules()} >= {"Int8Linear", "Int8Embedding"}
    assert not any(isinstance(m, torch.nn.Linear) for m in small.modules())
    assert all(t.dtype == torch.int8 for name, t in small.state_dict().items() if name.endswith(".q"))
    assert (after - before).abs().max() < 0.05 * before.abs().max()
    with pytest.raises(ValueError, match="one scale per row"):
        int8.quantize_model(copy.deepcopy(model), lambda w: (w.to(torch.int8), w.abs().max().reshape(1)))


def test_int8_smollm2_changes_the_top_token_only_where_float32_is_nearly_undecided(exact, quantized):
    ids = exact.encode(python_docs_text(6000))[:1024]
    reference, logits = (torch.cat(list(window_logits(smol, ids))) for smol in (exact, quantized))
    same = reference.argmax(-1) == logits.argmax(-1)
    assert same.float().mean() >= AGREEMENT_FLOOR, f"int8's top token is float32's at only {same.float().mean():.1%}"
    best_two = reference.topk(2, dim=-1).values
    confident = best_two[:, 0] - best_two[:, 1] >= CONFIDENT_MARGIN
    assert confident.sum() > len(ids) / 2
    assert same[confident].float().mean() >= CONFIDENT_AGREEMENT_FLOOR
    assert (reference - logits).abs().max() < LOGIT_TOLERANCE
    # The measurement the notebook shows is this one.
    assert torch.equal(top_tokens(exact, ids) == top_tokens(quantized, ids), same)


def test_int8_gives_float32s_reply_where_float32_is_sure(exact, quantized):
    assert quantized.generate("What is the capital of France?", 24) == exact.generate("What is the capital of France?", 24)


def test_int8_weights_are_a_quarter_of_the_bytes_and_cached(tmp_path, monkeypatch, exact, quantized):
    assert 0.24 < quantized.weight_bytes / exact.weight_bytes < 0.27
    assert "int8 weights" in repr(quantized) and "135M parameters" in repr(quantized)
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(smollm, "_LOADED", {})
    first = load_smollm2(device="cpu", precision="int8", progress=False)
    assert not first.from_cache and len(list(tmp_path.glob("*-int8.safetensors"))) == 1
    monkeypatch.setattr(smollm, "_LOADED", {})
    again = load_smollm2(device="cpu", precision="int8", progress=False)
    assert again.from_cache
    ids = exact.encode("The weather today is")
    assert torch.equal(again.logits(ids), quantized.logits(ids))


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'float32', 'bfloat16', 'int8'"):
        load_smollm2(device="cpu", precision="int4")
